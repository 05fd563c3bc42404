/**
 * A tenant's routes (`/v1/tenants/{tenant}/...`): the admin reads and actions a team needs,
 * cut to the tenant's bundles on the clusters its selector matches. Authentication has
 * already made sure a tenant caller is on its own path; here every bundle and cluster
 * named is checked against the tenant's scope, and refusals name what was refused.
 * Also the platform admin's routes that issue, list and revoke tenant keys.
 */
import {
  createTenantKey,
  listTenantKeys,
  NotFoundError,
  parsePreviewRequest,
  parseTenantKeyRequest,
  previewTargets,
  revokeTenantKey,
  scopePreview,
  scopeSyncReport,
  syncFleet,
  syncReportView,
  type TenantKeyStore,
  type TenantScope,
  type TenantScopes,
  tenantKeyView,
  validateTenantName,
} from '@flotilla/shared/hub';
import {
  clusterHistoryRoute,
  clusterStatusRoute,
  fleetStatusRoute,
  listBundlesRoute,
  listClustersRoute,
  pathClusterId,
} from './admin-routes.ts';
import { bundleHashParam, bundleResponse } from './agent-routes.ts';
import type { ApiDeps } from './deps.ts';
import { ForbiddenError } from './errors.ts';
import type { ApiRequest, ApiResult } from './request.ts';
import { empty, json } from './responses.ts';
import {
  getRolloutRoute,
  listRolloutsRoute,
  rolloutCommandPath,
  rolloutCommandRoute,
} from './rollout-routes.ts';

/** What these routes need beyond the rest of the API. */
export interface TenantDeps {
  readonly tenantKeys?: TenantKeyStore;
  readonly tenantScopes?: TenantScopes;
}

type Deps = ApiDeps & TenantDeps;

function keysOf(deps: Deps): TenantKeyStore {
  if (!deps.tenantKeys) throw new NotFoundError('tenant keys are not enabled on this hub');
  return deps.tenantKeys;
}

/** The scope of the path's tenant; 404 when the fleet declares no such tenant. */
export async function tenantScopeOf(deps: Deps, req: ApiRequest): Promise<TenantScope> {
  const tenant = validateTenantName(req.params.tenant);
  const scope = deps.tenantScopes ? await deps.tenantScopes.scope(tenant) : undefined;
  if (!scope) {
    throw new NotFoundError(
      `tenant "${tenant}" is not declared in the fleet (tenants/${tenant}.yaml at the last synced commit)`,
    );
  }
  return scope;
}

function refuse(scope: TenantScope, what: string): ForbiddenError {
  return new ForbiddenError(`tenant "${scope.tenant}" may not act on ${what}`);
}

function checkBundle(scope: TenantScope, bundle: string): void {
  if (!scope.ownsBundle(bundle)) throw refuse(scope, `bundle "${bundle}"`);
}

/** The path's cluster, when it exists and the tenant's selector matches it (404 and 403 otherwise). */
async function checkCluster(deps: Deps, req: ApiRequest, scope: TenantScope): Promise<void> {
  const id = pathClusterId(req);
  const cluster = await deps.clusters.get(id);
  if (!cluster) throw new NotFoundError(`cluster "${id}" not found`);
  if (!scope.allowsCluster(cluster.labels)) throw refuse(scope, `cluster "${id}"`);
}

/** `POST /v1/admin/tenants/{tenant}/keys` `{ description? }`: 201 with the key `flt_t_<tenant>.<secret>`, shown once. */
export async function createTenantKeyRoute(deps: Deps, req: ApiRequest): Promise<ApiResult> {
  const scope = await tenantScopeOf(deps, req);
  const request = parseTenantKeyRequest(req.body);
  const { key, record } = await createTenantKey(
    { tenantKeys: keysOf(deps), now: deps.now },
    { tenant: scope.tenant, ...request, ...(req.admin ? { createdBy: req.admin } : {}) },
  );
  return json(201, { key, tenantKey: tenantKeyView(record) });
}

/** `GET /v1/admin/tenants/{tenant}/keys`: the tenant's keys by id; never a key. */
export async function listTenantKeysRoute(deps: Deps, req: ApiRequest): Promise<ApiResult> {
  const tenant = validateTenantName(req.params.tenant);
  const records = await listTenantKeys({ tenantKeys: keysOf(deps), now: deps.now }, tenant);
  return json(200, { tenantKeys: records.map(tenantKeyView) });
}

/** `DELETE /v1/admin/tenants/{tenant}/keys/{id}`: the key stops working at once. */
export async function revokeTenantKeyRoute(deps: Deps, req: ApiRequest): Promise<ApiResult> {
  const tenant = validateTenantName(req.params.tenant);
  await revokeTenantKey({ tenantKeys: keysOf(deps), now: deps.now }, tenant, req.params.id ?? '');
  return empty(204);
}

/** `GET /v1/tenants/{tenant}/status`: as `/v1/admin/status`, over the tenant's clusters and bundles. */
export async function tenantStatusRoute(deps: Deps, req: ApiRequest): Promise<ApiResult> {
  const scope = await tenantScopeOf(deps, req);
  const bundle = req.query.get('bundle')?.trim();
  if (bundle) checkBundle(scope, bundle);
  return fleetStatusRoute(deps, req, scope);
}

