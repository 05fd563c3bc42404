/**
 * Rollouts as the hub runs them, on plain fakes of its stores: a sync starts a rollout and
 * gives the new revision only to the clusters it released; status reports advance it; the
 * schedule fails a cluster past its deadline and reverts it; a new commit supersedes it.
 */
import type { DesiredState } from '@flotilla/shared';
import {
  applyRolloutSteps,
  commandRollout,
  type FleetSourceFile,
  parseStatusReport,
  readRollout,
  recordClusterStatus,
  STATUS_API_VERSION,
  stepDueRollouts,
  stepRolloutsOnSchedule,
  syncFleet,
} from '@flotilla/shared/hub';
import { describe, expect, it } from 'vitest';
import { addCluster, fakeApiDeps, MemoryFleetSource } from './fakes.ts';

const bundleYaml = `namespace: web
targets: [{clusterSelector: {}}]
rollout:
  waves:
    - {name: canary, clusterName: [c1], maxParallel: 1}
    - {name: rest}
  progressDeadline: 5m
  failure: {maxFailures: 0, action: revert}
values: {tag: v1}
`;
const configMap = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  tag: ${values.tag}\n';

function files(tag: string): FleetSourceFile[] {
  return [
    { path: 'bundles/web/bundle.yaml', content: bundleYaml.replace('tag: v1', `tag: ${tag}`) },
    { path: 'bundles/web/config.yaml', content: configMap },
  ];
}

async function setup() {
  const clock = { now: Date.parse('2026-12-06T12:00:00Z') };
  const source = new MemoryFleetSource('a'.repeat(40), files('v1'));
  const deps = { ...fakeApiDeps({ source }), now: () => new Date(clock.now) };
  for (const id of ['c1', 'c2', 'c3']) await addCluster(deps.clusters, id);
  const webHash = async (id: string) => {
    const current = await deps.desiredStates.current(id);
    if (!current) return undefined;
    return (JSON.parse(current.manifest) as DesiredState).bundles.find((b) => b.name === 'web')?.hash;
  };
  const report = async (id: string, hash: string, state: 'Ready' | 'NotReady') =>
    recordClusterStatus(
      deps,
      // The record as the hub reads it to authenticate the report.
      (await deps.clusters.get(id)) ?? { id },
      parseStatusReport({
        apiVersion: STATUS_API_VERSION,
        kind: 'ClusterStatus',
        agentVersion: '0.1.0',
        bundles: [{ name: 'web', state, hash, generation: 1 }],
      }),
    );
  return { deps, source, clock, webHash, report };
}

