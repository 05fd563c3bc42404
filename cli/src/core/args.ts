/**
 * Parsers for the values people type on the command line: labels (`k=v`), label changes
 * (`k=v k2-`, as `kubectl label`), durations (`1h30m`), offline clusters
 * (`name=k=v,k2=v2`). Pure; each throws a UsageError naming what is wrong.
 */
import { labelKeyProblem, labelValueProblem, nameProblem } from '@flotilla/shared';
import { UsageError } from './errors.ts';

export type Labels = Readonly<Record<string, string>>;

function checkLabel(key: string, value: string, flag: string): void {
  const problem = labelKeyProblem(key) ?? labelValueProblem(value);
  if (problem) throw new UsageError(`${flag} ${key}=${value}: ${problem}`);
}

/** One `k=v` pair. */
export function parseLabel(text: string, flag = '--label'): [string, string] {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new UsageError(`${flag} "${text}": expected key=value`);
  const key = text.slice(0, eq);
  const value = text.slice(eq + 1);
  checkLabel(key, value, flag);
  return [key, value];
}

/** Repeated `--label k=v` (each may also hold several pairs separated by commas). */
export function parseLabels(values: readonly string[] | undefined, flag = '--label'): Labels {
  const labels: Record<string, string> = {};
  for (const value of values ?? []) {
    for (const part of value.split(',')) {
      if (part.trim() === '') continue;
      const [key, v] = parseLabel(part.trim(), flag);
      if (labels[key] !== undefined && labels[key] !== v) {
        throw new UsageError(`${flag}: label "${key}" is given twice, as "${labels[key]}" and "${v}"`);
      }
      labels[key] = v;
    }
  }
  return labels;
}

export interface LabelChange {
  readonly set: Labels;
  readonly remove: readonly string[];
}

/** `kubectl label` syntax: `k=v` sets, `k-` removes. */
export function parseLabelChanges(args: readonly string[]): LabelChange {
  if (args.length === 0)
    throw new UsageError('give at least one label change: key=value to set, key- to remove');
  const set: Record<string, string> = {};
  const remove: string[] = [];
  for (const arg of args) {
    if (arg.endsWith('-') && !arg.includes('=')) {
      const key = arg.slice(0, -1);
      const problem = labelKeyProblem(key);
      if (problem) throw new UsageError(`"${arg}": ${problem}`);
      remove.push(key);
      continue;
    }
    if (!arg.includes('=')) throw new UsageError(`"${arg}": expected key=value (set) or key- (remove)`);
    const [key, value] = parseLabel(arg, 'label');
    set[key] = value;
  }
  const both = remove.filter((k) => set[k] !== undefined);
  if (both.length > 0) throw new UsageError(`label "${both[0]}" is both set and removed`);
  return { set, remove };
}

const durationUnits: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** `90s`, `15m`, `1h`, `1h30m`, `7d`, or plain seconds; in whole seconds. */
export function parseDuration(text: string, flag: string): number {
  const t = text.trim();
  if (/^\d+$/.test(t)) return Number(t);
  const parts = [...t.matchAll(/(\d+)([smhd])/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== t) {
    throw new UsageError(`${flag} "${text}": expected a duration such as 90s, 15m, 1h or 1h30m`);
  }
  return parts.reduce((sum, p) => sum + Number(p[1]) * (durationUnits[p[2] as string] as number), 0);
}

export interface OfflineCluster {
  readonly name: string;
  readonly labels: Labels;
}

/** `--cluster name=k=v,k2=v2` (or just `name`): a cluster described on the command line, not at the hub. */
export function parseOfflineCluster(text: string): OfflineCluster {
  const eq = text.indexOf('=');
  const name = eq < 0 ? text : text.slice(0, eq);
  const problem = nameProblem(name);
  if (problem) throw new UsageError(`--cluster "${text}": cluster name ${problem}`);
  const labels = eq < 0 ? {} : parseLabels([text.slice(eq + 1)], `--cluster ${name}`);
  return { name, labels };
}

/** A cluster name given as a positional argument. */
export function parseClusterName(text: string | undefined, what = 'cluster name'): string {
  if (text === undefined || text === '') throw new UsageError(`missing the ${what}`);
  const problem = nameProblem(text);
  if (problem) throw new UsageError(`${what} ${problem}`);
  if (text.length > 50) throw new UsageError(`${what} "${text}" is longer than 50 characters`);
  return text;
}

/** Formats labels as `k=v,k2=v2`, sorted by key. */
export function formatLabels(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');
}

/** Formats seconds as a short duration: `90s` → `1m30s`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return s % 60 === 0 ? `${s / 60}m` : `${Math.floor(s / 60)}m${s % 60}s`;
  if (s < 86400) {
    const m = Math.floor((s % 3600) / 60);
    return m === 0 ? `${Math.floor(s / 3600)}h` : `${Math.floor(s / 3600)}h${m}m`;
  }
  const h = Math.floor((s % 86400) / 3600);
  return h === 0 ? `${Math.floor(s / 86400)}d` : `${Math.floor(s / 86400)}d${h}h`;
}

/** How long ago `iso` was, as kubectl shows ages (`45s`, `3m`, `2h`); `<never>` when absent. */
export function age(iso: string | null | undefined, now: Date): string {
  if (!iso) return '<never>';
  const ms = now.getTime() - Date.parse(iso);
  if (!Number.isFinite(ms)) return iso;
  return formatDuration(ms / 1000);
}
