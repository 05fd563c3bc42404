import {
  assignWaves,
  markSuperseded,
  RolloutCommandError,
  RolloutInputError,
  type RolloutState,
  startRollout,
  stepRollout,
  supersede,
  unmatchedError,
  unmatchedProblem,
} from '@flotilla/shared/rollout';
import { describe, expect, it } from 'vitest';
import { MIN, rolloutSpec, SEC, Sim, T0, wave } from './harness.ts';

const TWO_WAVES = `  waves:
    - {name: first, clusterName: [a, b], bake: 10m}
    - {name: second}
  progressDeadline: 5m
`;

function twoWaves(extra = '', clusters = [...wave(0, 'a', 'b'), ...wave(1, 'c', 'd')]): Sim {
  return new Sim(rolloutSpec(TWO_WAVES + extra), clusters);
}

describe('bake', () => {
  it('the next wave opens exactly when the last cluster of the wave has been Ready for the bake', () => {
    const sim = twoWaves();
    sim.at(0);
    sim.ready('a');
    sim.at(1 * MIN);
    sim.ready('b');
    let r = sim.at(4 * MIN);
    expect(r.nextWakeAt).toBe(T0 + 14 * MIN);
    expect(sim.at(14 * MIN - 1).release).toEqual([]);
    r = sim.at(14 * MIN);
    expect(r.release).toEqual(['c', 'd']);
  });

  it('a cluster that leaves Ready during the bake is in flight again and the bake starts over', () => {
    const sim = twoWaves();
    sim.at(0);
    sim.ready('a', 'b');
    sim.at(1 * MIN);
    sim.report('a', 'sha256:new', false);
    let r = sim.at(6 * MIN);
    expect(r.events.map((e) => `${e.type} ${e.cluster}`)).toEqual(['cluster-not-ready a']);
    expect(r.nextWakeAt).toBe(T0 + 11 * MIN); // its progress deadline, counted from leaving Ready
    sim.ready('a');
    r = sim.at(8 * MIN);
    expect(r.nextWakeAt).toBe(T0 + 18 * MIN); // a's new done time + 10m
    expect(sim.at(17 * MIN).release).toEqual([]);
    expect(sim.at(18 * MIN).release).toEqual(['c', 'd']);
  });

  it('a cluster that stays out of Ready past the deadline during the bake fails', () => {
    const sim = twoWaves();
    sim.at(0);
    sim.ready('a', 'b');
    sim.at(1 * MIN);
    sim.report('b', 'sha256:new', false);
    sim.at(2 * MIN);
    const r = sim.at(7 * MIN);
    expect(r.events.map((e) => `${e.type} ${e.cluster ?? ''}`)).toEqual([
      'cluster-failed b',
      'rollout-paused ',
    ]);
  });

  it('regressions after the wave baked do not matter to the rollout', () => {
    const sim = twoWaves();
    sim.at(0);
    sim.ready('a', 'b');
    sim.at(MIN);
    sim.at(11 * MIN);
    sim.report('a', 'sha256:new', false);
    const r = sim.at(12 * MIN);
    expect(r.events).toEqual([]);
    expect(sim.cluster('a').phase).toBe('done');
  });
});

describe('done means exactly the new hash, Ready', () => {
  it('stale status (the old hash Ready, another hash, the new hash not Ready) never advances', () => {
    const sim = twoWaves();
    sim.at(0);
    sim.report('a', 'sha256:old', true);
    sim.report('b', 'sha256:older', true);
    sim.at(MIN);
    sim.report('b', 'sha256:new', false);
    sim.at(2 * MIN);
    expect(sim.phases()).toMatchObject({ a: 'released', b: 'released' });
    const r = sim.at(5 * MIN);
    expect(r.events.map((e) => `${e.type} ${e.cluster ?? ''} ${e.reason ?? ''}`)).toEqual([
      'cluster-failed a deadline',
      'cluster-failed b deadline',
      'rollout-paused  failures',
      'wave-baked  ', // every cluster of the wave is finished (failed), but the rollout is paused
    ]);
  });

  it("a step with only one cluster's report leaves the others as they were", () => {
    const sim = twoWaves();
    sim.at(0);
    sim.ready('a', 'b');
    sim.at(MIN);
    expect(sim.phases()).toMatchObject({ a: 'done', b: 'done' });
    const onlyA = new Map([
      ['a', { hash: 'sha256:new', ready: true, online: true, reportedAt: T0 + 2 * MIN }],
    ]);
    const r = stepRollout(sim.state, onlyA, T0 + 2 * MIN);
    expect(r.events).toEqual([]);
    expect(r.state.clusters.map((c) => c.phase)).toEqual(['done', 'done', 'waiting', 'waiting']);
  });

  it('a cluster without any report is in flight until its deadline', () => {
    const sim = twoWaves();
    expect(sim.at(0).nextWakeAt).toBe(T0 + 5 * MIN);
    expect(sim.at(5 * MIN - 1).events).toEqual([]);
    expect(sim.at(5 * MIN).events.map((e) => e.type)).toEqual([
      'cluster-failed',
      'cluster-failed',
      'rollout-paused',
      'wave-baked',
    ]);
    expect(sim.at(60 * MIN).release).toEqual([]);
  });
});

