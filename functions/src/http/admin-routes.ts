/**
 * Admin routes: register and remove clusters, labels, tokens, listing by selector,
 * preview, sync, fleet status and the public key. Authentication (IAM or the admin
 * key) has already happened; each route validates its input and makes one use-case call.
 */
import { hash } from 'node:crypto';
import {
  compileSelector,
  type LabelMatcher,
  LabelSelectorSyntaxError,
  parseLabelSelector,
} from '@flotilla/shared';
import {
  bundleFilterMaxLength,
  clusterHistory,
  clusterStatus,
  clusterView,
  deregisterCluster,
  type FieldProblem,
  type FleetStatusFilter,
  fleetBundles,
  fleetMatrixPage,
  fleetStatus,
  fleetStatusPage,
  fleetStatusPageDefault,
  fleetStatusPageMax,
  historyPageMax,
  InvalidRequestError,
  NotFoundError,
  parsePreviewRequest,
  parseStatusFilter,
  previewTargets,
  registerCluster,
  relabelCluster,
  requestKeyRotation,
  rollbackCluster,
  rotateClusterToken,
  type StatusScope,
  scopeClusterView,
  scopeHistory,
  syncFleet,
  syncReportView,
  syncView,
  validateClusterId,
  validateLabels,
} from '@flotilla/shared/hub';
import { desiredStateHistoryDepth } from '@flotilla/shared/hub/tables';
import { bundleHashParam, bundleResponse } from './agent-routes.ts';
import type { ApiDeps } from './deps.ts';
import { type ApiRequest, type ApiResult, header } from './request.ts';
import { empty, ifNoneMatchHits, json, quoteEtag } from './responses.ts';

function objectBody(req: ApiRequest, allowed: readonly string[]): Record<string, unknown> {
  const body = req.body;
  if (body === undefined || typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InvalidRequestError([
      { field: 'body', message: `expected a JSON object with ${allowed.join(', ')}` },
    ]);
  }
  const unknown = Object.keys(body).filter((k) => !allowed.includes(k));
  if (unknown.length > 0) {
    throw new InvalidRequestError(
      unknown.map((k) => ({ field: k, message: `unknown field (allowed: ${allowed.join(', ')})` })),
    );
  }
  return body as Record<string, unknown>;
}

export function onlyQuery(req: ApiRequest, allowed: readonly string[]): void {
  const unknown = [...new Set(req.query.keys())].filter((k) => !allowed.includes(k));
  if (unknown.length > 0) {
    throw new InvalidRequestError(
      unknown.map((k) => ({
        field: k,
        message: `unknown query parameter (allowed: ${allowed.join(', ') || 'none'})`,
      })),
    );
  }
}

/** `?selector=` in kubectl syntax, compiled; undefined when absent. */
function selectorQuery(req: ApiRequest): LabelMatcher | undefined {
  const text = req.query.getAll('selector').join(',');
  if (!req.query.has('selector') || text.trim() === '') return undefined;
  try {
    return compileSelector(parseLabelSelector(text));
  } catch (err) {
    if (err instanceof LabelSelectorSyntaxError) {
      throw new InvalidRequestError([{ field: 'selector', message: err.message }]);
    }
    throw err;
  }
}

export function pathClusterId(req: ApiRequest): string {
  try {
    return validateClusterId(req.params.id, 'id');
  } catch (err) {
    // A name that cannot be registered cannot be found either; say which part of the path is wrong.
    if (err instanceof Error && 'field' in err) {
      throw new InvalidRequestError([{ field: 'id', message: err.message.replace(/^id: /, '') }]);
    }
    throw err;
  }
}