/** `GET /v1/tenants/{tenant}/bundles`: the tenant's bundles with their counts per state. */
export async function tenantBundlesRoute(deps: Deps, req: ApiRequest): Promise<ApiResult> {
  return listBundlesRoute(deps, req, await tenantScopeOf(deps, req));
}

/** `GET /v1/tenants/{tenant}/clusters[?selector=]`: the registered clusters its selector matches. */
export async function tenantClustersRoute(deps: Deps, req: ApiRequest): Promise<ApiResult> {
  return listClustersRoute(deps, req, await tenantScopeOf(deps, req));
}

/** `GET /v1/tenants/{tenant}/clusters/{id}/status`: one of its clusters, with its bundles only. */
export async function tenantClusterStatusRoute(deps: Deps, req: ApiRequest): Promise<ApiResult> {
  const scope = await tenantScopeOf(deps, req);
  await checkCluster(deps, req, scope);
  return clusterStatusRoute(deps, req, scope);
}

/**
 * `GET /v1/tenants/{tenant}/bundles/{hash}`: a stored rendered bundle of one of the tenant's
 * bundles (the dashboard's objects and diffs). Anything else stored under a hash (another
 * tenant's or the platform's bundle, a fleet snapshot) answers 404, as a hash nobody has
 * does, so a tenant cannot learn what others run.
 */
export async function tenantBundleRoute(deps: Deps, req: ApiRequest): Promise<ApiResult> {
  const scope = await tenantScopeOf(deps, req);
  const hash = bundleHashParam(req.params.hash ?? '');
  const content = await deps.bundles.get(hash);
  let bundle: unknown;
  try {
    bundle = content
      ? (JSON.parse(new TextDecoder().decode(content)) as { bundle?: unknown }).bundle
      : undefined;
  } catch {
    bundle = undefined;
  }
  if (typeof bundle !== 'string' || !scope.ownsBundle(bundle))
    throw new NotFoundError(`bundle ${hash} is not stored`);
  return bundleResponse(deps, req, hash);
}

/** `GET /v1/tenants/{tenant}/clusters/{id}/history`: generations of one of its clusters, its bundles only. */
export async function tenantClusterHistoryRoute(deps: Deps, req: ApiRequest): Promise<ApiResult> {
  const scope = await tenantScopeOf(deps, req);
  await checkCluster(deps, req, scope);
  return clusterHistoryRoute(deps, req, scope);
}

/**
 * `POST /v1/tenants/{tenant}/preview`: as `/v1/admin/preview`, against the tenant's clusters
 * (by default all of them; a registered cluster outside its selector is refused), showing
 * only its bundles.
 */
export async function tenantPreviewRoute(deps: Deps, req: ApiRequest): Promise<ApiResult> {
  const scope = await tenantScopeOf(deps, req);
  const request = parsePreviewRequest(req.body);
  if (request.bundle !== undefined) checkBundle(scope, request.bundle);
  const registered = await deps.clusters.list();
  const byName = new Map(registered.map((c) => [c.id, c]));
  for (const c of request.clusters ?? []) {
    const found = typeof c === 'string' ? byName.get(c) : undefined;
    if (found && !scope.allowsCluster(found.labels)) throw refuse(scope, `cluster "${found.id}"`);
  }
  const clusters =
    request.clusters ?? registered.filter((c) => scope.allowsCluster(c.labels)).map((c) => c.id);
  const preview = await previewTargets(deps, { ...request, clusters });
  return json(200, scopePreview(preview, scope));
}

/** `POST /v1/tenants/{tenant}/sync`: syncs the fleet now; the report shows the tenant's part. */
export async function tenantSyncRoute(deps: Deps, req: ApiRequest): Promise<ApiResult> {
  const scope = await tenantScopeOf(deps, req);
  const report = await syncFleet(deps, { holder: `api:${req.requestId}` });
  const mine = new Set(
    (await deps.clusters.list()).filter((c) => scope.allowsCluster(c.labels)).map((c) => c.id),
  );
  return json(report.status === 'synced' ? 200 : 202, scopeSyncReport(syncReportView(report), scope, mine));
}

/** `GET /v1/tenants/{tenant}/rollouts`: the rollouts of the tenant's bundles. */
export async function tenantRolloutsRoute(deps: Deps, req: ApiRequest): Promise<ApiResult> {
  return listRolloutsRoute(deps, req, await tenantScopeOf(deps, req));
}

/** `GET /v1/tenants/{tenant}/rollouts/{bundle}`: one of its bundles' rollout (`team-a/web`, in one or two segments). */
export async function tenantRolloutRoute(deps: Deps, req: ApiRequest): Promise<ApiResult> {
  checkBundle(await tenantScopeOf(deps, req), req.params.bundle ?? '');
  return getRolloutRoute(deps, req);
}

/**
 * `POST /v1/tenants/{tenant}/rollouts/{bundle}/{command}`: pause, resume, promote or abort
 * one of its rollouts. The route takes the rest of the path; the command is its last segment.
 */
export async function tenantRolloutCommandRoute(deps: Deps, req: ApiRequest): Promise<ApiResult> {
  checkBundle(await tenantScopeOf(deps, req), rolloutCommandPath(req).bundle);
  return rolloutCommandRoute(deps, req);
}
