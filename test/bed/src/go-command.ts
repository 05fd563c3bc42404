/**
 * A Go command pinned by a wrapper module of the bed (test/bed/<name>/go.mod and go.sum),
 * built from the Go module proxy into the cache once per go.mod/go.sum and recipe, under a
 * lock so that parallel test workers build it once. The OCI registry and the reference
 * `sops` CLI are built this way.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { lockDirectory } from '../../../scripts/build-support.ts';
import { formatElapsed, type Log, run, withProgress } from './process.ts';

export interface PinnedGoCommand {
  /** The wrapper module's directory. */
  readonly moduleDir: string;
  /** The module whose version the wrapper pins, as go.mod requires it: `github.com/getsops/sops/v3`. */
  readonly module: string;
  /** The package of the command: `github.com/getsops/sops/v3/cmd/sops`. */
  readonly pkg: string;
  /** The binary's file name, and the cache folder's. */
  readonly binary: string;
  /** For progress lines: `the sops CLI`. */
  readonly what: string;
  /** Bump when the recipe (flags, environment, layout) changes. */
  readonly recipe: number;
}

/** The version of `cmd.module` the wrapper's go.mod requires. */
export function pinnedVersion(cmd: Pick<PinnedGoCommand, 'moduleDir' | 'module'>): string {
  const goMod = readFileSync(join(cmd.moduleDir, 'go.mod'), 'utf8');
  const escaped = cmd.module.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  const match = new RegExp(`^\\s*${escaped}\\s+(v\\S+)`, 'm').exec(goMod);
  if (!match?.[1]) throw new Error(`${join(cmd.moduleDir, 'go.mod')} does not require ${cmd.module}`);
  return match[1];
}

/** The binary, built when the cache has none for the wrapper's go.mod/go.sum. */
export async function ensureGoCommand(
  cmd: PinnedGoCommand,
  opts: { cacheDir: string; log: Log },
): Promise<{ path: string; version: string }> {
  const version = pinnedVersion(cmd);
  const hash = createHash('sha256').update(`recipe ${cmd.recipe}\n`);
  for (const f of ['go.mod', 'go.sum']) hash.update(readFileSync(join(cmd.moduleDir, f)));
  const root = join(opts.cacheDir, cmd.binary);
  const dir = join(root, `${version}-${hash.digest('hex').slice(0, 16)}`);
  const binary = join(dir, cmd.binary);
  if (existsSync(binary)) return { path: binary, version };

  mkdirSync(root, { recursive: true });
  const unlock = await lockDirectory(`${dir}.lock`, opts.log, cmd.what);
  try {
    if (existsSync(binary)) return { path: binary, version };
    const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
    mkdirSync(tmp, { recursive: true });
    const started = Date.now();
    try {
      await withProgress(
        opts.log,
        `building ${cmd.what} (${version})`,
        run(
          process.env.GO ?? 'go',
          [
            'build',
            '-trimpath',
            // The wrapper sits in this git work tree; stamping its state would make builds differ per checkout.
            '-buildvcs=false',
            '-mod=readonly',
            '-ldflags',
            '-s -w',
            '-o',
            join(tmp, cmd.binary),
            cmd.pkg,
          ],
          { cwd: cmd.moduleDir, env: { ...process.env, CGO_ENABLED: '0', GOWORK: 'off' } },
        ),
      );
      rmSync(dir, { recursive: true, force: true });
      renameSync(tmp, dir);
      opts.log(`${cmd.what} ready in ${dir} (${formatElapsed(Date.now() - started)})`);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    return { path: binary, version };
  } finally {
    unlock();
  }
}