/** `POST /v1/admin/clusters` `{ name, labels }`: 201 with the token, shown this once. */
export async function registerClusterRoute(deps: ApiDeps, req: ApiRequest): Promise<ApiResult> {
  const body = objectBody(req, ['name', 'labels']);
  const problems: FieldProblem[] = [];
  const check = (fn: () => void) => {
    try {
      fn();
    } catch (err) {
      if (err instanceof Error && 'field' in err) {
        problems.push({ field: String(err.field), message: err.message.replace(/^[^:]+: /, '') });
      } else throw err;
    }
  };
  check(() => validateClusterId(body.name, 'name'));
  check(() => validateLabels(body.labels, 'labels'));
  if (problems.length > 0) throw new InvalidRequestError(problems);
  const { cluster, token, sync } = await registerCluster(deps, {
    name: body.name as string,
    labels: (body.labels ?? {}) as Record<string, string>,
  });
  const registered = (await deps.clusters.get(cluster.id)) ?? cluster;
  return json(
    201,
    {
      cluster: clusterView(registered),
      token,
      queueUrl: cluster.queueUrl ?? null,
      sync: syncReportView(sync),
    },
    { location: `/v1/admin/clusters/${encodeURIComponent(cluster.id)}` },
  );
}

/**
 * `GET /v1/admin/clusters?selector=env=prod,region in (eu)`: clusters whose registered labels
 * match (and, for a tenant, that its selector allows).
 */
export async function listClustersRoute(
  deps: ApiDeps,
  req: ApiRequest,
  scope?: StatusScope,
): Promise<ApiResult> {
  onlyQuery(req, ['selector']);
  const matcher = selectorQuery(req);
  const clusters = await deps.clusters.list();
  const matching = clusters.filter(
    (c) => (!matcher || matcher(c.labels)) && (!scope || scope.allowsCluster(c.labels)),
  );
  return json(200, { clusters: matching.map(clusterView) });
}

/** `GET /v1/admin/clusters/{id}`. */
export async function getClusterRoute(deps: ApiDeps, req: ApiRequest): Promise<ApiResult> {
  const id = pathClusterId(req);
  const cluster = await deps.clusters.get(id);
  if (!cluster) throw new NotFoundError(`cluster "${id}" not found`);
  return json(200, { cluster: clusterView(cluster) });
}

/**
 * `GET /v1/admin/clusters/{id}/desired-state`: the cluster's current signed desired state,
 * as its agent gets it, so that an admin (`flotilla diff`) can compare a change with it.
 * 404 while the cluster has none yet.
 */
export async function getClusterDesiredStateRoute(deps: ApiDeps, req: ApiRequest): Promise<ApiResult> {
  onlyQuery(req, []);
  const id = pathClusterId(req);
  const cluster = await deps.clusters.get(id);
  if (!cluster) throw new NotFoundError(`cluster "${id}" not found`);
  const stored = await deps.desiredStates.current(id);
  if (!stored) throw new NotFoundError(`cluster "${id}" has no desired state yet`);
  return json(
    200,
    { manifest: JSON.parse(stored.manifest), signature: stored.signature, keyId: stored.keyId },
    { etag: quoteEtag(stored.etag), 'x-flotilla-generation': String(stored.generation) },
  );
}

/** `GET /v1/admin/bundles/{hash}`: any stored rendered bundle, for admins (agents get only their own). */
export async function getAnyBundleRoute(deps: ApiDeps, req: ApiRequest): Promise<ApiResult> {
  onlyQuery(req, []);
  return bundleResponse(deps, req, bundleHashParam(req.params.hash ?? ''));
}

/** `DELETE /v1/admin/clusters/{id}`: its token stops working at once. */
export async function deregisterClusterRoute(deps: ApiDeps, req: ApiRequest): Promise<ApiResult> {
  await deregisterCluster(deps, pathClusterId(req));
  return empty(204);
}

/** `PATCH /v1/admin/clusters/{id}/labels` `{ set?, remove? }`: re-plans just this cluster. */
export async function relabelClusterRoute(deps: ApiDeps, req: ApiRequest): Promise<ApiResult> {
  const id = pathClusterId(req);
  const body = objectBody(req, ['set', 'remove']);
  const problems: FieldProblem[] = [];
  if (body.set === undefined && body.remove === undefined) {
    problems.push({ field: 'set', message: 'give labels to set and/or label keys to remove' });
  }
  let set: Record<string, string> = {};
  if (body.set !== undefined) {
    try {
      set = { ...validateLabels(body.set, 'set') };
    } catch (err) {
      if (err instanceof Error && 'field' in err) {
        problems.push({ field: String(err.field), message: err.message.replace(/^[^:]+: /, '') });
      } else throw err;
    }
  }
  let remove: string[] = [];
  if (body.remove !== undefined) {
    if (!Array.isArray(body.remove))
      problems.push({ field: 'remove', message: 'expected an array of label keys' });
    else {
      body.remove.forEach((k: unknown, i: number) => {
        if (typeof k !== 'string' || k === '')
          problems.push({ field: `remove[${i}]`, message: 'expected a label key' });
        else if (Object.hasOwn(set, k)) {
          problems.push({ field: `remove[${i}]`, message: `label "${k}" is both set and removed` });
        }
      });
      remove = body.remove.filter((k: unknown): k is string => typeof k === 'string');
    }
  }
  if (problems.length > 0) throw new InvalidRequestError(problems);
  const { cluster, sync } = await relabelCluster(deps, id, { set, remove });
  return json(200, { cluster: clusterView(cluster), sync: syncReportView(sync) });
}

