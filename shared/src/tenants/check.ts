/**
 * The tenant checks: pure functions that a render calls for each bundle of a tenant. Each
 * returns the violations as {@link FleetError}s (none: allowed), so that the caller holds
 * the bundle on the cluster like a broken bundle. Every message names the tenant, what was
 * refused and the rule broken:
 *
 *   tenant "team-a" may not write into namespace "kube-system" (allowed: team-a, team-a-*): apps/Deployment kube-system/evil
 */
import { type FleetError, fleetError, type SourcePos } from '../errors.ts';
import type { RenderedBundle, RenderedObjectRef } from '../fleet/model.ts';
import { apiGroup, CLUSTER_SCOPED_KINDS, crdKind, groupKind } from '../kinds.ts';
import type { Labels } from '../labels.ts';
import type { KubeObject } from '../protocol/desired-state.ts';
import { formatLabelSelector } from '../selector-string.ts';
import type { ChartLocation } from '../source-spec.ts';
import { type Glob, normalizeRepoUrl } from './glob.ts';
import { HELM_REPO_SCHEMES, SOURCE_REPO_SCHEMES, type Tenant } from './spec.ts';

/** Which bundle is being checked, and where its errors point when nothing more precise is known. */
export interface TenantBundleContext {
  /** The bundle's name; every error carries it (`FleetError.bundle`). */
  readonly bundle: string;
  /** The bundle's `bundle.yaml`. */
  readonly file: string;
  /** The line of `bundle.yaml` errors point at (its `targets:` or `helm:`, say); 1 when not given. */
  readonly line?: number;
}

/** Whether a group/kind is cluster-scoped, as the hub knows it (`scopeTable` of the fleet step). */
export type IsClusterScoped = (group: string, kind: string) => boolean;

/** What {@link checkTenantObjects} needs besides the objects. */
export interface TenantObjectsContext extends TenantBundleContext {
  /** The bundle's default namespace, for a namespaced object that has none (as the render defaults it). */
  readonly namespace: string;
  /**
   * The hub's scope table (built-in kinds and every CRD of the repo). The CRDs among the
   * objects count too, and a kind is cluster-scoped when any source says so.
   */
  readonly isClusterScoped?: IsClusterScoped;
  /** The render's object identities with their source file and line (`RenderedBundle.objects`). */
  readonly positions?: readonly RenderedObjectRef[];
}

const RBAC = 'rbac.authorization.k8s.io';

/**
 * Checks every rendered object of a tenant's bundle: a namespaced object must go into a
 * namespace matching the tenant's `namespaces`; a cluster-scoped object must be of a kind
 * its `clusterResources` allow, and a Namespace must also have a name matching
 * `namespaces`; a RoleBinding (or an allowed ClusterRoleBinding) may bind only service
 * accounts of the tenant's namespaces and identities that are not the cluster's own
 * (`system:`), see {@link subjectProblem}.
 *
 * @example
 * checkTenantObjects(tenant, [deployment], { bundle: 'web', file: 'bundles/web/bundle.yaml', namespace: 'team-a' });
 */
export function checkTenantObjects(
  tenant: Tenant,
  objects: readonly KubeObject[],
  ctx: TenantObjectsContext,
): FleetError[] {
  const isClusterScoped = scopeOf(objects, ctx.isClusterScoped);
  const positions = new Map((ctx.positions ?? []).map((r) => [r.id, r]));
  const out: FleetError[] = [];
  for (const object of objects) {
    const group = apiGroup(object.apiVersion);
    const clusterScoped = isClusterScoped(group, object.kind);
    const namespace = clusterScoped ? undefined : object.metadata.namespace || ctx.namespace;
    const name = object.metadata.name;
    const ref =
      positions.get(`${group}/${object.kind}/${object.metadata.namespace ?? ''}/${name}`) ??
      positions.get(`${group}/${object.kind}/${namespace ?? ''}/${name}`);
    const pos: SourcePos = ref
      ? { file: ref.file, line: ref.line, column: 1 }
      : { file: ctx.file, line: ctx.line ?? 1, column: 1 };
    const what = describe(group, object.kind, namespace, name);
    const refuse = (rule: string) =>
      out.push(fleetError(pos, `tenant "${tenant.name}" ${rule}: ${what}`, ctx.bundle));
    for (const rule of identityProblems(tenant, group, object.kind, namespace, name)) refuse(rule);
    if (group === RBAC && (object.kind === 'RoleBinding' || object.kind === 'ClusterRoleBinding')) {
      for (const rule of subjectProblems(tenant, object, namespace)) refuse(rule);
    }
  }
  return out;
}

