import middy, { type MiddyfiedHandler } from '@middy/core';
import {
  clusterHistoryRoute,
  clusterStatusRoute,
  deregisterClusterRoute,
  fleetStatusRoute,
  getAnyBundleRoute,
  getClusterDesiredStateRoute,
  getClusterRoute,
  listBundlesRoute,
  listClustersRoute,
  previewRoute,
  publicKeyRoute,
  registerClusterRoute,
  relabelClusterRoute,
  rollbackClusterRoute,
  rotateClusterKeyRoute,
  rotateClusterTokenRoute,
  syncRoute,
} from './admin-routes.ts';
import { getBundle, getBundlePart, getDesiredState, postStatus } from './agent-routes.ts';
import type { ApiDeps } from './deps.ts';
import { httpErrorHandler } from './error-handler.ts';
import { jsonLogger } from './log.ts';
import { authentication, bodyParser, responseHeaders, routeResolver } from './middlewares.ts';
import {
  createRegistrationTokenRoute,
  getOwnClusterRoute,
  listRegistrationTokensRoute,
  type RegistrationDeps,
  registerWithTokenRoute,
  revokeRegistrationTokenRoute,
} from './registration-routes.ts';
import { type ApiContext, type ApiEvent, type ApiRequest, type ApiResult, requestIdOf } from './request.ts';
import { getRolloutRoute, listRolloutsRoute, rolloutCommandRoute } from './rollout-routes.ts';
import type { RouteId } from './routes.ts';
import {
  declareSourceRoute,
  listSourcesRoute,
  removeSourceRoute,
  type SourceDeps,
  syncSourceRoute,
  tenantSourcesRoute,
  tenantSyncSourceRoute,
} from './source-routes.ts';
import {
  createTenantKeyRoute,
  listTenantKeysRoute,
  revokeTenantKeyRoute,
  type TenantDeps,
  tenantBundleRoute,
  tenantBundlesRoute,
  tenantClusterHistoryRoute,
  tenantClusterStatusRoute,
  tenantClustersRoute,
  tenantPreviewRoute,
  tenantRolloutCommandRoute,
  tenantRolloutRoute,
  tenantRolloutsRoute,
  tenantStatusRoute,
  tenantSyncRoute,
} from './tenant-routes.ts';
import { gitWebhookRoute } from './webhook-route.ts';

/** The API's dependencies: the hub's ports, and the registration-token, tenant and source stores where the hub has them. */
export type HubApiDeps = ApiDeps & RegistrationDeps & TenantDeps & SourceDeps;

type RouteHandler = (deps: HubApiDeps, req: ApiRequest) => Promise<ApiResult>;

const handlers: Readonly<Record<RouteId, RouteHandler>> = {
  getDesiredState,
  postStatus,
  getBundle,
  getBundlePart,
  listClusters: listClustersRoute,
  registerCluster: registerClusterRoute,
  getCluster: getClusterRoute,
  getClusterDesiredState: getClusterDesiredStateRoute,
  getAnyBundle: getAnyBundleRoute,
  deregisterCluster: deregisterClusterRoute,
  relabelCluster: relabelClusterRoute,
  rotateClusterToken: rotateClusterTokenRoute,
  rotateClusterKey: rotateClusterKeyRoute,
  clusterHistory: clusterHistoryRoute,
  clusterStatus: clusterStatusRoute,
  rollbackCluster: rollbackClusterRoute,
  listRollouts: listRolloutsRoute,
  getRollout: getRolloutRoute,
  rolloutCommand: rolloutCommandRoute,
  preview: previewRoute,
  sync: syncRoute,
  fleetStatus: fleetStatusRoute,
  listBundles: listBundlesRoute,
  publicKey: publicKeyRoute,
  gitWebhook: gitWebhookRoute,
  getOwnCluster: getOwnClusterRoute,
  createRegistrationToken: createRegistrationTokenRoute,
  listRegistrationTokens: listRegistrationTokensRoute,
  revokeRegistrationToken: revokeRegistrationTokenRoute,
  registerWithToken: registerWithTokenRoute,
  createTenantKey: createTenantKeyRoute,
  listTenantKeys: listTenantKeysRoute,
  revokeTenantKey: revokeTenantKeyRoute,
  listSources: listSourcesRoute,
  declareSource: declareSourceRoute,
  removeSource: removeSourceRoute,
  syncSource: syncSourceRoute,
  tenantSources: tenantSourcesRoute,
  tenantSyncSource: tenantSyncSourceRoute,
  tenantStatus: tenantStatusRoute,
  tenantBundles: tenantBundlesRoute,
  tenantBundle: tenantBundleRoute,
  tenantClusters: tenantClustersRoute,
  tenantClusterStatus: tenantClusterStatusRoute,
  tenantClusterHistory: tenantClusterHistoryRoute,
  tenantPreview: tenantPreviewRoute,
  tenantSync: tenantSyncRoute,
  tenantRollouts: tenantRolloutsRoute,
  tenantRollout: tenantRolloutRoute,
  tenantRolloutCommand: tenantRolloutCommandRoute,
};

export type ApiHandler = MiddyfiedHandler<ApiEvent, ApiResult, Error, ApiContext>;

/**
 * The hub's HTTP API as one middy handler: route, authenticate, read the body, run the
 * route, map errors. The Lambda entry (`api.handler.ts`) and the local server both
 * call exactly this.
 *
 * @example
 * export const handler = createApiHandler(createHubContext(loadConfig(process.env)));
 */
export function createApiHandler(deps: HubApiDeps): ApiHandler {
  const log = deps.log ?? jsonLogger();
  return middy<ApiEvent, ApiResult, Error, ApiContext>()
    .use(httpErrorHandler({ log }))
    .use(routeResolver())
    .use(
      authentication({
        clusters: deps.clusters,
        adminAuth: deps.config.adminAuth,
        adminKeySha256: deps.config.adminKeySha256,
        webhookSecret: deps.config.webhookSecret,
        ...(deps.tenantKeys ? { tenantKeys: deps.tenantKeys } : {}),
        ...(deps.config.tenantPrincipals ? { tenantPrincipals: deps.config.tenantPrincipals } : {}),
      }),
    )
    .use(bodyParser())
    .use(responseHeaders())
    .handler(async (event, context) => {
      const api = context.api;
      if (!api) throw new Error('no route resolved');
      const request: ApiRequest = {
        ...api,
        event,
        requestId: requestIdOf(event, context),
        query: new URLSearchParams(event.rawQueryString ?? ''),
      };
      return handlers[api.route.id](deps, request);
    });
}
