import { loadFleet } from '@flotilla/shared';
import { assignWaves, type RolloutCluster } from '@flotilla/shared/rollout';
import { describe, expect, it } from 'vitest';
import { repo } from '../shared/helpers.ts';
import { MIN, Sim, T0 } from './harness.ts';

// The example of issue 14, exactly as written there.
const BUNDLE = `targets:
  - clusterSelector: {}
rollout:
  waves:
    - {name: canary, clusterSelector: ring=canary, maxParallel: 1, bake: 10m}
    - {name: eu, clusterGroup: eu, maxParallel: 25%, bake: 30m}
    - {name: rest}
  progressDeadline: 15m
  failure: {maxFailures: 1, action: revert}
  offline: {action: skip, grace: 10m}
`;

const CLUSTERS = [
  { name: 'canary-1', labels: { ring: 'canary', region: 'eu' } },
  { name: 'canary-2', labels: { ring: 'canary', region: 'us' } },
  ...Array.from({ length: 8 }, (_, i) => ({ name: `eu-${i + 1}`, labels: { region: 'eu' } })),
  { name: 'us-1', labels: { region: 'us' } },
  { name: 'us-2', labels: { region: 'us' } },
  { name: 'ap-1', labels: { region: 'ap' } },
];

function setup(): Sim {
  const fleet = loadFleet(
    repo({
      'bundles/web/bundle.yaml': BUNDLE,
      'bundles/web/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n',
      'groups/eu.yaml': 'selector: region=eu\n',
    }),
  );
  expect(fleet.errors).toEqual([]);
  const spec = fleet.bundles[0]?.spec?.rollout;
  if (!spec) throw new Error('no rollout');
  const assigned = assignWaves(spec, CLUSTERS, fleet.groups);
  expect(assigned).toEqual({
    waves: [
      ['canary-1', 'canary-2'],
      ['eu-1', 'eu-2', 'eu-3', 'eu-4', 'eu-5', 'eu-6', 'eu-7', 'eu-8'],
      ['us-1', 'us-2', 'ap-1'],
    ],
    unmatched: [],
  });
  const clusters: RolloutCluster[] = assigned.waves.flatMap((names, wave) =>
    names.map((name) => ({ name, wave, fromHash: `sha256:${name}-c1`, toHash: `sha256:${name}-c2` })),
  );
  return new Sim(spec, clusters);
}

const EU = ['eu-1', 'eu-2', 'eu-3', 'eu-4', 'eu-5', 'eu-6', 'eu-7', 'eu-8'];

