import { createServer, type IncomingHttpHeaders, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type DashboardServer, startDashboardServer } from '../../../cli/src/dashboard/server.ts';
import { HubClient, type RequestSigner } from '../../../cli/src/hub/hub-client.ts';

const adminKey = 'flt-admin-0123456789abcdef';
const assets = { js: 'console.log("flotilla dashboard")', css: 'body{}' };

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** A hub over real HTTP that records what reached it and answers as the route says. */
async function fakeHub(): Promise<{ url: string; seen: Seen[]; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      });
      if (req.url === '/v1/admin/status' && req.headers['if-none-match'] === '"s1"') {
        res.writeHead(304, { etag: '"s1"' });
        return res.end();
      }
      if (req.url?.startsWith('/v1/admin/status')) {
        res.writeHead(200, {
          'content-type': 'application/json',
          etag: '"s1"',
          'set-cookie': 'session=hub-secret',
          'www-authenticate': 'Bearer realm="hub"',
          'x-request-id': 'req-1',
        });
        return res.end(JSON.stringify({ clusters: [] }));
      }
      if (req.url === '/v1/admin/rollouts/web/pause') {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ released: [], reverted: [], generationsWritten: 0 }));
      }
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'unauthorized', message: 'the admin key is not valid' } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (closers.length > 0) await closers.pop()?.();
});

async function setUp(
  admin: ConstructorParameters<typeof HubClient>[0]['admin'] = { kind: 'key', key: adminKey },
) {
  const hub = await fakeHub();
  closers.push(hub.close);
  const dashboard = await startDashboardServer({
    hub: new HubClient({ baseUrl: hub.url, admin, timeoutMs: 5000 }),
    assets,
  });
  closers.push(dashboard.close);
  return { hub, dashboard };
}

const api = { 'x-flotilla-dashboard': '1' };