describe('failure budgets', () => {
  it('pause (the default, no failure tolerated) holds: no release until resume, which accepts the failure', () => {
    const sim = twoWaves();
    sim.at(0);
    sim.ready('a');
    let r = sim.at(5 * MIN);
    expect(sim.state.phase).toBe('paused');
    expect(sim.state.pauseReason).toBe('failures');
    expect(r.events.map((e) => e.type)).toEqual(['cluster-done', 'cluster-failed', 'rollout-paused']);
    // The bake passes while paused, but the next wave does not open.
    r = sim.at(30 * MIN);
    expect(r.events.map((e) => e.type)).toEqual(['wave-baked']);
    expect(r.release).toEqual([]);
    r = sim.at(31 * MIN, 'resume');
    expect(r.events.map((e) => e.type)).toEqual([
      'rollout-resumed',
      'wave-opened',
      'cluster-released',
      'cluster-released',
    ]);
    expect(r.release).toEqual(['c', 'd']);
    // A new failure is over the budget again: paused, not completed.
    r = sim.at(36 * MIN);
    expect(r.events.map((e) => e.type)).toEqual([
      'cluster-failed',
      'cluster-failed',
      'rollout-paused',
      'wave-baked',
    ]);
    expect(sim.state.phase).toBe('paused');
    r = sim.at(37 * MIN, 'resume');
    expect(r.events.map((e) => e.type)).toEqual(['rollout-resumed', 'rollout-completed']);
    expect(r.events[1]?.message).toBe('rollout of web at c2 completed: 1 done, 3 failed');
  });

  it('a percentage of the total rounds down; the per-wave budget applies to each wave', () => {
    // 4 changed clusters: 50% tolerates 2 in total, but only 0 per wave.
    const sim = twoWaves('  failure: {maxFailures: 50%, maxFailuresPerWave: 0, action: revert}\n');
    sim.at(0);
    sim.ready('a');
    const r = sim.at(5 * MIN);
    expect(r.events.map((e) => e.type)).toEqual(['cluster-done', 'cluster-failed', 'rollout-reverted']);
    expect(r.events[2]?.message).toBe(
      '1 clusters of wave first failed, over its budget of 0: 1 failed and in-flight clusters go back to the revision they had',
    );
    // The done cluster keeps the new revision; only the failed one goes back.
    expect(r.revert).toEqual(['b']);
    expect(sim.phases()).toEqual({ a: 'done', b: 'reverted', c: 'waiting', d: 'waiting' });
    expect(sim.given.has('c')).toBe(false);
  });

  it('revert takes back failed and in-flight clusters, not waiting ones', () => {
    const spec = `  waves:\n    - {name: w, maxParallel: 2}\n  progressDeadline: 5m\n  failure: {maxFailures: 0, action: revert}\n`;
    const sim = new Sim(rolloutSpec(spec), wave(0, 'a', 'b', 'c', 'd'));
    sim.at(0);
    sim.ready('a');
    sim.at(MIN); // a done, c released
    const r = sim.at(5 * MIN); // b fails
    expect(r.revert).toEqual(['b', 'c']);
    expect(sim.phases()).toEqual({ a: 'done', b: 'reverted', c: 'reverted', d: 'waiting' });
    expect(sim.given.get('c')).toBe('sha256:old');
  });

  it('a cluster that had no version of the bundle is reverted to none (fromHash null)', () => {
    const sim = new Sim(rolloutSpec(`  waves: [{name: w}]\n  failure: {action: revert}\n`), [
      { name: 'new-1', wave: 0, fromHash: null, toHash: 'sha256:new' },
    ]);
    sim.at(0);
    expect(sim.at(15 * MIN).revert).toEqual(['new-1']);
    expect(sim.given.get('new-1')).toBeNull();
  });
});

