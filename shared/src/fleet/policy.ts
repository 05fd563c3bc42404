/**
 * The policy step: what the hub checks on a rendered variant before any cluster gets it.
 * Empty for now: the repo has no policies, so nothing is denied and every render passes
 * through unchanged.
 *
 * A later issue plugs `ValidatingAdmissionPolicy` documents from the repo in here
 * (evaluated in CEL, as `health-checks.ts` evaluates health checks). A Deny comes back as
 * violations, errors with the policy's file and line; {@link admit} turns them into a
 * failed render, which the planner holds on that cluster like any broken bundle, and the
 * render cache keeps the verdict with the render, so each distinct render is checked once.
 */
import type { FleetError } from '../errors.ts';
import type { RenderedBundle, RenderOutcome } from './model.ts';

const NO_VIOLATIONS: readonly FleetError[] = Object.freeze([]);

/**
 * The violations of a rendered bundle's objects (its canonical JSON, objects in apply
 * order, and their identities with file and line). None until policies exist.
 */
export function checkPolicies(_rendered: RenderedBundle): readonly FleetError[] {
  return NO_VIOLATIONS;
}

/** A render that passes policy as it was; one that violates it as a failed render with the violations. */
export function admit(outcome: RenderOutcome): RenderOutcome {
  if (!outcome.ok) return outcome;
  const violations = checkPolicies(outcome.rendered);
  return violations.length === 0 ? outcome : { ok: false, errors: violations };
}
