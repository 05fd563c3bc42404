/**
 * Rollout timers: a save that moves a rollout's `nextWakeAt` arms one wake, a report that
 * leaves it where it is arms none, and a wake steps the rollout when it is due, re-arms
 * when it fired early, and does nothing when the rollout moved on.
 */
import type { DesiredState } from '@flotilla/shared';
import {
  type FleetSourceFile,
  parseStatusReport,
  type RolloutTimer,
  readRollout,
  recordClusterStatus,
  STATUS_API_VERSION,
  syncFleet,
  wakeRollout,
} from '@flotilla/shared/hub';
import { describe, expect, it } from 'vitest';
import { wakeDelaySeconds } from '../../../functions/src/adapters/sqs-rollout-timer.ts';
import { rolloutWake } from '../../../functions/src/http/rollout-wake.ts';
import { addCluster, captureLog, fakeApiDeps, MemoryFleetSource } from './fakes.ts';

const bundleYaml = `namespace: web
targets: [{clusterSelector: {}}]
rollout:
  waves:
    - {name: canary, clusterName: [c1, c2], maxParallel: 2, bake: 10m}
    - {name: rest}
  progressDeadline: 5m
  failure: {maxFailures: 0, action: revert}
`;
const files: FleetSourceFile[] = [
  { path: 'bundles/web/bundle.yaml', content: bundleYaml },
  {
    path: 'bundles/web/config.yaml',
    content: 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  tag: v1\n',
  },
];

/** A timer that records the wakes it was asked to arm. */
class FakeRolloutTimer implements RolloutTimer {
  readonly armed: { bundle: string; at: string }[] = [];
  async wakeAt(bundle: string, at: Date): Promise<void> {
    this.armed.push({ bundle, at: at.toISOString() });
  }
}