describe('offline clusters', () => {
  it('skip: not released while offline, skipped after the grace', () => {
    const sim = twoWaves('  offline: {action: skip, grace: 2m}\n');
    sim.offline('b');
    let r = sim.at(0);
    expect(r.release).toEqual(['a']);
    expect(r.nextWakeAt).toBe(T0 + 2 * MIN);
    sim.ready('a');
    r = sim.at(2 * MIN);
    expect(r.events.map((e) => `${e.type} ${e.cluster}`)).toEqual(['cluster-done a', 'cluster-skipped b']);
    expect(r.nextWakeAt).toBe(T0 + 12 * MIN);
  });

  it('skip: a released cluster that goes offline is not failed by the deadline, it is skipped after the grace', () => {
    const sim = twoWaves('  offline: {action: skip, grace: 20m}\n');
    sim.at(0);
    sim.ready('a');
    sim.offline('b');
    sim.at(MIN);
    expect(sim.at(10 * MIN).events).toEqual([]);
    const r = sim.at(21 * MIN);
    expect(r.events.map((e) => `${e.type} ${e.cluster ?? e.waveName}`)).toEqual([
      'cluster-skipped b',
      'wave-baked first',
      'wave-opened second',
      'cluster-released c',
      'cluster-released d',
    ]);
  });

  it('wait: the wave waits for the cluster however long, and releases it when it is back', () => {
    const sim = twoWaves('  offline: {action: wait, grace: 1m}\n');
    sim.offline('b');
    sim.at(0);
    sim.ready('a');
    const r = sim.at(MIN);
    expect(r.nextWakeAt).toBeNull(); // nothing to time: the offline cluster holds the wave
    expect(sim.at(600 * MIN).events).toEqual([]);
    sim.report('b', 'sha256:old', true, true);
    expect(sim.at(601 * MIN).release).toEqual(['b']);
  });

  it('wait: a released cluster back online gets the whole deadline from its return', () => {
    const sim = twoWaves('  offline: {action: wait}\n');
    sim.at(0);
    sim.ready('b');
    sim.offline('a');
    sim.at(MIN);
    expect(sim.at(60 * MIN).events).toEqual([]);
    sim.report('a', 'sha256:old', true, true);
    const r = sim.at(61 * MIN);
    expect(r.nextWakeAt).toBe(T0 + 66 * MIN);
    expect(sim.cluster('a').phase).toBe('released');
  });

  it('fail: offline past the grace counts as a failure', () => {
    const sim = twoWaves('  offline: {action: fail, grace: 3m}\n  failure: {maxFailures: 1}\n');
    sim.offline('b');
    sim.at(0);
    sim.ready('a');
    const r = sim.at(3 * MIN);
    expect(r.events.map((e) => `${e.type} ${e.cluster} ${e.reason}`)).toEqual([
      'cluster-done a undefined',
      'cluster-failed b offline',
    ]);
    expect(sim.state.phase).toBe('progressing'); // one failure is within maxFailures: 1
  });
});

