/**
 * The policy step: the fleet repo's `ValidatingAdmissionPolicy` documents (`policies/`,
 * evaluated by `../policy`) run on every distinct render before any cluster gets it.
 * {@link admit} evaluates a render once, whatever the number of clusters sharing it, and
 * keeps the violations with the render (the render cache keeps them too); {@link
 * violationsFor} then picks, per cluster, those of bindings whose cluster selector matches
 * it: a Deny holds the bundle on that cluster like a broken bundle (its last good state
 * kept), Warn and Audit are reported and the bundle is delivered.
 *
 * Verdicts are cached per distinct object. An object that names the cluster (a hole the
 * render fills per cluster) is first evaluated masked, every hole a tripwire (see
 * `HOLE_MARK`): when no matching rule, condition, validation or message reads a hole, that
 * verdict holds for every fill and is shared by every cluster; else each filled object is
 * evaluated.
 */

import { type FleetError, fleetError } from '../errors.ts';
import { apiGroup } from '../kinds.ts';
import type { Labels } from '../labels.ts';
import {
  evaluateObject,
  HOLE_MARK,
  HoleRead,
  type PolicyContext,
  type PolicySet,
  type PolicyViolation,
  policyContext,
} from '../policy/index.ts';
import type { KubeObject } from '../protocol/desired-state.ts';
import type { RenderedBundle, RenderOutcome } from './model.ts';
import { describeObject } from './objects.ts';

/**
 * A render's objects as JSON texts, in the order of the bundle's `objects`: filled
 * (`json`) and `masked`, each cluster variable replaced by U+0001, its index, U+0001 (the
 * same text as `json` where the object has no variable).
 */
export interface ObjectTexts {
  readonly json: readonly string[];
  readonly masked: readonly string[];
}

/** Counts what {@link checkPolicies} evaluates (tests). */
export interface PolicyStats {
  /** Objects evaluated against the bindings, masked or filled (cache hits not counted). */
  evaluations: number;
}

/** What every {@link checkPolicies} call of the process evaluated (tests read it). */
export const policyStats: PolicyStats = { evaluations: 0 };

type Verdict = readonly PolicyViolation[] | 'per-fill';

interface Verdicts {
  readonly byKey: Map<string, Verdict>;
  readonly parsed: Map<string, KubeObject>;
}

// Per policy set (a commit's policies/); bounded by clearing, since keys are whole objects.
const MAX_ENTRIES = 50_000;
const caches = new WeakMap<PolicySet, Verdicts>();

function cacheOf(set: PolicySet): Verdicts {
  let c = caches.get(set);
  if (!c) {
    c = { byKey: new Map(), parsed: new Map() };
    caches.set(set, c);
  }
  if (c.byKey.size > MAX_ENTRIES) c.byKey.clear();
  if (c.parsed.size > MAX_ENTRIES) c.parsed.clear();
  return c;
}

// HOLE_MARK as it is written in JSON text (the render writes it so; JSON.stringify too).
const MARK_JSON = JSON.stringify(HOLE_MARK).slice(1, -1);

// The objects besides one that a verdict reads: CRDs (kinds, scopes) and Namespaces (namespaceObject).
const isContext = (o: KubeObject): boolean =>
  o.kind === 'Namespace' ||
  o.kind === 'CustomResourceDefinition' ||
  o.kind.includes(HOLE_MARK) ||
  o.apiVersion.includes(HOLE_MARK);

/** Every binding's violations on a rendered bundle's objects (cluster selectors not applied). */
export function checkPolicies(
  rendered: RenderedBundle,
  set: PolicySet | undefined,
  texts?: ObjectTexts,
  stats: PolicyStats = policyStats,
): readonly PolicyViolation[] {
  if (!set || set.bindings.length === 0) return [];
  let json: readonly string[];
  let masked: readonly string[];
  let filled: KubeObject[] | undefined;
  if (texts) ({ json, masked } = texts);
  else {
    filled = (JSON.parse(rendered.canonical) as { objects: KubeObject[] }).objects;
    json = filled.map((o) => JSON.stringify(o));
    masked = json;
  }
  const cache = cacheOf(set);
  const parse = (text: string): KubeObject => {
    let o = cache.parsed.get(text);
    if (!o) {
      o = JSON.parse(text) as KubeObject;
      cache.parsed.set(text, o);
    }
    return o;
  };
  const maskedObjects = masked.map(parse);
  const contextAt: number[] = [];
  for (let i = 0; i < maskedObjects.length; i++)
    if (isContext(maskedObjects[i] as KubeObject)) contextAt.push(i);
  const maskedSig = contextAt.map((i) => masked[i]).join('\u0000');
  const realSig = contextAt.map((i) => json[i]).join('\u0000');
  // A hole in a CRD, or in the kind of an object, could give kinds, scopes or Namespaces that
  // differ per fill: no sharing then. (A hole in a Namespace's name is refused per object.)
  const shareable = !contextAt.some((i) => {
    const o = maskedObjects[i] as KubeObject;
    return !(o.kind === 'Namespace' && o.apiVersion === 'v1') && (masked[i] as string).includes(MARK_JSON);
  });
  let maskedContext: PolicyContext | undefined;
  let realContext: PolicyContext | undefined;
  const out: PolicyViolation[] = [];
  for (let i = 0; i < json.length; i++) {
    const text = json[i] as string;
    const maskedText = masked[i] as string;
    if (shareable && (maskedText !== text || maskedSig !== realSig)) {
      const key = `M${maskedSig}\u0000${maskedText}`;
      let v = cache.byKey.get(key);
      if (v === undefined) {
        maskedContext ??= policyContext(set, maskedObjects);
        stats.evaluations++;
        try {
          v = evaluateObject(set, maskedContext, maskedObjects[i] as KubeObject, true);
        } catch (e) {
          if (!(e instanceof HoleRead)) throw e;
          v = 'per-fill';
        }
        cache.byKey.set(key, v);
      }
      if (v !== 'per-fill') {
        if (v.length > 0) {
          // The masked object's name may be a hole: violations name the real object.
          const name = (JSON.parse(text) as KubeObject).metadata.name;
          for (const x of v) out.push({ ...x, object: { ...x.object, name } });
        }
        continue;
      }
    }
    const key = `R${realSig}\u0000${text}`;
    let v = cache.byKey.get(key);
    if (v === undefined) {
      filled ??= json.map((t) => JSON.parse(t) as KubeObject);
      realContext ??= policyContext(set, filled);
      stats.evaluations++;
      v = evaluateObject(set, realContext, filled[i] as KubeObject);
      cache.byKey.set(key, v);
    }
    out.push(...(v as readonly PolicyViolation[]));
  }
  return out;
}

/** A render with its violations attached (none: the render as it was). */
export function admit(
  outcome: RenderOutcome,
  set: PolicySet | undefined,
  texts?: ObjectTexts,
): RenderOutcome {
  if (!outcome.ok || !set) return outcome;
  const violations = checkPolicies(outcome.rendered, set, texts);
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
