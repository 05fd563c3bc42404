/**
 * Runs a {@link PolicySet} over rendered objects, as the API server's ValidatingAdmissionPolicy
 * plugin would on a create of each object: bindings and policies match, then match
 * conditions, parameters, variables and validations. The result is a list of violations,
 * one per failing validation and binding; an empty list means every object is admitted.
 */
import { type CelMap, type CelResult, type CelValue, celMap, isCelError } from '@bufbuild/cel';
import type { Labels } from '../labels.ts';
import type { KubeObject } from '../protocol/desired-state.ts';
import { compileSelector } from '../selector.ts';
import { HOLE_MARK, HoleRead, toCelValue, toMaskedCelValue, withTripwires } from './cel.ts';
import type { Binding, CompiledExpression, Policy, PolicySet, ValidationAction } from './load.ts';
import {
  type KindCatalog,
  kindCatalog,
  labelsOf,
  type MatchResources,
  matchesResources,
  namespacesOf,
  type RequestAttributes,
  requestAttributes,
} from './match.ts';

/** One object that a binding of a policy does not admit. */
export interface PolicyViolation {
  readonly policy: string;
  readonly binding: string;
  /** Where the failing validation (or match condition, or the binding for missing params) is written. */
  readonly file: string;
  readonly line: number;
  /** The strongest of the binding's actions: Deny, else Warn, else Audit. */
  readonly action: ValidationAction;
  /** All of the binding's validationActions. */
  readonly actions: readonly ValidationAction[];
  readonly object: {
    readonly apiVersion: string;
    readonly kind: string;
    readonly namespace?: string;
    readonly name: string;
  };
  /** As the API server words it after "denied request: ". */
  readonly message: string;
  readonly reason?: string;
}

export interface EvaluateOptions {
  /** The cluster the objects are for; without it, bindings with a cluster selector apply. */
  readonly cluster?: { readonly name: string; readonly labels: Labels };
}

/** True when some binding is limited to part of the fleet, so results differ per cluster. */
export function policiesDependOnCluster(set: PolicySet): boolean {
  return set.bindings.some((b) => b.clusterSelector !== undefined);
}

const STRENGTH: readonly ValidationAction[] = ['Deny', 'Warn', 'Audit'];

/**
 * Evaluates every binding on every object.
 *
 * @example
 * evaluatePolicies(set, [deployment]);
 * // [{ policy: 'no-latest-images', action: 'Deny', message: 'images must be pinned to a version', ... }]
 */
export function evaluatePolicies(
  set: PolicySet,
  objects: readonly KubeObject[],
  opts: EvaluateOptions = {},
): PolicyViolation[] {
  const context = policyContext(set, objects, opts);
  const out: PolicyViolation[] = [];
  for (const object of objects) out.push(...evaluateObject(set, context, object));
  return out;
}

/** What an object's verdict depends on besides the object: the bindings, kinds and namespaces in play. */
export interface PolicyContext {
  readonly bindings: readonly Binding[];
  readonly catalog: KindCatalog;
  readonly namespaces: ReadonlyMap<string, KubeObject>;
}

export function policyContext(
  set: PolicySet,
  objects: readonly KubeObject[],
  opts: EvaluateOptions = {},
): PolicyContext {
  const bindings = set.bindings.filter(
    (b) => !opts.cluster || !b.clusterSelector || b.clusterSelector.matches(opts.cluster.labels),
  );
  return { bindings, catalog: kindCatalog(objects), namespaces: namespacesOf(objects) };
}

/**
 * Every binding's violations on one object. With `masked`, the object and the context's
 * namespaces are masked renders (strings holding U+0001 where a cluster fills a value): the
 * result is returned only when it holds for every fill, else {@link HoleRead} is thrown and
 * the caller evaluates the filled object. A violation's `object` then names the masked
 * object: the caller puts the real one in.
 *
 * @throws {HoleRead} with `masked`, when matching, a match condition, a validation or a
 * message expression reads a hole, or when any of them ends in an error.
 */
