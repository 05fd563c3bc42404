import { HttpClient } from '../http/request.ts';
import type { KubeConnection } from './connection.ts';

/**
 * An error answer of the API server. `message` is the server's own message (what kubectl
 * prints), which the agent reports to the hub as is.
 */
export class KubeApiError extends Error {
  readonly status: number;
  /** The Status `reason` (`NotFound`, `Invalid`, `Conflict`, `Forbidden`, ...). */
  readonly reason: string | undefined;
  readonly details: unknown;

  constructor(status: number, message: string, reason?: string, details?: unknown, options?: ErrorOptions) {
    super(message, options);
    this.name = 'KubeApiError';
    this.status = status;
    this.reason = reason;
    this.details = details;
  }
}

export interface KubeResponse<T> {
  readonly status: number;
  readonly body: T;
  /** The server's `Date` header (its clock, second precision). */
  readonly date: string | undefined;
}

export interface KubeClientOptions {
  /** Connections kept to the API server; the agent's apply concurrency should not exceed it. */
  readonly maxSockets?: number;
  readonly timeoutMs?: number;
  readonly userAgent?: string;
  /**
   * A user every request acts as (the `Impersonate-User` header), e.g.
   * `system:serviceaccount:flotilla-system:flotilla-tenant-team-a`: the API server
   * authorizes each request as that user, provided the client's own identity may
   * `impersonate` it. The API server gives a service account its usual groups.
   */
  readonly impersonate?: string;
}

/** A list answer, as the API server sends it. */
export interface KubeList<T> {
  readonly items: T[];
  readonly metadata?: { readonly continue?: string; readonly resourceVersion?: string };
}

/**
 * A thin JSON client of the Kubernetes API: paths in, parsed JSON out, error answers as
 * {@link KubeApiError}. It holds one keep-alive connection pool; everything Kubernetes-
 * specific beyond HTTP (discovery, apply, readiness) is built on it by the callers.
 */
export class KubeClient {
  readonly server: string;
  readonly #http: HttpClient;
  readonly #conn: KubeConnection;
  readonly #timeoutMs: number;
  readonly #userAgent: string;
  readonly #opts: KubeClientOptions;
  /** Whether {@link close} closes the connection pool (not for a view from {@link impersonating}). */
  readonly #ownsPool: boolean;
  /** The user this client's requests act as, if any. */
  readonly impersonate: string | undefined;

  constructor(conn: KubeConnection, opts: KubeClientOptions = {}, pool?: HttpClient) {
    this.server = conn.server;
    this.#conn = conn;
    this.#opts = opts;
    this.#ownsPool = pool === undefined;
    this.#http = pool ?? new HttpClient(conn.server, { maxSockets: opts.maxSockets ?? 32, tls: conn.tls });
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
    this.#userAgent = opts.userAgent ?? 'flotilla-agent';
    this.impersonate = opts.impersonate;
  }

  /**
   * The same connection to the API server, acting as `user` (see
   * {@link KubeClientOptions.impersonate}). It shares this client's connection pool and
   * credentials; closing it leaves the pool to this client.
   */
  impersonating(user: string): KubeClient {
    return new KubeClient(this.#conn, { ...this.#opts, impersonate: user }, this.#http);
  }

  /**
   * One request. Bodies are JSON (an apply patch is JSON too, which is valid YAML).
   *
   * @throws {KubeApiError} for an error answer.
   * @throws {HttpTransportError} when the server cannot be reached.
   */
  async request<T = unknown>(
    method: string,
    path: string,
    opts: { body?: unknown; contentType?: string; signal?: AbortSignal } = {},
  ): Promise<KubeResponse<T>> {
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': this.#userAgent };
    const token = this.#conn.token?.();
    if (token) headers.authorization = `Bearer ${token}`;
    else if (this.#conn.basicAuth) headers.authorization = `Basic ${this.#conn.basicAuth}`;
    if (this.impersonate !== undefined) headers['impersonate-user'] = this.impersonate;
    let payload: string | undefined;
    if (opts.body !== undefined) {
      payload = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
      headers['content-type'] = opts.contentType ?? 'application/json';
    }
    const res = await this.#http.request(path, {
      method,
      headers,
      body: payload,
      timeoutMs: this.#timeoutMs,
      signal: opts.signal,
    });
    const text = res.body.toString('utf8');
    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      body = text;
    }
    if (res.status >= 200 && res.status < 300)
      return { status: res.status, body: body as T, date: res.headers.date };
    const status = (typeof body === 'object' && body !== null ? body : {}) as {
      message?: string;
      reason?: string;
      details?: unknown;
    };
    const message = status.message ?? (text.trim() || `${method} ${path}: HTTP ${res.status}`).slice(0, 2000);
    throw new KubeApiError(res.status, message, status.reason, status.details);
  }

  /** GET; undefined when the object does not exist. */
  async get<T>(path: string): Promise<T | undefined> {
    try {
      return (await this.request<T>('GET', path)).body;
    } catch (e) {
      if (e instanceof KubeApiError && e.status === 404) return undefined;
      throw e;
    }
  }

  /** Every item of a list, following `continue` tokens. */
  async list<T>(path: string, opts: { labelSelector?: string; limit?: number } = {}): Promise<T[]> {
    const items: T[] = [];
    let token: string | undefined;
    do {
      const q = new URLSearchParams();
      if (opts.labelSelector) q.set('labelSelector', opts.labelSelector);
      q.set('limit', String(opts.limit ?? 500));
      if (token) q.set('continue', token);
      const page = (await this.request<KubeList<T>>('GET', `${path}?${q}`)).body;
      items.push(...page.items);
      token = page.metadata?.continue || undefined;
    } while (token);
    return items;
  }

  /** Closes the connections no request is using. */
  closeIdle(): Promise<void> {
    return this.#ownsPool ? this.#http.closeIdle() : Promise.resolve();
  }

  close(): void {
    if (this.#ownsPool) this.#http.close();
  }
}
