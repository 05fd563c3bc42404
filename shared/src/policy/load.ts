/**
 * Reads `policies/` of the fleet repo: ValidatingAdmissionPolicy and
 * ValidatingAdmissionPolicyBinding documents, and every other document as a parameter
 * object a binding's `paramRef` may name. Every problem is a {@link FleetError} at the
 * line it is about; expressions are compiled here, so a bad one never reaches evaluation.
 */
import { type FleetError, fleetError, normalizeFleetErrors, type SourcePos } from '../errors.ts';
import type { KubeObject } from '../protocol/desired-state.ts';
import {
  compileSelector,
  type LabelMatcher,
  type LabelSelector,
  labelSelectorProblems,
} from '../selector.ts';
import { parseLabelSelector } from '../selector-string.ts';
import { getEntry, parseYamlFile, type YNode } from '../yaml-source.ts';
import { type CelProgram, compilePolicyExpression, PolicyExpressionError } from './cel.ts';
import type { MatchResources, ResourceRule } from './match.ts';

/** A file under `policies/`: its repo-relative path and its text. */
export interface PolicyFile {
  readonly path: string;
  readonly content: string;
}

export type ValidationAction = 'Deny' | 'Warn' | 'Audit';

/** The binding annotation that limits a binding to the clusters its selector matches (kubectl syntax). */
export const CLUSTER_SELECTOR_ANNOTATION = 'flotilla.dev/cluster-selector';

export interface CompiledExpression {
  readonly source: string;
  readonly pos: SourcePos;
  readonly run: CelProgram;
}

export interface NamedExpression extends CompiledExpression {
  readonly name: string;
}

export interface Validation {
  readonly expression: CompiledExpression;
  readonly message: string | undefined;
  readonly messageExpression: CompiledExpression | undefined;
  readonly reason: string | undefined;
}

export interface Policy {
  readonly name: string;
  readonly pos: SourcePos;
  readonly failurePolicy: 'Fail' | 'Ignore';
  readonly paramKind: { readonly apiVersion: string; readonly kind: string } | undefined;
  readonly matchConstraints: MatchResources;
  readonly matchConditions: readonly NamedExpression[];
  readonly variables: readonly NamedExpression[];
  readonly validations: readonly Validation[];
}

export interface ParamRef {
  readonly name: string | undefined;
  readonly namespace: string | undefined;
  readonly selector: LabelSelector | undefined;
  readonly parameterNotFoundAction: 'Allow' | 'Deny';
}

export interface Binding {
  readonly name: string;
  readonly pos: SourcePos;
  readonly policyName: string;
  readonly validationActions: readonly ValidationAction[];
  readonly paramRef: ParamRef | undefined;
  readonly matchResources: MatchResources | undefined;
  /** From the {@link CLUSTER_SELECTOR_ANNOTATION} annotation; undefined: every cluster. */
  readonly clusterSelector: { readonly text: string; readonly matches: LabelMatcher } | undefined;
}

/** What `policies/` holds, compiled: a value the evaluator can run on any number of objects. */
export interface PolicySet {
  readonly policies: ReadonlyMap<string, Policy>;
  readonly bindings: readonly Binding[];
  /** Every other document, as parameters for `paramRef`. */
  readonly params: readonly KubeObject[];
}

const GROUP = 'admissionregistration.k8s.io';
const VERSIONS = new Set([`${GROUP}/v1`, `${GROUP}/v1beta1`]);

/** Plain JSON of a node (numbers stay numbers). */
function plain(node: YNode | undefined): unknown {
  if (!node) return undefined;
  if (node.kind === 'scalar') return node.value;
  if (node.kind === 'seq') return node.items.map(plain);
  return Object.fromEntries(node.entries.map((e) => [e.key, plain(e.value)]));
}

/** The node at a path of keys and indexes, or undefined. */
function at(node: YNode | undefined, ...path: (string | number)[]): YNode | undefined {
  let cur = node;
  for (const step of path) {
    if (!cur) return undefined;
    if (typeof step === 'number') cur = cur.kind === 'seq' ? cur.items[step] : undefined;
    else cur = cur.kind === 'map' ? getEntry(cur, step)?.value : undefined;
  }
  return cur;
}