describe('windows', () => {
  // Weekdays 09:00-17:00 in Berlin (UTC+1 in January, UTC+2 in summer).
  const WINDOWS = `  windows:\n    - {days: [mon-fri], start: "09:00", end: "17:00", timeZone: Europe/Berlin}\n`;
  const SATURDAY_NOON_UTC = Date.UTC(2026, 0, 10, 12, 0);
  const MONDAY_0800_UTC = Date.UTC(2026, 0, 12, 8, 0);

  it('the first wave waits for the window, in its time zone', () => {
    const sim = new Sim(
      rolloutSpec(TWO_WAVES + WINDOWS),
      [...wave(0, 'a'), ...wave(1, 'c')],
      SATURDAY_NOON_UTC,
    );
    let r = sim.step();
    expect(r.events.map((e) => e.type)).toEqual(['rollout-started']);
    expect(sim.state.waitingForWindow).toBe(true);
    expect(r.nextWakeAt).toBe(MONDAY_0800_UTC);
    sim.now = MONDAY_0800_UTC - 1;
    expect(sim.step().release).toEqual([]);
    sim.now = MONDAY_0800_UTC;
    r = sim.step();
    expect(r.release).toEqual(['a']);
  });

  it('an open wave keeps releasing after its window closed', () => {
    const monday1659 = Date.UTC(2026, 0, 12, 15, 59); // 16:59 in Berlin
    const spec = rolloutSpec(`  waves: [{name: w, maxParallel: 1}]\n${WINDOWS}`);
    const sim = new Sim(spec, wave(0, 'a', 'b'), monday1659);
    expect(sim.step().release).toEqual(['a']);
    sim.ready('a');
    sim.now = monday1659 + 5 * MIN;
    expect(sim.step().release).toEqual(['b']);
  });

  it('a wave that bakes after the window closes lets the next one open the next working day', () => {
    const monday1650 = Date.UTC(2026, 0, 12, 15, 50); // 16:50 in Berlin
    const sim = new Sim(rolloutSpec(TWO_WAVES + WINDOWS), [...wave(0, 'a'), ...wave(1, 'c')], monday1650);
    sim.step();
    sim.ready('a');
    sim.now = monday1650 + MIN;
    let r = sim.step();
    expect(r.nextWakeAt).toBe(monday1650 + 11 * MIN); // the bake ends at 17:01, after the window
    sim.now = monday1650 + 11 * MIN;
    r = sim.step();
    expect(r.events.map((e) => e.type)).toEqual(['wave-baked']);
    expect(r.nextWakeAt).toBe(Date.UTC(2026, 0, 13, 8, 0)); // Tuesday 09:00 in Berlin
  });

  it('daylight saving time: 09:00 in Berlin is 07:00 UTC in summer', () => {
    const saturday = Date.UTC(2026, 6, 4, 12, 0);
    const sim = new Sim(rolloutSpec(TWO_WAVES + WINDOWS), wave(0, 'a'), saturday);
    expect(sim.step().nextWakeAt).toBe(Date.UTC(2026, 6, 6, 7, 0));
  });

  it('a window past midnight belongs to the day it starts', () => {
    const spec = rolloutSpec(`${TWO_WAVES}  windows:\n    - {days: [fri], start: "22:00", end: "02:00"}\n`);
    const saturday0100 = Date.UTC(2026, 0, 10, 1, 0);
    const sim = new Sim(spec, wave(0, 'a'), saturday0100);
    expect(sim.step().release).toEqual(['a']);
    const sim2 = new Sim(spec, wave(0, 'a'), Date.UTC(2026, 0, 11, 1, 0)); // Sunday 01:00
    expect(sim2.step().nextWakeAt).toBe(Date.UTC(2026, 0, 16, 22, 0));
  });
});

