/**
 * Agent routes. The authentication middleware has already checked the bearer token and
 * that `{id}` is the token's own cluster; each route validates its input and makes one
 * use-case or store call.
 */
import { gzipSync } from 'node:zlib';
import { isContentHash } from '@flotilla/shared';
import {
  type ClusterRecord,
  InvalidRequestError,
  NotFoundError,
  parseStatusReport,
  recordClusterStatus,
} from '@flotilla/shared/hub';
import type { ApiDeps } from './deps.ts';
import { errorFields } from './log.ts';
import { type ApiRequest, type ApiResult, header } from './request.ts';
import { empty, ifNoneMatchHits, json, quoteEtag } from './responses.ts';

function callerOf(req: ApiRequest): ClusterRecord {
  if (!req.cluster) throw new Error(`route ${req.route.id} ran without an authenticated cluster`);
  return req.cluster;
}

/**
 * `GET /v1/clusters/{id}/desired-state`: the signed manifest. A poll whose
 * `If-None-Match` names the current ETag is answered from the cluster record already
 * read for authentication, with no further read.
 */
export async function getDesiredState(deps: ApiDeps, req: ApiRequest): Promise<ApiResult> {
  const cluster = callerOf(req);
  const ifNoneMatch = header(req.event, 'if-none-match');
  const revalidate = { 'cache-control': 'private, no-cache' };
  if (cluster.head && ifNoneMatchHits(ifNoneMatch, cluster.head.etag)) {
    return empty(304, {
      etag: quoteEtag(cluster.head.etag),
      'x-flotilla-generation': String(cluster.head.generation),
      ...revalidate,
    });
  }
  const stored = await deps.desiredStates.current(cluster.id);
  if (!stored) {
    throw new NotFoundError(
      `cluster "${cluster.id}" has no desired state yet: the hub has not synced the fleet repo since it was registered`,
    );
  }
  const headers = {
    etag: quoteEtag(stored.etag),
    'x-flotilla-generation': String(stored.generation),
    ...revalidate,
  };
  if (ifNoneMatchHits(ifNoneMatch, stored.etag)) return empty(304, headers);
  // The manifest is stored as the exact canonical bytes that were signed; JSON-parsing
  // them and canonicalising again gives the same bytes, which is what agents verify.
  return json(
    200,
    { manifest: JSON.parse(stored.manifest), signature: stored.signature, keyId: stored.keyId },
    headers,
  );
}

/** Bundles larger than this go out gzipped when the client takes gzip (Lambda responses stop at 6 MB). */
const gzipAboveBytes = 8 * 1024;

/**
 * `GET /v1/bundles/{hash}`: a rendered bundle, only if the caller's current desired
 * state or one it keeps for rollback references it. Immutable: the hash is its content.
 */
export async function getBundle(deps: ApiDeps, req: ApiRequest): Promise<ApiResult> {
  const cluster = callerOf(req);
  const hash = await authorizedBundleHash(deps, cluster, req.params.hash ?? '');
  return bundleResponse(deps, req, hash);
}

/** A stored bundle by hash as JSON, gzipped for clients that take gzip; cacheable for ever. */
export async function bundleResponse(deps: ApiDeps, req: ApiRequest, hash: string): Promise<ApiResult> {
  const headers = { etag: quoteEtag(hash), 'cache-control': 'private, max-age=31536000, immutable' };
  if (ifNoneMatchHits(header(req.event, 'if-none-match'), hash)) return empty(304, headers);
  const content = await deps.bundles.get(hash);
  if (!content) throw new NotFoundError(`bundle ${hash} is not stored`);
  const bytes = Buffer.from(content.buffer, content.byteOffset, content.byteLength);
  const contentType = {
    'content-type': 'application/json; charset=utf-8',
    ...headers,
    vary: 'accept-encoding',
  };
  if (bytes.length > gzipAboveBytes && /\bgzip\b/i.test(header(req.event, 'accept-encoding') ?? '')) {
    return {
      statusCode: 200,
      headers: { ...contentType, 'content-encoding': 'gzip' },
      body: gzipSync(bytes).toString('base64'),
      isBase64Encoded: true,
    };
  }
  return { statusCode: 200, headers: contentType, body: bytes.toString('utf8') };
}

