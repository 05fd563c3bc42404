/**
 * Rollback pins applied to a planned desired state: the one place where a sync or a
 * re-plan lets a pinned bundle stay at its earlier reference, and where a pin ends.
 */
import { type BundleRef, type DesiredState, orderBundleRefs } from '../desired-state.ts';
import type { ClusterPlan } from '../fleet/model.ts';
import type { BundlePin } from './ports.ts';

/** Two references name the same revision of a bundle (content, namespace, order, drift policy, pause). */
export function sameBundleRef(a: BundleRef | null | undefined, b: BundleRef | null | undefined): boolean {
  if (!a || !b) return !a && !b;
  return (
    a.name === b.name &&
    a.hash === b.hash &&
    a.namespace === b.namespace &&
    a.driftPolicy === b.driftPolicy &&
    a.paused === b.paused &&
    a.dependsOn.length === b.dependsOn.length &&
    a.dependsOn.every((d, i) => d === b.dependsOn[i])
  );
}

export interface PinnedDesiredState {
  readonly state: DesiredState;
  /** The pins still in force. */
  readonly pins: readonly BundlePin[];
  /** Bundles whose pin ended with this plan: the hub now plans something else for them. */
  readonly ended: readonly string[];
}

/**
 * Applies a cluster's pins to what the hub planned for it.
 *
 * A pinned bundle keeps its pinned reference (or stays off the cluster) while the plan
 * for it is the one made when the pin was made. When the plan differs, the bundle
 * changed since: the pin ends and the plan goes in. A bundle held by an error (or a
 * cluster held as a whole) changes nothing: its pin stays.
 */
export function applyPins(
  planned: DesiredState,
  plan: Pick<ClusterPlan, 'status' | 'held'>,
  pins: readonly BundlePin[] | undefined,
): PinnedDesiredState {
  if (!pins || pins.length === 0) return { state: planned, pins: [], ended: [] };
  const held = new Set(plan.held.map((h) => h.bundle));
  const bundles = new Map(planned.bundles.map((b) => [b.name, b]));
  const kept: BundlePin[] = [];
  const ended: string[] = [];
  for (const pin of pins) {
    const stillPlanned =
      plan.status === 'held' || held.has(pin.bundle) || sameBundleRef(bundles.get(pin.bundle), pin.planned);
    if (!stillPlanned) {
      ended.push(pin.bundle);
      continue;
    }
    kept.push(pin);
    if (pin.ref) bundles.set(pin.bundle, pin.ref);
    else bundles.delete(pin.bundle);
  }
  return {
    state: { ...planned, bundles: orderBundleRefs([...bundles.values()]) },
    pins: kept,
    ended: ended.sort(),
  };
}