/**
 * Reads the policies of a fleet repo. Documents with errors are left out of the set (a
 * binding of a policy with errors too), so the set holds only what can be evaluated.
 *
 * @example
 * const { set, errors } = loadPolicies([{ path: 'policies/no-latest.yaml', content }]);
 * // errors: [] ; set.policies.get('no-latest-images')
 */
export function loadPolicies(files: readonly PolicyFile[]): { set: PolicySet; errors: FleetError[] } {
  const errors: FleetError[] = [];
  const policies = new Map<string, Policy>();
  const bindings: Binding[] = [];
  const params: KubeObject[] = [];
  const bindingNodes: { node: YNode; pos: SourcePos }[] = [];
  const broken = new Set<string>();
  for (const file of files) {
    const parsed = parseYamlFile(file.path, file.content);
    errors.push(...parsed.errors);
    for (const doc of parsed.documents) {
      const node = doc.node;
      if (!node) continue;
      const pos = node.pos;
      if (node.kind !== 'map') {
        errors.push(fleetError(pos, 'expected a Kubernetes object (a mapping with apiVersion and kind)'));
        continue;
      }
      const apiVersion = plain(at(node, 'apiVersion'));
      const kind = plain(at(node, 'kind'));
      const name = plain(at(node, 'metadata', 'name'));
      if (typeof apiVersion !== 'string' || typeof kind !== 'string') {
        errors.push(fleetError(pos, 'apiVersion and kind are required'));
        continue;
      }
      if (typeof name !== 'string' || name === '') {
        errors.push(fleetError(at(node, 'metadata')?.pos ?? pos, 'metadata.name is required'));
        continue;
      }
      const isAdmission = VERSIONS.has(apiVersion);
      if (isAdmission && kind === 'ValidatingAdmissionPolicy') {
        const before = errors.length;
        const policy = readPolicy(node, name, errors);
        if (policies.has(name)) {
          errors.push(fleetError(pos, `ValidatingAdmissionPolicy "${name}" is defined twice`));
        } else if (policy && errors.length === before) policies.set(name, policy);
        else broken.add(name);
      } else if (isAdmission && kind === 'ValidatingAdmissionPolicyBinding') {
        bindingNodes.push({ node, pos });
      } else {
        params.push(plain(node) as KubeObject);
      }
    }
  }
  const bindingNames = new Set<string>();
  for (const { node, pos } of bindingNodes) {
    const binding = readBinding(node, errors);
    if (!binding) continue;
    if (bindingNames.has(binding.name)) {
      errors.push(fleetError(pos, `ValidatingAdmissionPolicyBinding "${binding.name}" is defined twice`));
      continue;
    }
    bindingNames.add(binding.name);
    const policy = policies.get(binding.policyName);
    if (!policy) {
      if (!broken.has(binding.policyName)) {
        errors.push(
          fleetError(
            at(node, 'spec', 'policyName')?.pos ?? pos,
            `spec.policyName: no ValidatingAdmissionPolicy "${binding.policyName}" in policies/`,
          ),
        );
      }
      continue;
    }
    if (policy.paramKind && !binding.paramRef) {
      errors.push(
        fleetError(
          pos,
          `spec.paramRef is required: policy "${policy.name}" has spec.paramKind ${policy.paramKind.kind}`,
        ),
      );
      continue;
    }
    if (!policy.paramKind && binding.paramRef) {
      errors.push(
        fleetError(
          at(node, 'spec', 'paramRef')?.pos ?? pos,
          `spec.paramRef: policy "${policy.name}" has no spec.paramKind`,
        ),
      );
      continue;
    }
    bindings.push(binding);
  }
  return { set: { policies, bindings, params }, errors: normalizeFleetErrors(errors) };
}

function stringList(
  node: YNode | undefined,
  field: string,
  errors: FleetError[],
  fallback: SourcePos,
): string[] {
  const v = plain(node);
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
    errors.push(fleetError(node?.pos ?? fallback, `${field}: expected a list of strings`));
    return [];
  }
  return v as string[];
}