/**
 * `GET /v1/bundles/{hash}/parts/{index}`: one stored part of a bundle's gzip stream,
 * exactly as stored (at most a few hundred KB), so bundles of any size pass through
 * responses capped at 6 MB. Part 0 carries `x-flotilla-parts` and `x-flotilla-size`; the
 * agent concatenates the parts, gunzips, and checks the hash.
 */
export async function getBundlePart(deps: ApiDeps, req: ApiRequest): Promise<ApiResult> {
  const cluster = callerOf(req);
  const hash = await authorizedBundleHash(deps, cluster, req.params.hash ?? '');
  const rawIndex = req.params.index ?? '';
  const index = /^(0|[1-9][0-9]{0,5})$/.test(rawIndex) ? Number(rawIndex) : Number.NaN;
  if (!Number.isInteger(index)) {
    throw new InvalidRequestError([{ field: 'index', message: `expected a part number, got "${rawIndex}"` }]);
  }
  const part = await deps.bundles.getPart(hash, index);
  if (!part) throw new NotFoundError(`bundle ${hash} has no part ${index}`);
  const headers: Record<string, string> = {
    'content-type': 'application/gzip',
    'cache-control': 'private, max-age=31536000, immutable',
    ...(part.parts === undefined ? {} : { 'x-flotilla-parts': String(part.parts) }),
    ...(part.size === undefined ? {} : { 'x-flotilla-size': String(part.size) }),
  };
  return {
    statusCode: 200,
    headers,
    body: Buffer.from(part.data.buffer, part.data.byteOffset, part.data.byteLength).toString('base64'),
    isBase64Encoded: true,
  };
}

/** `{hash}` of a bundle route: `sha256:<hex>` or the bare hex. */
export function bundleHashParam(raw: string): string {
  const hash = /^[0-9a-f]{64}$/.test(raw) ? `sha256:${raw}` : raw;
  if (!isContentHash(hash)) {
    throw new InvalidRequestError([
      { field: 'hash', message: `expected "sha256:" and 64 hex digits, got "${raw}"` },
    ]);
  }
  return hash;
}

async function authorizedBundleHash(deps: ApiDeps, cluster: ClusterRecord, raw: string): Promise<string> {
  const hash = bundleHashParam(raw);
  if (!(await referencedBy(deps, cluster, hash))) {
    // Not "forbidden": whether another cluster has this bundle is not the caller's business.
    throw new NotFoundError(`bundle ${hash} is not in the desired state of cluster "${cluster.id}"`);
  }
  return hash;
}

async function referencedBy(deps: ApiDeps, cluster: ClusterRecord, hash: string): Promise<boolean> {
  const mentions = (manifest: string) =>
    (JSON.parse(manifest) as { bundles?: { hash?: string }[] }).bundles?.some((b) => b.hash === hash) ??
    false;
  const current = await deps.desiredStates.current(cluster.id);
  if (!current) return false;
  if (mentions(current.manifest)) return true;
  // An agent may still be applying, or rolling back to, a generation just replaced.
  const history = await deps.desiredStates.history(cluster.id);
  return history.some((s) => mentions(s.manifest));
}

/**
 * `POST /v1/clusters/{id}/status`: per-bundle status and heartbeat. The answer tells the
 * agent the hub's current generation, so it knows whether it is behind.
 */
export async function postStatus(deps: ApiDeps, req: ApiRequest): Promise<ApiResult> {
  const cluster = callerOf(req);
  if (req.body === undefined) {
    throw new InvalidRequestError([{ field: 'body', message: 'expected a ClusterStatus JSON object' }]);
  }
  const report = parseStatusReport(req.body);
  const { replan, ...receipt } = await recordClusterStatus(deps, cluster, report);
  if (replan) {
    // The re-plan is the hub's business, not the agent's: logged here, left out of the answer.
    const fields = { clusterId: cluster.id, kubeVersion: replan.kubeVersion };
    if ('error' in replan) {
      deps.log?.warn('re-planning a cluster for its new Kubernetes version failed; the next sync will', {
        ...fields,
        ...errorFields(replan.error),
      });
    } else {
      deps.log?.info('re-planned a cluster for its new Kubernetes version', {
        ...fields,
        changed: replan.sync.changed.length > 0,
        errors: replan.sync.errors.length,
      });
    }
  }
  return json(200, {
    ...receipt,
    desired: cluster.head ? { generation: cluster.head.generation, etag: cluster.head.etag } : null,
  });
}