export function evaluateObject(
  set: PolicySet,
  context: PolicyContext,
  object: KubeObject,
  masked = false,
): PolicyViolation[] {
  const { bindings, catalog, namespaces } = context;
  if (bindings.length === 0) return [];
  const req = requestAttributes(object, catalog);
  if (masked) return withTripwires(() => evaluateMasked(set, context, object, req));
  // `request` is the same for every binding of an object: converted once, when one matches.
  let request: unknown;
  const out: PolicyViolation[] = [];
  for (const binding of bindings) {
    const policy = set.policies.get(binding.policyName);
    if (!policy) continue;
    if (!matchesResources(policy.matchConstraints, object, req, namespaces)) continue;
    if (binding.matchResources && !matchesResources(binding.matchResources, object, req, namespaces))
      continue;
    request ??= toCelValue(requestOf(object, req));
    out.push(...evaluateBinding(set, policy, binding, object, req, request, namespaces, catalog, false));
  }
  return out;
}

const marked = (v: unknown): boolean => typeof v === 'string' && v.includes(HOLE_MARK);
/** Whether a selector's verdict on the object's labels could differ per fill: it reads a label with a hole. */
function selectorReadsHole(s: MatchResources['objectSelector'], o: KubeObject | undefined): boolean {
  const labels = labelsOf(o);
  const keys = [...Object.keys(s.matchLabels ?? {}), ...(s.matchExpressions ?? []).map((e) => e.key)];
  if (keys.length === 0) return false;
  if (Object.keys(labels).some(marked)) return true;
  return keys.some((k) => Object.hasOwn(labels, k) && marked(labels[k]));
}
const namesResources = (m: MatchResources): boolean =>
  [...(m.resourceRules ?? []), ...m.excludeResourceRules].some((r) => r.resourceNames.length > 0);

function evaluateMasked(
  set: PolicySet,
  context: PolicyContext,
  object: KubeObject,
  req: RequestAttributes,
): PolicyViolation[] {
  const { bindings, catalog, namespaces } = context;
  // What matching reads besides CEL: kind, namespace, name (resourceNames), labels (selectors).
  if (marked(object.apiVersion) || marked(object.kind) || marked(req.namespace))
    throw new HoleRead('the kind or namespace');
  for (const ns of namespaces.keys()) if (marked(ns)) throw new HoleRead('a Namespace name');
  const nameMarked = marked(object.metadata.name);
  const isNamespace = object.kind === 'Namespace' && object.apiVersion === 'v1';
  const namespaceObject = isNamespace
    ? object
    : req.clusterScoped
      ? undefined
      : namespaces.get(req.namespace);
  const readsHole = (m: MatchResources): boolean =>
    (nameMarked && namesResources(m)) ||
    selectorReadsHole(m.objectSelector, object) ||
    selectorReadsHole(m.namespaceSelector, namespaceObject);
  let request: unknown;
  const out: PolicyViolation[] = [];
  for (const binding of bindings) {
    const policy = set.policies.get(binding.policyName);
    if (!policy) continue;
    if (readsHole(policy.matchConstraints) || (binding.matchResources && readsHole(binding.matchResources)))
      throw new HoleRead('a match rule or selector');
    if (!matchesResources(policy.matchConstraints, object, req, namespaces)) continue;
    if (binding.matchResources && !matchesResources(binding.matchResources, object, req, namespaces))
      continue;
    request ??= toMaskedCelValue(requestOf(object, req));
    out.push(...evaluateBinding(set, policy, binding, object, req, request, namespaces, catalog, true));
  }
  return out;
}

function describeObject(object: KubeObject, req: RequestAttributes): PolicyViolation['object'] {
  return req.namespace
    ? {
        apiVersion: object.apiVersion,
        kind: object.kind,
        namespace: req.namespace,
        name: object.metadata.name,
      }
    : { apiVersion: object.apiVersion, kind: object.kind, name: object.metadata.name };
}

function errorText(r: CelResult): string {
  const e = r as { message?: unknown; cause?: unknown };
  const cause = e.cause instanceof Error ? e.cause.message : undefined;
  return cause ?? String(e.message ?? r);
}

