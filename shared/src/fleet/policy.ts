/**
 * The policy step: the fleet repo's `ValidatingAdmissionPolicy` documents (`policies/`,
 * evaluated by `../policy`) run on every distinct render before any cluster gets it.
 * {@link admit} evaluates a render once, whatever the number of clusters sharing it, and
 * keeps the violations with the render (the render cache keeps them too); {@link
 * violationsFor} then picks, per cluster, those of bindings whose cluster selector matches
 * it: a Deny holds the bundle on that cluster like a broken bundle (its last good state
 * kept), Warn and Audit are reported and the bundle is delivered.
 */

import { type FleetError, fleetError } from '../errors.ts';
import { apiGroup } from '../kinds.ts';
import type { Labels } from '../labels.ts';
import { evaluatePolicies, type PolicySet, type PolicyViolation } from '../policy/index.ts';
import type { KubeObject } from '../protocol/desired-state.ts';
import type { RenderedBundle, RenderOutcome } from './model.ts';
import { describeObject } from './objects.ts';

/** Every binding's violations on a rendered bundle's objects (cluster selectors not applied). */
export function checkPolicies(
  rendered: RenderedBundle,
  set: PolicySet | undefined,
): readonly PolicyViolation[] {
  if (!set || set.bindings.length === 0) return [];
  const { objects } = JSON.parse(rendered.canonical) as { objects: KubeObject[] };
  return evaluatePolicies(set, objects);
}

/** A render with its violations attached (none: the render as it was). */
export function admit(outcome: RenderOutcome, set: PolicySet | undefined): RenderOutcome {
  if (!outcome.ok || !set) return outcome;
  const violations = checkPolicies(outcome.rendered, set);
  return violations.length === 0 ? outcome : { ok: true, rendered: { ...outcome.rendered, violations } };
}

/** One cluster's share of a render's violations, as fleet errors: Deny holds the bundle, the rest are warnings. */
export interface ClusterViolations {
  readonly deny: readonly FleetError[];
  readonly warn: readonly FleetError[];
}

const NONE: ClusterViolations = Object.freeze({ deny: [], warn: [] });

export function violationsFor(
  rendered: RenderedBundle,
  set: PolicySet | undefined,
  labels: Labels,
): ClusterViolations {
  const violations = rendered.violations;
  if (!violations || violations.length === 0 || !set) return NONE;
  const deny: FleetError[] = [];
  const warn: FleetError[] = [];
  for (const v of violations) {
    const binding = set.bindings.find((b) => b.name === v.binding);
    if (binding?.clusterSelector && !binding.clusterSelector.matches(labels)) continue;
    (v.action === 'Deny' ? deny : warn).push(violationError(v, rendered));
  }
  return deny.length === 0 && warn.length === 0 ? NONE : { deny, warn };
}

/** Whether a fleet error is a policy violation ({@link violationError} made it), not a problem of the repo. */
export function isPolicyViolation(e: Pick<FleetError, 'file' | 'message'>): boolean {
  return e.file.startsWith('policies/') && e.message.startsWith('policy ');
}

/** The action a violation error reports. */
export function violationAction(e: Pick<FleetError, 'message'>): 'Deny' | 'Warn' | 'Audit' {
  return /\) denies /.test(e.message) ? 'Deny' : /\) warns about /.test(e.message) ? 'Warn' : 'Audit';
}

/**
 * A violation as a fleet error at the policy's file and line, naming the binding's action,
 * the object with its own file and line, and the policy's message.
 */
export function violationError(v: PolicyViolation, rendered: RenderedBundle): FleetError {
  const o = v.object;
  const id = `${apiGroup(o.apiVersion)}/${o.kind}/${o.namespace ?? ''}/${o.name}`;
  const ref = rendered.objects.find((r) => r.id === id);
  const what = describeObject(apiGroup(o.apiVersion), o.kind, o.namespace, o.name);
  const verb = v.action === 'Deny' ? 'denies' : v.action === 'Warn' ? 'warns about' : 'audits';
  return fleetError(
    { file: v.file, line: v.line, column: 1 },
    `policy ${v.policy} (binding ${v.binding}) ${verb} ${what}${ref ? ` (${ref.file}:${ref.line})` : ''}: ${v.message}`,
    rendered.bundle,
  );
}