describe('commands', () => {
  it('pause holds releases; resume goes on', () => {
    const sim = new Sim(rolloutSpec(`  waves: [{name: w, maxParallel: 1}]\n`), wave(0, 'a', 'b'));
    sim.at(0);
    sim.ready('a');
    let r = sim.at(MIN, 'pause');
    expect(r.events.map((e) => e.type)).toEqual(['rollout-paused', 'cluster-done']);
    expect(r.release).toEqual([]);
    expect(sim.state.pauseReason).toBe('command');
    expect(sim.at(2 * MIN, 'pause').events).toEqual([]); // pausing twice changes nothing
    r = sim.at(3 * MIN, 'resume');
    expect(r.events.map((e) => e.type)).toEqual(['rollout-resumed', 'cluster-released']);
    expect(r.release).toEqual(['b']);
  });

  it('promote opens the next wave now, skipping the bake; the promoted wave goes on', () => {
    const sim = twoWaves();
    sim.at(0);
    sim.ready('a');
    let r = sim.at(MIN, 'promote');
    expect(r.events.map((e) => `${e.type} ${e.reason ?? ''}`)).toEqual([
      'wave-opened promote',
      'cluster-done ',
      'cluster-released ',
      'cluster-released ',
    ]);
    expect(r.release).toEqual(['c', 'd']);
    sim.ready('b', 'c', 'd');
    r = sim.at(2 * MIN);
    // The promoted wave needs no bake; the last wave has none: complete.
    expect(r.events.map((e) => e.type)).toEqual([
      'cluster-done',
      'cluster-done',
      'cluster-done',
      'wave-baked',
      'wave-baked',
      'rollout-completed',
    ]);
  });

  it('abort reverts every cluster released so far, done or not; waiting clusters keep what they have', () => {
    const sim = twoWaves();
    sim.at(0);
    sim.ready('a');
    const r = sim.at(MIN, 'abort');
    expect(r.events.map((e) => `${e.type} ${e.reason}`)).toEqual(['rollout-reverted abort']);
    expect(r.revert).toEqual(['a', 'b']);
    expect(sim.state.phase).toBe('reverted');
    expect(sim.phases()).toEqual({ a: 'reverted', b: 'reverted', c: 'waiting', d: 'waiting' });
  });

  it('failures over the budget while paused by an operator are reported; the rollout stays paused', () => {
    const sim = twoWaves();
    sim.at(0);
    sim.at(MIN, 'pause');
    const r = sim.at(5 * MIN);
    expect(r.events.map((e) => `${e.type} ${e.reason ?? ''}`)).toEqual([
      'cluster-failed deadline',
      'cluster-failed deadline',
      'rollout-paused failures',
      'wave-baked ',
    ]);
    expect(sim.state.pauseReason).toBe('failures');
    expect(sim.at(6 * MIN).events).toEqual([]);
  });

  it('a command to a finished rollout is an error', () => {
    const sim = twoWaves();
    sim.at(0, 'abort');
    expect(() => sim.at(MIN, 'resume')).toThrowError(RolloutCommandError);
    expect(() => sim.at(MIN, 'promote')).toThrowError(
      'the rollout of web at c2 is reverted: nothing to promote',
    );
    expect(sim.at(MIN).events).toEqual([]); // a plain step is fine
  });
});

describe('supersede', () => {
  it('the newest revision starts again from the first wave; clusters count what they have now as fromHash', () => {
    const sim = twoWaves();
    sim.at(0);
    sim.ready('a', 'b');
    sim.at(MIN);
    sim.offline('c');
    sim.at(11 * MIN); // second wave opened, c offline (not released), d released
    const old: RolloutState = sim.state;
    const next = supersede(old, {
      bundle: 'web',
      revision: 'c3',
      spec: old.spec,
      clusters: [
        { name: 'a', wave: 0, fromHash: 'sha256:new', toHash: 'sha256:newer' },
        { name: 'b', wave: 0, fromHash: 'sha256:new', toHash: 'sha256:newer' },
        { name: 'c', wave: 1, fromHash: 'sha256:old', toHash: 'sha256:newer' },
        { name: 'd', wave: 1, fromHash: 'sha256:new', toHash: 'sha256:newer' },
      ],
      now: T0 + 12 * MIN,
    });
    expect(next.supersedes).toBe('c2');
    expect(next.clusters.find((c) => c.name === 'c')?.offlineSince).toBe(T0 + 11 * MIN);
    const r = stepRollout(next, new Map(), T0 + 12 * MIN);
    expect(r.events.map((e) => `${e.type} ${e.waveName ?? ''}`)).toEqual([
      'rollout-superseded ',
      'rollout-started ',
      'wave-opened first',
      'cluster-released first',
      'cluster-released first',
    ]);
    expect(r.release).toEqual(['a', 'b']); // d keeps the older new revision until the second wave opens
    expect(markSuperseded(old, T0 + 12 * MIN).phase).toBe('superseded');
    expect(old.phase).toBe('progressing');
  });
});

