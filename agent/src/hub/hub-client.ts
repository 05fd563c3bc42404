import { gunzipSync } from 'node:zlib';
import type { ClusterStatusReport } from '@flotilla/shared/agent';
import { RenderedBundleIntegrityError } from '@flotilla/shared/agent';
import { HttpClient, HttpTransportError } from '../http/request.ts';
import type { DesiredStateFetch, HubPort, StatusReceipt } from '../reconcile/ports.ts';

/**
 * The hub could not give an answer the agent can use. `retryable` is false for answers
 * that retrying soon will not change (401, 403, 400): the loop still retries, with backoff,
 * as an operator may fix the token meanwhile, but logs them as errors.
 */
export class HubError extends Error {
  readonly status: number | undefined;
  readonly code: string | undefined;
  readonly retryable: boolean;
  /** The request fields the hub named as wrong (`invalid_request` answers), e.g. `kubeVersion`. */
  readonly fields: readonly string[];

  constructor(
    message: string,
    opts: {
      status?: number;
      code?: string;
      retryable: boolean;
      fields?: readonly string[];
      cause?: unknown;
    },
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'HubError';
    this.status = opts.status;
    this.code = opts.code;
    this.retryable = opts.retryable;
    this.fields = opts.fields ?? [];
  }
}

export interface HubClientOptions {
  readonly baseUrl: string;
  readonly clusterId: string;
  /** The cluster's bearer token. Sent in one header, never logged. */
  readonly token: string;
  readonly agentVersion: string;
  readonly timeoutMs?: number;
}

/** The hub's agent routes (docs/hub-api.md) over HTTPS, with the cluster's token. */
export class HubClient implements HubPort {
  readonly #http: HttpClient;
  readonly #clusterId: string;
  readonly #headers: Record<string, string>;
  readonly #timeoutMs: number;

  constructor(opts: HubClientOptions) {
    this.#http = new HttpClient(opts.baseUrl, { maxSockets: 4 });
    this.#clusterId = encodeURIComponent(opts.clusterId);
    this.#headers = {
      authorization: `Bearer ${opts.token}`,
      'user-agent': `flotilla-agent/${opts.agentVersion}`,
      accept: 'application/json',
    };
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
  }

  async #send(
    method: string,
    path: string,
    opts: { headers?: Record<string, string>; body?: string; signal?: AbortSignal | undefined } = {},
  ) {
    try {
      return await this.#http.request(path, {
        method,
        headers: { ...this.#headers, ...(opts.headers ?? {}) },
        body: opts.body,
        timeoutMs: this.#timeoutMs,
        signal: opts.signal,
      });
    } catch (e) {
      if (e instanceof HttpTransportError)
        throw new HubError(`hub unreachable: ${e.message}`, { retryable: true, cause: e });
      throw e;
    }
  }

  #error(what: string, status: number, body: Buffer): HubError {
    let code: string | undefined;
    const text = body.toString('utf8');
    let message = text.slice(0, 500);
    const fields = new Set<string>();
    try {
      const parsed = JSON.parse(text) as {
        error?: { code?: string; message?: string; field?: unknown; problems?: { field?: unknown }[] };
      };
      code = parsed.error?.code;
      message = parsed.error?.message ?? message;
      for (const f of [parsed.error?.field, ...(parsed.error?.problems ?? []).map((p) => p?.field)])
        if (typeof f === 'string') fields.add(f);
    } catch {
      // not JSON: keep the text
    }
    const retryable = status >= 500 || status === 429 || status === 408;
    return new HubError(`${what}: HTTP ${status}${code ? ` ${code}` : ''}: ${message}`, {
      status,
      ...(code ? { code } : {}),
      retryable,
      fields: [...fields],
    });
  }

  async fetchDesiredState(ifNoneMatch: string | undefined, signal?: AbortSignal): Promise<DesiredStateFetch> {
    const res = await this.#send('GET', `/v1/clusters/${this.#clusterId}/desired-state`, {
      headers: ifNoneMatch ? { 'if-none-match': `"${ifNoneMatch}"` } : {},
      signal,
    });
    if (res.status === 304) return { kind: 'not-modified' };
    if (res.status === 404) {
      const err = this.#error('desired state', 404, res.body);
      // 404 also answers an unknown route: only the hub's own "no desired state yet" means none.
      if (err.code === 'not_found') return { kind: 'none', message: err.message };
      throw err;
    }
    if (res.status !== 200) throw this.#error('desired state', res.status, res.body);
    let body: unknown;
    try {
      body = JSON.parse(res.body.toString('utf8'));
    } catch (e) {
      // Verification refuses it; an empty or garbled answer must never read as "no bundles".
      body = { unparseable: e instanceof Error ? e.message : String(e) };
    }
    const etag = String(res.headers.etag ?? '')
      .replace(/^W\//, '')
      .replace(/^"|"$/g, '');
    return { kind: 'modified', body, etag };
  }

  /**
   * A rendered bundle, fetched in the parts the hub stores it in (slices of one gzip
   * stream, so that no answer is larger than a part whatever the bundle's size), then
   * gunzipped. Falls back to the whole-bundle route on a hub without parts.
   */
  async fetchBundle(hash: string, signal?: AbortSignal): Promise<string> {
    const base = `/v1/bundles/${encodeURIComponent(hash)}`;
    const first = await this.#send('GET', `${base}/parts/0`, { signal });
    if (first.status === 404 && this.#error('', 404, first.body).code === 'route_not_found') {
      const whole = await this.#send('GET', base, { headers: { 'accept-encoding': 'gzip' }, signal });
      if (whole.status !== 200) throw this.#error(`bundle ${hash}`, whole.status, whole.body);
      return whole.body.toString('utf8');
    }
    if (first.status !== 200) throw this.#error(`bundle ${hash} part 0`, first.status, first.body);
    const count = Number(first.headers['x-flotilla-parts'] ?? '1');
    if (!Number.isInteger(count) || count < 1 || count > 100_000) {
      throw new HubError(`bundle ${hash}: bad x-flotilla-parts "${first.headers['x-flotilla-parts']}"`, {
        retryable: false,
      });
    }
    const parts: Buffer[] = new Array(count);
    parts[0] = first.body;
    let next = 1;
    const worker = async () => {
      while (next < count) {
        const i = next++;
        const res = await this.#send('GET', `${base}/parts/${i}`, { signal });
        if (res.status !== 200) throw this.#error(`bundle ${hash} part ${i}`, res.status, res.body);
        parts[i] = res.body;
      }
    };
    await Promise.all(Array.from({ length: Math.min(4, count - 1) }, worker));
    try {
      return gunzipSync(Buffer.concat(parts)).toString('utf8');
    } catch (e) {
      // Parts that do not make one gzip stream cannot hash right either: the bundle is refused.
      throw new RenderedBundleIntegrityError(`bundle ${hash}: its ${count} parts are not one gzip stream`, {
        cause: e,
      });
    }
  }

  async postStatus(report: ClusterStatusReport, signal?: AbortSignal): Promise<StatusReceipt> {
    const res = await this.#send('POST', `/v1/clusters/${this.#clusterId}/status`, {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(report),
      signal,
    });
    if (res.status !== 200) throw this.#error('status', res.status, res.body);
    try {
      return JSON.parse(res.body.toString('utf8')) as StatusReceipt;
    } catch {
      return {};
    }
  }

  /** Closes the connections no request is using. */
  closeIdle(): Promise<void> {
    return this.#http.closeIdle();
  }

  close(): void {
    this.#http.close();
  }
}
