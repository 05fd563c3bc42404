/**
 * Rollback and history: a rollback is a new, higher generation with an earlier one's
 * references, pinned until the bundle's next change or `--clear`; every generation says why
 * it was written.
 */
import { parseDesiredState } from '@flotilla/shared';
import {
  clusterHistory,
  type FleetSourceFile,
  InvalidRequestError,
  NotFoundError,
  relabelCluster,
  rollbackCluster,
  syncFleet,
} from '@flotilla/shared/hub';
import { describe, expect, it } from 'vitest';
import {
  addCluster,
  fakeApiDeps,
  type MemoryClusterStore,
  type MemoryDesiredStateStore,
  MemoryFleetSource,
} from './fakes.ts';

/** Two bundles for every cluster, `app` and `web`, each a ConfigMap carrying a version. */
function fleet(versions: { app: string; web: string }): FleetSourceFile[] {
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

async function setup() {
  const source = new MemoryFleetSource('1'.repeat(40), fleet({ app: 'a1', web: 'w1' }));
  const notified: { clusterId: string; generation: number }[] = [];
  const base = fakeApiDeps({
    source,
    notifier: {
      notify: async (changes) => {
        for (const c of changes) notified.push({ clusterId: c.cluster.id, generation: c.generation });
        return { sent: changes.length, failed: [] };
      },
    },
  });
  const deps = {
    ...base,
    clusters: base.clusters as MemoryClusterStore,
    desiredStates: base.desiredStates as MemoryDesiredStateStore,
  };
  await addCluster(deps.clusters, 'edge-1');
  let commits = 1;
  const push = async (versions: { app: string; web: string }) => {
    source.commit = String(++commits).repeat(40).slice(0, 40);
    source.files = fleet(versions);
    return syncFleet(deps, { holder: 'test' });
  };
  await syncFleet(deps, { holder: 'test' }); // generation 1: a1 w1
  await push({ app: 'a2', web: 'w1' }); // 2
  await push({ app: 'a3', web: 'w2' }); // 3
  const refs = async (generation?: number) => {
    const state =
      generation === undefined
        ? await deps.desiredStates.current('edge-1')
        : await deps.desiredStates.generation('edge-1', generation);
    if (!state) throw new Error(`no generation ${generation}`);
    return Object.fromEntries(
      parseDesiredState(JSON.parse(state.manifest)).bundles.map((b) => [b.name, b.hash]),
    );
  };
  const generation = () => deps.clusters.records.get('edge-1')?.head?.generation;
  const pins = () => (deps.clusters.records.get('edge-1')?.pins ?? []).map((p) => p.bundle);
  return { deps, push, refs, generation, pins, notified };
}

describe('rollback', () => {
  it('writes generation head+1 with the references of generation N, signed and notified', async () => {
    const t = setup();
    const { deps, refs, generation, notified } = await t;
    const before = notified.length;
    const result = await rollbackCluster(deps, 'edge-1', { toGeneration: 1, by: 'admin-key' });

    expect(result).toMatchObject({ changed: true, generation: 4, notified: true });
    expect(generation()).toBe(4);
    expect(await refs()).toEqual(await refs(1));
    const stored = await deps.desiredStates.current('edge-1');
    expect(stored).toMatchObject({
      generation: 4,
      reason: 'rollback',
      rollback: { toGeneration: 1, bundle: null, by: 'admin-key' },
      signature: 'signature',
    });
    expect(parseDesiredState(JSON.parse(stored?.manifest ?? '')).generation).toBe(4);
    expect(notified.slice(before)).toEqual([{ clusterId: 'edge-1', generation: 4 }]);
    expect(result.pins.map((p) => [p.bundle, p.fromGeneration, p.generation, p.pinnedBy])).toEqual([
      ['app', 1, 4, 'admin-key'],
      ['web', 1, 4, 'admin-key'],
    ]);
  });

  it('keeps a pinned bundle through syncs while its plan is unchanged, and drops the pin when it changes', async () => {
    const { deps, push, refs, generation, pins } = await setup();
    const g1 = await refs(1);
    const g3 = await refs(3);
    await rollbackCluster(deps, 'edge-1', { toGeneration: 1, by: 'admin-key' });

    // A new commit that changes neither bundle: nothing is written, the pins stay.
    const noop = await push({ app: 'a3', web: 'w2' });
    expect(noop.changed).toEqual([]);
    expect(generation()).toBe(4);
    expect(pins()).toEqual(['app', 'web']);

    // A label change re-plans the cluster: still the same plan, still pinned.
    await relabelCluster(deps, 'edge-1', { set: { ring: 'canary' } });
    expect(generation()).toBe(4);
    expect(await refs()).toEqual(g1);

    // web changes: its pin ends and the new web goes in; app stays rolled back.
    const next = await push({ app: 'a3', web: 'w3' });
    expect(next.changed.map((c) => c.generation)).toEqual([5]);
    const now = await refs();
    expect(now.app).toBe(g1.app);
    expect(now.web).not.toBe(g1.web);
    expect(now.web).not.toBe(g3.web);
    expect(pins()).toEqual(['app']);
    expect(await deps.desiredStates.current('edge-1')).toMatchObject({ reason: 'sync', pinsEnded: ['web'] });
  });

  it('ends a pin even when the change brings back the pinned revision, with a generation that records it', async () => {
    const { deps, push, refs, generation, pins } = await setup();
    await rollbackCluster(deps, 'edge-1', { toGeneration: 2, bundle: 'web', by: 'admin-key' });
    expect(generation()).toBe(4);
    // The repo reverts web to w1 (what generation 2 had): the plan moved, so the pin is over.
    await push({ app: 'a3', web: 'w1' });
    expect(generation()).toBe(5);
    expect(pins()).toEqual([]);
    expect((await refs()).web).toBe((await refs(2)).web);
    expect(await deps.desiredStates.current('edge-1')).toMatchObject({ pinsEnded: ['web'] });
  });

  it('--bundle pins that bundle only; the others stay as they are now', async () => {
    const { deps, refs, pins } = await setup();
    const result = await rollbackCluster(deps, 'edge-1', { toGeneration: 1, bundle: 'app', by: 'admin-key' });
    expect(result.generation).toBe(4);
    expect(await refs()).toEqual({ app: (await refs(1)).app, web: (await refs(3)).web });
    expect(pins()).toEqual(['app']);
    expect(await deps.desiredStates.current('edge-1')).toMatchObject({
      rollback: { toGeneration: 1, bundle: 'app' },
    });
  });

  it('--clear drops every pin with a new generation of the current plan', async () => {
    const { deps, refs, generation, pins, notified } = await setup();
    await rollbackCluster(deps, 'edge-1', { toGeneration: 1, by: 'admin-key' });
    const result = await rollbackCluster(deps, 'edge-1', { clear: true, by: 'admin-key' });
    expect(result).toMatchObject({ changed: true, generation: 5, cleared: ['app', 'web'], pins: [] });
    expect(generation()).toBe(5);
    expect(pins()).toEqual([]);
    expect(await refs()).toEqual(await refs(3));
    expect(await deps.desiredStates.current('edge-1')).toMatchObject({
      reason: 'rollback-clear',
      pinsEnded: ['app', 'web'],
    });
    expect(notified.at(-1)).toEqual({ clusterId: 'edge-1', generation: 5 });
    // Nothing left to clear: nothing written.
    const again = await rollbackCluster(deps, 'edge-1', { clear: true, by: 'admin-key' });
    expect(again).toMatchObject({ changed: false, generation: 5, cleared: [] });
  });

  it('a second rollback keeps what the hub planned, so rolling "forward" again ends the pin', async () => {
    const { deps, refs, pins } = await setup();
    await rollbackCluster(deps, 'edge-1', { toGeneration: 1, by: 'admin-key' }); // 4
    const result = await rollbackCluster(deps, 'edge-1', { toGeneration: 3, by: 'admin-key' }); // 5
    expect(result.generation).toBe(5);
    expect(await refs()).toEqual(await refs(3));
    expect(pins()).toEqual([]);
  });

  it('refuses, by field, a generation not kept or not before the head, an unknown bundle, an unknown cluster', async () => {
    const { deps } = await setup();
    const fieldOf = async (p: Promise<unknown>) => {
      const err = await p.then(
        () => undefined,
        (e: unknown) => e,
      );
      if (!(err instanceof InvalidRequestError)) throw err ?? new Error('no error');
      return [err.problems[0]?.field, err.problems[0]?.message];
    };
    expect(await fieldOf(rollbackCluster(deps, 'edge-1', { toGeneration: 3, by: 'a' }))).toEqual([
      'toGeneration',
      'generation 3 is not before the current generation 3',
    ]);
    deps.desiredStates.states.set(
      'edge-1',
      (deps.desiredStates.states.get('edge-1') ?? []).filter((s) => s.generation !== 1),
    );
    expect(await fieldOf(rollbackCluster(deps, 'edge-1', { toGeneration: 1, by: 'a' }))).toEqual([
      'toGeneration',
      'generation 1 of "edge-1" is not in its history (kept: 2 to 3)',
    ]);
    expect(
      await fieldOf(rollbackCluster(deps, 'edge-1', { toGeneration: 2, bundle: 'db', by: 'a' })),
    ).toEqual(['bundle', 'bundle "db" is not in generation 2 (it has: app, web)']);
    await expect(rollbackCluster(deps, 'nope', { toGeneration: 1, by: 'a' })).rejects.toBeInstanceOf(
      NotFoundError,
    );
  });
});

describe('history', () => {
  it('lists generations newest first with why, and what changed from the one before', async () => {
    const { deps } = await setup();
    await relabelCluster(deps, 'edge-1', { set: { ring: 'canary' } }); // no change: no generation
    await rollbackCluster(deps, 'edge-1', { toGeneration: 2, bundle: 'web', by: 'admin-key' }); // 4
    await rollbackCluster(deps, 'edge-1', { clear: true, by: 'admin-key' }); // 5

    const h = await clusterHistory(deps, 'edge-1', { historyDepth: 25 });
    expect(h.generations.map((g) => [g.generation, g.reason, g.current])).toEqual([
      [5, 'rollback-clear', true],
      [4, 'rollback', false],
      [3, 'sync', false],
      [2, 'sync', false],
      [1, 'sync', false],
    ]);
    const g4 = h.generations[1];
    expect(g4?.bundles.map((b) => [b.name, b.change])).toEqual([
      ['app', 'unchanged'],
      ['web', 'changed'],
    ]);
    expect(g4?.rollback).toEqual({ toGeneration: 2, bundle: 'web', by: 'admin-key' });
    expect(h.generations[4]?.bundles.map((b) => b.change)).toEqual([null, null]);
    expect(h.nextBefore).toBeNull();

    const page = await clusterHistory(deps, 'edge-1', { historyDepth: 25, limit: 2, before: 4 });
    expect(page.generations.map((g) => g.generation)).toEqual([3, 2]);
    expect(page.generations[1]?.bundles.map((b) => b.change)).toEqual(['changed', 'unchanged']);
    expect(page.nextBefore).toBe(2);
  });

  it('reads generations stored before reasons were recorded as syncs', async () => {
    const { deps } = await setup();
    const list = deps.desiredStates.states.get('edge-1') ?? [];
    deps.desiredStates.states.set(
      'edge-1',
      list.map(({ reason: _reason, ...old }) => old),
    );
    const h = await clusterHistory(deps, 'edge-1', { historyDepth: 25 });
    expect(h.generations.map((g) => g.reason)).toEqual(['sync', 'sync', 'sync']);
  });

  it('records labels and registration as the reason of a re-plan', async () => {
    const source = new MemoryFleetSource('1'.repeat(40), [
      {
        path: 'bundles/eu/bundle.yaml',
        content: 'targets:\n  - clusterSelector: {matchLabels: {region: eu}}\n',
      },
      { path: 'bundles/eu/cm.yaml', content: 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: eu\n' },
    ]);
    const deps = fakeApiDeps({ source });
    await addCluster(deps.clusters, 'edge-2');
    await syncFleet(deps, { holder: 'test' });
    await relabelCluster(deps, 'edge-2', { set: { region: 'eu' } });
    const h = await clusterHistory(deps, 'edge-2', { historyDepth: 25 });
    expect(h.generations.map((g) => [g.generation, g.reason])).toEqual([
      [2, 'labels'],
      [1, 'sync'],
    ]);
    expect(h.generations[0]?.bundles.map((b) => [b.name, b.change])).toEqual([['eu', 'added']]);
  });
});
