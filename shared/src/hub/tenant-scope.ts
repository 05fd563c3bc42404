/**
 * What a tenant may see and act on through the admin API: the bundles of its sources
 * (`<source>/<bundle>` for each source whose `spec.tenant` names it, declared in the
 * platform source's `sources/` or through the admin API) on the clusters its
 * `clusterSelector` matches. Worked out from the fleet files of the last sync (its
 * snapshot in the bundle store), once per snapshot, and used to cut every answer of the
 * tenant routes down to that part.
 * Pure: storage comes in through {@link TenantScopePorts}.
 */
import type { FleetError } from '../errors.ts';
import { API_SOURCES_PREFIX, loadSourceSpecs, SOURCES_FOLDER } from '../sources/index.ts';
import { loadTenants, type Tenant, tenantAllowsCluster } from '../tenants/index.ts';
import type { Labels } from './ports.ts';
import type { FleetPreview } from './preview.ts';
import type { ClusterHistory } from './rollback.ts';
import type { StatusScope, SyncReportView } from './status.ts';
import type { SyncStateStore } from './sync.ts';

/** One tenant's part of the fleet. */
export interface TenantScope extends StatusScope {
  readonly tenant: string;
  /** The sources whose bundles are the tenant's. */
  readonly sources: readonly string[];
}

/**
 * The port the tenant routes ask: the scope of a tenant, or undefined when no tenant of
 * that name is declared (at the last synced commit).
 */
export interface TenantScopes {
  scope(tenant: string): Promise<TenantScope | undefined>;
}

export interface TenantScopePorts {
  readonly syncState: Pick<SyncStateStore, 'get'>;
  readonly bundles: { get(hash: string): Promise<Uint8Array | undefined> };
}

/** A tenant's scope from its declaration and the names of its sources. */
export function tenantScope(tenant: Tenant, sources: readonly string[]): TenantScope {
  const prefixes = sources.map((s) => `${s}/`);
  const filePrefixes = sources.map((s) => `${s}:`);
  const ownFiles = new Set([
    `tenants/${tenant.name}.yaml`,
    ...sources.flatMap((s) => [`sources/${s}.yaml`, `sources/${s}.yml`, `${API_SOURCES_PREFIX}${s}`]),
  ]);
  const ownsBundle = (name: string) => prefixes.some((p) => name.startsWith(p));
  return {
    tenant: tenant.name,
    sources,
    ownsBundle,
    ownsSource: (name: string) => sources.includes(name),
    allowsCluster: (labels: Labels) => tenantAllowsCluster(tenant, labels),
    ownsError: (error: FleetError) =>
      error.bundle !== undefined
        ? ownsBundle(error.bundle)
        : ownFiles.has(error.file) || filePrefixes.some((p) => error.file.startsWith(p)),
  };
}

/**
 * The sources of a set of fleet files and the tenant each names: the platform source's
 * `sources/*.yaml` and the admin API's declarations the sync added (`api:sources/<name>`),
 * read by the sync's own parser. A declaration with errors owns nothing (the sync reports it).
 */
export function tenantSources(
  files: readonly { readonly path: string; readonly content: string }[],
): Map<string, string> {
  const { sources } = loadSourceSpecs(
    files.filter((f) => f.path.startsWith(`${SOURCES_FOLDER}/`) || f.path.startsWith(API_SOURCES_PREFIX)),
  );
  const out = new Map<string, string>();
  for (const spec of [...sources.values()].sort((a, b) => (a.name < b.name ? -1 : 1)))
    if (spec.tenant !== undefined) out.set(spec.name, spec.tenant);
  return out;
}

/** The scopes of every tenant declared in a set of fleet files. */
export function scopesOfFiles(
  files: readonly { readonly path: string; readonly content: string }[],
): Map<string, TenantScope> {
  const { tenants } = loadTenants(files.filter((f) => /^tenants\/[^/]+\.ya?ml$/.test(f.path)));
  const sourcesOf = new Map<string, string[]>();
  for (const [source, tenant] of tenantSources(files)) {
    const list = sourcesOf.get(tenant) ?? [];
    list.push(source);
    sourcesOf.set(tenant, list);
  }
  const out = new Map<string, TenantScope>();
  for (const [name, tenant] of tenants)
    out.set(name, tenantScope(tenant, (sourcesOf.get(name) ?? []).sort()));
  return out;
}