/** `POST /v1/admin/clusters/{id}/rotate-token`: a new token; the old one stops working at once. */
export async function rotateClusterTokenRoute(deps: ApiDeps, req: ApiRequest): Promise<ApiResult> {
  const id = pathClusterId(req);
  const token = await rotateClusterToken(deps, id);
  return json(200, { clusterId: id, token });
}

/**
 * `POST /v1/admin/clusters/{id}/rotate-key`: asks the cluster's agent to make a new age key.
 * The agent learns of it in the answer to its next status report (within a heartbeat
 * interval) and reports the new recipient; 202 with the request and the recipients as they
 * stand now, so a caller can wait for the cluster's own one to change.
 */
export async function rotateClusterKeyRoute(deps: ApiDeps, req: ApiRequest): Promise<ApiResult> {
  const id = pathClusterId(req);
  const { cluster, rotation } = await requestKeyRotation(deps, id);
  return json(202, { cluster: clusterView(cluster), rotation });
}

/** A positive whole number from the query, or undefined when absent. */
function positiveIntQuery(req: ApiRequest, name: string, max?: number): number | undefined {
  const text = req.query.get(name);
  if (text === null) return undefined;
  const n = /^[0-9]{1,15}$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1 || (max !== undefined && n > max)) {
    throw new InvalidRequestError([
      { field: name, message: `expected a whole number from 1${max === undefined ? '' : ` to ${max}`}` },
    ]);
  }
  return n;
}

/**
 * `GET /v1/admin/clusters/{id}/history[?limit=&before=]`: the cluster's generations, newest
 * first, a page at a time (`before` is the previous page's `nextBefore`).
 */
export async function clusterHistoryRoute(
  deps: ApiDeps,
  req: ApiRequest,
  scope?: Parameters<typeof scopeHistory>[1],
): Promise<ApiResult> {
  onlyQuery(req, ['limit', 'before']);
  const id = pathClusterId(req);
  const limit = positiveIntQuery(req, 'limit', historyPageMax);
  const before = positiveIntQuery(req, 'before');
  const history = await clusterHistory(deps, id, {
    historyDepth: desiredStateHistoryDepth,
    ...(limit === undefined ? {} : { limit }),
    ...(before === undefined ? {} : { before }),
  });
  return json(200, scope ? scopeHistory(history, scope) : history);
}

/**
 * `POST /v1/admin/clusters/{id}/rollback` `{ toGeneration, bundle? }` or `{ clear: true }`:
 * a new generation with the references of an earlier one, pinned until the bundle's next
 * change; `clear` ends every pin with a generation of the current plan.
 */
export async function rollbackClusterRoute(deps: ApiDeps, req: ApiRequest): Promise<ApiResult> {
  const id = pathClusterId(req);
  const body = objectBody(req, ['toGeneration', 'bundle', 'clear']);
  const by = req.admin ?? 'admin';
  const problems: FieldProblem[] = [];
  if (body.clear !== undefined) {
    if (body.clear !== true) problems.push({ field: 'clear', message: 'expected true' });
    for (const field of ['toGeneration', 'bundle'] as const)
      if (body[field] !== undefined) problems.push({ field, message: 'not allowed with clear' });
    if (problems.length > 0) throw new InvalidRequestError(problems);
    return json(200, await rollbackCluster(deps, id, { clear: true, by }));
  }
  const to = body.toGeneration;
  if (to === undefined) problems.push({ field: 'toGeneration', message: 'required (or give clear: true)' });
  else if (typeof to !== 'number' || !Number.isSafeInteger(to) || to < 1)
    problems.push({ field: 'toGeneration', message: 'expected a generation number (1 or more)' });
  if (body.bundle !== undefined && (typeof body.bundle !== 'string' || body.bundle === ''))
    problems.push({ field: 'bundle', message: 'expected a bundle name' });
  if (problems.length > 0) throw new InvalidRequestError(problems);
  const result = await rollbackCluster(deps, id, {
    toGeneration: to as number,
    bundle: body.bundle as string | undefined,
    by,
  });
  return json(200, result);
}

