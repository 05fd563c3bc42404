import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import {
  authenticateCluster,
  authenticateTenantKey,
  type ClusterStore,
  NotFoundError,
  type TenantKeyStore,
  tenantOfKey,
} from '@flotilla/shared/hub';
import type { MiddlewareObj, Request } from '@middy/core';
import { type Caller, type TenantPrincipals, tenantOfPrincipal } from './caller.ts';
import {
  ForbiddenError,
  MalformedBodyError,
  MethodNotAllowedError,
  PayloadTooLargeError,
  RouteNotFoundError,
  UnauthenticatedError,
  UnsupportedMediaTypeError,
} from './errors.ts';
import {
  type ApiContext,
  type ApiEvent,
  type ApiRequestState,
  type ApiResult,
  bearerToken,
  bodyBytes,
  header,
  requestIdOf,
} from './request.ts';
import { matchRoute, routeByKey } from './routes.ts';

type ApiMiddleware = MiddlewareObj<ApiEvent, ApiResult, Error, ApiContext>;
type ApiMiddyRequest = Request<ApiEvent, ApiResult, Error, ApiContext>;

function state(request: ApiMiddyRequest): ApiRequestState {
  const api = request.context.api;
  if (!api) throw new Error('route resolver middleware must run first');
  return api;
}

/**
 * Resolves the route: from API Gateway's `routeKey` and `pathParameters` when it routed
 * the request to one of ours, otherwise (the `$default` route) by matching the path, so
 * an unknown path is a 404 and a known path with the wrong method a 405.
 */
export function routeResolver(): ApiMiddleware {
  return {
    before: (request) => {
      const event = request.event;
      const method = event.requestContext?.http?.method ?? 'GET';
      const known = routeByKey(event.routeKey ?? '');
      if (known && event.pathParameters) {
        const params: Record<string, string> = {};
        for (const [k, v] of Object.entries(event.pathParameters)) if (v !== undefined) params[k] = v;
        request.context.api = { route: known, params };
        return;
      }
      let path = event.rawPath ?? event.requestContext?.http?.path ?? '/';
      const stage = event.requestContext?.stage;
      if (stage && stage !== '$default' && path.startsWith(`/${stage}/`)) path = path.slice(stage.length + 1);
      const match = matchRoute(method, path);
      if (match.kind === 'not-found') throw new RouteNotFoundError(method, path);
      if (match.kind === 'method-not-allowed') throw new MethodNotAllowedError(method, path, match.allowed);
      request.context.api = { route: match.route, params: match.params };
    },
  };
}

export interface AuthenticationOptions {
  readonly clusters: ClusterStore;
  readonly adminAuth: 'iam' | 'key';
  /** Hex SHA-256 of the admin key (mode `key`). */
  readonly adminKeySha256: string | undefined;
  /** The webhook's HMAC secret; webhooks are off without it. */
  readonly webhookSecret: string | undefined;
  /** Tenant keys (mode `key`); without a store, only the admin key is accepted. */
  readonly tenantKeys?: Pick<TenantKeyStore, 'get'>;
  /** IAM principals of each tenant (mode `iam`); any other principal is the platform admin. */
  readonly tenantPrincipals?: TenantPrincipals;
}

/**
 * Authenticates by the route's kind: a cluster's own token (and only for its own
 * `{id}`), the admin or a tenant's key or IAM identity (a tenant only on its own tenant
 * routes), or the webhook's body signature.
 */
