/**
 * The hub's HTTP routes as data, in one place: the API handler dispatches on them, the
 * local server matches requests against them to fill in `routeKey` and
 * `pathParameters` as API Gateway does, and the CDK app can create the same routes
 * (with the IAM authorizer on the `admin` ones). No imports, so anything may read it.
 */

/**
 * Who may call a route: `cluster` (the cluster's own bearer token, for that cluster
 * only), `admin` (IAM at API Gateway, or the admin key locally), `webhook` (an
 * HMAC-SHA256 signature of the body), `tenant` (a tenant's admin, by a tenant key or an
 * IAM principal of the tenant, on its own `/v1/tenants/{tenant}/` routes only, or the
 * platform admin), `registration` (a one-time registration token,
 * checked and used up by the route itself, as checking and using it are one write).
 */
export type RouteAuth = 'cluster' | 'admin' | 'tenant' | 'webhook' | 'registration';

/** What a route reads from the body: nothing, JSON, or the raw bytes (to check a signature over them). */
export type RouteBody = 'none' | 'json' | 'raw';

export interface RouteSpec {
  readonly id: string;
  readonly method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** API Gateway syntax: `{name}` is one path segment, `{name+}` (last only) the rest of the path. */
  readonly path: string;
  readonly auth: RouteAuth;
  readonly body: RouteBody;
}

