/**
 * The hub's HTTP API as the CLI uses it (docs/hub-api.md): admin routes with the admin
 * key or an IAM (SigV4) signature, the registration route with a one-time token, and a
 * cluster's own route with its token. Every refusal becomes a {@link HubApiError} that
 * carries the hub's message and the exit code it maps to.
 */

import {
  type ContentHash,
  type DesiredState,
  parseRenderedBundle,
  type RenderedBundleDocument,
} from '@flotilla/shared';
import { CliError } from '../core/errors.ts';
import { ExitCode } from '../core/exit-codes.ts';

export type Labels = Readonly<Record<string, string>>;

// The hub's own wire types: one definition for the hub that writes them and the CLI that reads them.
import type {
  ClusterHistory,
  ClusterView,
  FleetErrorView,
  RegistrationTokenView,
  RollbackResult,
  RolloutCommandResult,
  RolloutView,
  SourceView,
  SyncReportView,
  TenantKeyView,
} from '@flotilla/shared/hub';

export type {
  ClusterHistory,
  ClusterView,
  FleetErrorView,
  RegistrationTokenView,
  RollbackResult,
  SourceView,
  SyncReportView,
  TenantKeyView,
};

export interface HubPublicKey {
  readonly algorithm: string;
  readonly keyId: string;
  readonly publicKeyPem: string;
}

export interface Registered {
  readonly cluster: ClusterView;
  /** The cluster's token: shown once by the hub, goes into the cluster's Secret. */
  readonly token: string;
  readonly queueUrl: string | null;
  /** Set by the registration-token route; the admin route has a route of its own for it. */
  readonly publicKey?: HubPublicKey;
}

/** What the hub answered when it said no. */
export class HubApiError extends CliError {
  readonly status: number;
  readonly code: string;
  readonly field: string | undefined;
  readonly requestId: string | undefined;

  constructor(
    status: number,
    code: string,
    message: string,
    extra: { field?: string; requestId?: string; hint?: string } = {},
  ) {
    super(exitCodeForStatus(status), message, extra.hint ? { hint: extra.hint } : undefined);
    this.name = 'HubApiError';
    this.status = status;
    this.code = code;
    this.field = extra.field;
    this.requestId = extra.requestId;
  }
}

export function exitCodeForStatus(status: number): ExitCode {
  if (status === 400 || status === 413 || status === 415) return ExitCode.Usage;
  if (status === 401 || status === 403) return ExitCode.Unauthorized;
  if (status === 404) return ExitCode.NotFound;
  if (status === 409) return ExitCode.Conflict;
  if (status >= 500) return ExitCode.Unavailable;
  return ExitCode.Failure;
}

/** Signs an admin request (IAM mode); returns the headers to add. */
export type RequestSigner = (request: {
  readonly method: string;
  readonly url: URL;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string | undefined;
}) => Promise<Record<string, string>>;

export type AdminCredentials =
  | { readonly kind: 'key'; readonly key: string }
  | { readonly kind: 'signer'; readonly sign: RequestSigner }
  | { readonly kind: 'none' };

export interface HubClientOptions {
  readonly baseUrl: string;
  readonly admin: AdminCredentials;
  readonly fetch?: typeof fetch;
  readonly timeoutMs?: number;
  readonly userAgent?: string;
  /**
   * Act as this tenant's admin: status, sync, preview, clusters, history and rollouts go to
   * the tenant's routes (`/v1/tenants/<tenant>/...`) instead of the admin ones.
   */
  readonly tenant?: string;
}

type Auth =
  | { readonly kind: 'admin' }
  | { readonly kind: 'bearer'; readonly token: string }
  | { readonly kind: 'none' };

export class HubClient {
  readonly baseUrl: string;
  readonly #admin: AdminCredentials;
  readonly #fetch: typeof fetch;
  readonly #timeoutMs: number;
  readonly #userAgent: string;
  /** The tenant whose routes the scoped calls use, if any. */
  readonly tenant: string | undefined;

  constructor(opts: HubClientOptions) {
    this.tenant = opts.tenant;
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.#admin = opts.admin;
    this.#fetch = opts.fetch ?? fetch;
    this.#timeoutMs = opts.timeoutMs ?? 60_000;
    this.#userAgent = opts.userAgent ?? 'flotilla-cli';
  }

  /** Whether admin routes can be called at all (a key or IAM is configured). */
  get hasAdmin(): boolean {
    return this.#admin.kind !== 'none';
  }