describe("issue 14's example rollout", () => {
  it('goes canary one at a time, bakes 10m, eu 2 (25%) in flight, bakes 30m, then the rest at once', () => {
    const sim = setup();
    let r = sim.at(0);
    expect(sim.log()).toEqual(['rollout-started', 'wave-opened canary', 'cluster-released canary/canary-1']);
    expect(r.release).toEqual(['canary-1']);
    expect(r.nextWakeAt).toBe(T0 + 15 * MIN); // canary-1's progress deadline

    sim.ready('canary-1');
    r = sim.at(3 * MIN);
    expect(r.release).toEqual(['canary-2']);
    sim.ready('canary-2');
    r = sim.at(5 * MIN);
    expect(r.release).toEqual([]);
    expect(r.nextWakeAt).toBe(T0 + 15 * MIN); // the canary wave's bake ends 10m after its last cluster was done

    // A report before the bake ends changes nothing.
    expect(sim.at(15 * MIN - 1).release).toEqual([]);
    r = sim.at(15 * MIN);
    expect(r.events.map((e) => `${e.type} ${e.waveName}`)).toEqual([
      'wave-baked canary',
      'wave-opened eu',
      'cluster-released eu',
      'cluster-released eu',
    ]);
    expect(r.release).toEqual(['eu-1', 'eu-2']);

    // Each eu cluster done frees one slot; never more than 2 in flight.
    let t = 15 * MIN;
    const released = ['eu-1', 'eu-2'];
    while (released.length < EU.length) {
      const next = released.find((n) => sim.cluster(n).phase === 'released') as string;
      sim.ready(next);
      t += MIN;
      r = sim.at(t);
      released.push(...r.release);
      expect(
        sim.state.clusters.filter((c) => c.wave === 1 && c.phase === 'released').length,
      ).toBeLessThanOrEqual(2);
      expect(r.release.length).toBe(1);
    }
    expect(released).toEqual(EU);
    sim.ready('eu-7', 'eu-8');
    r = sim.at(t + MIN);
    const lastDone = t + MIN;
    expect(r.nextWakeAt).toBe(T0 + lastDone + 30 * MIN);
    expect(sim.given.has('us-1')).toBe(false);

    r = sim.at(lastDone + 30 * MIN);
    expect(r.release).toEqual(['ap-1', 'us-1', 'us-2']); // by name within a wave
    sim.ready('us-1', 'us-2', 'ap-1');
    r = sim.at(lastDone + 31 * MIN);
    expect(r.events.map((e) => e.type)).toEqual([
      'cluster-done',
      'cluster-done',
      'cluster-done',
      'wave-baked',
      'rollout-completed',
    ]);
    expect(sim.state.phase).toBe('completed');
    expect(r.nextWakeAt).toBeNull();
    expect(Object.values(sim.phases())).toEqual(Array(13).fill('done'));
    // Waves opened in order, each only after the previous one baked.
    expect(sim.log().filter((l) => l.startsWith('wave-'))).toEqual([
      'wave-opened canary',
      'wave-baked canary',
      'wave-opened eu',
      'wave-baked eu',
      'wave-opened rest',
      'wave-baked rest',
    ]);
  });

  it('one failed canary is within maxFailures: 1; a second reverts both and no later wave gets the revision', () => {
    const sim = setup();
    sim.at(0);
    // canary-1 never reports the new revision Ready: failed at its deadline, the budget tolerates it.
    sim.report('canary-1', 'sha256:canary-1-c2', false);
    let r = sim.at(15 * MIN);
    expect(r.events.map((e) => `${e.type} ${e.cluster ?? ''}`)).toEqual([
      'cluster-failed canary-1',
      'cluster-released canary-2',
    ]);
    expect(r.events[0]?.reason).toBe('deadline');
    r = sim.at(30 * MIN);
    expect(r.events.map((e) => e.type)).toEqual(['cluster-failed', 'rollout-reverted']);
    expect(r.revert).toEqual(['canary-1', 'canary-2']);
    expect(sim.given.get('canary-1')).toBe('sha256:canary-1-c1');
    expect(sim.state.phase).toBe('reverted');
    expect(sim.state.revertReason).toBe('failures');
    expect(r.nextWakeAt).toBeNull();
    // Nothing more happens, whatever is reported later.
    sim.ready(...EU);
    expect(sim.at(120 * MIN).release).toEqual([]);
    expect([...sim.given.keys()].sort()).toEqual(['canary-1', 'canary-2']);
  });

  it('an offline eu cluster is skipped after 10m of grace and the wave goes on', () => {
    const sim = setup();
    sim.at(0);
    sim.ready('canary-1');
    sim.at(MIN);
    sim.ready('canary-2');
    sim.at(2 * MIN);
    sim.offline('eu-1');
    let r = sim.at(12 * MIN);
    expect(r.release).toEqual(['eu-2', 'eu-3']); // eu-1 is offline: not released
    expect(sim.log(-4)).toEqual([
      'wave-opened eu',
      'cluster-offline eu/eu-1',
      'cluster-released eu/eu-2',
      'cluster-released eu/eu-3',
    ]);
    expect(r.nextWakeAt).toBe(T0 + 22 * MIN); // the grace of eu-1 ends
    r = sim.at(22 * MIN);
    expect(r.events.map((e) => `${e.type} ${e.cluster}`)).toEqual(['cluster-skipped eu-1']);
    expect(sim.cluster('eu-1').phase).toBe('skipped');
  });
});
