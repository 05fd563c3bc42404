import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { ensureRenderer, lambdaRendererTarget } from '@flotilla/renderer/build.ts';
import type { TestProject } from 'vitest/node';
import { type BedState, readBedState, repoRoot, startBed } from './src/bed.ts';
import { ensureChromium } from './src/browser.ts';
import { ensureSops } from './src/sops-build.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    bed: BedState;
  }
}

/** Names of the spoke control planes the integration tests get. */
export const bedClusters = ['spoke-a', 'spoke-b', 'spoke-c'] as const;

/**
 * Brings the real services up once for the whole integration run and hands their
 * endpoints to the tests with `inject('bed')`. With FLOTILLA_BED_DIR pointing at a
 * bed already up (`npm run bed -- up --detach`), that bed is reused and left running.
 * Its own bed's directory (logs, data) is removed afterwards unless FLOTILLA_KEEP_BED is set.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const reuseDir = process.env.FLOTILLA_BED_DIR;
  if (reuseDir) {
    const state = readBedState(reuseDir);
    if (!state)
      throw new Error(
        `FLOTILLA_BED_DIR=${reuseDir}: no running bed there (start one with npm run bed -- up)`,
      );
    project.provide('bed', state);
    return async () => {};
  }
  const dir = join(repoRoot, '.flotilla', `bed-test-${process.pid}`);
  // The render worker, for this machine and for the hub's Lambda (arm64), is built before
  // any test runs: a cold build inside a test would take the CPU from timing-bound tests.
  const log = (line: string) => process.stderr.write(`[renderer] ${line}\n`);
  // So is the reference sops CLI the SOPS differential tests run (after the renderer:
  // two Go builds at once on two cores would only slow both).
  // The browser tests' headless Chromium comes from Debian's packages (apt-get, once per
  // machine, ~15 s): a download and unpack rather than a build, so it runs beside them.
  const [bed] = await Promise.all([
    startBed({ dir, clusters: bedClusters, charts: true }),
    ensureRenderer({ log })
      .then(() => ensureRenderer({ target: lambdaRendererTarget, log }))
      .then(() => ensureSops()),
    ensureChromium(),
  ]);
  project.provide('bed', bed.state);
  return async () => {
    await bed.stop();
    // Logs and etcd data come to ~200 MB a run: kept only when asked for.
    if (process.env.FLOTILLA_KEEP_BED) process.stderr.write(`[bed] kept ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  };
}
