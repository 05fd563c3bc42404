/**
 * `flotilla ...` run in-process, as the CLI integration tests drive it: against a hub, as
 * an admin unless the extra environment says otherwise, with its state in `stateDir`.
 */
import { join } from 'node:path';
import { runCli } from '../../cli/src/cli.ts';

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  json<T = Record<string, unknown>>(): T;
}

export interface CliTarget {
  readonly hubUrl: string;
  readonly adminKey: string;
  readonly stateDir: string;
  /** Working directory of the command; the process's by default. */
  readonly cwd?: string;
}

export async function runFlotilla(
  target: CliTarget,
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<CliRun> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(args, {
    stdout: (t) => out.push(t),
    stderr: (t) => err.push(t),
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      XDG_CONFIG_HOME: join(target.stateDir, 'config'),
      FLOTILLA_STATE_DIR: target.stateDir,
      FLOTILLA_HUB_URL: target.hubUrl,
      FLOTILLA_ADMIN_KEY: target.adminKey,
      ...env,
    },
    cwd: target.cwd ?? process.cwd(),
    homeDir: target.stateDir,
  });
  const stdout = out.join('');
  return { code, stdout, stderr: err.join(''), json: <T>() => JSON.parse(stdout) as T };
}