describe('rollouts run by the hub', () => {
  it('releases the canary first, and the rest once the canary reports the new revision Ready', async () => {
    const { deps, webHash, report } = await setup();
    await syncFleet(deps, { holder: 'test' });
    const v1 = await webHash('c1');
    expect(v1).toMatch(/^sha256:/);
    expect(await webHash('c2')).toBeUndefined();
    expect(await webHash('c3')).toBeUndefined();
    expect((await readRollout(deps, 'web'))?.state.phase).toBe('progressing');

    const receipt = await report('c1', v1 as string, 'Ready');
    expect(receipt.rollouts).toEqual([{ bundle: 'web', released: ['c2', 'c3'], reverted: [] }]);
    expect(await webHash('c2')).toBe(v1);
    expect(await webHash('c3')).toBe(v1);
    expect((await deps.desiredStates.history('c2'))[0]?.reason).toBe('rollout');

    await report('c2', v1 as string, 'Ready');
    await report('c3', v1 as string, 'Ready');
    expect((await readRollout(deps, 'web'))?.state.phase).toBe('completed');
  });

  it('a stale or not-Ready report never advances a wave', async () => {
    const { deps, webHash, report } = await setup();
    await syncFleet(deps, { holder: 'test' });
    await report('c1', 'sha256:0000000000000000000000000000000000000000000000000000000000000000', 'Ready');
    await report('c1', (await webHash('c1')) as string, 'NotReady');
    expect(await webHash('c2')).toBeUndefined();
  });

  it('reverts a canary that misses its deadline on the new revision; the rest never receive it', async () => {
    const { deps, source, clock, webHash, report } = await setup();
    await syncFleet(deps, { holder: 'test' });
    const v1 = (await webHash('c1')) as string;
    for (const id of ['c1', 'c2', 'c3']) await report(id, v1, 'Ready');
    expect(await webHash('c3')).toBe(v1);

    // A new revision: only the canary gets it; the others keep v1.
    source.commit = 'b'.repeat(40);
    source.files = files('v2');
    await syncFleet(deps, { holder: 'test' });
    const v2 = (await webHash('c1')) as string;
    expect(v2).not.toBe(v1);
    expect(await webHash('c2')).toBe(v1);

    // It never becomes Ready; past the deadline the schedule fails it and reverts it.
    await report('c1', v2, 'NotReady');
    clock.now += 6 * 60_000;
    const steps = await stepDueRollouts(deps);
    expect(steps.map((s) => [s.bundle, s.state.phase, s.revert])).toEqual([['web', 'reverted', ['c1']]]);
    await applyRolloutSteps(deps, steps);
    expect(await webHash('c1')).toBe(v1);
    expect(await webHash('c2')).toBe(v1);

    // A later sync of the same revision leaves it reverted: the later waves never receive it.
    source.commit = 'c'.repeat(40);
    await syncFleet(deps, { holder: 'test' });
    expect(await webHash('c2')).toBe(v1);
    expect((await readRollout(deps, 'web'))?.state.phase).toBe('reverted');
  });

  it('skips a cluster that went offline after its grace instead of failing it, so the rollout completes', async () => {
    const offlineYaml = bundleYaml.replace('  failure:', '  offline: {action: skip, grace: 1m}\n  failure:');
    const { deps, source, clock, webHash, report } = await setup();
    source.files = [{ path: 'bundles/web/bundle.yaml', content: offlineYaml }, ...files('v1').slice(1)];
    await syncFleet(deps, { holder: 'test' });
    const v1 = (await webHash('c1')) as string;
    await report('c1', v1, 'Ready');
    // c2 never reports (no heartbeat: offline); c3 does.
    await report('c3', v1, 'Ready');
    const schedule = () =>
      stepRolloutsOnSchedule({
        rollouts: deps.rollouts,
        clusters: deps.clusters,
        statuses: deps.statuses,
        now: deps.now,
        offlineAfterMs: 180_000,
      });
    expect((await schedule()).flatMap((s) => s.events.map((e) => e.type))).toContain('cluster-offline');
    clock.now += 2 * 60_000;
    const steps = await schedule();
    expect(steps.flatMap((s) => s.events.map((e) => [e.type, e.cluster]))).toContainEqual([
      'cluster-skipped',
      'c2',
    ]);
    expect(steps.flatMap((s) => s.revert)).toEqual([]);
    expect((await readRollout(deps, 'web'))?.state.phase).toBe('completed');
  });

  it('pauses, resumes and promotes on command', async () => {
    const { deps, webHash } = await setup();
    await syncFleet(deps, { holder: 'test' });
    expect((await commandRollout(deps, 'web', 'pause'))?.state.phase).toBe('paused');
    expect((await commandRollout(deps, 'web', 'resume'))?.state.phase).toBe('progressing');
    const promoted = await commandRollout(deps, 'web', 'promote');
    expect([...(promoted?.release ?? [])].sort()).toEqual(['c2', 'c3']);
    await applyRolloutSteps(deps, promoted ? [promoted] : []);
    expect(await webHash('c2')).toBe(await webHash('c1'));
  });

  it('writes nothing for a report that moves nothing, so heartbeats do not crowd out commands', async () => {
    const { deps, clock, webHash, report } = await setup();
    await syncFleet(deps, { holder: 'test' });
    const v1 = (await webHash('c1')) as string;
    await report('c1', v1, 'NotReady');
    const version = (await deps.rollouts.get('web'))?.head.version;
    for (let i = 0; i < 3; i++) {
      clock.now += 1_000;
      await report('c1', v1, 'NotReady');
    }
    expect((await deps.rollouts.get('web'))?.head.version).toBe(version);
    // A report that does move it is saved, as before.
    await report('c1', v1, 'Ready');
    expect((await deps.rollouts.get('web'))?.head.version).toBe((version as number) + 1);
    expect((await readRollout(deps, 'web'))?.state.clusters.find((c) => c.name === 'c1')?.phase).toBe('done');
  });
});