/**
 * {@link checkTenantObjects} on a rendered bundle: its objects, at the positions the render
 * recorded. A SOPS-encrypted object is checked by its identity (all the hub can read); an
 * encrypted RoleBinding or ClusterRoleBinding is refused, since its subjects cannot be read.
 */
export function checkTenantRender(
  tenant: Tenant,
  rendered: RenderedBundle,
  ctx: Omit<TenantObjectsContext, 'positions'>,
): FleetError[] {
  // Most renders hold neither a binding (whose subjects are in its body) nor a CRD (whose
  // scope is): their identities, which the render recorded, are all the checks read, so the
  // canonical JSON is not parsed again (a fleet's per-cluster renders are most of its renders).
  if (!rendered.objects.some(needsBody)) {
    const identities = rendered.objects.map((r) => ({
      apiVersion: r.apiVersion,
      kind: r.kind,
      metadata: r.namespace ? { name: r.name, namespace: r.namespace } : { name: r.name },
    }));
    return checkTenantObjects(tenant, identities, { ...ctx, positions: rendered.objects });
  }
  const objects = (JSON.parse(rendered.canonical) as { objects: KubeObject[] }).objects;
  const out = checkTenantObjects(tenant, objects, { ...ctx, positions: rendered.objects });
  const plain = new Set(
    objects.map(
      (o) => `${apiGroup(o.apiVersion)}/${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`,
    ),
  );
  const sealed = rendered.objects.filter((r) => !plain.has(r.id));
  if (sealed.length === 0) return out;
  const sealedCtx = { ...ctx, positions: sealed, isClusterScoped: scopeOf(objects, ctx.isClusterScoped) };
  for (const ref of sealed) {
    const group = apiGroup(ref.apiVersion);
    if (group === RBAC && (ref.kind === 'RoleBinding' || ref.kind === 'ClusterRoleBinding')) {
      out.push(
        fleetError(
          { file: ref.file, line: ref.line, column: 1 },
          `tenant "${tenant.name}" may not apply an encrypted ${ref.kind} (the hub cannot read its subjects): ${describe(group, ref.kind, ref.namespace, ref.name)}`,
          ctx.bundle,
        ),
      );
      continue;
    }
    const metadata =
      ref.namespace === undefined ? { name: ref.name } : { name: ref.name, namespace: ref.namespace };
    out.push(
      ...checkTenantObjects(tenant, [{ apiVersion: ref.apiVersion, kind: ref.kind, metadata }], sealedCtx),
    );
  }
  return out;
}

/** Whether checking an object reads more than its identity: a binding's subjects, a CRD's scope. */
function needsBody(ref: RenderedObjectRef): boolean {
  const group = apiGroup(ref.apiVersion);
  return (
    (group === RBAC && (ref.kind === 'RoleBinding' || ref.kind === 'ClusterRoleBinding')) ||
    (group === 'apiextensions.k8s.io' && ref.kind === 'CustomResourceDefinition')
  );
}

/**
 * Whether a cluster is within the tenant's `clusterSelector`: a refusal at the bundle's
 * `bundle.yaml` when it is not (a planner drops that cluster from the bundle's targets and
 * reports the error), undefined when it is.
 */
export function checkTenantTargets(
  tenant: Tenant,
  cluster: { readonly name: string; readonly labels: Labels },
  ctx: TenantBundleContext,
): FleetError | undefined {
  if (tenantAllowsCluster(tenant, cluster.labels)) return undefined;
  return fleetError(
    { file: ctx.file, line: ctx.line ?? 1, column: 1 },
    `tenant "${tenant.name}" may not target cluster "${cluster.name}" (allowed: clusters matching ${selectorText(tenant)})`,
    ctx.bundle,
  );
}

/** Whether the tenant's `clusterSelector` matches a cluster's labels. */
export function tenantAllowsCluster(tenant: Tenant, labels: Labels): boolean {
  return tenant.clusterMatcher(labels);
}

/**
 * Whether the tenant may use a Helm chart: a chart in the fleet repo always (it is the
 * tenant's own source); a chart from a repository when one of `helmRepositories` matches
 * its whole reference (the repository URL, `/`, the chart's name: an `oci://` reference as
 * it is), or, written without wildcards, names its repository exactly. A string is a chart
 * reference in that form (`https://charts.example.com/web`, `oci://registry.example.com/team-a/web:1.2.3`).
 *
 * @example
 * // with helmRepositories: ["https://charts.example.com/*"]
 * checkTenantChart(tenant, { kind: 'repo', repo: 'https://charts.example.com', chart: 'web' }, ctx); // undefined
 */
