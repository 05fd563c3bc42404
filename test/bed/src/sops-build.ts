/**
 * The reference `sops` CLI the SOPS library is tested against, pinned by test/bed/sops/
 * and built from the Go module proxy (a minute or two cold on two cores), then found by a
 * hash of two files.
 */
import { defaultCacheDir } from './bed.ts';
import { ensureGoCommand, type PinnedGoCommand, pinnedVersion } from './go-command.ts';
import type { Log } from './process.ts';

/** The wrapper module pinning the reference `sops` CLI (test/bed/sops/). */
export const sopsModuleDir = new URL('../sops/', import.meta.url).pathname;

const sops: PinnedGoCommand = {
  moduleDir: sopsModuleDir,
  module: 'github.com/getsops/sops/v3',
  pkg: 'github.com/getsops/sops/v3/cmd/sops',
  binary: 'sops',
  what: 'the sops CLI',
  recipe: 1,
};

export interface SopsBinary {
  readonly path: string;
  /** github.com/getsops/sops/v3 version, from the wrapper's go.mod. */
  readonly version: string;
}

export function sopsVersion(): string {
  return pinnedVersion(sops);
}

export async function ensureSops(opts: { cacheDir?: string; log?: Log } = {}): Promise<SopsBinary> {
  return ensureGoCommand(sops, {
    cacheDir: opts.cacheDir ?? defaultCacheDir(),
    log: opts.log ?? ((line: string) => process.stderr.write(`[sops] ${line}\n`)),
  });
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