/** A raw request, so the test can send a Host or a path that fetch would not. */
function rawGet(
  server: DashboardServer,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: server.address.port, path, method: 'GET', headers },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => {
          body += c.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

function allHeaders(res: Response): string {
  return [...res.headers].map(([k, v]) => `${k}: ${v}`).join('\n');
}

describe('flotilla dashboard server', () => {
  it('listens on 127.0.0.1 by default and prints that address', async () => {
    const { dashboard } = await setUp();
    expect(dashboard.address.address).toBe('127.0.0.1');
    expect(dashboard.url).toBe(`http://127.0.0.1:${dashboard.address.port}/`);
  });

  it('forwards /api/v1/admin/* with the admin key added on the server, never handing it to the browser', async () => {
    const { hub, dashboard } = await setUp();
    const res = await fetch(`${dashboard.url}api/v1/admin/status?selector=env%3Dprod`, {
      headers: { ...api, authorization: 'Bearer from-the-browser', cookie: 'a=b' },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ clusters: [] });
    expect(hub.seen).toHaveLength(1);
    expect(hub.seen[0]?.url).toBe('/v1/admin/status?selector=env%3Dprod');
    expect(hub.seen[0]?.headers.authorization).toBe(`Bearer ${adminKey}`);
    expect(hub.seen[0]?.headers.cookie).toBeUndefined();
    expect(hub.seen[0]?.headers['x-flotilla-dashboard']).toBeUndefined();
    // What the hub sends back that is not the browser's business stays behind.
    expect(res.headers.get('etag')).toBe('"s1"');
    expect(res.headers.get('x-request-id')).toBe('req-1');
    expect(res.headers.get('set-cookie')).toBeNull();
    expect(res.headers.get('www-authenticate')).toBeNull();
    expect(allHeaders(res)).not.toContain(adminKey);
  });

  it('passes If-None-Match on and the hub 304 back', async () => {
    const { hub, dashboard } = await setUp();
    const res = await fetch(`${dashboard.url}api/v1/admin/status`, {
      headers: { ...api, 'if-none-match': '"s1"' },
    });
    expect(res.status).toBe(304);
    expect(hub.seen[0]?.headers['if-none-match']).toBe('"s1"');
  });

  it("forwards the Bundle and Cluster pages' reads as they are, query and If-None-Match included", async () => {
    const { hub, dashboard } = await setUp();
    for (const path of [
      '/v1/admin/status?bundle=web&state=Failed&view=matrix&limit=100',
      '/v1/admin/clusters/prod-eu-1/status',
    ]) {
      await fetch(`${dashboard.url}api${path}`, { headers: { ...api, 'if-none-match': '"c1"' } });
    }
    expect(hub.seen.map((r) => [r.method, r.url, r.headers['if-none-match']])).toEqual([
      ['GET', '/v1/admin/status?bundle=web&state=Failed&view=matrix&limit=100', '"c1"'],
      ['GET', '/v1/admin/clusters/prod-eu-1/status', '"c1"'],
    ]);
  });

  it('forwards a POST with its body', async () => {
    const { hub, dashboard } = await setUp();
    const res = await fetch(`${dashboard.url}api/v1/admin/rollouts/web/pause`, {
      method: 'POST',
      headers: { ...api, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(res.status).toBe(200);
    expect(hub.seen[0]).toMatchObject({ method: 'POST', url: '/v1/admin/rollouts/web/pause', body: '{}' });
  });

  it('signs with the configured signer (IAM) instead of a key', async () => {
    const signed: { method: string; url: string; body: string | undefined }[] = [];
    const sign: RequestSigner = async (req) => {
      signed.push({ method: req.method, url: req.url.toString(), body: req.body });
      return { authorization: 'AWS4-HMAC-SHA256 Credential=test/20260101', 'x-amz-date': '20260101T000000Z' };
    };
    const { hub, dashboard } = await setUp({ kind: 'signer', sign });
    const res = await fetch(`${dashboard.url}api/v1/admin/status`, { headers: api });
    expect(res.status).toBe(200);
    expect(signed).toEqual([{ method: 'GET', url: `${hub.url}/v1/admin/status`, body: undefined }]);
    expect(hub.seen[0]?.headers.authorization).toBe('AWS4-HMAC-SHA256 Credential=test/20260101');
    expect(allHeaders(res)).not.toContain('AWS4-HMAC-SHA256');
  });

  it("passes the hub's refusal on as it is, so the page can show its banner", async () => {
    const { dashboard } = await setUp();
    const res = await fetch(`${dashboard.url}api/v1/admin/clusters`, { headers: api });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({
      error: { code: 'unauthorized', message: 'the admin key is not valid' },
    });
  });

  it('forwards nothing but /api/v1/admin/*', async () => {
    const { hub, dashboard } = await setUp();
    for (const path of [
      'api/v1/clusters/prod/desired-state',
      'api/v1/register',
      'api/healthz',
      'v1/admin/status',
    ]) {
      const res = await fetch(`${dashboard.url}${path}`, { headers: api });
      expect(res.status, path).toBe(404);
    }
    // Dot segments are resolved before the check, so they cannot climb out of /v1/admin, and a
    // path that starts with `//` names no other host.
    for (const path of [
      '/api/v1/admin/../clusters/prod/desired-state',
      '/api/v1/admin/%2e%2e/register',
      '//elsewhere/api/v1/admin/status',
    ]) {
      const res = await rawGet(dashboard, path, { ...api, host: `127.0.0.1:${dashboard.address.port}` });
      expect(res.status, path).toBe(404);
    }
    const del = await fetch(`${dashboard.url}api/v1/admin/clusters/prod`, { method: 'DELETE', headers: api });
    expect(del.status).toBe(405);
    expect(hub.seen).toEqual([]);
  });

  it("forwards a tenant's own /api/v1/tenants/<tenant>/* when run with its key, and no other tenant's", async () => {
    const hub = await fakeHub();
    closers.push(hub.close);
    const key = 'flt_t_team-a.0123456789abcdefghijklmnopqrstuvwxyzABCDEFG';
    const dashboard = await startDashboardServer({
      hub: new HubClient({
        baseUrl: hub.url,
        admin: { kind: 'key', key },
        timeoutMs: 5000,
        tenant: 'team-a',
      }),
      assets,
    });
    closers.push(dashboard.close);
    const own = await fetch(`${dashboard.url}api/v1/tenants/team-a/status?limit=5`, { headers: api });
    // The fake hub answers 401 to any path but its admin ones: what matters is that it was asked, with the key.
    expect(own.status).toBe(401);
    expect(hub.seen.map((r) => [r.url, r.headers.authorization])).toEqual([
      ['/v1/tenants/team-a/status?limit=5', `Bearer ${key}`],
    ]);
    for (const path of [
      'api/v1/tenants/team-b/status',
      'api/v1/tenants/team-a',
      'api/v1/tenants/team-ab/status',
    ]) {
      const res = await fetch(`${dashboard.url}${path}`, { headers: api });
      expect(res.status, path).toBe(404);
    }
    const climb = await rawGet(dashboard, '/api/v1/tenants/team-a/../team-b/status', {
      ...api,
      host: `127.0.0.1:${dashboard.address.port}`,
    });
    expect(climb.status).toBe(404);
    expect(hub.seen).toHaveLength(1);
    // The page learns whose dashboard it is, so that it reads the tenant's routes.
    const html = await (await fetch(dashboard.url)).text();
    expect(html).toContain('<meta name="flotilla-tenant" content="team-a">');
  });

  it('refuses API calls a page elsewhere could make: no dashboard header, a foreign Origin, another Host', async () => {
    const { hub, dashboard } = await setUp();
    expect((await fetch(`${dashboard.url}api/v1/admin/status`)).status).toBe(403);
    const foreign = await fetch(`${dashboard.url}api/v1/admin/rollouts/web/pause`, {
      method: 'POST',
      headers: { ...api, origin: 'https://evil.example' },
    });
    expect(foreign.status).toBe(403);
    const rebound = await rawGet(dashboard, '/api/v1/admin/status', {
      ...api,
      host: `evil.example:${dashboard.address.port}`,
    });
    expect(rebound.status).toBe(421);
    const localhost = await rawGet(dashboard, '/api/v1/admin/status', {
      ...api,
      host: `localhost:${dashboard.address.port}`,
    });
    expect(localhost.status).toBe(200);
    expect(hub.seen).toHaveLength(1);
  });

  it('serves the page and its bundle with a strict content security policy and no credentials', async () => {
    const { dashboard } = await setUp();
    const page = await fetch(dashboard.url);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await page.text();
    expect(html).toContain('<script type="module" src="/app.js"></script>');
    expect(html).not.toContain(adminKey);
    const js = await fetch(`${dashboard.url}app.js`);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(await js.text()).toBe(assets.js);
    expect(await (await fetch(`${dashboard.url}app.css`)).text()).toBe(assets.css);
    expect((await fetch(`${dashboard.url}nothing-here`)).status).toBe(404);
  });

  it('answers 502 hub_unreachable when the hub is down, naming no credential', async () => {
    const { hub, dashboard } = await setUp();
    await hub.close();
    closers.splice(closers.indexOf(hub.close), 1);
    const res = await fetch(`${dashboard.url}api/v1/admin/status`, { headers: api });
    expect(res.status).toBe(502);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('hub_unreachable');
    expect(body.error.message).toMatch(/^the dashboard cannot reach the hub: /);
    expect(JSON.stringify(body)).not.toContain(adminKey);
  });
});
