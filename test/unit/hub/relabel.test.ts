import {
  ConflictError,
  type FleetSourceFile,
  NotFoundError,
  relabelCluster,
  syncFleet,
  ValidationError,
} from '@flotilla/shared/hub';
import { describe, expect, it } from 'vitest';
import { addCluster, fakeApiDeps, MemoryFleetSource } from './fakes.ts';

/** One bundle per label key `k<i>`, targeted at clusters that have that key. */
function keyedBundles(count: number): FleetSourceFile[] {
  return Array.from({ length: count }, (_, i) => [
    { path: `bundles/b${i}/bundle.yaml`, content: `namespace: n\ntargets:\n  - clusterSelector: "k${i}"\n` },
    {
      path: `bundles/b${i}/cm.yaml`,
      content: `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b${i}\ndata:\n  v: "\${cluster.labels.k${i}}"\n`,
    },
  ]).flat();
}

async function synced(labels: Record<string, string> = {}) {
  const deps = fakeApiDeps({ source: new MemoryFleetSource('a'.repeat(40), keyedBundles(30)) });
  await addCluster(deps.clusters, 'edge', labels);
  await syncFleet(deps, { holder: 'test' });
  return deps;
}

type Deps = Awaited<ReturnType<typeof synced>>;

/** The bundles of the cluster's current desired state, and the ones its labels call for. */
async function desiredAgainstLabels(deps: Deps) {
  const cluster = await deps.clusters.get('edge');
  const current = await deps.desiredStates.current('edge');
  const manifest = JSON.parse(current?.manifest ?? '{}') as { bundles?: { name: string }[] };
  return {
    labels: cluster?.labels ?? {},
    desired: (manifest.bundles ?? []).map((b) => b.name).sort(),
    wanted: Object.keys(cluster?.labels ?? {})
      .map((k) => `b${k.slice(1)}`)
      .sort(),
    generation: cluster?.head?.generation,
  };
}

describe('relabelling a cluster', () => {
  it('keeps every key when 20 changes of different keys overlap, and plans from the final labels', async () => {
    const deps = await synced();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => relabelCluster(deps, 'edge', { set: { [`k${i}`]: `v${i}` } })),
    );
    const state = await desiredAgainstLabels(deps);
    expect(Object.keys(state.labels)).toHaveLength(20);
    for (let i = 0; i < 20; i++) expect(state.labels[`k${i}`]).toBe(`v${i}`);
    expect(state.desired).toEqual(state.wanted);
    expect((await deps.clusters.get('edge'))?.labelsRevision).toBe(20);
    // Each answer shows the cluster as its own change left it, or later: never without its key.
    results.forEach((r, i) => {
      expect(r.cluster.labels[`k${i}`]).toBe(`v${i}`);
    });
  });

  it('sets and removes different keys in parallel', async () => {
    const deps = await synced(Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, 'old'])));
    expect((await desiredAgainstLabels(deps)).desired).toHaveLength(10);
    await Promise.all([
      ...Array.from({ length: 10 }, (_, i) => relabelCluster(deps, 'edge', { remove: [`k${i}`] })),
      ...Array.from({ length: 10 }, (_, i) =>
        relabelCluster(deps, 'edge', { set: { [`k${i + 10}`]: 'new' } }),
      ),
    ]);
    const state = await desiredAgainstLabels(deps);
    expect(state.labels).toEqual(
      Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i + 10}`, 'new'])),
    );
    expect(state.desired).toEqual(state.wanted);
  });

  it('re-plans when a label changed while it planned, even if that change found nothing to do', async () => {
    const deps = await synced();
    const planned = (await desiredAgainstLabels(deps)).generation ?? 0;
    // While the first change plans from {k0}, a second one removes k0 again: that one's own
    // re-plan finds the head (planned without k0) already right, and commits nothing.
    const get = deps.bundles.get.bind(deps.bundles);
    let interleaved = false;
    deps.bundles.get = async (hash) => {
      if (!interleaved) {
        interleaved = true;
        const second = await relabelCluster(deps, 'edge', { remove: ['k0'] });
        expect(second.sync.changed).toEqual([]);
      }
      return get(hash);
    };
    const first = await relabelCluster(deps, 'edge', { set: { k0: 'x' } });
    const state = await desiredAgainstLabels(deps);
    expect(state.labels).toEqual({});
    // The first change committed b0 from labels gone by then, saw the revision move, and planned again.
    expect(state.desired).toEqual([]);
    expect(state.generation).toBe(planned + 2);
    expect(first.cluster.labels).toEqual({});
    expect(first.sync.changed).toEqual([
      { clusterId: 'edge', generation: planned + 2, etag: expect.any(String) },
    ]);
  });

  it('refuses a key both set and removed, a bad label and an unknown cluster', async () => {
    const deps = await synced();
    await expect(relabelCluster(deps, 'edge', { set: { a: '1' }, remove: ['a'] })).rejects.toMatchObject({
      name: 'ValidationError',
      field: 'remove[0]',
    });
    await expect(relabelCluster(deps, 'edge', { set: { a: 'b c' } })).rejects.toBeInstanceOf(ValidationError);
    await expect(relabelCluster(deps, 'gone', { set: { a: 'b' } })).rejects.toBeInstanceOf(NotFoundError);
    expect((await deps.clusters.get('edge'))?.labels).toEqual({});
  });

  it('gives up with a conflict when the labels never stop changing', async () => {
    const deps = await synced();
    // Every read of the record finds another label change landed since the last one.
    const get = deps.clusters.get.bind(deps.clusters);
    let n = 0;
    deps.clusters.get = async (id) => {
      await deps.clusters.relabel(id, { set: { [`k${n++ % 30}`]: 'busy' }, remove: [] });
      return get(id);
    };
    await expect(relabelCluster(deps, 'edge', { set: { k0: 'x' } })).rejects.toBeInstanceOf(ConflictError);
  });

  it('plans again, instead of failing, when other re-plans win every commit attempt', async () => {
    const deps = await synced();
    const commit = deps.desiredStates.commit.bind(deps.desiredStates);
    let lost = 0;
    deps.desiredStates.commit = async (state, expected) => {
      // As if another re-plan of the cluster committed first, five times in a row.
      if (lost++ < 5) throw new ConflictError('moved');
      return commit(state, expected);
    };
    const { sync } = await relabelCluster(deps, 'edge', { set: { k2: 'x' } });
    expect(lost).toBe(6);
    expect(sync.changed).toHaveLength(1);
    expect((await desiredAgainstLabels(deps)).desired).toEqual(['b2']);
  });

  it('re-plans when the Kubernetes version changed while it planned', async () => {
    const deps = await synced();
    const get = deps.clusters.get.bind(deps.clusters);
    let reads = 0;
    deps.clusters.get = async (id) => {
      if (++reads === 2) {
        await deps.clusters.recordHeartbeat(id, {
          at: '2024-05-01T12:00:00Z',
          agentVersion: '0.1.0',
          kubeVersion: 'v1.33.2',
        });
      }
      return get(id);
    };
    const { sync } = await relabelCluster(deps, 'edge', { set: { k1: 'x' } });
    // The version moved between the plan and the check: planned once more, with nothing new to commit.
    expect(reads).toBe(4);
    expect(sync.changed).toHaveLength(1);
    expect((await desiredAgainstLabels(deps)).desired).toEqual(['b1']);
  });
});
