import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { agentNodeArgs } from '@flotilla/shared/agent';
import { repoRoot } from '../../bed/src/bed.ts';

/**
 * Collects a child's JSON log lines from stdout (a line that is not JSON as `{ raw }`) and
 * its stderr; resolves with its exit code.
 */
export function collectLogLines(
  child: ChildProcess,
  lines: Record<string, unknown>[],
  stderr: string[],
): Promise<number | null> {
  let buffer = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    let nl = buffer.indexOf('\n');
    while (nl >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      // For debugging a process test: FLOTILLA_AGENT_TEST_LOG=/tmp/agent.log keeps every agent's log lines.
      if (process.env.FLOTILLA_AGENT_TEST_LOG)
        appendFileSync(process.env.FLOTILLA_AGENT_TEST_LOG, `${child.pid} ${line}\n`);
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        lines.push({ raw: line });
      }
      nl = buffer.indexOf('\n');
    }
  });
  child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve(code)));
}

/** `node agent/src/main.ts` as a real process, its JSON log lines collected. */
export class AgentProcess {
  readonly child: ChildProcess;
  readonly lines: Record<string, unknown>[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<number | null>;

  private constructor(child: ChildProcess) {
    this.child = child;
    this.exited = collectLogLines(child, this.lines, this.stderr);
  }

  /** @param nodeArgs options for node before the entry point: by default the ones it is shipped with. */
  static start(env: Record<string, string>, nodeArgs: readonly string[] = agentNodeArgs): AgentProcess {
    const child = spawn(process.execPath, [...nodeArgs, join(repoRoot, 'agent/src/main.ts')], {
      cwd: repoRoot,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new AgentProcess(child);
  }

  /** The first log line with this message, waiting for it. */
  async waitForLog(message: string, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const line = this.lines.find((l) => l.message === message);
      if (line) return line;
      if (this.child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(
      `no "${message}" in the agent's log; it said:\n${this.lines.map((l) => JSON.stringify(l)).join('\n')}\n${this.stderr.join('')}`,
    );
  }

  /** SIGTERM, and wait for it to exit. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode === null) this.child.kill('SIGTERM');
    return this.exited;
  }
}