describe('unchanged clusters and wave membership', () => {
  it('a cluster whose hash does not change is done at once, never released, and does not bake', () => {
    const sim = new Sim(rolloutSpec(TWO_WAVES), [
      { name: 'a', wave: 0, fromHash: 'sha256:same', toHash: 'sha256:same' },
      { name: 'b', wave: 0, fromHash: 'sha256:same', toHash: 'sha256:same' },
      ...wave(1, 'c'),
    ]);
    const r = sim.at(0);
    expect(sim.log()).toEqual([
      'rollout-started',
      'wave-opened first',
      'wave-baked first',
      'wave-opened second',
      'cluster-released second/c',
    ]);
    expect(r.release).toEqual(['c']);
  });

  it('nothing changes anywhere: the first step completes the rollout', () => {
    const sim = new Sim(rolloutSpec(TWO_WAVES), [
      { name: 'a', wave: 0, fromHash: 'sha256:x', toHash: 'sha256:x' },
    ]);
    sim.at(0);
    expect(sim.state.phase).toBe('completed');
    expect(sim.log().at(-1)).toBe('rollout-completed');
  });

  const CLUSTERS: { name: string; labels: Record<string, string> }[] = [
    { name: 'canary', labels: { ring: 'canary' } },
    { name: 'x', labels: { region: 'ap' } },
    { name: 'y', labels: {} },
  ];

  it('unmatched: final-wave puts clusters no wave takes in a last implicit wave', () => {
    const spec = rolloutSpec(`  waves: [{name: canary, clusterSelector: ring=canary, bake: 1m}]\n`);
    const assigned = assignWaves(spec, CLUSTERS);
    expect(assigned).toEqual({ waves: [['canary'], ['x', 'y']], unmatched: ['x', 'y'] });
    expect(unmatchedProblem(spec, assigned.unmatched)).toBeUndefined();
    const clusters = assigned.waves.flatMap((names, i) => wave(i, ...names));
    const sim = new Sim(spec, clusters);
    expect(sim.state.waves.map((w) => [w.name, w.implicit])).toEqual([
      ['canary', false],
      ['(unmatched)', true],
    ]);
    sim.at(0);
    sim.ready('canary');
    sim.at(SEC);
    expect(sim.at(MIN + SEC).release).toEqual(['x', 'y']);
  });

  it('unmatched: error lists them at plan time, and the machine refuses them', () => {
    const spec = rolloutSpec(
      `  waves: [{name: canary, clusterSelector: ring=canary}, {name: named, clusterName: [x]}]\n  unmatched: error\n`,
    );
    const assigned = assignWaves(spec, CLUSTERS);
    expect(assigned).toEqual({ waves: [['canary'], ['x']], unmatched: ['y'] });
    expect(unmatchedProblem(spec, assigned.unmatched)).toBe(
      'rollout: no wave matches cluster y (add a wave for them, a last wave without a matcher, or unmatched: final-wave)',
    );
    expect(unmatchedError(spec, ['y'], 'web')).toEqual({
      file: 'bundles/web/bundle.yaml',
      line: 4,
      column: 1,
      bundle: 'web',
      message:
        'rollout: no wave matches cluster y (add a wave for them, a last wave without a matcher, or unmatched: final-wave)',
    });
    expect(unmatchedError(spec, [])).toBeUndefined();
    expect(() =>
      startRollout({ bundle: 'web', revision: 'c2', spec, clusters: wave(2, 'y'), now: T0 }),
    ).toThrowError(RolloutInputError);
  });

  it('a cluster listed twice is a caller error', () => {
    expect(() =>
      startRollout({
        bundle: 'web',
        revision: 'c2',
        spec: rolloutSpec(TWO_WAVES),
        clusters: wave(0, 'a', 'a'),
        now: T0,
      }),
    ).toThrowError('cluster "a" is listed twice');
  });
});

describe('the state', () => {
  it('is JSON: a state stored and read back steps the same; the input state is never changed', () => {
    const sim = twoWaves();
    sim.at(0);
    sim.ready('a', 'b');
    sim.at(MIN);
    const before = JSON.stringify(sim.state);
    const fromJson = JSON.parse(before) as RolloutState;
    const a = stepRollout(sim.state, sim.observations, T0 + 11 * MIN);
    const b = stepRollout(fromJson, sim.observations, T0 + 11 * MIN);
    expect(JSON.stringify(sim.state)).toBe(before);
    expect(b).toEqual(a);
    expect(a.release).toEqual(['c', 'd']);
  });
});