/**
 * Tenant scopes from the last sync's snapshot of the fleet files: read and parsed once per
 * snapshot (a warm function answers from memory until a sync records another).
 *
 * @example
 * const scope = await snapshotTenantScopes(ports).scope('team-a');
 * scope?.ownsBundle('team-a/web'); // true
 */
export function snapshotTenantScopes(ports: TenantScopePorts): TenantScopes {
  let cached: { readonly snapshotHash: string; readonly scopes: Map<string, TenantScope> } | undefined;
  return {
    async scope(tenant) {
      const state = await ports.syncState.get();
      if (!state) return undefined;
      if (cached?.snapshotHash !== state.snapshotHash) {
        const snapshot = await ports.bundles.get(state.snapshotHash);
        if (!snapshot)
          throw new Error(`fleet snapshot ${state.snapshotHash} of commit ${state.commit} is missing`);
        const entries = JSON.parse(new TextDecoder().decode(snapshot)) as [string, string][];
        const scopes = scopesOfFiles(entries.map(([path, content]) => ({ path, content })));
        cached = { snapshotHash: state.snapshotHash, scopes };
      }
      return cached.scopes.get(tenant);
    },
  };
}

/**
 * A preview cut to a tenant's part: its clusters, and on them only its bundles, renders,
 * held bundles and errors.
 */
export function scopePreview(preview: FleetPreview, scope: TenantScope): FleetPreview {
  const owns = (name: string) => scope.ownsBundle(name);
  return {
    ...preview,
    clusters: preview.clusters
      .filter((c) => !c.registered || scope.allowsCluster(c.labels))
      .map((c) => ({
        ...c,
        bundles: c.bundles.filter((b) => owns(b.name)),
        held: c.held.filter((h) => owns(h.bundle)),
        excluded: c.excluded.filter((x) => owns(x.bundle)),
        ...(c.warnings ? { warnings: c.warnings.filter((w) => scope.ownsError(w)) } : {}),
      })),
    bundles: preview.bundles.filter((b) => owns(b.name)),
    renders: Object.fromEntries(Object.entries(preview.renders).filter(([, r]) => owns(r.bundle))),
    errors: preview.errors.filter((e) => scope.ownsError(e)),
    warnings: preview.warnings.filter((e) => scope.ownsError(e)),
  };
}

/** A cluster's history with only a tenant's bundles in each generation. */
export function scopeHistory(history: ClusterHistory, scope: TenantScope): ClusterHistory {
  return {
    ...history,
    generations: history.generations.map((g) => ({
      ...g,
      bundles: g.bundles.filter((b) => scope.ownsBundle(b.name)),
      removed: g.removed.filter((b) => scope.ownsBundle(b)),
      ...(g.pinsEnded ? { pinsEnded: g.pinsEnded.filter((b) => scope.ownsBundle(b)) } : {}),
    })),
  };
}

/**
 * A sync's report as a tenant sees it: the changed clusters among `clusterIds` (its
 * clusters) and its own errors and warnings; the chart versions are left out.
 */
export function scopeSyncReport(
  report: SyncReportView,
  scope: TenantScope,
  clusterIds: ReadonlySet<string>,
): SyncReportView {
  const { charts: _charts, notifyFailures, warnings, ...rest } = report;
  return {
    ...rest,
    changed: report.changed.filter((c) => clusterIds.has(c.clusterId)),
    errors: report.errors.filter((e) => scope.ownsError(e)),
    notifyFailures: notifyFailures.filter((f) => clusterIds.has(f.clusterId)),
    ...(warnings ? { warnings: warnings.filter((e) => scope.ownsError(e)) } : {}),
  };
}
