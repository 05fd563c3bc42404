import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { lockDirectory } from '../../../scripts/build-support.ts';
import { defaultCacheDir } from './bed.ts';
import { formatElapsed, type Log, run, withProgress } from './process.ts';

/** The wrapper module pinning the reference `sops` CLI (test/bed/sops/). */
export const sopsModuleDir = new URL('../sops/', import.meta.url).pathname;

// Bump when the recipe (flags, environment, layout) changes.
const recipeVersion = 1;

export interface SopsBinary {
  readonly path: string;
  /** github.com/getsops/sops/v3 version, from the wrapper's go.mod. */
  readonly version: string;
}

export function sopsVersion(): string {
  const goMod = readFileSync(join(sopsModuleDir, 'go.mod'), 'utf8');
  const match = /^\s*github\.com\/getsops\/sops\/v3\s+(v\S+)/m.exec(goMod);
  if (!match?.[1]) throw new Error('test/bed/sops/go.mod does not require getsops/sops/v3');
  return match[1];
}

/**
 * Returns the reference `sops` CLI the SOPS library is tested against, building it
 * from the Go module proxy when the cache has none for the wrapper's go.mod/go.sum
 * (a minute or two cold on two cores), then a hash of two files.
 */
export async function ensureSops(opts: { cacheDir?: string; log?: Log } = {}): Promise<SopsBinary> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`[sops] ${line}\n`));
  const version = sopsVersion();
  const hash = createHash('sha256').update(`recipe ${recipeVersion}\n`);
  for (const f of ['go.mod', 'go.sum']) hash.update(readFileSync(join(sopsModuleDir, f)));
  const root = join(opts.cacheDir ?? defaultCacheDir(), 'sops');
  const dir = join(root, `${version}-${hash.digest('hex').slice(0, 16)}`);
  const binary = join(dir, 'sops');
  if (existsSync(binary)) return { path: binary, version };

  mkdirSync(root, { recursive: true });
  const unlock = await lockDirectory(`${dir}.lock`, log, 'the sops CLI');
  try {
    if (existsSync(binary)) return { path: binary, version };
    const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
    mkdirSync(tmp, { recursive: true });
    const started = Date.now();
    try {
      await withProgress(
        log,
        `building the sops CLI (${version})`,
        run(
          process.env.GO ?? 'go',
          [
            'build',
            '-trimpath',
            // The wrapper sits in this git work tree; stamping its state would make
            // builds differ per checkout.
            '-buildvcs=false',
            '-mod=readonly',
            '-ldflags',
            '-s -w',
            '-o',
            join(tmp, 'sops'),
            'github.com/getsops/sops/v3/cmd/sops',
          ],
          { cwd: sopsModuleDir, env: { ...process.env, CGO_ENABLED: '0', GOWORK: 'off' } },
        ),
      );
      rmSync(dir, { recursive: true, force: true });
      renameSync(tmp, dir);
      log(`sops ready in ${dir} (${formatElapsed(Date.now() - started)})`);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    return { path: binary, version };
  } finally {
    unlock();
  }
}

// `node test/bed/src/sops-build.ts` builds (or finds) the binary and prints its path.
if (import.meta.main) {
  ensureSops().then(
    (b) => process.stdout.write(`${b.path}\n`),
    (err: unknown) => {
      process.stderr.write(`${String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