const t0 = Date.parse('2026-12-06T12:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

async function setup() {
  const clock = { now: t0 };
  const timer = new FakeRolloutTimer();
  const deps = {
    ...fakeApiDeps({ source: new MemoryFleetSource('a'.repeat(40), files) }),
    now: () => new Date(clock.now),
    rolloutTimer: timer,
  };
  for (const id of ['c1', 'c2', 'c3']) await addCluster(deps.clusters, id);
  const webHash = async (id: string) => {
    const current = await deps.desiredStates.current(id);
    if (!current) return undefined;
    return (JSON.parse(current.manifest) as DesiredState).bundles.find((b) => b.name === 'web')?.hash;
  };
  const report = async (id: string, hash: string, state: 'Ready' | 'NotReady') =>
    recordClusterStatus(
      deps,
      (await deps.clusters.get(id)) ?? { id },
      parseStatusReport({
        apiVersion: STATUS_API_VERSION,
        kind: 'ClusterStatus',
        agentVersion: '0.1.0',
        bundles: [{ name: 'web', state, hash, generation: 1 }],
      }),
    );
  const nextWakeAt = async () => (await deps.rollouts.get('web'))?.head.nextWakeAt;
  return { deps, clock, timer, webHash, report, nextWakeAt };
}

describe('rollout timers', () => {
  it('arms a wake once per new nextWakeAt, never per report', async () => {
    const { deps, clock, timer, webHash, report, nextWakeAt } = await setup();
    await syncFleet(deps, { holder: 'test' });
    // The canaries are released: their progress deadline is the rollout's next timer.
    const deadline = iso(t0 + 5 * 60_000);
    expect(await nextWakeAt()).toBe(deadline);
    expect(timer.armed).toEqual([{ bundle: 'web', at: deadline }]);

    // Reports that move nothing (not Ready yet) arm nothing more.
    const v1 = (await webHash('c1')) as string;
    clock.now = t0 + 30_000;
    await report('c1', v1, 'NotReady');
    await report('c1', v1, 'NotReady');
    expect(timer.armed).toHaveLength(1);

    // One canary Ready: the rollout is saved, but the other's deadline is still the next timer.
    const version = (await deps.rollouts.get('web'))?.head.version as number;
    clock.now = t0 + 60_000;
    await report('c1', v1, 'Ready');
    expect((await deps.rollouts.get('web'))?.head.version).toBeGreaterThan(version);
    expect(await nextWakeAt()).toBe(deadline);
    expect(timer.armed).toHaveLength(1);

    // Both Ready: the bake's end replaces the deadline, and is armed once.
    clock.now = t0 + 90_000;
    await report('c2', v1, 'Ready');
    const bakeEnd = iso(t0 + 90_000 + 10 * 60_000);
    expect(await nextWakeAt()).toBe(bakeEnd);
    expect(timer.armed).toEqual([
      { bundle: 'web', at: deadline },
      { bundle: 'web', at: bakeEnd },
    ]);
    // Every heartbeat after that leaves the bake's end as it is: still two wakes.
    for (const s of [2, 3, 4]) {
      clock.now = t0 + s * 60_000;
      await report('c1', v1, 'Ready');
      await report('c2', v1, 'Ready');
    }
    expect(timer.armed).toHaveLength(2);
    expect(await webHash('c3')).toBeUndefined();
  });

  it('a due wake opens the next wave alone; a stale one does nothing; an early one re-arms', async () => {
    const { deps, clock, timer, webHash, report, nextWakeAt } = await setup();
    await syncFleet(deps, { holder: 'test' });
    const v1 = (await webHash('c1')) as string;
    clock.now = t0 + 60_000;
    await report('c1', v1, 'Ready');
    await report('c2', v1, 'Ready');
    const bakeEnd = (await nextWakeAt()) as string;
    const log = captureLog();

    // Fired early (a wake more than 15 minutes away comes back after 15): armed again, same time.
    clock.now = Date.parse(bakeEnd) - 1_000;
    expect((await wakeRollout(deps, { kind: 'rollout-wake', bundle: 'web', at: bakeEnd })).outcome).toBe(
      'rearmed',
    );
    expect(timer.armed.at(-1)).toEqual({ bundle: 'web', at: bakeEnd });
    const armedBefore = timer.armed.length;

    // Due: the wave opens with no report at all, and the clusters it releases get the revision.
    clock.now = Date.parse(bakeEnd) + 500;
    const woken = await rolloutWake(deps, { kind: 'rollout-wake', bundle: 'web', at: bakeEnd }, log);
    expect(woken).toMatchObject({ outcome: 'stepped', generationsWritten: 1 });
    expect(woken.step?.release).toEqual(['c3']);
    expect(await webHash('c3')).toBe(v1);
    expect(log.lines).toContainEqual(
      expect.objectContaining({
        level: 'info',
        message: 'rollout wake',
        fields: expect.objectContaining({ outcome: 'stepped' }),
      }),
    );
    // The released cluster's deadline is the next timer, armed by the wake's save.
    const deadline = iso(Date.parse(bakeEnd) + 500 + 5 * 60_000);
    expect(await nextWakeAt()).toBe(deadline);
    expect(timer.armed.slice(armedBefore)).toEqual([{ bundle: 'web', at: deadline }]);

    // A duplicate of the same wake, or the old deadline's wake: the rollout moved on.
    for (const at of [bakeEnd, iso(t0 + 5 * 60_000)]) {
      expect((await wakeRollout(deps, { kind: 'rollout-wake', bundle: 'web', at })).outcome).toBe('stale');
    }
    expect(timer.armed.slice(armedBefore)).toHaveLength(1);
    expect((await readRollout(deps, 'web'))?.state.waves.map((w) => w.openedAt !== null)).toEqual([
      true,
      true,
    ]);
    // No rollout of that bundle at all.
    expect((await wakeRollout(deps, { kind: 'rollout-wake', bundle: 'api', at: bakeEnd })).outcome).toBe(
      'stale',
    );
  });

  it('delays a wake by whole seconds, never early, at most the 15 minutes SQS allows', () => {
    const now = new Date(t0);
    expect(wakeDelaySeconds(new Date(t0 + 10 * 60_000), now)).toBe(600);
    expect(wakeDelaySeconds(new Date(t0 + 1_200), now)).toBe(2);
    expect(wakeDelaySeconds(new Date(t0 - 5_000), now)).toBe(0);
    expect(wakeDelaySeconds(new Date(t0 + 2 * 3_600_000), now)).toBe(900);
  });
});
