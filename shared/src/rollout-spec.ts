/**
 * The `rollout:` block of bundle.yaml, and the named strategies of `rollouts/<name>.yaml`
 * that bundles reference with `rollout: {strategy: <name>}`. Read into a {@link RolloutSpec}
 * with durations in milliseconds; every problem is reported with file and line.
 */
import type { SourcePos } from './errors.ts';
import type { LabelSelector } from './selector.ts';
import type { SpecReader } from './spec-reader.ts';
import { describeNode, type YMap, type YNode } from './yaml-source.ts';

/** A number of clusters, or a percentage of them. */
export type Amount = { readonly count: number } | { readonly percent: number };

/** Which clusters a wave takes; a wave without one takes every cluster left (the catch-all). */
export type WaveMatch =
  | { readonly kind: 'clusterSelector'; readonly selector: LabelSelector }
  | { readonly kind: 'clusterGroup'; readonly group: string }
  | { readonly kind: 'clusterName'; readonly names: readonly string[] };

export interface RolloutWaveSpec {
  readonly name: string;
  /** Absent for the catch-all wave (only the last wave may be one). */
  readonly match?: WaveMatch;
  /** How many of the wave's clusters may be in flight at once; absent: all of them. */
  readonly maxParallel?: Amount;
  /** How long every cluster of the wave must stay Ready on the new revision before the next wave opens. */
  readonly bakeMs: number;
  readonly line: number;
}

export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

/** When waves may open: on these days (of the window's start), from start to end, local time in `timeZone`. */
export interface RolloutWindow {
  readonly days: readonly Weekday[];
  /** "HH:MM" as written. */
  readonly start: string;
  readonly end: string;
  /** Minutes after local midnight; an end at or before the start runs past midnight. */
  readonly startMinute: number;
  readonly endMinute: number;
  readonly timeZone: string;
}

export const FailureAction = { pause: 'pause', revert: 'revert' } as const;
export type FailureAction = (typeof FailureAction)[keyof typeof FailureAction];
export const OfflineAction = { skip: 'skip', wait: 'wait', fail: 'fail' } as const;
export type OfflineAction = (typeof OfflineAction)[keyof typeof OfflineAction];
export const UnmatchedPolicy = { finalWave: 'final-wave', error: 'error' } as const;
export type UnmatchedPolicy = (typeof UnmatchedPolicy)[keyof typeof UnmatchedPolicy];

/** A validated rollout strategy. JSON-serializable. */
export interface RolloutSpec {
  /** The file it was written in: the bundle's bundle.yaml or `rollouts/<name>.yaml`. */
  readonly file: string;
  /** The line in `file` where the rollout's fields start (for plan-time errors such as unmatched clusters). */
  readonly line: number;
  /** The name of the strategy when the bundle referenced `rollouts/<name>.yaml`. */
  readonly strategy?: string;
  readonly waves: readonly RolloutWaveSpec[];
  /** Clusters that no wave takes: a final implicit wave, or an error listing them. */
  readonly unmatched: UnmatchedPolicy;
  /** A released cluster not reporting the new revision Ready within this counts as failed. */
  readonly progressDeadlineMs: number;
  readonly failure: {
    /** Failures tolerated over the whole rollout; one more triggers `action`. */
    readonly maxFailures: Amount;
    /** Failures tolerated in one wave; absent: only the total counts. */
    readonly maxFailuresPerWave?: Amount;
    readonly action: FailureAction;
  };
  readonly offline: { readonly action: OfflineAction; readonly graceMs: number };
  /** Empty: waves may open at any time. */
  readonly windows: readonly RolloutWindow[];
}

export const ROLLOUT_FIELDS = [
  'waves',
  'unmatched',
  'progressDeadline',
  'failure',
  'offline',
  'windows',
] as const;
const WAVE_FIELDS = ['name', 'clusterSelector', 'clusterGroup', 'clusterName', 'maxParallel', 'bake'];
const WAVE_MATCHERS = ['clusterSelector', 'clusterGroup', 'clusterName'] as const;
const FAILURE_FIELDS = ['maxFailures', 'maxFailuresPerWave', 'action'];
const OFFLINE_FIELDS = ['action', 'grace'];
const WINDOW_FIELDS = ['days', 'start', 'end', 'timeZone'];

