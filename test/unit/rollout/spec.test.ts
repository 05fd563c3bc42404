import { readFileSync } from 'node:fs';
import { loadFleet } from '@flotilla/shared';
import type { RolloutSpec } from '@flotilla/shared/rollout';
import { describe, expect, it } from 'vitest';
import { formatted, repo } from '../shared/helpers.ts';

const WEB = 'bundles/web/bundle.yaml';
const MANIFEST = { 'bundles/web/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n' };
const GROUPS = { 'groups/eu.yaml': 'selector: region=eu\n' };

function load(files: Record<string, string>) {
  const fleet = loadFleet(repo({ ...MANIFEST, ...GROUPS, ...files }));
  const web = fleet.bundles.find((b) => b.name === 'web');
  return { fleet, rollout: web?.spec?.rollout, errors: formatted(fleet.errors) };
}

/** bundle.yaml with the given rollout block (indented under `rollout:`). */
function withRollout(block: string): Record<string, string> {
  return { [WEB]: `targets:\n  - clusterSelector: {}\nrollout:\n${block}` };
}

const ISSUE_EXAMPLE = `rollout:
  waves:
    - {name: canary, clusterSelector: ring=canary, maxParallel: 1, bake: 10m}
    - {name: eu, clusterGroup: eu, maxParallel: 25%, bake: 30m}
    - {name: rest}
  progressDeadline: 15m
  failure: {maxFailures: 1, action: revert}
  offline: {action: skip, grace: 10m}
`;

