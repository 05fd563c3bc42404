import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatElapsed, type Log, runCommand, withProgress } from '../../../scripts/build-support.ts';

export type { Log };

/** A child process of the bed whose output goes to a log file. */
export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logPath: string;
  /** Resolves when the process has exited, with its exit code or signal. */
  readonly exited: Promise<string>;
  stop(graceMs?: number): Promise<void>;
}

export class BedProcessError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'BedProcessError';
  }
}

// setpriv's parent-death signal kills a service when the process that started it
// dies without cleaning up (a crashed test run, a SIGKILLed `bed up`), so nothing
// lingers on the machine.
const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

/** Starts `command` with stdout and stderr appended to `logPath`. */
export function startProcess(opts: {
  name: string;
  command: string;
  args: readonly string[];
  logPath: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}): ManagedProcess {
  const out = openSync(opts.logPath, 'a');
  const [file, args] = setpriv
    ? [setpriv, ['--pdeathsig', 'KILL', '--', opts.command, ...opts.args]]
    : [opts.command, [...opts.args]];
  const child: ChildProcess = spawn(file, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['ignore', out, out],
  });
  if (child.pid === undefined) {
    throw new BedProcessError(`${opts.name}: could not start ${opts.command}`);
  }
  const pid = child.pid;
  let exitedWith: string | undefined;
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => {
      exitedWith = signal ? `signal ${signal}` : `exit code ${code}`;
      resolve(exitedWith);
    });
    child.once('error', (err) => {
      exitedWith = `error ${err.message}`;
      resolve(exitedWith);
    });
  });
  return {
    name: opts.name,
    pid,
    logPath: opts.logPath,
    exited,
    async stop(graceMs = 5_000) {
      if (exitedWith !== undefined) return;
      child.kill('SIGTERM');
      const done = await Promise.race([exited.then(() => true), sleep(graceMs).then(() => false)]);
      if (!done) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}

/** The last lines of a log file, for error messages. */
export function logTail(path: string, lines = 20): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Polls `probe` until it returns true. Fails early, with the log tail, when the
 * process exits first, so a broken service is reported at once and not as a timeout.
 */
export async function waitUntilReady(
  proc: ManagedProcess,
  probe: () => Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  let exit: string | undefined;
  void proc.exited.then((how) => {
    exit = how;
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exit !== undefined) {
      throw new BedProcessError(
        `${proc.name} exited (${exit}) before it was ready:\n${logTail(proc.logPath)}`,
      );
    }
    if (await probe().catch(() => false)) return;
    await sleep(200);
  }
  throw new BedProcessError(
    `${proc.name} was not ready within ${timeoutMs / 1000}s (log ${proc.logPath}):\n${logTail(proc.logPath)}`,
  );
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new BedProcessError('could not allocate a port'));
      });
    });
  });
}

/** Runs a command to completion; rejects with its output when it fails. */
export function run(
  command: string,
  args: readonly string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {},
): Promise<string> {
  return runCommand(command, args, opts, (message, cause) =>
    cause === undefined ? new BedProcessError(message) : new BedProcessError(message, { cause }),
  );
}

export { formatElapsed, withProgress };