export const DEFAULT_PROGRESS_DEADLINE_MS = 15 * 60_000;
export const DEFAULT_OFFLINE_GRACE_MS = 10 * 60_000;

/** What reading a rollout needs from the rest of the repo. */
export interface RolloutContext {
  groupStatus(name: string): 'ok' | 'broken' | 'missing';
  groupFile(name: string): string;
  /** A strategy of `rollouts/`, or why there is none. */
  strategy(name: string): RolloutSpec | 'broken' | 'missing';
  strategyFile(name: string): string;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;

/** Parses `10m`, `30s`, `1h30m`, `500ms`, `2d` (or `0`) into milliseconds; undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  if (text === '0') return 0;
  if (!DURATION.test(text)) return undefined;
  let ms = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) {
    ms += Number(m[1]) * (UNITS[m[2] as string] as number);
  }
  return Math.round(ms);
}

/** Formats milliseconds as the shortest duration text (`1h30m`, `10m`, `45s`, `0s`). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  let rest = ms;
  let out = '';
  for (const [unit, size] of [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
    ['ms', 1],
  ] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) {
      out += `${n}${unit}`;
      rest -= n * size;
    }
  }
  return out;
}

/**
 * Resolves an amount against a number of clusters. Percentages of `maxParallel` round up
 * (at least one cluster moves); percentages of failure budgets round down (10% of 5 clusters
 * tolerates no failure).
 */
export function resolveAmount(amount: Amount, total: number, round: 'up' | 'down'): number {
  if ('count' in amount) return amount.count;
  const exact = (amount.percent * total) / 100;
  return round === 'up' ? Math.max(1, Math.ceil(exact)) : Math.floor(exact + 1e-9);
}

/**
 * Reads `rollout:` of bundle.yaml: a strategy inline, or `{strategy: <name>}` naming
 * `rollouts/<name>.yaml`.
 */
export function readBundleRollout(
  reader: SpecReader,
  node: YNode,
  ctx: RolloutContext,
): RolloutSpec | undefined {
  const map = reader.expectMap(node, 'rollout');
  if (!map) return undefined;
  const strategyEntry = map.entries.find((e) => e.key === 'strategy');
  if (!strategyEntry) return readRolloutBody(reader, map, 'rollout', ctx);
  const others = map.entries.filter((e) => e.key !== 'strategy');
  if (others.length > 0) {
    reader.error(
      (others[0] as (typeof others)[0]).keyPos,
      `rollout: strategy cannot be combined with ${others.map((e) => e.key).join(', ')} (change ${ctx.strategyFile(strategyEntry.value.kind === 'scalar' ? String(strategyEntry.value.value) : '<name>')} or write the strategy inline)`,
    );
    return undefined;
  }
  const name = reader.expectName(strategyEntry.value, 'rollout.strategy', 'strategy');
  if (name === undefined) return undefined;
  const found = ctx.strategy(name);
  if (found === 'missing') {
    reader.error(
      strategyEntry.value.pos,
      `rollout.strategy: unknown strategy "${name}" (no ${ctx.strategyFile(name)})`,
    );
    return undefined;
  }
  if (found === 'broken') {
    reader.error(
      strategyEntry.value.pos,
      `rollout.strategy: strategy "${name}" has errors (see ${ctx.strategyFile(name)})`,
    );
    return undefined;
  }
  return found;
}

/** Reads `rollouts/<name>.yaml`: the same fields as an inline `rollout:`. */
export function readRolloutStrategy(
  reader: SpecReader,
  name: string,
  root: YNode | null,
  pos: SourcePos,
  ctx: RolloutContext,
): RolloutSpec | undefined {
  if (root === null) {
    reader.error(pos, 'waves: required (the strategy file is empty)');
    return undefined;
  }
  const map = reader.expectMap(root, '');
  if (!map) return undefined;
  const spec = readRolloutBody(reader, map, '', ctx);
  return spec === undefined ? undefined : { ...spec, strategy: name };
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

function readRolloutBody(
  reader: SpecReader,
  map: YMap,
  path: string,
  ctx: RolloutContext,
): RolloutSpec | undefined {
  const before = reader.errors.length;
  const f = reader.fields(map, path, ROLLOUT_FIELDS);
  const wavesNode = f.get('waves');
  const waves: RolloutWaveSpec[] = [];
  if (!wavesNode) reader.error(map.pos, `${join(path, 'waves')}: required (a list of waves, in order)`);
  else {
    const items = reader.expectList(wavesNode, join(path, 'waves'));
    if (items?.length === 0)
      reader.error(wavesNode.pos, `${join(path, 'waves')}: must list at least one wave`);
    items?.forEach((item, i) => {
      const wave = readWave(reader, item, `${join(path, 'waves')}[${i}]`, ctx);
      if (!wave) return;
      const p = `${join(path, 'waves')}[${i}]`;
      const twin = waves.find((w) => w.name === wave.name);
      if (twin)
        reader.error(item.pos, `${p}.name: "${wave.name}" is also the name of the wave on line ${twin.line}`);
      const catchAll = waves.find((w) => w.match === undefined);
      if (catchAll)
        reader.error(
          item.pos,
          `${p}: wave "${catchAll.name}" (line ${catchAll.line}) takes every cluster left, so it must be the last wave`,
        );
      waves.push(wave);
    });
  }

  let unmatched: UnmatchedPolicy = 'final-wave';
  const unmatchedNode = f.get('unmatched');
  if (unmatchedNode)
    unmatched = oneOf(reader, unmatchedNode, join(path, 'unmatched'), UnmatchedPolicy) ?? unmatched;

  const deadlineNode = f.get('progressDeadline');
  let progressDeadlineMs = DEFAULT_PROGRESS_DEADLINE_MS;
  if (deadlineNode) {
    const d = readDuration(reader, deadlineNode, join(path, 'progressDeadline'));
    if (d === 0) reader.error(deadlineNode.pos, `${join(path, 'progressDeadline')}: must be longer than 0`);
    else if (d !== undefined) progressDeadlineMs = d;
  }

  let failure: RolloutSpec['failure'] = { maxFailures: { count: 0 }, action: 'pause' };
  const failureNode = f.get('failure');
  if (failureNode) {
    const p = join(path, 'failure');
    const fm = reader.expectMap(failureNode, p);
    if (fm) {
      const ff = reader.fields(fm, p, FAILURE_FIELDS);
      const maxNode = ff.get('maxFailures');
      const perWaveNode = ff.get('maxFailuresPerWave');
      const actionNode = ff.get('action');
      const maxFailures = maxNode ? readAmount(reader, maxNode, `${p}.maxFailures`, 0) : { count: 0 };
      const perWave = perWaveNode ? readAmount(reader, perWaveNode, `${p}.maxFailuresPerWave`, 0) : undefined;
      const action = actionNode ? oneOf(reader, actionNode, `${p}.action`, FailureAction) : 'pause';
      if (maxFailures && action)
        failure = { maxFailures, ...(perWave === undefined ? {} : { maxFailuresPerWave: perWave }), action };
    }
  }

  let offline: RolloutSpec['offline'] = { action: 'skip', graceMs: DEFAULT_OFFLINE_GRACE_MS };
  const offlineNode = f.get('offline');
  if (offlineNode) {
    const p = join(path, 'offline');
    const om = reader.expectMap(offlineNode, p);
    if (om) {
      const of = reader.fields(om, p, OFFLINE_FIELDS);
      const actionNode = of.get('action');
      const graceNode = of.get('grace');
      const action = actionNode ? oneOf(reader, actionNode, `${p}.action`, OfflineAction) : 'skip';
      const graceMs = graceNode ? readDuration(reader, graceNode, `${p}.grace`) : DEFAULT_OFFLINE_GRACE_MS;
      if (action && graceMs !== undefined) offline = { action, graceMs };
    }
  }

  const windows: RolloutWindow[] = [];
  const windowsNode = f.get('windows');
  if (windowsNode) {
    const items = reader.expectList(windowsNode, join(path, 'windows'));
    items?.forEach((item, i) => {
      const w = readWindow(reader, item, `${join(path, 'windows')}[${i}]`);
      if (w) windows.push(w);
    });
  }

  if (reader.errors.length !== before) return undefined;
  return {
    file: reader.file,
    line: map.pos.line,
    waves,
    unmatched,
    progressDeadlineMs,
    failure,
    offline,
    windows,
  };
}

function readWave(
  reader: SpecReader,
  node: YNode,
  path: string,
  ctx: RolloutContext,
): RolloutWaveSpec | undefined {
  const map = reader.expectMap(node, path);
  if (!map) return undefined;
  const before = reader.errors.length;
  const f = reader.fields(map, path, WAVE_FIELDS);
  const nameNode = f.get('name');
  let name: string | undefined;
  if (!nameNode) reader.error(map.pos, `${path}.name: required`);
  else name = reader.expectName(nameNode, `${path}.name`, 'wave');

  const present = map.entries.filter((e) => (WAVE_MATCHERS as readonly string[]).includes(e.key));
  let match: WaveMatch | undefined;
  if (present.length > 1) {
    reader.error(
      (present[1] as (typeof present)[0]).keyPos,
      `${path}: ${present.map((e) => e.key).join(' and ')} cannot be combined (a wave uses one of clusterSelector, clusterGroup, clusterName, or none to take every cluster left)`,
    );
  } else if (present.length === 1) {
    const entry = present[0] as (typeof present)[0];
    const p = `${path}.${entry.key}`;
    if (entry.key === 'clusterSelector') {
      const selector = reader.selector(entry.value, p);
      if (selector) match = { kind: 'clusterSelector', selector };
    } else if (entry.key === 'clusterGroup') {
      const group = reader.expectName(entry.value, p, 'group');
      if (group !== undefined) {
        const status = ctx.groupStatus(group);
        if (status === 'missing')
          reader.error(entry.value.pos, `${p}: unknown group "${group}" (no ${ctx.groupFile(group)})`);
        else if (status === 'broken')
          reader.error(entry.value.pos, `${p}: group "${group}" has errors (see ${ctx.groupFile(group)})`);
        else match = { kind: 'clusterGroup', group };
      }
    } else {
      const names: string[] = [];
      if (entry.value.kind === 'seq') {
        if (entry.value.items.length === 0)
          reader.error(entry.value.pos, `${p}: must list at least one cluster`);
        entry.value.items.forEach((item, i) => {
          const n = reader.expectName(item, `${p}[${i}]`, 'cluster');
          if (n === undefined) return;
          if (names.includes(n)) reader.error(item.pos, `${p}[${i}]: "${n}" is listed twice`);
          else names.push(n);
        });
      } else {
        const n = reader.expectName(entry.value, p, 'cluster');
        if (n !== undefined) names.push(n);
      }
      match = { kind: 'clusterName', names };
    }
  }

  const parallelNode = f.get('maxParallel');
  const maxParallel = parallelNode ? readAmount(reader, parallelNode, `${path}.maxParallel`, 1) : undefined;
  const bakeNode = f.get('bake');
  const bakeMs = bakeNode ? readDuration(reader, bakeNode, `${path}.bake`) : 0;

  if (reader.errors.length !== before || name === undefined || bakeMs === undefined) return undefined;
  return {
    name,
    ...(match === undefined ? {} : { match }),
    ...(maxParallel === undefined ? {} : { maxParallel }),
    bakeMs,
    line: map.pos.line,
  };
}

function readDuration(reader: SpecReader, node: YNode, path: string): number | undefined {
  if (node.kind === 'scalar' && node.value === 0) return 0;
  if (node.kind === 'scalar' && typeof node.value === 'number') {
    reader.error(node.pos, `${path}: ${node.value} has no unit (write a duration such as 30s, 10m or 1h)`);
    return undefined;
  }
  const text = reader.expectString(node, path, false);
  if (text === undefined) return undefined;
  const ms = parseDuration(text);
  if (ms === undefined)
    reader.error(node.pos, `${path}: "${text}" is not a duration (write it as 30s, 10m, 1h or 1h30m)`);
  return ms;
}

/** A count (an integer, at least `min`) or a percentage ("25%", from `min`% to 100%). */
function readAmount(reader: SpecReader, node: YNode, path: string, min: number): Amount | undefined {
  if (node.kind === 'scalar' && typeof node.value === 'number') {
    if (!Number.isInteger(node.value) || node.value < min) {
      reader.error(node.pos, `${path}: ${node.value} is not a whole number of clusters of at least ${min}`);
      return undefined;
    }
    return { count: node.value };
  }
  if (node.kind === 'scalar' && typeof node.value === 'string') {
    const m = /^(\d+(?:\.\d+)?)%$/.exec(node.value);
    if (!m) {
      reader.error(
        node.pos,
        `${path}: "${node.value}" is neither a number of clusters nor a percentage like 25%`,
      );
      return undefined;
    }
    const percent = Number(m[1]);
    if (percent > 100) {
      reader.error(node.pos, `${path}: ${node.value} is over 100%`);
      return undefined;
    }
    if (min > 0 && percent === 0) {
      reader.error(node.pos, `${path}: ${node.value} must be more than 0%`);
      return undefined;
    }
    return { percent };
  }
  reader.error(
    node.pos,
    `${path}: expected a number of clusters or a percentage like 25%, got ${describeNode(node)}`,
  );
  return undefined;
}

function oneOf<T extends string>(
  reader: SpecReader,
  node: YNode,
  path: string,
  values: Record<string, T>,
): T | undefined {
  const allowed = Object.values(values);
  const v = reader.expectString(node, path, false);
  if (v === undefined) return undefined;
  if ((allowed as string[]).includes(v)) return v as T;
  reader.error(node.pos, `${path}: unknown value "${v}" (expected ${allowed.join(', ')})`);
  return undefined;
}

const TIME = /^([01]\d|2[0-4]):([0-5]\d)$/;

function readWindow(reader: SpecReader, node: YNode, path: string): RolloutWindow | undefined {
  const map = reader.expectMap(node, path);
  if (!map) return undefined;
  const before = reader.errors.length;
  const f = reader.fields(map, path, WINDOW_FIELDS);
  const days: Weekday[] = [];
  const daysNode = f.get('days');
  if (!daysNode)
    reader.error(map.pos, `${path}.days: required (a list of mon, tue, wed, thu, fri, sat, sun)`);
  else {
    const items = reader.expectList(daysNode, `${path}.days`);
    if (items?.length === 0) reader.error(daysNode.pos, `${path}.days: must list at least one day`);
    items?.forEach((item, i) => {
      const v = reader.expectString(item, `${path}.days[${i}]`, false);
      if (v === undefined) return;
      const range = /^([a-z]{3})-([a-z]{3})$/.exec(v);
      const from = WEEKDAYS.indexOf((range ? range[1] : v) as Weekday);
      const to = WEEKDAYS.indexOf((range ? range[2] : v) as Weekday);
      if (from < 0 || to < 0) {
        reader.error(
          item.pos,
          `${path}.days[${i}]: unknown day "${v}" (expected mon, tue, wed, thu, fri, sat, sun, or a range like mon-fri)`,
        );
        return;
      }
      for (let d = from; ; d = (d + 1) % 7) {
        const day = WEEKDAYS[d] as Weekday;
        if (!days.includes(day)) days.push(day);
        if (d === to) break;
      }
    });
  }
  const time = (key: 'start' | 'end'): { text: string; minute: number } | undefined => {
    const n = f.get(key);
    if (!n) {
      reader.error(map.pos, `${path}.${key}: required ("HH:MM", 24-hour local time)`);
      return undefined;
    }
    const text = reader.expectString(n, `${path}.${key}`);
    if (text === undefined) return undefined;
    const m = TIME.exec(text);
    const minute = m ? Number(m[1]) * 60 + Number(m[2]) : -1;
    if (!m || minute > 1440 || (key === 'start' && minute === 1440)) {
      reader.error(
        n.pos,
        `${path}.${key}: "${text}" is not a time of day ("HH:MM", 24-hour, e.g. 02:00 or 22:30)`,
      );
      return undefined;
    }
    return { text, minute };
  };
  const start = time('start');
  const end = time('end');
  if (start && end && start.minute === end.minute)
    reader.error((f.get('end') as YNode).pos, `${path}.end: the window is empty (end equals start)`);
  let timeZone = 'UTC';
  const tzNode = f.get('timeZone');
  if (tzNode) {
    const tz = reader.expectString(tzNode, `${path}.timeZone`);
    if (tz !== undefined) {
      try {
        timeZone = new Intl.DateTimeFormat('en-US', { timeZone: tz }).resolvedOptions().timeZone;
      } catch {
        reader.error(
          tzNode.pos,
          `${path}.timeZone: unknown time zone "${tz}" (an IANA name such as Europe/Berlin or UTC)`,
        );
      }
    }
  }
  if (reader.errors.length !== before || !start || !end) return undefined;
  return {
    days: WEEKDAYS.filter((d) => days.includes(d)),
    start: start.text,
    end: end.text,
    startMinute: start.minute,
    endMinute: end.minute,
    timeZone,
  };
}