describe('rollout: in bundle.yaml', () => {
  it("reads the issue's example exactly as written", () => {
    const { rollout, errors } = load({ [WEB]: `targets:\n  - clusterSelector: {}\n${ISSUE_EXAMPLE}` });
    expect(errors).toEqual([]);
    expect(rollout).toEqual({
      file: WEB,
      line: 4,
      waves: [
        {
          name: 'canary',
          match: {
            kind: 'clusterSelector',
            selector: { matchLabels: { ring: 'canary' } },
          },
          maxParallel: { count: 1 },
          bakeMs: 600_000,
          line: 5,
        },
        {
          name: 'eu',
          match: { kind: 'clusterGroup', group: 'eu' },
          maxParallel: { percent: 25 },
          bakeMs: 1_800_000,
          line: 6,
        },
        { name: 'rest', bakeMs: 0, line: 7 },
      ],
      unmatched: 'final-wave',
      progressDeadlineMs: 900_000,
      failure: { maxFailures: { count: 1 }, action: 'revert' },
      offline: { action: 'skip', graceMs: 600_000 },
      windows: [],
    } satisfies RolloutSpec);
  });

  it('defaults: no failure tolerated and pause, offline skip after 10m, deadline 15m, unmatched in a final wave', () => {
    const { rollout, errors } = load(withRollout('  waves:\n    - name: all\n'));
    expect(errors).toEqual([]);
    expect(rollout).toMatchObject({
      waves: [{ name: 'all', bakeMs: 0 }],
      unmatched: 'final-wave',
      progressDeadlineMs: 15 * 60_000,
      failure: { maxFailures: { count: 0 }, action: 'pause' },
      offline: { action: 'skip', graceMs: 10 * 60_000 },
      windows: [],
    });
    expect(rollout?.waves[0]?.maxParallel).toBeUndefined();
  });

  it('reads names lists, durations, per-wave budgets and windows with ranges of days', () => {
    const { rollout, errors } = load(
      withRollout(`  waves:
    - {name: first, clusterName: [edge-1, edge-2], bake: 1h30m}
    - {name: one, clusterName: edge-3, bake: 45s}
  unmatched: error
  progressDeadline: 500ms
  failure: {maxFailures: 10%, maxFailuresPerWave: 2, action: pause}
  offline: {action: wait, grace: 0}
  windows:
    - {days: [mon-fri], start: "09:00", end: "17:30", timeZone: Europe/Berlin}
    - {days: [fri-mon, wed], start: "22:00", end: "04:00"}
    - {days: [sun], start: "00:00", end: "24:00"}
`),
    );
    expect(errors).toEqual([]);
    expect(rollout?.waves.map((w) => [w.name, w.match, w.bakeMs])).toEqual([
      ['first', { kind: 'clusterName', names: ['edge-1', 'edge-2'] }, 5_400_000],
      ['one', { kind: 'clusterName', names: ['edge-3'] }, 45_000],
    ]);
    expect(rollout?.unmatched).toBe('error');
    expect(rollout?.progressDeadlineMs).toBe(500);
    expect(rollout?.failure).toEqual({
      maxFailures: { percent: 10 },
      maxFailuresPerWave: { count: 2 },
      action: 'pause',
    });
    expect(rollout?.offline).toEqual({ action: 'wait', graceMs: 0 });
    expect(rollout?.windows).toEqual([
      {
        days: ['mon', 'tue', 'wed', 'thu', 'fri'],
        start: '09:00',
        end: '17:30',
        startMinute: 540,
        endMinute: 1050,
        timeZone: 'Europe/Berlin',
      },
      {
        days: ['sun', 'mon', 'wed', 'fri', 'sat'],
        start: '22:00',
        end: '04:00',
        startMinute: 1320,
        endMinute: 240,
        timeZone: 'UTC',
      },
      { days: ['sun'], start: '00:00', end: '24:00', startMinute: 0, endMinute: 1440, timeZone: 'UTC' },
    ]);
  });

  it('a bundle references rollouts/<name>.yaml with strategy', () => {
    const { rollout, errors, fleet } = load({
      [WEB]: 'targets:\n  - clusterSelector: {}\nrollout: {strategy: canary-first}\n',
      'rollouts/canary-first.yaml':
        'waves:\n  - {name: canary, clusterSelector: ring=canary}\n  - {name: rest}\nfailure: {action: revert}\n',
    });
    expect(errors).toEqual([]);
    expect(rollout).toMatchObject({
      file: 'rollouts/canary-first.yaml',
      line: 1,
      strategy: 'canary-first',
      waves: [
        { name: 'canary', line: 2 },
        { name: 'rest', line: 3 },
      ],
      failure: { maxFailures: { count: 0 }, action: 'revert' },
    });
    expect([...fleet.rollouts.keys()]).toEqual(['canary-first']);
  });

  it('the examples of docs/fleet-repo.md read as written', () => {
    const doc = readFileSync(new URL('../../../docs/fleet-repo.md', import.meta.url), 'utf8');
    const blocks = [...doc.matchAll(/```yaml\n(rollout:\n[\s\S]*?)```/g)].map((m) => m[1] as string);
    expect(blocks.length).toBe(2);
    // The formatter spaces flow mappings; the first example is still the issue's.
    expect(load({ [WEB]: `targets: []\n${blocks[0]}` }).rollout).toEqual(
      load({ [WEB]: `targets: []\n${ISSUE_EXAMPLE}` }).rollout,
    );
    const strategy = /# rollouts\/canary-first.yaml\n([\s\S]*?)```/.exec(doc)?.[1];
    for (const block of blocks) {
      const { rollout, errors } = load({
        [WEB]: `targets:\n  - clusterSelector: {}\n${block}`,
        'rollouts/canary-first.yaml': strategy ?? '',
      });
      expect(errors).toEqual([]);
      expect(rollout?.waves.length).toBe(blocks.indexOf(block) === 0 ? 3 : 4);
    }
    expect(
      load({ 'rollouts/canary-first.yaml': strategy ?? '' }).fleet.rollouts.get('canary-first')?.waves.length,
    ).toBe(2);
  });

  const cases: [string, Record<string, string>, string[]][] = [
    [
      'unknown field in the block, a wave and failure',
      withRollout('  waves:\n    - {name: a, bake: 1m, soak: 2m}\n  failure: {max: 1}\n  speed: fast\n'),
      [
        'bundles/web/bundle.yaml:5: rollout.waves[0]: unknown field "soak" (expected name, clusterSelector, clusterGroup, clusterName, maxParallel, bake)',
        'bundles/web/bundle.yaml:6: rollout.failure: unknown field "max" (expected maxFailures, maxFailuresPerWave, action)',
        'bundles/web/bundle.yaml:7: rollout: unknown field "speed" (expected waves, unmatched, progressDeadline, failure, offline, windows)',
      ],
    ],
    [
      'bad durations',
      withRollout(
        '  waves:\n    - {name: a, bake: 10 minutes}\n    - {name: b, bake: 600}\n  progressDeadline: 0\n  offline: {grace: -1m}\n',
      ),
      [
        'bundles/web/bundle.yaml:5: rollout.waves[0].bake: "10 minutes" is not a duration (write it as 30s, 10m, 1h or 1h30m)',
        'bundles/web/bundle.yaml:6: rollout.waves[1].bake: 600 has no unit (write a duration such as 30s, 10m or 1h)',
        'bundles/web/bundle.yaml:7: rollout.progressDeadline: must be longer than 0',
        'bundles/web/bundle.yaml:8: rollout.offline.grace: "-1m" is not a duration (write it as 30s, 10m, 1h or 1h30m)',
      ],
    ],
    [
      'percentages over 100, zero parallelism, fractions of clusters',
      withRollout(
        '  waves:\n    - {name: a, maxParallel: 120%}\n    - {name: b, maxParallel: 0}\n    - {name: c, maxParallel: 0%}\n  failure: {maxFailures: 1.5, maxFailuresPerWave: "1"}\n',
      ),
      [
        'bundles/web/bundle.yaml:5: rollout.waves[0].maxParallel: 120% is over 100%',
        'bundles/web/bundle.yaml:6: rollout.waves[1].maxParallel: 0 is not a whole number of clusters of at least 1',
        'bundles/web/bundle.yaml:7: rollout.waves[2].maxParallel: 0% must be more than 0%',
        'bundles/web/bundle.yaml:8: rollout.failure.maxFailures: 1.5 is not a whole number of clusters of at least 0',
        'bundles/web/bundle.yaml:8: rollout.failure.maxFailuresPerWave: "1" is neither a number of clusters nor a percentage like 25%',
      ],
    ],
    [
      'a catch-all wave that is not last, and two waves with one name',
      withRollout(
        '  waves:\n    - {name: a, clusterName: x}\n    - {name: all}\n    - {name: a, clusterName: y}\n',
      ),
      [
        'bundles/web/bundle.yaml:7: rollout.waves[2].name: "a" is also the name of the wave on line 5',
        'bundles/web/bundle.yaml:7: rollout.waves[2]: wave "all" (line 6) takes every cluster left, so it must be the last wave',
      ],
    ],
    [
      'two matchers, a missing name',
      withRollout('  waves:\n    - {name: a, clusterName: x, clusterGroup: eu}\n    - {clusterName: y}\n'),
      [
        'bundles/web/bundle.yaml:5: rollout.waves[0]: clusterName and clusterGroup cannot be combined (a wave uses one of clusterSelector, clusterGroup, clusterName, or none to take every cluster left)',
        'bundles/web/bundle.yaml:6: rollout.waves[1].name: required',
      ],
    ],
    [
      'no waves',
      withRollout('  waves: []\n'),
      ['bundles/web/bundle.yaml:4: rollout.waves: must list at least one wave'],
    ],
    [
      'unknown group and unknown actions',
      withRollout(
        '  waves:\n    - {name: a, clusterGroup: asia}\n  unmatched: ignore\n  failure: {action: rollback}\n  offline: {action: retry}\n',
      ),
      [
        'bundles/web/bundle.yaml:5: rollout.waves[0].clusterGroup: unknown group "asia" (no groups/asia.yaml)',
        'bundles/web/bundle.yaml:6: rollout.unmatched: unknown value "ignore" (expected final-wave, error)',
        'bundles/web/bundle.yaml:7: rollout.failure.action: unknown value "rollback" (expected pause, revert)',
        'bundles/web/bundle.yaml:8: rollout.offline.action: unknown value "retry" (expected skip, wait, fail)',
      ],
    ],
    [
      'windows: unknown day, bad times, unknown time zone, an empty window',
      withRollout(
        '  waves:\n    - name: a\n  windows:\n    - {days: [mon, funday], start: "9:00", end: "25:00", timeZone: Mars/Olympus}\n    - {days: [sat], start: "10:00", end: "10:00"}\n    - {start: "10:00", end: "11:00"}\n',
      ),
      [
        'bundles/web/bundle.yaml:7: rollout.windows[0].days[1]: unknown day "funday" (expected mon, tue, wed, thu, fri, sat, sun, or a range like mon-fri)',
        'bundles/web/bundle.yaml:7: rollout.windows[0].start: "9:00" is not a time of day ("HH:MM", 24-hour, e.g. 02:00 or 22:30)',
        'bundles/web/bundle.yaml:7: rollout.windows[0].end: "25:00" is not a time of day ("HH:MM", 24-hour, e.g. 02:00 or 22:30)',
        'bundles/web/bundle.yaml:7: rollout.windows[0].timeZone: unknown time zone "Mars/Olympus" (an IANA name such as Europe/Berlin or UTC)',
        'bundles/web/bundle.yaml:8: rollout.windows[1].end: the window is empty (end equals start)',
        'bundles/web/bundle.yaml:9: rollout.windows[2].days: required (a list of mon, tue, wed, thu, fri, sat, sun)',
      ],
    ],
    [
      'unknown strategy file',
      { [WEB]: 'targets: []\nrollout: {strategy: slow}\n' },
      ['bundles/web/bundle.yaml:2: rollout.strategy: unknown strategy "slow" (no rollouts/slow.yaml)'],
    ],
    [
      'a strategy with errors breaks the bundles using it',
      {
        [WEB]: 'targets: []\nrollout:\n  strategy: slow\n',
        'rollouts/slow.yaml': 'waves:\n  - {name: a, bake: forever}\n',
      },
      [
        'bundles/web/bundle.yaml:3: rollout.strategy: strategy "slow" has errors (see rollouts/slow.yaml)',
        'rollouts/slow.yaml:2: waves[0].bake: "forever" is not a duration (write it as 30s, 10m, 1h or 1h30m)',
      ],
    ],
    [
      'strategy combined with inline fields',
      {
        [WEB]: 'targets: []\nrollout:\n  strategy: slow\n  progressDeadline: 5m\n',
        'rollouts/slow.yaml': 'waves: [{name: a}]\n',
      },
      [
        'bundles/web/bundle.yaml:4: rollout: strategy cannot be combined with progressDeadline (change rollouts/slow.yaml or write the strategy inline)',
      ],
    ],
    [
      'an empty strategy file and a nested one',
      { 'rollouts/empty.yaml': '', 'rollouts/eu/slow.yaml': 'waves: []\n', [WEB]: 'targets: []\n' },
      [
        'rollouts/empty.yaml:1: waves: required (the strategy file is empty)',
        'rollouts/eu/slow.yaml:1: rollouts files go directly in rollouts/ (rollouts/<name>.yaml)',
      ],
    ],
  ];

  it.each(cases)('%s', (_name, files, expected) => {
    const { errors, fleet } = load(files);
    expect(errors).toEqual(expected);
    const web = fleet.bundles.find((b) => b.name === 'web');
    if (expected.some((e) => e.startsWith(WEB))) expect(web?.spec).toBeUndefined();
  });
});
