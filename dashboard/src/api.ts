/**
 * Everything the dashboard asks the hub, in one place: the page calls `/api/*` on the
 * `flotilla dashboard` server, which adds the operator's credentials and forwards to the
 * hub's admin routes (docs/hub-api.md).
 *
 * The fleet is read a page at a time, filtered on the hub (`GET /v1/admin/status` with
 * `view=matrix`), so a fleet of 10,000 clusters costs the page one screenful of rows, not
 * the whole fleet. Every answer (or failure) is reported to {@link DashboardApi.onHeard},
 * which is how the header knows when the hub last answered and why it did not.
 */
import type {
  ClusterHistory,
  ClusterRowView,
  ClusterStatusView,
  FleetBundles,
  FleetPreview,
  FleetStatus,
  FleetStatusPage,
  RolloutCommandResult,
  RolloutView,
} from '@flotilla/shared/hub';
import type { RenderedBundleDocument } from '@flotilla/shared/object-diff';

/** Sent with every call: the server refuses API calls without it (a page elsewhere cannot add it). */
const dashboardHeader = { 'x-flotilla-dashboard': '1' } as const;

/** A refusal by the hub (or the dashboard server), or no answer at all (`status` 0). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  /** The request field the hub named as wrong, when it named one. */
  readonly field: string | undefined;
  constructor(status: number, code: string, message: string, options?: ErrorOptions & { field?: string }) {
    super(message, options);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.field = options?.field;
  }

  /** The hub refused the operator's credentials. */
  get unauthorized(): boolean {
    return this.status === 401 || this.status === 403;
  }

  /** The hub (or the dashboard server) could not be reached. */
  get unreachable(): boolean {
    return this.status === 0 || this.status === 502 || this.status === 503 || this.status === 504;
  }
}

export type Fresh<T> =
  | { readonly changed: true; readonly value: T; readonly etag: string | null }
  | { readonly changed: false };

export type RolloutCommand = 'pause' | 'resume' | 'promote' | 'abort';

/** One page of the fleet as matrix rows (`view=matrix`). */
export type FleetMatrixPage = Omit<FleetStatusPage, 'clusters'> & {
  readonly clusters: readonly ClusterRowView[];
};

/** One cluster's full status, as `GET /v1/admin/clusters/{id}/status` answers. */
export type ClusterStatusAnswer = Omit<FleetStatus, 'clusters' | 'summary' | 'rollouts'> & {
  readonly cluster: ClusterStatusView;
};

/** What narrows a page of the fleet; empty strings mean "no filter". */
export interface PageQuery {
  readonly selector: string;
  /** A cluster state (`Ready`, `Failed`, ..., `Offline`), or with `bundle` that bundle's state. */
  readonly state: string;
  readonly search: string;
  /** Only clusters that get this bundle. */
  readonly bundle?: string;
  readonly offset: number;
  readonly limit: number;
}

/** Whether the last call reached the hub: `null` when it answered, else why not. */
export type Heard =
  | { readonly at: number; readonly error: null }
  | { readonly at: null; readonly error: ApiError };

export interface DashboardApi {
  /** One page of the fleet as matrix rows; `{ changed: false }` when the hub answers 304 to `etag`. */
  fleetPage(query: PageQuery, etag: string | null): Promise<Fresh<FleetMatrixPage>>;
  /** The matrix's columns: every bundle of the fleet with its clusters per state. */
  fleetBundles(etag: string | null): Promise<Fresh<FleetBundles>>;
  clusterStatus(id: string, etag: string | null): Promise<Fresh<ClusterStatusAnswer>>;
  clusterHistory(id: string): Promise<ClusterHistory>;
  /** The bundle references of a cluster's current desired state (name and hash), from its status view. */
  clusterBundles(id: string): Promise<readonly { readonly name: string; readonly hash: string }[]>;
  /** A stored rendered bundle by hash. */
  renderedBundle(hash: string): Promise<RenderedBundleDocument>;
  rollouts(): Promise<readonly RolloutView[]>;
  rolloutCommand(bundle: string, command: RolloutCommand): Promise<RolloutCommandResult>;
  /** Targeting of one bundle at the repo tip, without the rendered objects. */
  bundlePreview(bundle: string): Promise<FleetPreview>;
  /** Called after every call: when the hub answered, or the error when it did not. */
  onHeard(listener: (heard: Heard) => void): () => void;
}

/** The query string of a page: only what is set, so equal queries make equal URLs (one ETag each). */
export function pageSearch(query: PageQuery): string {
  const q = new URLSearchParams({ view: 'matrix', limit: String(query.limit) });
  if (query.offset > 0) q.set('offset', String(query.offset));
  if (query.selector.trim()) q.set('selector', query.selector.trim());
  if (query.state) q.set('state', query.state);
  if (query.search.trim()) q.set('search', query.search.trim());
  if (query.bundle) q.set('bundle', query.bundle);
  return q.toString();
}