function evaluateBinding(
  set: PolicySet,
  policy: Policy,
  binding: Binding,
  object: KubeObject,
  req: RequestAttributes,
  request: unknown,
  namespaces: ReadonlyMap<string, KubeObject>,
  catalog: KindCatalog,
  masked: boolean,
): PolicyViolation[] {
  // Masked, any error may hide a hole (`hole == 'x' || missing.field` errors either way): give up.
  const run = (program: CompiledExpression, b: Record<string, unknown>) => {
    const r = program.run(b);
    if (masked && (isCelError(r) || marked(r))) throw new HoleRead(`'${program.source.trim()}'`);
    return r;
  };
  const convert = masked ? maskedCelObject : celObject;
  const action = STRENGTH.find((a) => binding.validationActions.includes(a)) ?? 'Deny';
  const violation = (
    pos: { file: string; line: number },
    message: string,
    reason?: string,
  ): PolicyViolation => ({
    policy: policy.name,
    binding: binding.name,
    file: pos.file,
    line: pos.line,
    action,
    actions: binding.validationActions,
    object: describeObject(object, req),
    message,
    ...(reason === undefined ? {} : { reason }),
  });
  const fail = policy.failurePolicy === 'Fail';
  const namespaceObject = req.namespace ? namespaces.get(req.namespace) : undefined;
  const base: Record<string, unknown> = {
    object: convert(object),
    oldObject: null,
    request,
    namespaceObject: namespaceObject ? convert(namespaceObject) : null,
    params: null,
  };

  // Match conditions see no params, and neither do their variables.
  const conditionBindings =
    policy.matchConditions.length === 0 ? base : { ...base, variables: lazyVariables(policy, base) };
  let conditionError: string | undefined;
  let conditionPos: { file: string; line: number } | undefined;
  for (const condition of policy.matchConditions) {
    const r = run(condition, conditionBindings);
    if (r === false) return [];
    if (r !== true) {
      conditionError ??= isCelError(r)
        ? `failed to evaluate match condition '${condition.name}': ${errorText(r)}`
        : `match condition '${condition.name}' must evaluate to bool`;
      conditionPos ??= condition.pos;
    }
  }
  if (conditionError !== undefined) {
    return fail && conditionPos ? [violation(conditionPos, conditionError)] : [];
  }

  let paramSets: (KubeObject | null)[] = [null];
  if (policy.paramKind && binding.paramRef) {
    const found = findParams(set, policy, binding, req, catalog);
    if (found === 'no-namespace') {
      return fail
        ? [
            violation(
              binding.pos,
              'failed to configure binding: cannot use a namespaced param for a cluster-scoped object without paramRef.namespace',
            ),
          ]
        : [];
    }
    if (found.length === 0) {
      if (binding.paramRef.parameterNotFoundAction === 'Allow') return [];
      return fail
        ? [
            violation(
              binding.pos,
              'failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction',
            ),
          ]
        : [];
    }
    paramSets = found;
  }

  const out: PolicyViolation[] = [];
  for (const params of paramSets) {
    const withParams: Record<string, unknown> = { ...base, params: params ? toCelValue(params) : null };
    // A policy without variables needs no map of them (most policies): one fewer object per evaluation.
    const bindings =
      policy.variables.length === 0
        ? { ...withParams, variables: noVariablesMap() }
        : { ...withParams, variables: lazyVariables(policy, withParams) };
    for (const v of policy.validations) {
      const r = run(v.expression, bindings);
      if (r === true) continue;
      if (r !== false) {
        if (!fail) continue;
        const why = isCelError(r) ? errorText(r) : 'validation expression must evaluate to bool';
        out.push(
          violation(v.expression.pos, `expression '${v.expression.source}' resulted in error: ${why}`),
        );
        continue;
      }
      let message = v.message?.trim() ? v.message.trim() : `failed expression: ${v.expression.source.trim()}`;
      if (v.messageExpression) {
        const m = run(v.messageExpression, bindings);
        // As the API server: an error, a non-string, a blank or a multi-line result keeps the static message.
        if (typeof m === 'string' && m.trim() !== '' && !/[\r\n]/.test(m.trim())) message = m.trim();
      }
      out.push(violation(v.expression.pos, message, v.reason ?? 'Invalid'));
    }
  }
  return out;
}

