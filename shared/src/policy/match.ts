/**
 * Which objects a policy or binding applies to: `matchConstraints` / `matchResources`
 * (resource rules, exclusions, namespace and object selectors) as the API server reads
 * them, for objects that are about to be created or updated.
 */
import { apiGroup, CLUSTER_SCOPED_KINDS, crdKind, groupKind } from '../kinds.ts';
import type { Labels } from '../labels.ts';
import type { KubeObject } from '../protocol/desired-state.ts';
import { compileSelector, type LabelMatcher, type LabelSelector } from '../selector.ts';

/** One `resourceRules` / `excludeResourceRules` entry. */
export interface ResourceRule {
  readonly apiGroups: readonly string[];
  readonly apiVersions: readonly string[];
  readonly resources: readonly string[];
  readonly operations: readonly string[];
  readonly resourceNames: readonly string[];
  readonly scope: '*' | 'Cluster' | 'Namespaced';
}

export interface MatchResources {
  readonly resourceRules: readonly ResourceRule[] | undefined;
  readonly excludeResourceRules: readonly ResourceRule[];
  readonly namespaceSelector: LabelSelector;
  readonly objectSelector: LabelSelector;
  readonly matchPolicy: 'Exact' | 'Equivalent';
}

// Kinds whose resource name is not the lowercase plural the usual rule gives.
const IRREGULAR: Readonly<Record<string, string>> = {
  Endpoints: 'endpoints',
  PodMetrics: 'pods',
  NodeMetrics: 'nodes',
  SecurityContextConstraints: 'securitycontextconstraints',
};

/** The resource name of a kind: `Deployment` → `deployments`, `NetworkPolicy` → `networkpolicies`. */
export function kindToResource(kind: string): string {
  const irregular = IRREGULAR[kind];
  if (irregular) return irregular;
  const lower = kind.toLowerCase();
  if (/(s|x|z|ch|sh)$/.test(lower)) return `${lower}es`;
  if (/[^aeiou]y$/.test(lower)) return `${lower.slice(0, -1)}ies`;
  return `${lower}s`;
}

/** What is known of the kinds in play: CRDs among the objects give their plural and scope. */
export interface KindCatalog {
  resourceOf(apiVersion: string, kind: string): string;
  clusterScoped(apiVersion: string, kind: string): boolean;
}

export function kindCatalog(objects: readonly KubeObject[]): KindCatalog {
  const plural = new Map<string, string>();
  const scope = new Map<string, boolean>();
  for (const o of objects) {
    const crd = crdKind(o);
    if (!crd) continue;
    if (crd.plural !== undefined) plural.set(crd.groupKind, crd.plural);
    scope.set(crd.groupKind, crd.clusterScoped);
  }
  return {
    resourceOf: (apiVersion, kind) =>
      plural.get(groupKind(apiGroup(apiVersion), kind)) ?? kindToResource(kind),
    clusterScoped: (apiVersion, kind) => {
      const key = groupKind(apiGroup(apiVersion), kind);
      return scope.get(key) ?? CLUSTER_SCOPED_KINDS.has(key);
    },
  };
}

/** The request attributes matching looks at. */
export interface RequestAttributes {
  readonly group: string;
  readonly version: string;
  readonly resource: string;
  readonly name: string;
  readonly namespace: string;
  readonly clusterScoped: boolean;
}

export function requestAttributes(object: KubeObject, catalog: KindCatalog): RequestAttributes {
  const slash = object.apiVersion.indexOf('/');
  const clusterScoped = catalog.clusterScoped(object.apiVersion, object.kind);
  return {
    group: slash < 0 ? '' : object.apiVersion.slice(0, slash),
    version: slash < 0 ? object.apiVersion : object.apiVersion.slice(slash + 1),
    resource: catalog.resourceOf(object.apiVersion, object.kind),
    name: object.metadata.name,
    namespace: clusterScoped ? '' : (object.metadata.namespace ?? ''),
    clusterScoped,
  };
}

const has = (list: readonly string[], value: string) => list.includes('*') || list.includes(value);

function resourceMatches(rule: ResourceRule, resource: string): boolean {
  // The objects are whole resources, never subresources: `pods/*` does not match, `*/*` does.
  return rule.resources.some((r) => r === '*' || r === '*/*' || r === resource);
}

/**
 * Whether a rule matches a create (or update) of the object. With `Equivalent`, a rule for
 * another version of the same group and resource matches too: the API server would convert
 * the object to the version the rule names.
 */
export function ruleMatches(
  rule: ResourceRule,
  req: RequestAttributes,
  matchPolicy: 'Exact' | 'Equivalent',
): boolean {
  if (!has(rule.operations, 'CREATE') && !has(rule.operations, 'UPDATE')) return false;
  if (!has(rule.apiGroups, req.group)) return false;
  if (!has(rule.apiVersions, req.version) && matchPolicy === 'Exact') return false;
  if (!resourceMatches(rule, req.resource)) return false;
  if (rule.scope === 'Cluster' && !req.clusterScoped) return false;
  if (rule.scope === 'Namespaced' && req.clusterScoped) return false;
  if (rule.resourceNames.length > 0 && !rule.resourceNames.includes(req.name)) return false;
  return true;
}

/** The Namespace objects among the objects, by name. */
export function namespacesOf(objects: readonly KubeObject[]): ReadonlyMap<string, KubeObject> {
  const out = new Map<string, KubeObject>();
  for (const o of objects) if (o.kind === 'Namespace' && o.apiVersion === 'v1') out.set(o.metadata.name, o);
  return out;
}

export function labelsOf(object: KubeObject | undefined): Labels {
  const labels = object?.metadata.labels;
  return labels && typeof labels === 'object' ? (labels as Labels) : {};
}

const isEmpty = (s: LabelSelector) =>
  Object.keys(s.matchLabels ?? {}).length === 0 && (s.matchExpressions ?? []).length === 0;

const compiled = new WeakMap<LabelSelector, LabelMatcher>();
function matcher(selector: LabelSelector): LabelMatcher {
  let m = compiled.get(selector);
  if (!m) {
    m = compileSelector(selector);
    compiled.set(selector, m);
  }
  return m;
}

/**
 * Whether `match` selects the object. The namespace selector is evaluated against the
 * object's Namespace when that Namespace is among the objects (a Namespace object is matched
 * on its own labels, a cluster-scoped object always passes, as on the API server); when it is
 * not, only an empty selector matches, since the hub cannot see the spoke's namespaces.
 */
export function matchesResources(
  match: MatchResources,
  object: KubeObject,
  req: RequestAttributes,
  namespaces: ReadonlyMap<string, KubeObject>,
): boolean {
  if (
    match.resourceRules !== undefined &&
    !match.resourceRules.some((r) => ruleMatches(r, req, match.matchPolicy))
  ) {
    return false;
  }
  if (match.excludeResourceRules.some((r) => ruleMatches(r, req, match.matchPolicy))) return false;
  if (!matcher(match.objectSelector)(labelsOf(object))) return false;
  if (!isEmpty(match.namespaceSelector)) {
    if (object.kind === 'Namespace' && object.apiVersion === 'v1') {
      if (!matcher(match.namespaceSelector)(labelsOf(object))) return false;
    } else if (!req.clusterScoped) {
      const ns = namespaces.get(req.namespace);
      if (!ns || !matcher(match.namespaceSelector)(labelsOf(ns))) return false;
    }
  }
  return true;
}