/** `POST /v1/admin/preview`: what the repo tip, or uploaded files, would do to each cluster. */
export async function previewRoute(deps: ApiDeps, req: ApiRequest): Promise<ApiResult> {
  const request = parsePreviewRequest(req.body);
  return json(200, await previewTargets(deps, request));
}

/**
 * `POST /v1/admin/sync`: syncs now; 202 when another sync holds the lease (it will run again
 * for us) or when the sync was dispatched to worker invocations.
 */
export async function syncRoute(deps: ApiDeps, req: ApiRequest): Promise<ApiResult> {
  onlyQuery(req, []);
  const report = await syncFleet(deps, { holder: `api:${req.requestId}` });
  return json(report.status === 'synced' ? 200 : 202, syncReportView(report));
}

const pagedStatusQuery = ['state', 'search', 'bundle', 'limit', 'cursor', 'offset', 'view'] as const;

/** The filter of `?selector=&state=&search=`, validated; every wrong part is named. */
function statusFilterQuery(req: ApiRequest): FleetStatusFilter {
  const selector = req.query.getAll('selector').join(',').trim();
  const matcher = selectorQuery(req);
  const states = parseStatusFilter(req.query.getAll('state'));
  const search = req.query.get('search')?.trim() ?? '';
  if (search.length > 253) {
    throw new InvalidRequestError([{ field: 'search', message: 'at most 253 characters (a cluster name)' }]);
  }
  return {
    ...(matcher ? { selector, matcher } : {}),
    ...(states.length > 0 ? { states } : {}),
    ...(search !== '' ? { search } : {}),
  };
}

/** `?bundle=`: one bundle's name, or undefined when absent. A name no cluster gets matches nothing. */
function bundleQuery(req: ApiRequest): string | undefined {
  const values = req.query.getAll('bundle');
  if (values.length === 0) return undefined;
  const name = values[0]?.trim() ?? '';
  const problem =
    values.length > 1
      ? 'give one bundle'
      : name === ''
        ? 'expected a bundle name'
        : name.length > bundleFilterMaxLength
          ? `at most ${bundleFilterMaxLength} characters (a bundle name)`
          : undefined;
  if (problem !== undefined) throw new InvalidRequestError([{ field: 'bundle', message: problem }]);
  return name;
}

/**
 * Answers 200 with an ETag, or 304 when `If-None-Match` names it. The ETag is a digest of
 * the answer without its `generatedAt`, so it changes exactly when something a client
 * shows changes (a state, a heartbeat, a label, a cluster going Offline by the clock, the
 * synced commit), and never otherwise. A digest of update stamps alone would miss changes
 * that carry no stamp (labels, Offline by elapsed time); hashing the page costs about a
 * millisecond next to the reads that make it.
 *
 * Why polling and not server-sent events: behind API Gateway's HTTP API a Lambda answers
 * once (no streaming responses, a 30 s integration limit), so a stream cannot be held
 * open; a conditional GET every 1-2 s costs a 304 with no body when nothing changed.
 */
function conditionalJson<T extends { readonly generatedAt: string }>(req: ApiRequest, value: T): ApiResult {
  const { generatedAt: _at, ...stable } = value;
  const etag = `fs-${hash('sha256', JSON.stringify(stable), 'base64url').slice(0, 32)}`;
  const headers = { etag: quoteEtag(etag), 'cache-control': 'no-cache' };
  if (ifNoneMatchHits(header(req.event, 'if-none-match'), etag)) return empty(304, headers);
  return json(200, value, headers);
}