// An object is converted for CEL once, however many bindings match it.
const celObjects = new WeakMap<KubeObject, unknown>();
function celObject(object: KubeObject): unknown {
  let v = celObjects.get(object);
  if (v === undefined) {
    v = toCelValue(object);
    celObjects.set(object, v);
  }
  return v;
}

const maskedCelObjects = new WeakMap<KubeObject, unknown>();
function maskedCelObject(object: KubeObject): unknown {
  let v = maskedCelObjects.get(object);
  if (v === undefined) {
    v = toMaskedCelValue(object);
    maskedCelObjects.set(object, v);
  }
  return v;
}

function requestOf(object: KubeObject, req: RequestAttributes): unknown {
  const kind = { group: req.group, version: req.version, kind: object.kind };
  const resource = { group: req.group, version: req.version, resource: req.resource };
  return {
    kind,
    resource,
    requestKind: kind,
    requestResource: resource,
    subResource: '',
    name: object.metadata.name,
    namespace: req.namespace,
    operation: 'CREATE',
    dryRun: false,
    userInfo: { username: '', groups: [] },
  };
}

/** `variables` of a policy that declares none. */
let noVariables: CelMap | undefined;
const NO_VARIABLES_POLICY = { variables: [] } as unknown as Policy;
function noVariablesMap(): CelMap {
  noVariables ??= lazyVariables(NO_VARIABLES_POLICY, {});
  return noVariables;
}

/**
 * `variables` as a map whose entries are computed on first use, in the bindings given: a
 * variable that errors makes only the expressions that read it fail.
 */
function lazyVariables(policy: Policy, bindings: Record<string, unknown>): CelMap {
  const byName = new Map<string, CompiledExpression>(policy.variables.map((v) => [v.name, v]));
  const cache = new Map<string, CelResult>();
  const inProgress = new Set<string>();
  let self: ReadonlyMap<string, CelValue>;
  let wrapped: CelMap;
  const get = (key: unknown): CelValue | undefined => {
    if (typeof key !== 'string') return undefined;
    const expr = byName.get(key);
    if (!expr) return undefined;
    let r = cache.get(key);
    if (r === undefined) {
      if (inProgress.has(key)) throw new Error(`variable '${key}' refers to itself`);
      inProgress.add(key);
      r = expr.run({ ...bindings, variables: wrapped });
      inProgress.delete(key);
      cache.set(key, r);
    }
    if (isCelError(r)) throw new Error(`variable '${key}': ${errorText(r)}`);
    return r;
  };
  const names = [...byName.keys()];
  self = {
    get size() {
      return names.length;
    },
    get,
    has: (key: unknown) => typeof key === 'string' && byName.has(key),
    keys: () => names[Symbol.iterator](),
    values: () => names.map((n) => get(n) as CelValue)[Symbol.iterator](),
    entries: () => names.map((n): [string, CelValue] => [n, get(n) as CelValue])[Symbol.iterator](),
    forEach(cb: (v: CelValue, k: string, m: ReadonlyMap<string, CelValue>) => void) {
      for (const n of names) cb(get(n) as CelValue, n, self);
    },
    [Symbol.iterator]() {
      return this.entries();
    },
  };
  wrapped = celMap(self);
  return wrapped;
}

function findParams(
  set: PolicySet,
  policy: Policy,
  binding: Binding,
  req: RequestAttributes,
  catalog: KindCatalog,
): KubeObject[] | 'no-namespace' {
  const kind = policy.paramKind;
  const ref = binding.paramRef;
  if (!kind || !ref) return [];
  const clusterScoped = catalog.clusterScoped(kind.apiVersion, kind.kind);
  let namespace: string | undefined;
  if (!clusterScoped) {
    namespace = ref.namespace ?? (req.namespace || undefined);
    if (namespace === undefined) return 'no-namespace';
  }
  const selector = ref.selector ? compileSelector(ref.selector) : undefined;
  return set.params.filter(
    (p) =>
      p.apiVersion === kind.apiVersion &&
      p.kind === kind.kind &&
      (clusterScoped || (p.metadata?.namespace ?? 'default') === namespace) &&
      (ref.name !== undefined ? p.metadata?.name === ref.name : selector ? selector(labelsOf(p)) : false),
  );
}
