import type * as Http from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import type * as Https from 'node:https';
import { gunzip } from 'node:zlib';
import { nodeHttp, nodeHttps, nodeTls } from '../builtins.ts';

/** TLS settings for one server (Kubernetes API servers use their own CA and often client certificates). */
export interface TlsOptions {
  readonly ca?: string | Buffer | undefined;
  readonly cert?: string | Buffer | undefined;
  readonly key?: string | Buffer | undefined;
  readonly rejectUnauthorized?: boolean | undefined;
  readonly servername?: string | undefined;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The body, already gunzipped when the server sent `Content-Encoding: gzip`. */
  readonly body: Buffer;
}

/**
 * The agent's TLS options, with one secure context for a private CA or a client
 * certificate: given as options, they would be parsed into a new OpenSSL context for every
 * connection (sixteen at a time towards the API server).
 */
function tlsOptions(tls: TlsOptions | undefined): Https.AgentOptions {
  if (!tls) return {};
  const { ca, cert, key, ...rest } = tls;
  if (ca === undefined && cert === undefined && key === undefined) return rest;
  return {
    ...rest,
    secureContext: nodeTls.createSecureContext({
      ...(ca !== undefined ? { ca } : {}),
      ...(cert !== undefined ? { cert } : {}),
      ...(key !== undefined ? { key } : {}),
    }),
  };
}

/** A network failure or timeout: nothing came back from the server. */
export class HttpTransportError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'HttpTransportError';
  }
}

export interface RequestOptions {
  readonly method: string;
  readonly headers?: Record<string, string>;
  readonly body?: string | Buffer | undefined;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
}

/**
 * A keep-alive HTTP(S) client for one origin. Built on node:http(s) rather than fetch:
 * it needs client certificates and a private CA, and loading fetch's implementation
 * would cost the agent memory it has no other use for.
 */
export class HttpClient {
  readonly origin: URL;
  readonly #agent: Http.Agent | Https.Agent;
  readonly #https: boolean;

  constructor(
    origin: string | URL,
    opts: { maxSockets?: number; tls?: TlsOptions; idleTimeoutMs?: number } = {},
  ) {
    this.origin = new URL(origin);
    this.#https = this.origin.protocol === 'https:';
    const common = {
      keepAlive: true,
      maxSockets: opts.maxSockets ?? 16,
      maxFreeSockets: opts.maxSockets ?? 16,
      // Idle connections close: an idle agent keeps no TLS sessions (and their buffers) open.
      timeout: opts.idleTimeoutMs ?? 15_000,
    };
    this.#agent = this.#https
      ? new nodeHttps.Agent({ ...common, ...tlsOptions(opts.tls) })
      : new nodeHttp.Agent(common);
  }

  /**
   * Sends one request to `path` (absolute, with its query) under the origin's base path.
   *
   * @throws {HttpTransportError} when no response arrives (connection refused, reset, timeout).
   */
  request(path: string, opts: RequestOptions): Promise<HttpResponse> {
    const base = this.origin.pathname.replace(/\/$/, '');
    const url = new URL(`${base}${path}`, this.origin);
    const send = this.#https ? nodeHttps.request : nodeHttp.request;
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = { ...(opts.headers ?? {}) };
      if (opts.body !== undefined) headers['content-length'] = Buffer.byteLength(opts.body);
      const req = send(
        url,
        { method: opts.method, agent: this.#agent, headers, signal: opts.signal },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (e) =>
            reject(new HttpTransportError(`${opts.method} ${url.pathname}: ${e.message}`, { cause: e })),
          );
          res.on('end', () => {
            const raw = Buffer.concat(chunks);
            const done = (body: Buffer) =>
              resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
            if (/\bgzip\b/i.test(String(res.headers['content-encoding'] ?? ''))) {
              gunzip(raw, (err, body) =>
                err
                  ? reject(
                      new HttpTransportError(`${opts.method} ${url.pathname}: bad gzip body`, { cause: err }),
                    )
                  : done(body),
              );
            } else done(raw);
          });
        },
      );
      req.setTimeout(opts.timeoutMs, () => {
        req.destroy(new Error(`no answer within ${opts.timeoutMs} ms`));
      });
      req.on('error', (e) =>
        reject(
          new HttpTransportError(`${opts.method} ${url.origin}${url.pathname}: ${e.message}`, { cause: e }),
        ),
      );
      req.end(opts.body);
    });
  }

  /** Closes the keep-alive connections no request is using; resolves once they are closed. */
  closeIdle(): Promise<void> {
    const idle = Object.values(this.#agent.freeSockets).flatMap((list) => list ?? []);
    return Promise.all(
      idle.map(
        (socket) =>
          new Promise<void>((resolve) => {
            if (socket.closed) return resolve();
            socket.once('close', () => resolve());
            socket.destroy();
          }),
      ),
    ).then(() => undefined);
  }

  close(): void {
    this.#agent.destroy();
  }
}
