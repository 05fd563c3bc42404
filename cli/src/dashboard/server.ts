/**
 * The local server behind `flotilla dashboard`: it serves the UI's bundle and forwards
 * `/api/v1/admin/*` (and, for a tenant's admin, `/api/v1/tenants/<tenant>/*`) to the hub
 * with the operator's own credentials, which it adds itself,
 * so the browser never holds a key and the hub gets no new public surface (as
 * `kubectl proxy` does for the Kubernetes API).
 *
 * Because the server acts with the operator's credentials, it answers only requests that
 * its own page can make: the `Host` must be the address it listens on (no DNS rebinding),
 * an `Origin`, when sent, must be its own, and API calls carry a custom header that a
 * page elsewhere cannot send without a CORS preflight, which this server never grants.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HubClient } from '../hub/hub-client.ts';

/** The header the dashboard's own page sends with every API call. */
export const dashboardRequestHeader = 'x-flotilla-dashboard';

export interface DashboardAssets {
  readonly js: string;
  readonly css: string;
}

export interface DashboardServerOptions {
  readonly hub: Pick<HubClient, 'forwardAdmin'> & { readonly tenant?: string | undefined };
  readonly assets: DashboardAssets;
  /** Defaults to 127.0.0.1. */
  readonly address?: string;
  /** 0 (the default) picks a free port. */
  readonly port?: number;
  /** Largest request body forwarded (the hub's own limit is 6 MB); default 1 MiB. */
  readonly maxBodyBytes?: number;
}

export interface DashboardServer {
  readonly url: string;
  readonly address: AddressInfo;
  close(): Promise<void>;
}

// Request headers passed on to the hub; everything else (cookies, the browser's own
// authorization, its user agent) stays behind.
const forwardedRequestHeaders = ['accept', 'content-type', 'if-none-match'] as const;
// Response headers passed back to the browser: never a credential or a cookie.
const forwardedResponseHeaders = ['content-type', 'etag', 'x-request-id', 'location', 'retry-after'] as const;
const forwardedMethods = new Set(['GET', 'POST']);

const securityHeaders = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
} as const;

const indexHtml = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Flotilla dashboard</title>
<link rel="stylesheet" href="/app.css">
</head>
<body>
<div id="app"></div>
<noscript>The Flotilla dashboard needs JavaScript.</noscript>
<script type="module" src="/app.js"></script>
</body>
</html>
`;

/** Starts the server; resolves once it listens. */
export async function startDashboardServer(opts: DashboardServerOptions): Promise<DashboardServer> {
  const host = opts.address ?? '127.0.0.1';
  const maxBody = opts.maxBodyBytes ?? 1024 * 1024;
  let allowedHosts = new Set<string>();
  // A tenant's admin: the page reads the tenant's own routes (dashboard/src/api.ts routeFor).
  const tenant = opts.hub.tenant;
  const page =
    tenant === undefined
      ? indexHtml
      : indexHtml.replace(
          '<meta name="color-scheme"',
          `<meta name="flotilla-tenant" content="${tenant.replace(/[^a-z0-9-]/g, '')}">\n<meta name="color-scheme"`,
        );
  let origin = '';

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) send(res, 502, 'application/json', hubUnreachable(err));
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!allowedHosts.has((req.headers.host ?? '').toLowerCase())) {
      return send(res, 421, 'text/plain; charset=utf-8', 'unknown host: open the address flotilla printed\n');
    }
    const requestOrigin = req.headers.origin;
    if (requestOrigin !== undefined && requestOrigin !== origin) {
      return send(res, 403, 'text/plain; charset=utf-8', 'cross-origin requests are refused\n');
    }
    // Joined rather than resolved, so a path like `//host/x` stays a path and names no other host.
    const url = new URL(`${origin}${req.url ?? '/'}`);
    if (url.pathname.startsWith('/api/')) return proxy(req, res, url);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
    }
    if (url.pathname === '/app.js') return send(res, 200, 'text/javascript; charset=utf-8', opts.assets.js);
    if (url.pathname === '/app.css') return send(res, 200, 'text/css; charset=utf-8', opts.assets.css);
    if (url.pathname === '/' || url.pathname === '/index.html') {
      return send(res, 200, 'text/html; charset=utf-8', page);
    }
    return send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
  }

  async function proxy(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const hubPath = url.pathname.slice('/api'.length);
    // A tenant's admin also reaches the tenant's own routes; the hub checks the rest.
    const tenantPrefix = opts.hub.tenant === undefined ? undefined : `/v1/tenants/${opts.hub.tenant}/`;
    if (!hubPath.startsWith('/v1/admin/') && !(tenantPrefix && hubPath.startsWith(tenantPrefix))) {
      return send(
        res,
        404,
        'application/json',
        apiError(
          'not_found',
          `only /api/v1/admin/*${tenantPrefix ? ` and /api${tenantPrefix}*` : ''} is forwarded`,
        ),
      );
    }
    if (req.headers[dashboardRequestHeader] !== '1') {
      return send(
        res,
        403,
        'application/json',
        apiError('forbidden', `API calls need the ${dashboardRequestHeader} header`),
      );
    }
    const method = req.method ?? 'GET';
    if (!forwardedMethods.has(method)) {
      return send(res, 405, 'application/json', apiError('method_not_allowed', `${method} is not forwarded`));
    }
    const body = method === 'POST' ? await readBody(req, maxBody) : undefined;
    if (body === null) {
      return send(
        res,
        413,
        'application/json',
        apiError('too_large', `request bodies are limited to ${maxBody} bytes`),
      );
    }
    const headers: Record<string, string> = {};
    for (const name of forwardedRequestHeaders) {
      const value = req.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    const answer = await opts.hub.forwardAdmin({
      method,
      pathAndQuery: `${hubPath}${url.search}`,
      headers,
      ...(body !== undefined ? { body } : {}),
      signal: AbortSignal.any([abort.signal, AbortSignal.timeout(60_000)]),
    });
    const out: Record<string, string> = { ...securityHeaders };
    for (const name of forwardedResponseHeaders) {
      const value = answer.headers.get(name);
      if (value !== null) out[name] = value;
    }
    const text = answer.status === 304 ? '' : await answer.text();
    res.writeHead(answer.status, out);
    res.end(text);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const hostPart = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  origin = `http://${hostPart}:${address.port}`;
  allowedHosts = new Set([`${hostPart}:${address.port}`]);
  if (address.address === '127.0.0.1' || address.address === '::1')
    allowedHosts.add(`localhost:${address.port}`);
  return {
    url: `${origin}/`,
    address,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { ...securityHeaders, 'content-type': contentType });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

function apiError(code: string, message: string): string {
  return JSON.stringify({ error: { code, message } });
}

/** The browser learns that the hub is unreachable, not how the CLI's credentials look. */
function hubUnreachable(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const name =
    (err as Error).name === 'TimeoutError' ? 'timed out' : (cause?.code ?? cause?.message ?? 'unreachable');
  return apiError('hub_unreachable', `the dashboard cannot reach the hub: ${name}`);
}

/** The body as text, or null when it is larger than `max` bytes. */
async function readBody(req: IncomingMessage, max: number): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > max) return null;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