  /** The admin credentials for one request: the key as a bearer token, or a SigV4 signature. */
  async #adminHeaders(
    method: string,
    url: URL,
    headers: Readonly<Record<string, string>>,
    body: string | undefined,
  ): Promise<Record<string, string>> {
    if (this.#admin.kind === 'none') {
      throw new CliError(
        ExitCode.Config,
        'no admin credentials: this command needs the hub admin key or IAM',
        {
          hint: 'set FLOTILLA_ADMIN_KEY (or adminKey in ~/.config/flotilla/config.yaml), or FLOTILLA_AUTH=iam against a hub in AWS',
        },
      );
    }
    if (this.#admin.kind === 'key') return { authorization: `Bearer ${this.#admin.key}` };
    return this.#admin.sign({ method, url, headers, body });
  }

  /**
   * Sends one admin request as given (path and query under the hub's base URL) with the
   * admin credentials added here, and returns the hub's answer as it is, whatever its
   * status: what `flotilla dashboard` forwards for the browser, which never holds a key.
   */
  async forwardAdmin(request: {
    readonly method: string;
    readonly pathAndQuery: string;
    readonly headers: Readonly<Record<string, string>>;
    readonly body?: string;
    readonly signal?: AbortSignal;
  }): Promise<Response> {
    const url = new URL(`${this.baseUrl}${request.pathAndQuery}`);
    const headers: Record<string, string> = { ...request.headers, 'user-agent': this.#userAgent };
    Object.assign(headers, await this.#adminHeaders(request.method, url, headers, request.body));
    return this.#fetch(url, {
      method: request.method,
      headers,
      body: request.body,
      signal: request.signal ?? AbortSignal.timeout(this.#timeoutMs),
    });
  }

  async #request<T>(
    method: string,
    path: string,
    auth: Auth,
    body?: unknown,
  ): Promise<{ status: number; value: T; raw: string }> {
    const url = new URL(`${this.baseUrl}${path}`);
    const text = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': this.#userAgent };
    if (text !== undefined) headers['content-type'] = 'application/json';
    if (auth.kind === 'bearer') headers.authorization = `Bearer ${auth.token}`;
    if (auth.kind === 'admin') Object.assign(headers, await this.#adminHeaders(method, url, headers, text));
    let res: Response;
    try {
      res = await this.#fetch(url, {
        method,
        headers,
        body: text,
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (err) {
      const reason = (err as { cause?: { code?: string; message?: string } }).cause;
      const detail = reason?.code ?? reason?.message ?? (err as Error).message;
      throw new CliError(ExitCode.Unavailable, `cannot reach the hub at ${this.baseUrl}: ${detail}`, {
        cause: err,
        hint: 'check --hub / FLOTILLA_HUB_URL and that the hub is running',
      });
    }
    const raw = await res.text();
    let value: unknown;
    if (raw !== '') {
      try {
        value = JSON.parse(raw);
      } catch {
        value = undefined;
      }
    }
    if (res.status >= 400) {
      const error = (
        value as { error?: { code?: string; message?: string; field?: string; requestId?: string } }
      )?.error;
      const message =
        error?.message ??
        `the hub answered ${res.status} ${res.statusText}${raw && !value ? `: ${raw.slice(0, 200)}` : ''}`;
      throw new HubApiError(res.status, error?.code ?? 'http_error', message, {
        ...(error?.field ? { field: error.field } : {}),
        ...((error?.requestId ?? res.headers.get('x-request-id'))
          ? { requestId: (error?.requestId ?? res.headers.get('x-request-id')) as string }
          : {}),
      });
    }
    return { status: res.status, value: value as T, raw };
  }

  /** A route that exists for the platform (`/v1/admin<path>`) and for each tenant (`/v1/tenants/<tenant><path>`). */
  #scoped(path: string): string {
    return this.tenant === undefined ? `/v1/admin${path}` : `/v1/tenants/${enc(this.tenant)}${path}`;
  }

  // Admin routes (and, for those a tenant has too, the tenant's).

  async listClusters(selector?: string): Promise<ClusterView[]> {
    const query = selector ? `?selector=${encodeURIComponent(selector)}` : '';
    return (
      await this.#request<{ clusters: ClusterView[] }>('GET', this.#scoped(`/clusters${query}`), {
        kind: 'admin',
      })
    ).value.clusters;
  }

  /**
   * The cluster's current desired state (the signed manifest's content), or null while it
   * has none. @throws HubApiError 404 when no such cluster is registered.
   */
  async clusterDesiredState(id: string): Promise<DesiredState | null> {
    try {
      return (
        await this.#request<{ manifest: DesiredState }>(
          'GET',
          `/v1/admin/clusters/${enc(id)}/desired-state`,
          {
            kind: 'admin',
          },
        )
      ).value.manifest;
    } catch (err) {
      if (err instanceof HubApiError && err.status === 404 && /no desired state/.test(err.message))
        return null;
      throw err;
    }
  }

  /** A stored rendered bundle, checked against its hash. */
  async renderedBundle(hash: ContentHash): Promise<RenderedBundleDocument> {
    const { raw } = await this.#request<unknown>('GET', `/v1/admin/bundles/${enc(hash)}`, { kind: 'admin' });
    return parseRenderedBundle(raw, hash);
  }

  /** The cluster, or undefined when the hub has none by that name. */
  async getCluster(id: string): Promise<ClusterView | undefined> {
    try {
      return (
        await this.#request<{ cluster: ClusterView }>('GET', `/v1/admin/clusters/${enc(id)}`, {
          kind: 'admin',
        })
      ).value.cluster;
    } catch (err) {
      if (err instanceof HubApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  async registerCluster(name: string, labels: Labels): Promise<Registered> {
    return (
      await this.#request<Registered>('POST', '/v1/admin/clusters', { kind: 'admin' }, { name, labels })
    ).value;
  }

  async deregisterCluster(id: string): Promise<void> {
    await this.#request('DELETE', `/v1/admin/clusters/${enc(id)}`, { kind: 'admin' });
  }

  async relabelCluster(
    id: string,
    change: { set?: Labels; remove?: readonly string[] },
  ): Promise<{ cluster: ClusterView; sync: SyncReportView }> {
    return (
      await this.#request<{ cluster: ClusterView; sync: SyncReportView }>(
        'PATCH',
        `/v1/admin/clusters/${enc(id)}/labels`,
        { kind: 'admin' },
        change,
      )
    ).value;
  }

  /** One page of the cluster's generations, newest first. */
  async clusterHistory(id: string, page: { limit?: number; before?: number } = {}): Promise<ClusterHistory> {
    const query = new URLSearchParams();
    if (page.limit !== undefined) query.set('limit', String(page.limit));
    if (page.before !== undefined) query.set('before', String(page.before));
    const qs = query.size > 0 ? `?${query}` : '';
    return (
      await this.#request<ClusterHistory>('GET', this.#scoped(`/clusters/${enc(id)}/history${qs}`), {
        kind: 'admin',
      })
    ).value;
  }

  async rollbackCluster(
    id: string,
    request: { toGeneration: number; bundle?: string } | { clear: true },
  ): Promise<RollbackResult> {
    return (
      await this.#request<RollbackResult>(
        'POST',
        `/v1/admin/clusters/${enc(id)}/rollback`,
        { kind: 'admin' },
        request,
      )
    ).value;
  }

  /** Every bundle's rollout. */
  async listRollouts(): Promise<{ rollouts: RolloutView[] }> {
    return (
      await this.#request<{ rollouts: RolloutView[] }>('GET', this.#scoped('/rollouts'), { kind: 'admin' })
    ).value;
  }

  async getRollout(bundle: string): Promise<RolloutView> {
    return (
      await this.#request<RolloutView>('GET', this.#scoped(`/rollouts/${enc(bundle)}`), { kind: 'admin' })
    ).value;
  }

  /** pause, resume, promote (open the next wave now) or abort (revert now). */
  async rolloutCommand(bundle: string, command: string): Promise<RolloutCommandResult> {
    return (
      await this.#request<RolloutCommandResult>(
        'POST',
        this.#scoped(`/rollouts/${enc(bundle)}/${enc(command)}`),
        {
          kind: 'admin',
        },
      )
    ).value;
  }

  async rotateClusterToken(id: string): Promise<string> {
    return (
      await this.#request<{ token: string }>('POST', `/v1/admin/clusters/${enc(id)}/rotate-token`, {
        kind: 'admin',
      })
    ).value.token;
  }

  /** Asks the cluster's agent (through the hub) for a new age key; the answer holds the recipients as they stand now. */
  async rotateClusterKey(
    id: string,
  ): Promise<{ cluster: ClusterView; rotation: { id: string; requestedAt: string } }> {
    return (
      await this.#request<{ cluster: ClusterView; rotation: { id: string; requestedAt: string } }>(
        'POST',
        `/v1/admin/clusters/${enc(id)}/rotate-key`,
        { kind: 'admin' },
      )
    ).value;
  }

  async publicKey(): Promise<HubPublicKey> {
    return (await this.#request<HubPublicKey>('GET', '/v1/admin/public-key', { kind: 'admin' })).value;
  }

  async preview<T>(body: unknown): Promise<T> {
    return (await this.#request<T>('POST', this.#scoped('/preview'), { kind: 'admin' }, body)).value;
  }

  async sync(): Promise<SyncReportView> {
    return (await this.#request<SyncReportView>('POST', this.#scoped('/sync'), { kind: 'admin' })).value;
  }

  async status<T>(selector?: string): Promise<T> {
    const query = selector ? `?selector=${encodeURIComponent(selector)}` : '';
    return (await this.#request<T>('GET', this.#scoped(`/status${query}`), { kind: 'admin' })).value;
  }

  async createRegistrationToken(request: {
    ttlSeconds: number;
    labels: Labels;
    description?: string;
  }): Promise<{ token: string; registrationToken: RegistrationTokenView }> {
    return (
      await this.#request<{ token: string; registrationToken: RegistrationTokenView }>(
        'POST',
        '/v1/admin/registration-tokens',
        { kind: 'admin' },
        request,
      )
    ).value;
  }

  async listRegistrationTokens(): Promise<RegistrationTokenView[]> {
    return (
      await this.#request<{ registrationTokens: RegistrationTokenView[] }>(
        'GET',
        '/v1/admin/registration-tokens',
        { kind: 'admin' },
      )
    ).value.registrationTokens;
  }

  async revokeRegistrationToken(id: string): Promise<void> {
    await this.#request('DELETE', `/v1/admin/registration-tokens/${enc(id)}`, { kind: 'admin' });
  }

  /** Issues an admin key for a tenant (platform admin); the key is in the answer only. */
  /** Every source (a tenant's: its own), from the platform repository and the admin API. */
  async listSources(): Promise<SourceView[]> {
    return (
      await this.#request<{ sources: SourceView[] }>('GET', this.#scoped('/sources'), { kind: 'admin' })
    ).value.sources;
  }

  /** Declares a source through the admin API: `document` is the FleetSource document as JSON. */
  async declareSource(document: unknown): Promise<SourceView> {
    return (
      await this.#request<{ source: SourceView }>('POST', '/v1/admin/sources', { kind: 'admin' }, document)
    ).value.source;
  }

  async removeSource(name: string): Promise<void> {
    await this.#request('DELETE', `/v1/admin/sources/${enc(name)}`, { kind: 'admin' });
  }

  /** Syncs now; the report names the source asked for and its fetch. */
  async syncSource(name: string): Promise<SyncReportView & { source: SourceView }> {
    return (
      await this.#request<SyncReportView & { source: SourceView }>(
        'POST',
        this.#scoped(`/sources/${enc(name)}/sync`),
        { kind: 'admin' },
      )
    ).value;
  }

  async createTenantKey(
    tenant: string,
    request: { description?: string } = {},
  ): Promise<{ key: string; tenantKey: TenantKeyView }> {
    return (
      await this.#request<{ key: string; tenantKey: TenantKeyView }>(
        'POST',
        `/v1/admin/tenants/${enc(tenant)}/keys`,
        { kind: 'admin' },
        request,
      )
    ).value;
  }

  async listTenantKeys(tenant: string): Promise<TenantKeyView[]> {
    return (
      await this.#request<{ tenantKeys: TenantKeyView[] }>('GET', `/v1/admin/tenants/${enc(tenant)}/keys`, {
        kind: 'admin',
      })
    ).value.tenantKeys;
  }

  async revokeTenantKey(tenant: string, id: string): Promise<void> {
    await this.#request('DELETE', `/v1/admin/tenants/${enc(tenant)}/keys/${enc(id)}`, { kind: 'admin' });
  }

  // Routes authorised by other tokens.

  /** Registers with a one-time registration token instead of admin credentials. */
  async registerWithToken(registrationToken: string, name: string, labels: Labels): Promise<Registered> {
    return (
      await this.#request<Registered>(
        'POST',
        '/v1/register',
        { kind: 'bearer', token: registrationToken },
        { name, labels },
      )
    ).value;
  }

  /**
   * The cluster's own registration, read with its token: undefined when the hub does not
   * accept the token (unknown, rotated or removed cluster).
   */
  async ownCluster(
    id: string,
    clusterToken: string,
  ): Promise<{ cluster: ClusterView; publicKey: HubPublicKey } | undefined> {
    try {
      return (
        await this.#request<{ cluster: ClusterView; publicKey: HubPublicKey }>(
          'GET',
          `/v1/clusters/${enc(id)}`,
          {
            kind: 'bearer',
            token: clusterToken,
          },
        )
      ).value;
    } catch (err) {
      if (err instanceof HubApiError && (err.status === 401 || err.status === 403)) return undefined;
      throw err;
    }
  }
}

function enc(segment: string): string {
  return encodeURIComponent(segment);
}