function readRules(
  node: YNode | undefined,
  field: string,
  errors: FleetError[],
  pos: SourcePos,
): ResourceRule[] {
  if (!node || (node.kind === 'scalar' && node.value === null)) return [];
  if (node.kind !== 'seq') {
    errors.push(fleetError(node.pos, `${field}: expected a list`));
    return [];
  }
  return node.items.map((item, i) => {
    const f = `${field}[${i}]`;
    const scope = plain(at(item, 'scope')) ?? '*';
    if (scope !== '*' && scope !== 'Cluster' && scope !== 'Namespaced') {
      errors.push(
        fleetError(at(item, 'scope')?.pos ?? item.pos, `${f}.scope: expected *, Cluster or Namespaced`),
      );
    }
    const operations = stringList(at(item, 'operations'), `${f}.operations`, errors, pos);
    for (const op of operations) {
      if (!['*', 'CREATE', 'UPDATE', 'DELETE', 'CONNECT'].includes(op)) {
        errors.push(
          fleetError(at(item, 'operations')?.pos ?? item.pos, `${f}.operations: unknown operation "${op}"`),
        );
      }
    }
    return {
      apiGroups: stringList(at(item, 'apiGroups'), `${f}.apiGroups`, errors, pos),
      apiVersions: stringList(at(item, 'apiVersions'), `${f}.apiVersions`, errors, pos),
      resources: stringList(at(item, 'resources'), `${f}.resources`, errors, pos),
      operations,
      resourceNames: stringList(at(item, 'resourceNames'), `${f}.resourceNames`, errors, pos),
      scope: scope as ResourceRule['scope'],
    };
  });
}

function readSelector(node: YNode | undefined, field: string, errors: FleetError[]): LabelSelector {
  const v = plain(node);
  if (v === undefined || v === null) return {};
  const problems = labelSelectorProblems(v);
  for (const p of problems) errors.push(fleetError(node?.pos as SourcePos, `${field}: ${p}`));
  return problems.length > 0
    ? { matchExpressions: [{ key: '-', operator: 'In', values: [] }] }
    : (v as LabelSelector);
}

function readMatch(
  node: YNode | undefined,
  field: string,
  errors: FleetError[],
  pos: SourcePos,
  required: boolean,
): MatchResources {
  const matchPolicy = plain(at(node, 'matchPolicy')) ?? 'Equivalent';
  if (matchPolicy !== 'Exact' && matchPolicy !== 'Equivalent') {
    errors.push(
      fleetError(at(node, 'matchPolicy')?.pos ?? pos, `${field}.matchPolicy: expected Exact or Equivalent`),
    );
  }
  const rulesNode = at(node, 'resourceRules');
  if (required && !rulesNode) errors.push(fleetError(node?.pos ?? pos, `${field}.resourceRules is required`));
  return {
    resourceRules: rulesNode ? readRules(rulesNode, `${field}.resourceRules`, errors, pos) : undefined,
    excludeResourceRules: readRules(
      at(node, 'excludeResourceRules'),
      `${field}.excludeResourceRules`,
      errors,
      pos,
    ),
    namespaceSelector: readSelector(at(node, 'namespaceSelector'), `${field}.namespaceSelector`, errors),
    objectSelector: readSelector(at(node, 'objectSelector'), `${field}.objectSelector`, errors),
    matchPolicy: matchPolicy === 'Exact' ? 'Exact' : 'Equivalent',
  };
}

function compile(
  node: YNode | undefined,
  field: string,
  variableNames: ReadonlySet<string>,
  errors: FleetError[],
  fallback: SourcePos,
): CompiledExpression | undefined {
  const source = plain(node);
  const pos = node?.pos ?? fallback;
  if (typeof source !== 'string' || source.trim() === '') {
    errors.push(fleetError(pos, `${field}: expected a CEL expression (a string)`));
    return undefined;
  }
  try {
    return { source, pos, run: compilePolicyExpression(source, variableNames) };
  } catch (e) {
    if (!(e instanceof PolicyExpressionError)) throw e;
    errors.push(fleetError(pos, `${field}: ${e.message}`));
    return undefined;
  }
}

