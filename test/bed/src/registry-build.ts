import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { lockDirectory } from '../../../scripts/build-support.ts';
import { formatElapsed, type Log, run, withProgress } from './process.ts';

/** The wrapper module pinning the CNCF distribution registry (test/bed/registry/). */
export const registryModuleDir = new URL('../registry/', import.meta.url).pathname;

// Bump when the recipe (flags, environment, layout) changes.
const recipeVersion = 1;

export interface RegistryBinary {
  readonly path: string;
  /** github.com/distribution/distribution/v3 version, from the wrapper's go.mod. */
  readonly version: string;
}

export function registryVersion(): string {
  const goMod = readFileSync(join(registryModuleDir, 'go.mod'), 'utf8');
  const match = /^\s*github\.com\/distribution\/distribution\/v3\s+(v\S+)/m.exec(goMod);
  if (!match?.[1]) throw new Error('test/bed/registry/go.mod does not require distribution/v3');
  return match[1];
}

/**
 * Returns the `registry` binary (the OCI registry the bed serves charts from),
 * building it from the Go module proxy when the cache has none for the wrapper's
 * go.mod/go.sum: about a minute cold on two cores, then a hash of two files.
 */
export async function ensureRegistryBinary(opts: { cacheDir: string; log: Log }): Promise<RegistryBinary> {
  const version = registryVersion();
  const hash = createHash('sha256').update(`recipe ${recipeVersion}\n`);
  for (const f of ['go.mod', 'go.sum']) hash.update(readFileSync(join(registryModuleDir, f)));
  const root = join(opts.cacheDir, 'registry');
  const dir = join(root, `${version}-${hash.digest('hex').slice(0, 16)}`);
  const binary = join(dir, 'registry');
  if (existsSync(binary)) return { path: binary, version };

  mkdirSync(root, { recursive: true });
  const unlock = await lockDirectory(`${dir}.lock`, opts.log, 'the OCI registry');
  try {
    if (existsSync(binary)) return { path: binary, version };
    const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
    mkdirSync(tmp, { recursive: true });
    const started = Date.now();
    try {
      await withProgress(
        opts.log,
        `building the OCI registry (distribution ${version})`,
        run(
          process.env.GO ?? 'go',
          [
            'build',
            '-trimpath',
            '-buildvcs=false',
            '-mod=readonly',
            '-ldflags',
            '-s -w',
            '-o',
            join(tmp, 'registry'),
            'github.com/distribution/distribution/v3/cmd/registry',
          ],
          { cwd: registryModuleDir, env: { ...process.env, CGO_ENABLED: '0', GOWORK: 'off' } },
        ),
      );
      rmSync(dir, { recursive: true, force: true });
      renameSync(tmp, dir);
      opts.log(`OCI registry ready in ${dir} (${formatElapsed(Date.now() - started)})`);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    return { path: binary, version };
  } finally {
    unlock();
  }
}