/**
 * Where a hub route lives for this dashboard's operator: the platform admin's `/v1/admin/*`,
 * or for a tenant's admin the tenant's own `/v1/tenants/<tenant>/*` routes, which answer
 * only its bundles and clusters (docs/tenants.md). A route a tenant has no copy of stays
 * under `/v1/admin/`, where the hub refuses it with a 403 that names it.
 */
export function routeFor(tenant: string | null, path: string): string {
  if (tenant === null || !path.startsWith('/v1/admin/')) return path;
  const rest = path.slice('/v1/admin/'.length);
  const scoped =
    /^(status|bundles)([/?]|$)/.test(rest) ||
    /^clusters\/[^/]+\/(status|history)([?]|$)/.test(rest) ||
    /^(preview|sync)$/.test(rest) ||
    /^rollouts([/?]|$)/.test(rest);
  return scoped ? `/v1/tenants/${encodeURIComponent(tenant)}/${rest}` : path;
}

/**
 * @param tenant the tenant whose admin runs the dashboard (the page learns it from the
 *   server, `<meta name="flotilla-tenant">`), or null for the platform admin.
 */
export function createApi(
  fetchImpl: typeof fetch = (input, init) => fetch(input, init),
  tenant: string | null = null,
): DashboardApi {
  const listeners = new Set<(heard: Heard) => void>();
  const tell = (heard: Heard) => {
    for (const l of listeners) l(heard);
  };
  async function call(
    method: 'GET' | 'POST',
    path: string,
    opts: { body?: unknown; etag?: string | null } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = { ...dashboardHeader, accept: 'application/json' };
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    if (opts.etag) headers['if-none-match'] = opts.etag;
    let res: Response;
    try {
      res = await fetchImpl(`/api${routeFor(tenant, path)}`, {
        method,
        headers,
        ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
      });
    } catch (err) {
      const error = new ApiError(
        0,
        'dashboard_unreachable',
        'the flotilla dashboard command is not running',
        {
          cause: err,
        },
      );
      tell({ at: null, error });
      throw error;
    }
    if (res.status >= 400) {
      const text = await res.text();
      let body: { code?: string; message?: string; field?: string } | undefined;
      try {
        body = (JSON.parse(text) as { error?: typeof body }).error;
      } catch {
        body = undefined;
      }
      const error = new ApiError(
        res.status,
        body?.code ?? 'http_error',
        body?.message ?? `the hub answered ${res.status}`,
        body?.field ? { field: body.field } : {},
      );
      // A request the hub refused for its content (400, 404, 409) still heard from the hub.
      tell(
        error.unauthorized || error.unreachable || res.status >= 500
          ? { at: null, error }
          : { at: Date.now(), error: null },
      );
      throw error;
    }
    tell({ at: Date.now(), error: null });
    return res;
  }
  const json = async <T>(res: Response): Promise<T> => (await res.json()) as T;
  const seg = encodeURIComponent;
  async function fresh<T>(path: string, etag: string | null): Promise<Fresh<T>> {
    const res = await call('GET', path, { etag });
    if (res.status === 304) return { changed: false };
    return { changed: true, value: await json<T>(res), etag: res.headers.get('etag') };
  }

  return {
    fleetPage: (query, etag) => fresh(`/v1/admin/status?${pageSearch(query)}`, etag),
    fleetBundles: (etag) => fresh('/v1/admin/bundles', etag),
    clusterStatus: (id, etag) => fresh(`/v1/admin/clusters/${seg(id)}/status`, etag),
    async clusterHistory(id) {
      return json<ClusterHistory>(await call('GET', `/v1/admin/clusters/${seg(id)}/history?limit=25`));
    },
    async clusterBundles(id) {
      // From the cluster's status view: the same references as its desired state, and a
      // route a tenant's admin has too (cut to the tenant's bundles).
      const res = await call('GET', `/v1/admin/clusters/${seg(id)}/status`);
      const { cluster } = await json<ClusterStatusAnswer>(res);
      return cluster.bundles.map((b) => ({ name: b.name, hash: b.desiredHash }));
    },
    async renderedBundle(hash) {
      return json<RenderedBundleDocument>(await call('GET', `/v1/admin/bundles/${seg(hash)}`));
    },
    async rollouts() {
      return (await json<{ rollouts: RolloutView[] }>(await call('GET', '/v1/admin/rollouts'))).rollouts;
    },
    async rolloutCommand(bundle, command) {
      return json<RolloutCommandResult>(
        await call('POST', `/v1/admin/rollouts/${seg(bundle)}/${seg(command)}`),
      );
    },
    async bundlePreview(bundle) {
      return json<FleetPreview>(
        await call('POST', '/v1/admin/preview', { body: { commit: 'HEAD', bundle, includeObjects: false } }),
      );
    },
    onHeard(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
