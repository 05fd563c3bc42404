/**
 * Registration without admin rights: admins issue one-time registration tokens, and an
 * operator registers one cluster with one. Also the route a cluster reads its own
 * registration from, which is how `flotilla bootstrap` checks a token it finds in a cluster.
 */
import {
  clusterView,
  createRegistrationToken,
  NotFoundError,
  parseRegistrationTokenRequest,
  RegistrationTokenRefusedError,
  type RegistrationTokenStore,
  registerWithToken,
  registrationTokenView,
  revokeRegistrationToken,
  syncReportView,
} from '@flotilla/shared/hub';
import type { ApiDeps } from './deps.ts';
import { UnauthenticatedError } from './errors.ts';
import { type ApiRequest, type ApiResult, bearerToken } from './request.ts';
import { empty, json } from './responses.ts';

/** What these routes need beyond the rest of the API: the registration-token store. */
export interface RegistrationDeps {
  readonly registrationTokens?: RegistrationTokenStore;
}

type Deps = ApiDeps & RegistrationDeps;

function tokensOf(deps: Deps): RegistrationTokenStore {
  if (!deps.registrationTokens) throw new NotFoundError('registration tokens are not enabled on this hub');
  return deps.registrationTokens;
}

function publicKeyOf(deps: Deps) {
  return { algorithm: 'Ed25519', keyId: deps.signer.keyId, publicKeyPem: deps.signer.publicKeyPem };
}

/** `POST /v1/admin/registration-tokens` `{ ttlSeconds, labels?, description? }`: 201 with the token, shown once. */
export async function createRegistrationTokenRoute(deps: Deps, req: ApiRequest): Promise<ApiResult> {
  const request = parseRegistrationTokenRequest(req.body);
  const { token, record } = await createRegistrationToken(
    { registrationTokens: tokensOf(deps), now: deps.now },
    { ...request, ...(req.admin ? { createdBy: req.admin } : {}) },
  );
  return json(201, { token, registrationToken: registrationTokenView(record, deps.now()) });
}

/** `GET /v1/admin/registration-tokens`: every token with its state (active, used, expired); never a token. */
export async function listRegistrationTokensRoute(deps: Deps): Promise<ApiResult> {
  const now = deps.now();
  const records = await tokensOf(deps).list();
  return json(200, { registrationTokens: records.map((r) => registrationTokenView(r, now)) });
}

/** `DELETE /v1/admin/registration-tokens/{id}`: the token stops working at once. */
export async function revokeRegistrationTokenRoute(deps: Deps, req: ApiRequest): Promise<ApiResult> {
  await revokeRegistrationToken({ registrationTokens: tokensOf(deps), now: deps.now }, req.params.id ?? '');
  return empty(204);
}

/**
 * `POST /v1/register` with `Authorization: Bearer frt_...` and `{ name, labels }`: registers
 * the cluster as the admin route does, using the token up. 201 with the cluster's token
 * (shown once) and the hub's public key for the agent to pin.
 */
export async function registerWithTokenRoute(deps: Deps, req: ApiRequest): Promise<ApiResult> {
  const token = bearerToken(req.event);
  if (!token) {
    throw new UnauthenticatedError('missing credentials: send "Authorization: Bearer <registration token>"');
  }
  const body = (req.body ?? {}) as Record<string, unknown>;
  let registration: Awaited<ReturnType<typeof registerWithToken>>;
  try {
    registration = await registerWithToken(
      { ...deps, registrationTokens: tokensOf(deps) },
      { token, name: body.name, labels: body.labels },
    );
  } catch (err) {
    if (err instanceof RegistrationTokenRefusedError)
      throw new UnauthenticatedError(err.message, { cause: err });
    throw err;
  }
  const { cluster, sync } = registration;
  const registered = (await deps.clusters.get(cluster.id)) ?? cluster;
  return json(
    201,
    {
      cluster: clusterView(registered),
      token: registration.token,
      queueUrl: cluster.queueUrl ?? null,
      publicKey: publicKeyOf(deps),
      sync: syncReportView(sync),
    },
    { location: `/v1/admin/clusters/${encodeURIComponent(cluster.id)}` },
  );
}

/**
 * `GET /v1/clusters/{id}` with the cluster's token: its own registration (labels, queue,
 * heartbeat) and the hub's public key. A 200 proves the token works.
 */
export async function getOwnClusterRoute(deps: Deps, req: ApiRequest): Promise<ApiResult> {
  if (!req.cluster) throw new Error(`route ${req.route.id} ran without an authenticated cluster`);
  return json(200, { cluster: clusterView(req.cluster), publicKey: publicKeyOf(deps) });
}