export function authentication(opts: AuthenticationOptions): ApiMiddleware {
  const adminKeyHash =
    opts.adminAuth === 'key' && opts.adminKeySha256 ? Buffer.from(opts.adminKeySha256, 'hex') : undefined;
  const principals = opts.tenantPrincipals ?? new Map<string, readonly string[]>();

  /** Who sent an admin or tenant request: the platform admin or a tenant's. */
  const callerOf = async (event: ApiEvent): Promise<Caller> => {
    if (opts.adminAuth === 'iam') {
      const arn = event.requestContext?.authorizer?.iam?.userArn;
      if (!arn) {
        throw new UnauthenticatedError('admin and tenant routes need an IAM-signed (SigV4) request', {
          challenge: 'AWS4-HMAC-SHA256',
        });
      }
      const tenant = tenantOfPrincipal(principals, arn);
      return tenant === undefined ? { kind: 'platform', id: arn } : { kind: 'tenant', tenant, id: arn };
    }
    const key = bearerToken(event);
    if (!key) {
      throw new UnauthenticatedError(
        'missing credentials: send "Authorization: Bearer <admin key or tenant key>"',
      );
    }
    const actual = createHash('sha256').update(key, 'utf8').digest();
    if (adminKeyHash && adminKeyHash.length === actual.length && timingSafeEqual(adminKeyHash, actual)) {
      return { kind: 'platform', id: 'admin-key' };
    }
    if (tenantOfKey(key) !== undefined) {
      const record = opts.tenantKeys ? await authenticateTenantKey(opts.tenantKeys, key) : undefined;
      if (!record) throw new UnauthenticatedError('the tenant key is not valid (unknown or revoked)');
      return { kind: 'tenant', tenant: record.tenant, id: `tenant-key:${record.tenant}:${record.id}` };
    }
    throw new UnauthenticatedError('the admin key is not valid');
  };

  return {
    before: async (request) => {
      const api = state(request);
      const event = request.event;
      switch (api.route.auth) {
        case 'cluster': {
          const token = bearerToken(event);
          if (!token) {
            throw new UnauthenticatedError(
              'missing credentials: send "Authorization: Bearer <cluster token>"',
            );
          }
          const cluster = await authenticateCluster(opts.clusters, token);
          // Unknown, rotated and deregistered clusters' tokens all look the same from outside.
          if (!cluster)
            throw new UnauthenticatedError('the cluster token is not valid (unknown, rotated or revoked)');
          const wanted = api.params.id;
          if (wanted !== undefined && wanted !== cluster.id) {
            throw new ForbiddenError(
              `the token of cluster "${cluster.id}" gives no access to cluster "${wanted}"`,
            );
          }
          api.cluster = cluster;
          return;
        }
        case 'admin':
        case 'tenant': {
          const caller = await callerOf(event);
          if (caller.kind === 'tenant') {
            if (api.route.auth === 'admin') {
              throw new ForbiddenError(
                `tenant "${caller.tenant}" may not call ${api.route.method} ${api.route.path}: it is a platform admin route (a tenant's routes are under /v1/tenants/${caller.tenant}/)`,
              );
            }
            const wanted = api.params.tenant;
            if (wanted !== undefined && wanted !== caller.tenant) {
              throw new ForbiddenError(`tenant "${caller.tenant}" may not act on tenant "${wanted}"`);
            }
          }
          api.caller = caller;
          api.admin = caller.id;
          return;
        }
        case 'webhook': {
          if (!opts.webhookSecret) throw new NotFoundError('webhooks are not enabled on this hub');
          const given = header(event, 'x-hub-signature-256');
          if (!given)
            throw new UnauthenticatedError('missing X-Hub-Signature-256 header', {
              challenge: 'HMAC-SHA256',
            });
          const expected = Buffer.from(
            `sha256=${createHmac('sha256', opts.webhookSecret).update(bodyBytes(event)).digest('hex')}`,
          );
          const actual = Buffer.from(given.trim().toLowerCase());
          if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) {
            throw new UnauthenticatedError('the webhook signature does not match the body', {
              challenge: 'HMAC-SHA256',
            });
          }
          return;
        }
        case 'registration':
          // The route itself consumes the one-time registration token, atomically with its use.
          return;
      }
    },
  };
}

export interface BodyParserOptions {
  /** Largest body accepted; Lambda itself takes at most 6 MB. */
  readonly maxBytes?: number;
}

/**
 * Reads the body as the route says: JSON (checked media type, parse errors named), raw
 * bytes, or nothing.
 */
export function bodyParser(opts: BodyParserOptions = {}): ApiMiddleware {
  const maxBytes = opts.maxBytes ?? 6 * 1024 * 1024;
  return {
    before: (request) => {
      const api = state(request);
      if (api.route.body === 'none') return;
      const bytes = bodyBytes(request.event);
      if (bytes.length > maxBytes) {
        throw new PayloadTooLargeError(`the body is ${bytes.length} bytes; at most ${maxBytes} are accepted`);
      }
      if (api.route.body === 'raw') {
        api.rawBody = bytes;
        return;
      }
      if (bytes.length === 0) return;
      const type = header(request.event, 'content-type');
      if (type && !/^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(type.trim())) {
        throw new UnsupportedMediaTypeError(
          `expected a JSON body (Content-Type: application/json), got "${type}"`,
        );
      }
      try {
        api.body = JSON.parse(bytes.toString('utf8'));
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        throw new MalformedBodyError(`the body is not valid JSON: ${reason}`, { cause: err });
      }
    },
  };
}

/** Headers every response carries: the request id, no sniffing, and no caching unless the route says so. */
export function responseHeaders(): ApiMiddleware {
  return {
    after: (request) => {
      const response = request.response;
      if (!response) return;
      response.headers['x-request-id'] = requestIdOf(request.event, request.context);
      response.headers['x-content-type-options'] = 'nosniff';
      response.headers['cache-control'] ??= 'no-store';
    },
  };
}
