/**
 * Wave membership: which wave each cluster of a rollout belongs to, first matching wave
 * wins, in the order the waves are written.
 */
import { type FleetError, fleetError } from '../errors.ts';
import type { Labels } from '../labels.ts';
import type { RolloutSpec, WaveMatch } from '../rollout-spec.ts';
import { compileSelector, type LabelSelector } from '../selector.ts';
import { RolloutInputError } from './types.ts';

/** The name of the implicit final wave that takes the clusters no wave matched (`unmatched: final-wave`). */
export const UNMATCHED_WAVE = '(unmatched)';

export interface WaveAssignment {
  /**
   * Cluster names per wave, in the order given. With `unmatched: final-wave` and clusters
   * that no wave matched, one more entry (index `spec.waves.length`) holds them.
   */
  readonly waves: string[][];
  /** Clusters no wave matched (with `unmatched: error`, the plan-time error lists them). */
  readonly unmatched: string[];
}

/**
 * Puts each cluster in the first wave that matches it (a wave without a matcher takes
 * every cluster left).
 *
 * @param groups the repo's groups (as `Fleet.groups`), for waves with `clusterGroup`.
 * @throws {RolloutInputError} when a wave names a group that `groups` does not have.
 */
export function assignWaves(
  spec: RolloutSpec,
  clusters: readonly { readonly name: string; readonly labels: Labels }[],
  groups?: ReadonlyMap<string, { readonly selector: LabelSelector }>,
): WaveAssignment {
  const tests = spec.waves.map((w) => compileMatch(w.match, groups));
  const waves: string[][] = spec.waves.map(() => []);
  const unmatched: string[] = [];
  for (const c of clusters) {
    const i = tests.findIndex((test) => test(c.name, c.labels));
    if (i < 0) unmatched.push(c.name);
    else (waves[i] as string[]).push(c.name);
  }
  if (unmatched.length > 0 && spec.unmatched === 'final-wave') waves.push([...unmatched]);
  return { waves, unmatched };
}

/** The plan-time error of `unmatched: error`, or undefined when every cluster has a wave. */
export function unmatchedProblem(spec: RolloutSpec, unmatched: readonly string[]): string | undefined {
  if (spec.unmatched !== 'error' || unmatched.length === 0) return undefined;
  const shown = unmatched.slice(0, 20).join(', ');
  const more = unmatched.length > 20 ? ` and ${unmatched.length - 20} more` : '';
  return `rollout: no wave matches ${unmatched.length === 1 ? 'cluster' : `${unmatched.length} clusters`} ${shown}${more} (add a wave for them, a last wave without a matcher, or unmatched: final-wave)`;
}

/**
 * The same problem as a fleet-repo error at the rollout's file and line, for the plan of
 * each unmatched cluster (call it with one cluster) or for the bundle (with all of them).
 */
export function unmatchedError(
  spec: RolloutSpec,
  unmatched: readonly string[],
  bundle?: string,
): FleetError | undefined {
  const message = unmatchedProblem(spec, unmatched);
  return message === undefined
    ? undefined
    : fleetError({ file: spec.file, line: spec.line, column: 1 }, message, bundle);
}

function compileMatch(
  match: WaveMatch | undefined,
  groups: ReadonlyMap<string, { readonly selector: LabelSelector }> | undefined,
): (name: string, labels: Labels) => boolean {
  if (match === undefined) return () => true;
  if (match.kind === 'clusterName') {
    const names = new Set(match.names);
    return (name) => names.has(name);
  }
  let selector: LabelSelector;
  if (match.kind === 'clusterSelector') selector = match.selector;
  else {
    const group = groups?.get(match.group);
    if (!group)
      throw new RolloutInputError(`rollout wave uses group "${match.group}", which was not handed in`);
    selector = group.selector;
  }
  const matcher = compileSelector(selector);
  return (_name, labels) => matcher(labels);
}
