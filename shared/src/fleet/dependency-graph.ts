import type { DependsOnEntry } from '../bundle-spec.ts';
import { fleetError } from '../errors.ts';
import { bundleFileOf } from '../sources/combine.ts';
import type { BundleState } from './model.ts';

/**
 * The one pass over `dependsOn` for the whole repo. It reports, on the bundle that
 * declares them, dependencies on bundles the repo does not have and every edge on a
 * cycle; links each valid bundle to the bundles it depends on; and returns the apply
 * order: Kahn's algorithm, smallest name first, with bundles on (or behind) a cycle last
 * by name. The planner relies on that order so that holds cascade to dependents.
 */
export function resolveDependencies(states: readonly BundleState[]): BundleState[] {
  const byName = new Map(states.map((s) => [s.name, s]));
  // Edges to known bundles only: an unknown one is an error of its own, not part of the order.
  const edges = new Map<string, DependsOnEntry[]>();
  for (const s of states) {
    const known: DependsOnEntry[] = [];
    for (const dep of s.spec?.dependsOn ?? []) {
      if (byName.has(dep.name)) known.push(dep);
      else {
        s.errors.push(
          fleetError(
            dep.pos,
            `dependsOn[${dep.index}]: unknown bundle "${dep.name}" (no ${bundleFileOf(dep.name)})`,
            s.name,
          ),
        );
      }
    }
    edges.set(s.name, known);
  }

  const { order, unplaced } = applyOrder(states, byName, edges);

  // Every edge on a cycle is reported. Only bundles that Kahn's algorithm could not place can be on one.
  for (const s of states) {
    if (!unplaced.has(s.name)) continue;
    for (const dep of edges.get(s.name) ?? []) {
      const back = shortestPath(edges, dep.name, s.name);
      if (back) {
        s.errors.push(
          fleetError(
            dep.pos,
            `dependsOn[${dep.index}]: dependency cycle ${[s.name, ...back].join(' -> ')}`,
            s.name,
          ),
        );
      }
    }
  }

  for (const s of states) {
    if (s.errors.length === 0 && s.spec)
      s.dependsOn = s.spec.dependsOn.map((d) => byName.get(d.name) as BundleState);
  }
  return order;
}

/** Kahn's algorithm, smallest name first; whatever it cannot place (cycles) goes last by name. */
function applyOrder(
  states: readonly BundleState[],
  byName: ReadonlyMap<string, BundleState>,
  edges: ReadonlyMap<string, readonly DependsOnEntry[]>,
): { order: BundleState[]; unplaced: ReadonlySet<string> } {
  const pending = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  for (const s of states) {
    const deps = edges.get(s.name) ?? [];
    pending.set(s.name, deps.length);
    for (const d of deps) {
      const list = dependents.get(d.name) ?? [];
      list.push(s.name);
      dependents.set(d.name, list);
    }
  }
  const ready = [...pending].filter(([, n]) => n === 0).map(([n]) => n);
  const out: BundleState[] = [];
  while (ready.length > 0) {
    ready.sort();
    const name = ready.shift() as string;
    out.push(byName.get(name) as BundleState);
    for (const d of dependents.get(name) ?? []) {
      const left = (pending.get(d) ?? 0) - 1;
      pending.set(d, left);
      if (left === 0) ready.push(d);
    }
  }
  const placed = new Set(out.map((s) => s.name));
  const unplaced = new Set<string>();
  for (const s of [...states].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (placed.has(s.name)) continue;
    unplaced.add(s.name);
    out.push(s);
  }
  return { order: out, unplaced };
}

/** Breadth-first, in declared order: the shortest dependency path from `from` to `to`, both included. */
function shortestPath(
  edges: ReadonlyMap<string, readonly DependsOnEntry[]>,
  from: string,
  to: string,
): string[] | undefined {
  const prev = new Map<string, string>([[from, '']]);
  const queue = [from];
  while (queue.length > 0) {
    const cur = queue.shift() as string;
    if (cur === to) {
      const path = [cur];
      let p = prev.get(cur);
      while (p) {
        path.unshift(p);
        p = prev.get(p);
      }
      return path;
    }
    for (const d of edges.get(cur) ?? []) {
      if (!prev.has(d.name)) {
        prev.set(d.name, cur);
        queue.push(d.name);
      }
    }
  }
  return undefined;
}