function readNamed(
  node: YNode | undefined,
  field: string,
  variableNames: ReadonlySet<string>,
  errors: FleetError[],
  pos: SourcePos,
): NamedExpression[] {
  if (!node) return [];
  if (node.kind !== 'seq') {
    errors.push(fleetError(node.pos, `${field}: expected a list`));
    return [];
  }
  const out: NamedExpression[] = [];
  const seen = new Set<string>();
  node.items.forEach((item, i) => {
    const name = plain(at(item, 'name'));
    if (typeof name !== 'string' || name === '') {
      errors.push(fleetError(item.pos, `${field}[${i}].name is required`));
      return;
    }
    if (seen.has(name)) errors.push(fleetError(item.pos, `${field}[${i}].name: "${name}" is used twice`));
    seen.add(name);
    const expr = compile(
      at(item, 'expression'),
      `${field}[${i}].expression`,
      variableNames,
      errors,
      item.pos ?? pos,
    );
    if (expr) out.push({ ...expr, name });
  });
  return out;
}

function readPolicy(node: YNode, name: string, errors: FleetError[]): Policy | undefined {
  const pos = node.pos;
  const spec = at(node, 'spec');
  if (spec?.kind !== 'map') {
    errors.push(fleetError(pos, `ValidatingAdmissionPolicy "${name}": spec is required`));
    return undefined;
  }
  const failurePolicy = plain(at(spec, 'failurePolicy')) ?? 'Fail';
  if (failurePolicy !== 'Fail' && failurePolicy !== 'Ignore') {
    errors.push(
      fleetError(at(spec, 'failurePolicy')?.pos ?? pos, 'spec.failurePolicy: expected Fail or Ignore'),
    );
  }
  let paramKind: Policy['paramKind'];
  const pk = at(spec, 'paramKind');
  if (pk) {
    const apiVersion = plain(at(pk, 'apiVersion'));
    const kind = plain(at(pk, 'kind'));
    if (typeof apiVersion !== 'string' || typeof kind !== 'string') {
      errors.push(fleetError(pk.pos, 'spec.paramKind: apiVersion and kind are required'));
    } else paramKind = { apiVersion, kind };
  }
  const variablesNode = at(spec, 'variables');
  const variableNames = new Set<string>();
  if (variablesNode?.kind === 'seq') {
    for (const item of variablesNode.items) {
      const n = plain(at(item, 'name'));
      if (typeof n === 'string') variableNames.add(n);
    }
  }
  const matchConditions = readNamed(
    at(spec, 'matchConditions'),
    'spec.matchConditions',
    variableNames,
    errors,
    pos,
  );
  const variables = readNamed(variablesNode, 'spec.variables', variableNames, errors, pos);
  const validationsNode = at(spec, 'validations');
  const validations: Validation[] = [];
  if (validationsNode?.kind !== 'seq' || validationsNode.items.length === 0) {
    errors.push(fleetError(validationsNode?.pos ?? spec.pos, 'spec.validations: expected a non-empty list'));
  } else {
    validationsNode.items.forEach((item, i) => {
      const f = `spec.validations[${i}]`;
      const expression = compile(at(item, 'expression'), `${f}.expression`, variableNames, errors, item.pos);
      const message = plain(at(item, 'message'));
      if (message !== undefined && typeof message !== 'string') {
        errors.push(fleetError(at(item, 'message')?.pos ?? item.pos, `${f}.message: expected a string`));
      }
      if (typeof message === 'string' && /[\r\n]/.test(message.trim())) {
        errors.push(
          fleetError(at(item, 'message')?.pos ?? item.pos, `${f}.message: must not contain line breaks`),
        );
      }
      const messageExpression = at(item, 'messageExpression')
        ? compile(at(item, 'messageExpression'), `${f}.messageExpression`, variableNames, errors, item.pos)
        : undefined;
      const reason = plain(at(item, 'reason'));
      if (
        reason !== undefined &&
        !['Unauthorized', 'Forbidden', 'Invalid', 'RequestEntityTooLarge'].includes(String(reason))
      ) {
        errors.push(
          fleetError(
            at(item, 'reason')?.pos ?? item.pos,
            `${f}.reason: expected Unauthorized, Forbidden, Invalid or RequestEntityTooLarge`,
          ),
        );
      }
      if (expression) {
        validations.push({
          expression,
          message: typeof message === 'string' ? message : undefined,
          messageExpression,
          reason: typeof reason === 'string' ? reason : undefined,
        });
      }
    });
  }
  if (at(spec, 'auditAnnotations')) {
    // Audit annotations only feed the API server's audit log; there is none at the hub.
  }
  return {
    name,
    pos,
    failurePolicy: failurePolicy === 'Ignore' ? 'Ignore' : 'Fail',
    paramKind,
    matchConstraints: readMatch(at(spec, 'matchConstraints'), 'spec.matchConstraints', errors, pos, true),
    matchConditions,
    variables,
    validations,
  };
}

