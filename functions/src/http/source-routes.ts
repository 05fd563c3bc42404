/**
 * The fleet sources through the admin API: every source, from the platform repository's
 * `sources/` and from the API, with its last fetch; declaring and removing API sources;
 * syncing now. A tenant's admin lists and syncs its own sources under `/v1/tenants/{tenant}/`.
 */
import {
  declareSource,
  listSources,
  NotFoundError,
  removeSource,
  type SourceDeclarationStore,
  type SourceView,
  scopeSyncReport,
  syncFleet,
  syncReportView,
  validateSourceName,
} from '@flotilla/shared/hub';
import { onlyQuery } from './admin-routes.ts';
import type { ApiDeps } from './deps.ts';
import { ForbiddenError } from './errors.ts';
import type { ApiRequest, ApiResult } from './request.ts';
import { empty, json } from './responses.ts';
import { type TenantDeps, tenantScopeOf } from './tenant-routes.ts';

/** What these routes need beyond the rest of the API. */
export interface SourceDeps {
  /** The sources declared through the admin API (hub-state table). */
  readonly declaredSources?: SourceDeclarationStore;
}

type Deps = ApiDeps & TenantDeps & SourceDeps;

function storeOf(deps: Deps): SourceDeclarationStore {
  if (!deps.declaredSources)
    throw new NotFoundError('sources declared through the admin API are not enabled on this hub');
  return deps.declaredSources;
}

/** Every source, repository-declared ones as of the last sync; without a store, the repository's only. */
function sourcesOf(deps: Deps): Promise<SourceView[]> {
  return listSources({
    syncState: deps.syncState,
    bundles: deps.bundles,
    declaredSources: deps.declaredSources ?? { create: noStore, list: async () => [], delete: noStore },
    now: deps.now,
  });
}

async function noStore(): Promise<never> {
  throw new NotFoundError('sources declared through the admin API are not enabled on this hub');
}

async function sourceNamed(deps: Deps, name: string): Promise<SourceView> {
  const found = (await sourcesOf(deps)).find((s) => s.name === name);
  if (!found)
    throw new NotFoundError(
      `source "${name}" is not declared (neither in sources/${name}.yaml at the last synced commit nor through the admin API)`,
    );
  return found;
}

/** `GET /v1/admin/sources`: every source, `origin: repo | api`, with its document and last fetch. */
export async function listSourcesRoute(deps: Deps, req: ApiRequest): Promise<ApiResult> {
  onlyQuery(req, []);
  return json(200, { sources: await sourcesOf(deps) });
}

/**
 * `POST /v1/admin/sources` with the FleetSource document as JSON: 201 with the source; it
 * is read from the next sync on. 400 names every wrong field; 409 when the name is taken.
 */
export async function declareSourceRoute(deps: Deps, req: ApiRequest): Promise<ApiResult> {
  onlyQuery(req, []);
  const source = await declareSource(
    { syncState: deps.syncState, bundles: deps.bundles, declaredSources: storeOf(deps), now: deps.now },
    req.body,
    req.admin,
  );
  return json(201, { source });
}

/**
 * `DELETE /v1/admin/sources/{name}`: removes a source declared through the API; its bundles
 * leave the clusters at the next sync. A source of `sources/` is 409: remove its file.
 */
export async function removeSourceRoute(deps: Deps, req: ApiRequest): Promise<ApiResult> {
  onlyQuery(req, []);
  const name = validateSourceName(req.params.name);
  await removeSource(
    { syncState: deps.syncState, bundles: deps.bundles, declaredSources: storeOf(deps), now: deps.now },
    name,
  );
  return empty(204);
}

/**
 * `POST /v1/admin/sources/{name}/sync`: syncs the fleet now (a sync reads every source)
 * and answers the report with the source asked for and its fetch.
 */
export async function syncSourceRoute(deps: Deps, req: ApiRequest): Promise<ApiResult> {
  onlyQuery(req, []);
  const name = validateSourceName(req.params.name);
  await sourceNamed(deps, name);
  const report = await syncFleet(deps, { holder: `api:${req.requestId}` });
  const source = await sourceNamed(deps, name);
  return json(report.status === 'synced' ? 200 : 202, { ...syncReportView(report), source });
}

/** `GET /v1/tenants/{tenant}/sources`: the sources whose `spec.tenant` is the path's tenant. */
export async function tenantSourcesRoute(deps: Deps, req: ApiRequest): Promise<ApiResult> {
  onlyQuery(req, []);
  const scope = await tenantScopeOf(deps, req);
  return json(200, { sources: (await sourcesOf(deps)).filter((s) => s.tenant === scope.tenant) });
}

/** `POST /v1/tenants/{tenant}/sources/{name}/sync`: as the admin route, for one of the tenant's sources; the report shows its part. */
export async function tenantSyncSourceRoute(deps: Deps, req: ApiRequest): Promise<ApiResult> {
  onlyQuery(req, []);
  const scope = await tenantScopeOf(deps, req);
  const name = validateSourceName(req.params.name);
  const before = await sourceNamed(deps, name);
  if (before.tenant !== scope.tenant)
    throw new ForbiddenError(`tenant "${scope.tenant}" may not act on source "${name}"`);
  const report = await syncFleet(deps, { holder: `api:${req.requestId}` });
  const mine = new Set(
    (await deps.clusters.list()).filter((c) => scope.allowsCluster(c.labels)).map((c) => c.id),
  );
  const source = await sourceNamed(deps, name);
  return json(report.status === 'synced' ? 200 : 202, {
    ...scopeSyncReport(syncReportView(report), scope, mine),
    source,
  });
}