export const hubRoutes = [
  {
    id: 'getDesiredState',
    method: 'GET',
    path: '/v1/clusters/{id}/desired-state',
    auth: 'cluster',
    body: 'none',
  },
  { id: 'postStatus', method: 'POST', path: '/v1/clusters/{id}/status', auth: 'cluster', body: 'json' },
  { id: 'getOwnCluster', method: 'GET', path: '/v1/clusters/{id}', auth: 'cluster', body: 'none' },
  { id: 'getBundle', method: 'GET', path: '/v1/bundles/{hash}', auth: 'cluster', body: 'none' },
  {
    id: 'getBundlePart',
    method: 'GET',
    path: '/v1/bundles/{hash}/parts/{index}',
    auth: 'cluster',
    body: 'none',
  },
  { id: 'listClusters', method: 'GET', path: '/v1/admin/clusters', auth: 'admin', body: 'none' },
  { id: 'registerCluster', method: 'POST', path: '/v1/admin/clusters', auth: 'admin', body: 'json' },
  { id: 'getCluster', method: 'GET', path: '/v1/admin/clusters/{id}', auth: 'admin', body: 'none' },
  {
    id: 'getClusterDesiredState',
    method: 'GET',
    path: '/v1/admin/clusters/{id}/desired-state',
    auth: 'admin',
    body: 'none',
  },
  { id: 'listBundles', method: 'GET', path: '/v1/admin/bundles', auth: 'admin', body: 'none' },
  { id: 'getAnyBundle', method: 'GET', path: '/v1/admin/bundles/{hash}', auth: 'admin', body: 'none' },
  { id: 'deregisterCluster', method: 'DELETE', path: '/v1/admin/clusters/{id}', auth: 'admin', body: 'none' },
  {
    id: 'relabelCluster',
    method: 'PATCH',
    path: '/v1/admin/clusters/{id}/labels',
    auth: 'admin',
    body: 'json',
  },
  {
    id: 'rotateClusterToken',
    method: 'POST',
    path: '/v1/admin/clusters/{id}/rotate-token',
    auth: 'admin',
    body: 'none',
  },
  {
    id: 'rotateClusterKey',
    method: 'POST',
    path: '/v1/admin/clusters/{id}/rotate-key',
    auth: 'admin',
    body: 'none',
  },
  {
    id: 'clusterStatus',
    method: 'GET',
    path: '/v1/admin/clusters/{id}/status',
    auth: 'admin',
    body: 'none',
  },
  {
    id: 'clusterHistory',
    method: 'GET',
    path: '/v1/admin/clusters/{id}/history',
    auth: 'admin',
    body: 'none',
  },
  {
    id: 'rollbackCluster',
    method: 'POST',
    path: '/v1/admin/clusters/{id}/rollback',
    auth: 'admin',
    body: 'json',
  },
  { id: 'listRollouts', method: 'GET', path: '/v1/admin/rollouts', auth: 'admin', body: 'none' },
  // A source's bundles are `<source>/<bundle>`: sent as `team-a%2Fweb`, but API Gateway's HTTP
  // API decodes the path before routing, so the name takes the rest of the path (`{bundle+}`);
  // a command is its last segment (`team-a/web/pause`).
  { id: 'getRollout', method: 'GET', path: '/v1/admin/rollouts/{bundle+}', auth: 'admin', body: 'none' },
  {
    id: 'rolloutCommand',
    method: 'POST',
    path: '/v1/admin/rollouts/{bundle+}',
    auth: 'admin',
    body: 'none',
  },
  { id: 'preview', method: 'POST', path: '/v1/admin/preview', auth: 'admin', body: 'json' },
  { id: 'sync', method: 'POST', path: '/v1/admin/sync', auth: 'admin', body: 'none' },
  { id: 'fleetStatus', method: 'GET', path: '/v1/admin/status', auth: 'admin', body: 'none' },
  { id: 'publicKey', method: 'GET', path: '/v1/admin/public-key', auth: 'admin', body: 'none' },
  { id: 'gitWebhook', method: 'POST', path: '/v1/webhooks/git', auth: 'webhook', body: 'raw' },
  {
    id: 'createRegistrationToken',
    method: 'POST',
    path: '/v1/admin/registration-tokens',
    auth: 'admin',
    body: 'json',
  },
  {
    id: 'listRegistrationTokens',
    method: 'GET',
    path: '/v1/admin/registration-tokens',
    auth: 'admin',
    body: 'none',
  },
  {
    id: 'revokeRegistrationToken',
    method: 'DELETE',
    path: '/v1/admin/registration-tokens/{id}',
    auth: 'admin',
    body: 'none',
  },
  { id: 'registerWithToken', method: 'POST', path: '/v1/register', auth: 'registration', body: 'json' },
  {
    id: 'createTenantKey',
    method: 'POST',
    path: '/v1/admin/tenants/{tenant}/keys',
    auth: 'admin',
    body: 'json',
  },
  {
    id: 'listTenantKeys',
    method: 'GET',
    path: '/v1/admin/tenants/{tenant}/keys',
    auth: 'admin',
    body: 'none',
  },
  {
    id: 'revokeTenantKey',
    method: 'DELETE',
    path: '/v1/admin/tenants/{tenant}/keys/{id}',
    auth: 'admin',
    body: 'none',
  },
  { id: 'listSources', method: 'GET', path: '/v1/admin/sources', auth: 'admin', body: 'none' },
  { id: 'declareSource', method: 'POST', path: '/v1/admin/sources', auth: 'admin', body: 'json' },
  { id: 'removeSource', method: 'DELETE', path: '/v1/admin/sources/{name}', auth: 'admin', body: 'none' },
  { id: 'syncSource', method: 'POST', path: '/v1/admin/sources/{name}/sync', auth: 'admin', body: 'none' },
  { id: 'tenantSources', method: 'GET', path: '/v1/tenants/{tenant}/sources', auth: 'tenant', body: 'none' },
  {
    id: 'tenantSyncSource',
    method: 'POST',
    path: '/v1/tenants/{tenant}/sources/{name}/sync',
    auth: 'tenant',
    body: 'none',
  },
  { id: 'tenantStatus', method: 'GET', path: '/v1/tenants/{tenant}/status', auth: 'tenant', body: 'none' },
  { id: 'tenantBundles', method: 'GET', path: '/v1/tenants/{tenant}/bundles', auth: 'tenant', body: 'none' },
  {
    id: 'tenantBundle',
    method: 'GET',
    path: '/v1/tenants/{tenant}/bundles/{hash}',
    auth: 'tenant',
    body: 'none',
  },
  {
    id: 'tenantClusters',
    method: 'GET',
    path: '/v1/tenants/{tenant}/clusters',
    auth: 'tenant',
    body: 'none',
  },
  {
    id: 'tenantClusterStatus',
    method: 'GET',
    path: '/v1/tenants/{tenant}/clusters/{id}/status',
    auth: 'tenant',
    body: 'none',
  },
  {
    id: 'tenantClusterHistory',
    method: 'GET',
    path: '/v1/tenants/{tenant}/clusters/{id}/history',
    auth: 'tenant',
    body: 'none',
  },
  { id: 'tenantPreview', method: 'POST', path: '/v1/tenants/{tenant}/preview', auth: 'tenant', body: 'json' },
  { id: 'tenantSync', method: 'POST', path: '/v1/tenants/{tenant}/sync', auth: 'tenant', body: 'none' },
  {
    id: 'tenantRollouts',
    method: 'GET',
    path: '/v1/tenants/{tenant}/rollouts',
    auth: 'tenant',
    body: 'none',
  },
  // As the admin rollout routes: `{bundle+}`, the command the last segment.
  {
    id: 'tenantRollout',
    method: 'GET',
    path: '/v1/tenants/{tenant}/rollouts/{bundle+}',
    auth: 'tenant',
    body: 'none',
  },
  {
    id: 'tenantRolloutCommand',
    method: 'POST',
    path: '/v1/tenants/{tenant}/rollouts/{bundle+}',
    auth: 'tenant',
    body: 'none',
  },
] as const satisfies readonly RouteSpec[];

