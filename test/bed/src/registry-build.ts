/**
 * The `registry` binary (the CNCF distribution OCI registry the bed serves charts from),
 * pinned by test/bed/registry/ and built from the Go module proxy when the cache has none
 * for the wrapper's go.mod/go.sum: about a minute cold on two cores, then a hash of two files.
 */
import { ensureGoCommand, type PinnedGoCommand, pinnedVersion } from './go-command.ts';
import type { Log } from './process.ts';

/** The wrapper module pinning the CNCF distribution registry (test/bed/registry/). */
export const registryModuleDir = new URL('../registry/', import.meta.url).pathname;

const registry: PinnedGoCommand = {
  moduleDir: registryModuleDir,
  module: 'github.com/distribution/distribution/v3',
  pkg: 'github.com/distribution/distribution/v3/cmd/registry',
  binary: 'registry',
  what: 'the OCI registry',
  recipe: 1,
};

export interface RegistryBinary {
  readonly path: string;
  /** github.com/distribution/distribution/v3 version, from the wrapper's go.mod. */
  readonly version: string;
}

export function registryVersion(): string {
  return pinnedVersion(registry);
}

export async function ensureRegistryBinary(opts: { cacheDir: string; log: Log }): Promise<RegistryBinary> {
  return ensureGoCommand(registry, opts);
}