export function checkTenantChart(
  tenant: Tenant,
  chart: ChartLocation | string,
  ctx: TenantBundleContext,
): FleetError | undefined {
  if (typeof chart !== 'string' && chart.kind === 'path') return undefined;
  const shown = typeof chart === 'string' ? chart : chart.kind === 'oci' ? chart.url : chart.repo;
  const ref = chartReference(chart);
  if (
    ref &&
    tenant.helmRepositories.some((g) => g.matches(ref.chart) || (isExact(g) && g.matches(ref.repository)))
  )
    return undefined;
  const allowed = tenant.helmRepositories.length === 0 ? 'none' : patterns(tenant.helmRepositories);
  const chartName = typeof chart !== 'string' && chart.kind === 'repo' ? ` (chart ${chart.chart})` : '';
  return fleetError(
    { file: ctx.file, line: ctx.line ?? 1, column: 1 },
    ref
      ? `tenant "${tenant.name}" may not use Helm charts from "${shown}"${chartName} (allowed: ${allowed})`
      : `tenant "${tenant.name}" may not use Helm charts from "${shown}": not a chart reference (repository URL/chart name, or oci://host/path/chart; without credentials, query or fragment)`,
    ctx.bundle,
  );
}

/**
 * Whether a tenant's fleet source may read a git repository: always when the tenant sets no
 * `sourceRepositories` (the platform decides its sources), else when one matches the URL.
 */
export function checkTenantSource(tenant: Tenant, repoUrl: string, at: SourcePos): FleetError | undefined {
  if (tenant.sourceRepositories === undefined) return undefined;
  const url = normalizeRepoUrl(repoUrl, SOURCE_REPO_SCHEMES);
  if (url !== undefined && tenant.sourceRepositories.some((g) => g.matches(url))) return undefined;
  return fleetError(
    at,
    `tenant "${tenant.name}" may not read the git repository "${repoUrl}" (allowed: ${tenant.sourceRepositories.length === 0 ? 'none' : patterns(tenant.sourceRepositories)})`,
  );
}

/** A chart's whole reference and its repository (the reference without its last segment), normalised. */
function chartReference(
  chart: Exclude<ChartLocation, { kind: 'path' }> | string,
): { chart: string; repository: string } | undefined {
  let ref: string | undefined;
  if (typeof chart !== 'string' && chart.kind === 'repo') {
    const repo = normalizeRepoUrl(chart.repo, HELM_REPO_SCHEMES);
    ref = repo === undefined || repo.startsWith('oci:') ? undefined : `${repo}/${chart.chart}`;
  } else {
    ref = normalizeRepoUrl(typeof chart === 'string' ? chart : chart.url, HELM_REPO_SCHEMES);
    // An OCI reference may end in :tag or @digest (bundle.yaml gives the version apart; a caller may not).
    if (ref?.startsWith('oci:')) ref = ref.replace(/(@sha256:[0-9a-f]+|:[\w][\w.-]*)$/, '');
  }
  if (ref === undefined) return undefined;
  const slash = ref.lastIndexOf('/');
  if (slash <= ref.indexOf('//') + 1) return undefined;
  return { chart: ref, repository: ref.slice(0, slash) };
}

/** Whether a glob has no wildcard, so that it names one repository exactly. */
function isExact(glob: Glob): boolean {
  return !/[*?]/.test(glob.pattern);
}

/** The cluster-scope predicate for a set of objects: built-in kinds, the hub's table, and the objects' own CRDs. */
function scopeOf(objects: readonly KubeObject[], hub: IsClusterScoped | undefined): IsClusterScoped {
  const fromCrds = new Set<string>();
  for (const o of objects) {
    const crd = crdKind(o);
    if (crd?.clusterScoped) fromCrds.add(crd.groupKind);
  }
  // Any source saying "cluster-scoped" wins: a CRD in a tenant's render that calls a known
  // cluster-scoped kind namespaced must not let it through as a namespaced object.
  return (group, kind) => {
    const gk = groupKind(group, kind);
    return CLUSTER_SCOPED_KINDS.has(gk) || fromCrds.has(gk) || (hub?.(group, kind) ?? false);
  };
}