export type HubRoute = (typeof hubRoutes)[number];
export type RouteId = HubRoute['id'];

/** API Gateway's route key: `METHOD /path/{param}`. */
export function routeKeyOf(route: RouteSpec): string {
  return `${route.method} ${route.path}`;
}

export type RouteMatch =
  | { readonly kind: 'route'; readonly route: HubRoute; readonly params: Readonly<Record<string, string>> }
  | { readonly kind: 'method-not-allowed'; readonly allowed: readonly string[] }
  | { readonly kind: 'not-found' };

interface CompiledRoute {
  readonly route: HubRoute;
  readonly pattern: RegExp;
  readonly names: readonly string[];
}

const compiled: readonly CompiledRoute[] = hubRoutes.map((route) => {
  const names: string[] = [];
  const source = route.path
    .split('/')
    .map((segment) => {
      const param = /^\{([A-Za-z]+)(\+?)\}$/.exec(segment);
      if (!param) return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      names.push(param[1] as string);
      return param[2] === '+' ? '(.+)' : '([^/]+)';
    })
    .join('/');
  return { route, pattern: new RegExp(`^${source}$`), names };
});

const byKey = new Map<string, HubRoute>(hubRoutes.map((r) => [routeKeyOf(r), r]));

/** The route with this API Gateway route key, if it is one of ours. */
export function routeByKey(routeKey: string): HubRoute | undefined {
  return byKey.get(routeKey);
}

/**
 * Matches a method and a raw path: the route with its (percent-decoded) path
 * parameters, or why none matched (another method, or no such path).
 */
export function matchRoute(method: string, rawPath: string): RouteMatch {
  const allowed: string[] = [];
  for (const { route, pattern, names } of compiled) {
    const m = pattern.exec(rawPath);
    if (!m) continue;
    if (route.method !== method.toUpperCase()) {
      if (!allowed.includes(route.method)) allowed.push(route.method);
      continue;
    }
    const params: Record<string, string> = {};
    let decoded = true;
    names.forEach((name, i) => {
      try {
        params[name] = decodeURIComponent(m[i + 1] as string);
      } catch {
        decoded = false;
      }
    });
    // A parameter that is not valid percent-encoding cannot name anything.
    if (!decoded) return { kind: 'not-found' };
    return { kind: 'route', route, params };
  }
  return allowed.length > 0 ? { kind: 'method-not-allowed', allowed } : { kind: 'not-found' };
}