const ACTIONS: readonly ValidationAction[] = ['Deny', 'Warn', 'Audit'];

function readBinding(node: YNode, errors: FleetError[]): Binding | undefined {
  const pos = node.pos;
  const name = plain(at(node, 'metadata', 'name')) as string;
  const spec = at(node, 'spec');
  const before = errors.length;
  const policyName = plain(at(spec, 'policyName'));
  if (typeof policyName !== 'string' || policyName === '') {
    errors.push(
      fleetError(spec?.pos ?? pos, `ValidatingAdmissionPolicyBinding "${name}": spec.policyName is required`),
    );
    return undefined;
  }
  const actionsNode = at(spec, 'validationActions');
  const actions = stringList(actionsNode, 'spec.validationActions', errors, pos);
  if (actions.length === 0) {
    errors.push(
      fleetError(
        actionsNode?.pos ?? spec?.pos ?? pos,
        'spec.validationActions: expected one or more of Deny, Warn, Audit',
      ),
    );
  }
  for (const a of actions) {
    if (!ACTIONS.includes(a as ValidationAction)) {
      errors.push(
        fleetError(
          actionsNode?.pos ?? pos,
          `spec.validationActions: unknown action "${a}" (expected Deny, Warn or Audit)`,
        ),
      );
    }
  }
  if (actions.includes('Deny') && actions.includes('Warn')) {
    errors.push(
      fleetError(actionsNode?.pos ?? pos, 'spec.validationActions: Deny and Warn may not be used together'),
    );
  }
  let paramRef: ParamRef | undefined;
  const pr = at(spec, 'paramRef');
  if (pr) {
    const prName = plain(at(pr, 'name'));
    const prNamespace = plain(at(pr, 'namespace'));
    const selectorNode = at(pr, 'selector');
    const notFound = plain(at(pr, 'parameterNotFoundAction')) ?? 'Deny';
    if ((prName === undefined) === (selectorNode === undefined)) {
      errors.push(fleetError(pr.pos, 'spec.paramRef: exactly one of name and selector is required'));
    }
    if (notFound !== 'Allow' && notFound !== 'Deny') {
      errors.push(
        fleetError(
          at(pr, 'parameterNotFoundAction')?.pos ?? pr.pos,
          'spec.paramRef.parameterNotFoundAction: expected Allow or Deny',
        ),
      );
    }
    paramRef = {
      name: typeof prName === 'string' ? prName : undefined,
      namespace: typeof prNamespace === 'string' ? prNamespace : undefined,
      selector: selectorNode ? readSelector(selectorNode, 'spec.paramRef.selector', errors) : undefined,
      parameterNotFoundAction: notFound === 'Allow' ? 'Allow' : 'Deny',
    };
  }
  const mr = at(spec, 'matchResources');
  const matchResources = mr ? readMatch(mr, 'spec.matchResources', errors, pos, false) : undefined;
  let clusterSelector: Binding['clusterSelector'];
  const annotation = at(node, 'metadata', 'annotations', CLUSTER_SELECTOR_ANNOTATION);
  if (annotation) {
    const text = plain(annotation);
    if (typeof text !== 'string') {
      errors.push(fleetError(annotation.pos, `${CLUSTER_SELECTOR_ANNOTATION}: expected a string`));
    } else {
      try {
        clusterSelector = { text, matches: compileSelector(parseLabelSelector(text)) };
      } catch (e) {
        errors.push(
          fleetError(
            annotation.pos,
            `${CLUSTER_SELECTOR_ANNOTATION}: ${e instanceof Error ? e.message : String(e)}`,
          ),
        );
      }
    }
  }
  if (errors.length > before) return undefined;
  return {
    name,
    pos,
    policyName,
    validationActions: actions as ValidationAction[],
    paramRef,
    matchResources,
    clusterSelector,
  };
}