function identityProblems(
  tenant: Tenant,
  group: string,
  kind: string,
  namespace: string | undefined,
  name: string,
): string[] {
  if (namespace !== undefined) {
    return matchesAny(tenant.namespaces, namespace)
      ? []
      : [`may not write into namespace "${namespace}" (allowed: ${patterns(tenant.namespaces)})`];
  }
  const out: string[] = [];
  if (
    !tenant.clusterResources.some(
      (r) => (r.group === '*' || r.group === group) && (r.kind === '*' || r.kind === kind),
    )
  ) {
    const allowed =
      tenant.clusterResources.length === 0
        ? 'none'
        : tenant.clusterResources.map((r) => (r.group === '' ? r.kind : `${r.group}/${r.kind}`)).join(', ');
    out.push(
      `may not create cluster-scoped ${group === '' ? kind : `${group}/${kind}`} (allowed: ${allowed})`,
    );
  }
  if (group === '' && kind === 'Namespace' && !matchesAny(tenant.namespaces, name)) {
    out.push(`may not create namespace "${name}" (allowed: ${patterns(tenant.namespaces)})`);
  }
  return out;
}

/**
 * The subjects of a binding that would open the tenant's boundary:
 * - a ServiceAccount (or its user name `system:serviceaccount:<ns>:<name>`) of a namespace
 *   outside the tenant's, which would lend the tenant's rights to another team's workload;
 * - the group of every service account (`system:serviceaccounts`) or of another
 *   namespace's (`system:serviceaccounts:<ns>`);
 * - any other `system:` user or group: the cluster's own identities (nodes, controllers,
 *   `system:authenticated`, ...), never a tenant's to bind.
 * Other users and groups (people from the cluster's identity provider) are allowed.
 */
function subjectProblems(tenant: Tenant, binding: KubeObject, namespace: string | undefined): string[] {
  const subjects = binding.subjects;
  if (subjects === undefined || subjects === null) return [];
  if (!Array.isArray(subjects)) return ['may not apply a binding whose subjects are not a list'];
  const out: string[] = [];
  for (const s of subjects as unknown[]) {
    const problem = subjectProblem(tenant, s, namespace);
    if (problem) out.push(problem);
  }
  return out;
}

function subjectProblem(
  tenant: Tenant,
  subject: unknown,
  bindingNamespace: string | undefined,
): string | undefined {
  if (typeof subject !== 'object' || subject === null) return 'may not bind a subject that is not an object';
  const { kind, name, namespace } = subject as { kind?: unknown; name?: unknown; namespace?: unknown };
  if (typeof kind !== 'string' || typeof name !== 'string')
    return 'may not bind a subject without kind and name';
  const outside = `(allowed: ${patterns(tenant.namespaces)})`;
  const serviceAccount = (ns: string | undefined, sa: string): string | undefined =>
    ns !== undefined && matchesAny(tenant.namespaces, ns)
      ? undefined
      : `may not bind service account "${ns ?? ''}/${sa}" of a namespace outside its own ${outside}`;
  if (kind === 'ServiceAccount') {
    // The API server requires the namespace; a binding without it binds nothing, so read it as the binding's.
    const ns = typeof namespace === 'string' && namespace !== '' ? namespace : bindingNamespace;
    return serviceAccount(ns, name);
  }
  if (!name.startsWith('system:')) return undefined;
  if (kind === 'User') {
    const m = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(name);
    if (m) return serviceAccount(m[1], m[2] as string);
  }
  if (kind === 'Group') {
    const m = /^system:serviceaccounts:([^:]+)$/.exec(name);
    if (m) {
      return matchesAny(tenant.namespaces, m[1] as string)
        ? undefined
        : `may not bind group "${name}" (service accounts of a namespace outside its own ${outside})`;
    }
  }
  return `may not bind the cluster's own identity ${kind} "${name}"`;
}

function matchesAny(globs: readonly Glob[], text: string): boolean {
  return globs.some((g) => g.matches(text));
}

function patterns(globs: readonly Glob[]): string {
  return globs.map((g) => g.pattern).join(', ');
}

function selectorText(tenant: Tenant): string {
  const text = formatLabelSelector(tenant.clusterSelector);
  return text === '' ? 'any labels' : text;
}

/** `apps/Deployment team-a/web`, `Namespace team-a`, as tenant messages name objects. */
function describe(group: string, kind: string, namespace: string | undefined, name: string): string {
  return `${group === '' ? kind : `${group}/${kind}`} ${namespace === undefined ? '' : `${namespace}/`}${name}`;
}
