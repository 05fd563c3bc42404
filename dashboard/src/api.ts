/**
 * Everything the dashboard asks the hub, in one place: the page calls `/api/*` on the
 * `flotilla dashboard` server, which adds the operator's credentials and forwards to the
 * hub's admin routes (docs/hub-api.md). When the hub's fleet status grows paging and
 * server-side filters, only {@link DashboardApi.fleetStatus} changes.
 */
import type {
  ClusterHistory,
  FleetPreview,
  FleetStatus,
  RolloutCommandResult,
  RolloutView,
} from '@flotilla/shared/hub';

/** Sent with every call: the server refuses API calls without it (a page elsewhere cannot add it). */
const dashboardHeader = { 'x-flotilla-dashboard': '1' } as const;

/** A refusal by the hub (or the dashboard server), or no answer at all (`status` 0). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
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

export interface DashboardApi {
  /** The fleet's status; `{ changed: false }` when the hub answers 304 to `etag`. */
  fleetStatus(etag: string | null): Promise<Fresh<FleetStatus>>;
  clusterHistory(id: string): Promise<ClusterHistory>;
  rollouts(): Promise<readonly RolloutView[]>;
  rolloutCommand(bundle: string, command: RolloutCommand): Promise<RolloutCommandResult>;
  /** Targeting of one bundle at the repo tip, without the rendered objects. */
  bundlePreview(bundle: string): Promise<FleetPreview>;
}

export function createApi(fetchImpl: typeof fetch = (input, init) => fetch(input, init)): DashboardApi {
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
      res = await fetchImpl(`/api${path}`, {
        method,
        headers,
        ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
      });
    } catch (err) {
      throw new ApiError(0, 'dashboard_unreachable', 'the flotilla dashboard command is not running', {
        cause: err,
      });
    }
    if (res.status >= 400) {
      const text = await res.text();
      let error: { code?: string; message?: string } | undefined;
      try {
        error = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error;
      } catch {
        error = undefined;
      }
      throw new ApiError(
        res.status,
        error?.code ?? 'http_error',
        error?.message ?? `the hub answered ${res.status}`,
      );
    }
    return res;
  }
  const json = async <T>(res: Response): Promise<T> => (await res.json()) as T;
  const seg = encodeURIComponent;

  return {
    async fleetStatus(etag) {
      const res = await call('GET', '/v1/admin/status', { etag });
      if (res.status === 304) return { changed: false };
      return { changed: true, value: await json<FleetStatus>(res), etag: res.headers.get('etag') };
    },
    async clusterHistory(id) {
      return json<ClusterHistory>(await call('GET', `/v1/admin/clusters/${seg(id)}/history?limit=25`));
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
  };
}