/**
 * `GET /v1/admin/status[?selector=&state=&search=&bundle=&limit=&cursor=&offset=&view=]`: clusters x
 * bundles, desired against applied, Offline clusters, last sync. Without `state`, `search`,
 * `bundle`, `limit` and `cursor` it answers every matching cluster as it always has
 * (`flotilla status` reads that); with any of them, a page in name order with `nextCursor`,
 * `total` and a summary over every match; `bundle` keeps the clusters that get that bundle
 * and makes `state` filter on its state there; `view=matrix` cuts each bundle to what a
 * matrix cell shows.
 */
export async function fleetStatusRoute(
  deps: ApiDeps,
  req: ApiRequest,
  scope?: StatusScope,
): Promise<ApiResult> {
  onlyQuery(req, ['selector', ...pagedStatusQuery]);
  const filter = { ...statusFilterQuery(req), ...(scope ? { scope } : {}) };
  const offlineAfterSeconds = deps.config.offlineAfterSeconds;
  if (!pagedStatusQuery.some((k) => req.query.has(k))) {
    const status = await fleetStatus(deps, {
      offlineAfterSeconds,
      ...(filter.matcher ? { matcher: filter.matcher } : {}),
      ...(scope ? { scope } : {}),
    });
    return conditionalJson(req, status);
  }
  const limit = positiveIntQuery(req, 'limit', fleetStatusPageMax) ?? fleetStatusPageDefault;
  const cursor = req.query.get('cursor');
  const offsetText = req.query.get('offset');
  const offset = offsetText === '0' ? 0 : positiveIntQuery(req, 'offset');
  if (offset !== undefined && cursor !== null) {
    throw new InvalidRequestError([
      {
        field: 'offset',
        message: 'give either cursor (walking pages) or offset (jumping to a row), not both',
      },
    ]);
  }
  const view = req.query.get('view') ?? 'full';
  if (view !== 'full' && view !== 'matrix') {
    throw new InvalidRequestError([{ field: 'view', message: `expected "full" or "matrix", got "${view}"` }]);
  }
  const bundle = bundleQuery(req);
  const request = {
    ...filter,
    ...(bundle !== undefined ? { bundle } : {}),
    offlineAfterSeconds,
    limit,
    ...(cursor !== null ? { cursor } : {}),
    ...(offset ? { offset } : {}),
  };
  return conditionalJson(
    req,
    view === 'full' ? await fleetStatusPage(deps, request) : await fleetMatrixPage(deps, request),
  );
}

/**
 * `GET /v1/admin/bundles[?selector=&state=&search=]`: the bundles the (matching) clusters
 * get at the synced commit, with their file and clusters per state: a matrix's columns.
 */
export async function listBundlesRoute(
  deps: ApiDeps,
  req: ApiRequest,
  scope?: StatusScope,
): Promise<ApiResult> {
  onlyQuery(req, ['selector', 'state', 'search']);
  const filter = { ...statusFilterQuery(req), ...(scope ? { scope } : {}) };
  return conditionalJson(
    req,
    await fleetBundles(deps, { ...filter, offlineAfterSeconds: deps.config.offlineAfterSeconds }),
  );
}

/**
 * `GET /v1/admin/clusters/{id}/status`: one cluster's status view, as the fleet status has it,
 * with the same envelope (`generatedAt`, `offlineAfterSeconds`, `sync`) and ETag.
 */
export async function clusterStatusRoute(
  deps: ApiDeps,
  req: ApiRequest,
  scope?: StatusScope,
): Promise<ApiResult> {
  onlyQuery(req, []);
  const id = pathClusterId(req);
  const status = await clusterStatus(deps, id, { offlineAfterSeconds: deps.config.offlineAfterSeconds });
  if (!scope) return conditionalJson(req, status);
  return conditionalJson(req, {
    ...status,
    sync: syncView(await deps.syncState.get(), scope),
    cluster: scopeClusterView(status.cluster, scope),
  });
}

/** `GET /v1/admin/public-key`: what agents pin at bootstrap. */
export async function publicKeyRoute(deps: ApiDeps): Promise<ApiResult> {
  return json(200, {
    algorithm: 'Ed25519',
    keyId: deps.signer.keyId,
    publicKeyPem: deps.signer.publicKeyPem,
  });
}
