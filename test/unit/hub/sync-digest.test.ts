/**
 * A sync leaves each cluster it moves a fresh status digest, so the fleet listing right
 * after a fleet-wide change still reads only its page (not every cluster's full status).
 */
import { parseDesiredState } from '@flotilla/shared';
import {
  type FleetSourceFile,
  fleetStatusPage,
  parseStatusReport,
  recordClusterStatus,
  syncFleet,
} from '@flotilla/shared/hub';
import { describe, expect, it } from 'vitest';
import { addCluster, fakeApiDeps, MemoryFleetSource, statusReport } from './fakes.ts';

function repo(versions: { app: string; web: string }): FleetSourceFile[] {
  return (['app', 'web'] as const).flatMap((name) => [
    {
      path: `bundles/${name}/bundle.yaml`,
      content: `namespace: ${name}\ntargets:\n  - clusterSelector: {}\n`,
    },
    {
      path: `bundles/${name}/config.yaml`,
      content: `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  version: ${versions[name]}\n`,
    },
  ]);
}

async function setup(withStatuses: boolean) {
  const source = new MemoryFleetSource('1'.repeat(40), repo({ app: 'a1', web: 'w1' }));
  const deps = fakeApiDeps({ source });
  const ids = ['edge-1', 'edge-2', 'edge-3', 'edge-4'];
  for (const id of ids) await addCluster(deps.clusters, id);
  await syncFleet(deps, { holder: 'test' });
  // Every agent reports every bundle Ready at generation 1: each report leaves a digest.
  for (const id of ids) {
    const state = await deps.desiredStates.current(id);
    const record = await deps.clusters.get(id);
    if (!state || !record) throw new Error(id);
    const manifest = parseDesiredState(JSON.parse(state.manifest));
    await recordClusterStatus(
      deps,
      record,
      parseStatusReport(
        statusReport({
          appliedGeneration: manifest.generation,
          bundles: manifest.bundles.map((b) => ({
            name: b.name,
            hash: b.hash,
            generation: manifest.generation,
            state: 'Ready',
          })),
        }),
      ),
    );
  }
  // A change to `app` moves every cluster's head.
  source.commit = '2'.repeat(40);
  source.files = repo({ app: 'a2', web: 'w1' });
  const { statuses, ...withoutStatuses } = deps;
  await syncFleet(withStatuses ? deps : { ...withoutStatuses, statuses: undefined as never }, {
    holder: 'test',
  });
  let reads = 0;
  const get = statuses.get.bind(statuses);
  statuses.get = async (id: string) => {
    reads++;
    return get(id);
  };
  return { deps, ids, reads: () => reads };
}

describe('status digests after a sync', () => {
  it('gives every cluster it moved a digest of its new desired state: app Pending, web still Ready', async () => {
    const { deps, ids, reads } = await setup(true);
    for (const id of ids) {
      const record = await deps.clusters.get(id);
      expect(record?.statusDigest?.etag).toBe(record?.head?.etag);
      expect(record?.statusDigest?.issues).toEqual({ app: 'Pending' });
      expect(record?.statusDigest?.state).toBe('Pending');
    }
    const page = await fleetStatusPage(deps, { offlineAfterSeconds: 300, limit: 1 });
    expect(page.summary.clusterStates.Pending).toBe(4);
    expect(page.summary.bundleStates).toMatchObject({ Pending: 4, Ready: 4 });
    // Only the page's cluster had its full status read.
    expect(reads()).toBe(1);
  });

  it('without the reports port, the first listing reads every cluster instead', async () => {
    const { deps, ids, reads } = await setup(false);
    const record = await deps.clusters.get(ids[0] as string);
    expect(record?.statusDigest?.etag).not.toBe(record?.head?.etag);
    await fleetStatusPage(deps, { offlineAfterSeconds: 300, limit: 1 });
    expect(reads()).toBe(5);
  });
});
