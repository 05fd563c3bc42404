/**
 * What the project's long builds share (the test bed's Kubernetes binaries, the render
 * worker and its reference CLIs, all built from the Go module proxy): running a command,
 * showing progress while it runs, and a lock so that two runs on one machine do not both
 * spend minutes building the same thing.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export type Log = (line: string) => void;

export function formatElapsed(ms: number): string {
  const s = Math.round(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** Logs `label … 1m05s` every `everyMs` while `work` runs, so long steps show progress. */
export async function withProgress<T>(
  log: Log,
  label: string,
  work: Promise<T>,
  everyMs = 15_000,
): Promise<T> {
  const started = Date.now();
  log(`${label} …`);
  const timer = setInterval(() => log(`${label} … ${formatElapsed(Date.now() - started)}`), everyMs);
  try {
    const result = await work;
    log(`${label}: done in ${formatElapsed(Date.now() - started)}`);
    return result;
  } finally {
    clearInterval(timer);
  }
}

/**
 * Runs a command to completion and resolves with its output (stdout and stderr together);
 * rejects with `fail(message, cause)` when it cannot start or exits non-zero.
 */
export function runCommand(
  command: string,
  args: readonly string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string },
  fail: (message: string, cause?: unknown) => Error,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: opts.cwd, env: opts.env ?? process.env });
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.once('error', (err) => reject(fail(`${command}: ${err.message}`, err)));
    child.once('close', (code) => {
      if (code === 0) resolve(output);
      else reject(fail(`${command} ${args.join(' ')} failed (exit ${code}):\n${output.slice(-4000)}`));
    });
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

/**
 * A lock directory holding the owner's pid: resolves with the unlock once this process
 * holds it. A lock left by a process that is gone is taken over.
 *
 * @param what what the owner is building, for the "waiting for" line.
 */
export async function lockDirectory(path: string, log: Log, what: string): Promise<() => void> {
  let waiting = false;
  for (;;) {
    try {
      mkdirSync(path);
      writeFileSync(join(path, 'pid'), String(process.pid));
      return () => rmSync(path, { recursive: true, force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number(readFileOr(join(path, 'pid'), '0'));
    const ageMs = Date.now() - mtimeOr0(path);
    if ((owner > 0 && !isAlive(owner)) || (owner === 0 && ageMs > 10_000)) {
      rmSync(path, { recursive: true, force: true });
      continue;
    }
    if (!waiting) {
      waiting = true;
      log(`waiting for process ${owner} that is building ${what}`);
    }
    await sleep(1_000);
  }
}

function readFileOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

function mtimeOr0(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
