import { createHmac } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import {
  type ContentHash,
  type DesiredState,
  openSignedDesiredState,
  parseRenderedBundle,
} from '@flotilla/shared';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FleetWorkingCopy } from '../../support/fleet-git.ts';
import { drainQueue } from '../../support/hub.ts';
import { type ApiHub, errorOf, startApiHub } from './local-hub.ts';

const bed = inject('bed');
let repo: FleetWorkingCopy;
let api: ApiHub;
let publicKeyPem: string;
/** Tokens of the clusters registered through the API, by name. */
const tokens = new Map<string, string>();
const queues = new Map<string, string>();

const prodEu = 'api-prod-eu';
const stagingUs = 'api-staging-us';

async function register(name: string, labels: Record<string, string>) {
  const res = await api.admin('/v1/admin/clusters', { method: 'POST', json: { name, labels } });
  expect(res.status).toBe(201);
  const body = (await res.json()) as { token: string; queueUrl: string; cluster: { id: string } };
  tokens.set(name, body.token);
  queues.set(name, body.queueUrl);
  return { res, body };
}

async function desiredState(
  name: string,
  token = tokens.get(name),
): Promise<{ res: Response; manifest?: DesiredState }> {
  const res = await api.call(`/v1/clusters/${name}/desired-state`, { token });
  if (res.status !== 200) return { res };
  return { res, manifest: openSignedDesiredState(await res.json(), publicKeyPem) };
}

function filesOf(dir: string): { path: string; content: string }[] {
  const out: { path: string; content: string }[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      if (name === '.git') continue;
      const full = join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else out.push({ path: relative(dir, full), content: readFileSync(full, 'utf8') });
    }
  };
  walk(dir);
  return out;
}

function sign(body: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

beforeAll(async () => {
  repo = await FleetWorkingCopy.create(bed.git, `api-${Date.now()}`);
  api = await startApiHub(bed, repo.url);
});

afterAll(async () => {
  await api?.stop();
  repo?.dispose();
});

describe('hub API through the local server (DynamoDB Local, ElasticMQ, git server)', () => {
  it('serves the public key agents pin', async () => {
    const res = await api.admin('/v1/admin/public-key');
    expect(res.status).toBe(200);
    const body = (await res.json()) as { algorithm: string; keyId: string; publicKeyPem: string };
    expect(body.algorithm).toBe('Ed25519');
    expect(body.publicKeyPem).toMatch(/BEGIN PUBLIC KEY/);
    expect(body.keyId).toBe(api.hub.signer.keyId);
    publicKeyPem = body.publicKeyPem;
  });

  it('registers clusters, shows the token once, and says clearly when there is no desired state yet', async () => {
    const { res, body } = await register(prodEu, { env: 'prod', region: 'eu' });
    expect(res.headers.get('location')).toBe(`/v1/admin/clusters/${prodEu}`);
    expect(body.token).toMatch(new RegExp(`^flt_${prodEu}\\.`));
    expect(body.queueUrl).toContain(`spoke-${prodEu}`);
    expect(JSON.stringify(body)).not.toContain('tokenHash');
    await register(stagingUs, { env: 'staging', region: 'us' });

    const again = await api.admin('/v1/admin/clusters', { method: 'POST', json: { name: prodEu } });
    expect(again.status).toBe(409);
    expect((await errorOf(again)).code).toBe('conflict');

    const { res: before } = await desiredState(prodEu);
    expect(before.status).toBe(404);
    expect((await errorOf(before)).message).toMatch(/no desired state yet.*not synced/);
  });

  it('syncs on request and serves each cluster its signed desired state with an ETag', async () => {
    const sync = await api.admin('/v1/admin/sync', { method: 'POST' });
    expect(sync.status).toBe(200);
    const report = (await sync.json()) as {
      commit: string;
      changed: { clusterId: string }[];
      errors: unknown[];
    };
    expect(report.commit).toBe(repo.git('rev-parse', 'HEAD'));
    expect(report.changed.map((c) => c.clusterId)).toEqual([prodEu, stagingUs]);
    expect(report.errors).toEqual([]);
    expect(await drainQueue(api.hub, queues.get(prodEu) ?? '')).toHaveLength(1);

    const { res, manifest } = await desiredState(prodEu);
    expect(res.status).toBe(200);
    expect(manifest?.cluster).toBe(prodEu);
    expect(manifest?.commit).toBe(report.commit);
    const head = (await api.hub.clusters.get(prodEu))?.head;
    expect(res.headers.get('etag')).toBe(`"${head?.etag}"`);
    expect(res.headers.get('cache-control')).toMatch(/no-cache/);

    const notModified = await api.call(`/v1/clusters/${prodEu}/desired-state`, {
      token: tokens.get(prodEu),
      headers: { 'if-none-match': res.headers.get('etag') ?? '' },
    });
    expect(notModified.status).toBe(304);
    expect(await notModified.text()).toBe('');
    expect(notModified.headers.get('etag')).toBe(res.headers.get('etag'));

    const stale = await api.call(`/v1/clusters/${prodEu}/desired-state`, {
      token: tokens.get(prodEu),
      headers: { 'if-none-match': '"sha256:0000"' },
    });
    expect(stale.status).toBe(200);
  });

  it('serves every bundle of the desired state by hash, intact and cacheable for ever', async () => {
    const { manifest } = await desiredState(prodEu);
    expect(manifest?.bundles.map((b) => b.name)).toContain('web');
    for (const ref of manifest?.bundles ?? []) {
      const res = await api.call(`/v1/bundles/${ref.hash}`, { token: tokens.get(prodEu) });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(res.headers.get('cache-control')).toMatch(/immutable/);
      const doc = parseRenderedBundle(await res.text(), ref.hash as ContentHash);
      expect(doc.bundle).toBe(ref.name);
    }
    const web = manifest?.bundles.find((b) => b.name === 'web');
    const bare = await api.call(`/v1/bundles/${web?.hash.slice('sha256:'.length)}`, {
      token: tokens.get(prodEu),
    });
    expect(bare.status).toBe(200);
    const deployment = parseRenderedBundle(await bare.text(), web?.hash as ContentHash).objects.find(
      (o) => o.kind === 'Deployment',
    ) as { spec: { replicas: number } } | undefined;
    expect(deployment?.spec.replicas).toBe(6); // the prod-eu customization
  });

  it("keeps each cluster to its own state: another cluster's routes are 403, its bundles 404", async () => {
    const a = tokens.get(prodEu);
    const { manifest: mine } = await desiredState(prodEu);
    const { manifest: theirs } = await desiredState(stagingUs);
    const myHashes = new Set(mine?.bundles.map((b) => b.hash));
    const theirsOnly = theirs?.bundles.filter((b) => !myHashes.has(b.hash)) ?? [];
    const shared = theirs?.bundles.filter((b) => myHashes.has(b.hash)) ?? [];
    expect(theirsOnly.length).toBeGreaterThan(0);
    expect(shared.length).toBeGreaterThan(0);

    const read = await api.call(`/v1/clusters/${stagingUs}/desired-state`, { token: a });
    expect(read.status).toBe(403);
    expect((await errorOf(read)).code).toBe('forbidden');
    const report = await api.call(`/v1/clusters/${stagingUs}/status`, {
      token: a,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        apiVersion: 'flotilla.dev/v1alpha1',
        kind: 'ClusterStatus',
        agentVersion: '0.1.0',
      }),
    });
    expect(report.status).toBe(403);
    for (const b of theirsOnly) {
      const res = await api.call(`/v1/bundles/${b.hash}`, { token: a });
      expect(res.status).toBe(404);
      expect(await res.text()).not.toContain('"objects"');
    }
    // A bundle both clusters run is A's to read as well.
    expect((await api.call(`/v1/bundles/${shared[0]?.hash}`, { token: a })).status).toBe(200);
    // A hash nobody has is the same 404 as another cluster's: existence does not leak.
    const none = await api.call(`/v1/bundles/sha256:${'0'.repeat(64)}`, { token: a });
    expect(none.status).toBe(404);
  });

  it("lets admins read any cluster's desired state and bundles, and refuses those routes to cluster tokens", async () => {
    const { manifest: theirs } = await desiredState(stagingUs);
    const res = await api.admin(`/v1/admin/clusters/${stagingUs}/desired-state`);
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBe(`"${(await api.hub.clusters.get(stagingUs))?.head?.etag}"`);
    // Signed as agents get it: the admin reads exactly what the agent verifies.
    expect(openSignedDesiredState(await res.json(), publicKeyPem)).toEqual(theirs);
    for (const ref of theirs?.bundles ?? []) {
      const bundle = await api.admin(`/v1/admin/bundles/${ref.hash}`);
      expect(bundle.status).toBe(200);
      expect(parseRenderedBundle(await bundle.text(), ref.hash as ContentHash).bundle).toBe(ref.name);
    }
    // A spoke's own token opens neither another cluster's desired state nor any bundle here.
    const own = tokens.get(prodEu);
    for (const path of [
      `/v1/admin/clusters/${stagingUs}/desired-state`,
      `/v1/admin/clusters/${prodEu}/desired-state`,
      `/v1/admin/bundles/${theirs?.bundles[0]?.hash}`,
    ]) {
      const refused = await api.call(path, { token: own });
      expect(refused.status, path).toBe(401);
      expect(await refused.text()).not.toContain('"objects"');
    }
    const unknown = await api.admin('/v1/admin/clusters/no-such-cluster/desired-state');
    expect(unknown.status).toBe(404);
    expect((await errorOf(unknown)).message).toBe('cluster "no-such-cluster" not found');
    const missing = await api.admin(`/v1/admin/bundles/sha256:${'0'.repeat(64)}`);
    expect(missing.status).toBe(404);
    const bad = await api.admin('/v1/admin/bundles/not-a-hash');
    expect(bad.status).toBe(400);
    expect((await errorOf(bad)).field).toBe('hash');
  });

  it('records status and heartbeat, and shows them in the fleet status against the desired state', async () => {
    const { manifest } = await desiredState(prodEu);
    const bundles = (manifest?.bundles ?? []).map((b) => ({
      name: b.name,
      state: 'Ready',
      hash: b.hash,
      generation: manifest?.generation,
    }));
    bundles[0] = {
      ...bundles[0],
      state: 'Drifted',
      drift: [{ object: 'apps/Deployment/web/web', fields: ['spec.replicas'] }],
    } as never;
    const res = await api.call(`/v1/clusters/${prodEu}/status`, {
      token: tokens.get(prodEu),
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        apiVersion: 'flotilla.dev/v1alpha1',
        kind: 'ClusterStatus',
        agentVersion: '0.1.0',
        observedAt: new Date().toISOString(),
        appliedGeneration: manifest?.generation,
        bundles,
      }),
    });
    expect(res.status).toBe(200);
    const receipt = (await res.json()) as {
      bundles: number;
      changed: number;
      desired: { generation: number };
    };
    expect(receipt.bundles).toBe(bundles.length);
    expect(receipt.changed).toBe(bundles.length);
    expect(receipt.desired.generation).toBe(manifest?.generation);

    const statusRes = await api.admin('/v1/admin/status');
    expect(statusRes.status).toBe(200);
    const status = (await statusRes.json()) as {
      sync: { commit: string; errors: unknown[] };
      summary: { clusters: number; online: number; offline: number };
      clusters: {
        id: string;
        connection: string;
        state: string;
        agentVersion: string | null;
        appliedGeneration: number | null;
        desired: { generation: number } | null;
        bundles: { name: string; state: string; upToDate: boolean; drift?: unknown[] }[];
      }[];
    };
    expect(status.sync.commit).toBe(repo.git('rev-parse', 'HEAD'));
    expect(status.summary).toMatchObject({ clusters: 2, online: 1, offline: 1 });
    const mine = status.clusters.find((c) => c.id === prodEu);
    expect(mine).toMatchObject({ connection: 'Online', state: 'Drifted', agentVersion: '0.1.0' });
    expect(mine?.appliedGeneration).toBe(mine?.desired?.generation);
    expect(mine?.bundles.every((b) => b.upToDate)).toBe(true);
    expect(mine?.bundles.find((b) => b.name === bundles[0]?.name)?.drift).toHaveLength(1);
    const theirs = status.clusters.find((c) => c.id === stagingUs);
    expect(theirs).toMatchObject({ connection: 'Offline', state: 'Pending', agentVersion: null });

    const filtered = (await (await api.admin('/v1/admin/status?selector=env%3Dstaging')).json()) as {
      clusters: { id: string }[];
    };
    expect(filtered.clusters.map((c) => c.id)).toEqual([stagingUs]);

    // A page at a time, filtered on the hub, with an ETag a poller sends back for a 304.
    const pageRes = await api.admin('/v1/admin/status?limit=1&state=Drifted,Offline');
    expect(pageRes.status).toBe(200);
    const page = (await pageRes.json()) as { total: number; nextCursor: string; clusters: { id: string }[] };
    expect(page.total).toBe(2);
    expect(page.clusters.map((c) => c.id)).toEqual([[prodEu, stagingUs].sort()[0]]);
    const etag = pageRes.headers.get('etag') ?? '';
    expect(etag).toMatch(/^"fs-/);
    const again = await api.admin('/v1/admin/status?limit=1&state=Drifted,Offline', {
      headers: { 'if-none-match': etag },
    });
    expect(again.status).toBe(304);
    const second = (await (
      await api.admin(`/v1/admin/status?limit=1&state=Drifted,Offline&cursor=${page.nextCursor}`)
    ).json()) as { nextCursor: string | null; clusters: { id: string }[] };
    expect(second.clusters.map((c) => c.id)).toEqual([[prodEu, stagingUs].sort()[1]]);
    expect(second.nextCursor).toBeNull();
    const tampered = await api.admin(`/v1/admin/status?limit=1&state=Failed&cursor=${page.nextCursor}`);
    expect(tampered.status).toBe(400);
    expect(((await tampered.json()) as { error: { field: string } }).error.field).toBe('cursor');
    const axis = (await (await api.admin('/v1/admin/bundles')).json()) as {
      bundles: { name: string; clusters: number; states: Record<string, number> }[];
    };
    expect(axis.bundles.map((b) => b.name)).toEqual(expect.arrayContaining(bundles.map((b) => b.name)));
    expect(axis.bundles.reduce((n, b) => n + (b.states.Drifted ?? 0), 0)).toBe(1);

    // One bundle's clusters, with state= naming that bundle's state on each.
    const drifted = manifest?.bundles[0]?.name as string;
    const byBundle = (await (
      await api.admin(`/v1/admin/status?bundle=${encodeURIComponent(drifted)}&state=Drifted,Failed`)
    ).json()) as { total: number; bundle: string; clusters: { id: string }[] };
    expect(byBundle).toMatchObject({ total: 1, bundle: drifted });
    expect(byBundle.clusters.map((c) => c.id)).toEqual([prodEu]);
    expect((await (await api.admin('/v1/admin/status?bundle=no-such-bundle')).json()).total).toBe(0);

    // One cluster's status: its view from the fleet status, with an ETag of its own.
    const oneRes = await api.admin(`/v1/admin/clusters/${prodEu}/status`);
    expect(oneRes.status).toBe(200);
    const one = (await oneRes.json()) as {
      cluster: unknown;
      sync: { commit: string };
      offlineAfterSeconds: number;
    };
    expect(one.cluster).toEqual(mine);
    expect(one.sync.commit).toBe(status.sync.commit);
    const oneEtag = oneRes.headers.get('etag') ?? '';
    expect(oneEtag).toMatch(/^"fs-/);
    expect(
      (await api.admin(`/v1/admin/clusters/${prodEu}/status`, { headers: { 'if-none-match': oneEtag } }))
        .status,
    ).toBe(304);
    const unknown = await api.admin('/v1/admin/clusters/no-such-cluster/status');
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe('not_found');
  });

  it('names every bad field of a status report', async () => {
    const res = await api.call(`/v1/clusters/${prodEu}/status`, {
      token: tokens.get(prodEu),
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        apiVersion: 'flotilla.dev/v1',
        kind: 'ClusterStatus',
        agentVersion: '',
        colour: 'blue',
        bundles: [
          { name: 'web', state: 'Sleeping', hash: 'md5:abc', generation: -1 },
          { name: 'db', state: 'Failed', hash: `sha256:${'a'.repeat(64)}`, generation: 1 },
        ],
      }),
    });
    expect(res.status).toBe(400);
    const error = await errorOf(res);
    expect(error.code).toBe('invalid_request');
    expect(error.field).toBeDefined();
    expect(error.problems?.map((p) => p.field).sort()).toEqual(
      [
        'apiVersion',
        'agentVersion',
        'colour',
        'bundles[0].state',
        'bundles[0].hash',
        'bundles[0].generation',
        'bundles[1].message',
      ].sort(),
    );
  });

  it('refuses tokens of unknown, rotated and removed clusters at once', async () => {
    const unknown = await api.call(`/v1/clusters/${prodEu}/desired-state`, {
      token: `flt_${prodEu}.not-the-secret`,
    });
    expect(unknown.status).toBe(401);
    expect(unknown.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect((await api.call(`/v1/clusters/${prodEu}/desired-state`)).status).toBe(401);
    expect((await api.call(`/v1/clusters/${prodEu}/desired-state`, { token: 'garbage' })).status).toBe(401);

    const old = tokens.get(stagingUs);
    const rotated = await api.admin(`/v1/admin/clusters/${stagingUs}/rotate-token`, { method: 'POST' });
    expect(rotated.status).toBe(200);
    const { token } = (await rotated.json()) as { token: string };
    expect((await desiredState(stagingUs, old)).res.status).toBe(401);
    expect((await desiredState(stagingUs, token)).res.status).toBe(200);
    tokens.set(stagingUs, token);

    const { body } = await register('api-doomed', { env: 'staging' });
    expect((await desiredState('api-doomed')).res.status).toBe(200);
    const removed = await api.admin('/v1/admin/clusters/api-doomed', { method: 'DELETE' });
    expect(removed.status).toBe(204);
    expect((await desiredState('api-doomed', body.token)).res.status).toBe(401);
    expect((await api.admin('/v1/admin/clusters/api-doomed', { method: 'DELETE' })).status).toBe(404);
  });

  it('refuses admin routes without the admin key', async () => {
    for (const [method, path] of [
      ['GET', '/v1/admin/clusters'],
      ['POST', '/v1/admin/clusters'],
      ['POST', '/v1/admin/sync'],
      ['GET', '/v1/admin/status'],
      ['GET', `/v1/admin/clusters/${prodEu}/status`],
      ['POST', '/v1/admin/preview'],
      ['DELETE', `/v1/admin/clusters/${prodEu}`],
    ] as const) {
      expect((await api.call(path, { method })).status, `${method} ${path}`).toBe(401);
      expect((await api.call(path, { method, token: 'wrong-key' })).status, `${method} ${path}`).toBe(401);
      // A cluster's token is not an admin key.
      expect((await api.call(path, { method, token: tokens.get(prodEu) })).status, `${method} ${path}`).toBe(
        401,
      );
    }
    expect((await api.admin(`/v1/admin/clusters/${prodEu}`)).status).toBe(200);
  });

  it('names the field of every invalid admin request', async () => {
    const cases: [string, RequestInit & { json?: unknown }, string][] = [
      ['/v1/admin/clusters', { method: 'POST', json: { name: 'Bad_Name' } }, 'name'],
      ['/v1/admin/clusters', { method: 'POST', json: { name: 'ok-name', labels: { env: 7 } } }, 'labels.env'],
      [
        '/v1/admin/clusters',
        { method: 'POST', json: { name: 'ok-name', labels: { 'bad key!': 'x' } } },
        'labels',
      ],
      ['/v1/admin/clusters', { method: 'POST', json: { name: 'ok-name', colour: 'red' } }, 'colour'],
      ['/v1/admin/clusters', { method: 'POST', json: ['not', 'an', 'object'] }, 'body'],
      ['/v1/admin/clusters?selector=env%20in%20(eu', { method: 'GET' }, 'selector'],
      ['/v1/admin/clusters?colour=red', { method: 'GET' }, 'colour'],
      [`/v1/admin/clusters/${prodEu}/labels`, { method: 'PATCH', json: { set: { env: 'a b' } } }, 'set'],
      [`/v1/admin/clusters/${prodEu}/labels`, { method: 'PATCH', json: { remove: 'env' } }, 'remove'],
      [`/v1/admin/clusters/${prodEu}/labels`, { method: 'PATCH', json: {} }, 'set'],
      ['/v1/admin/clusters/NOT_A_NAME', { method: 'GET' }, 'id'],
      ['/v1/admin/preview', { method: 'POST', json: { commit: 'main' } }, 'commit'],
      [
        '/v1/admin/preview',
        { method: 'POST', json: { files: [{ path: '../x.yaml', content: '' }] } },
        'files[0].path',
      ],
      ['/v1/admin/preview', { method: 'POST', json: { clusters: ['nobody-here'] } }, 'clusters[0]'],
      ['/v1/admin/preview', { method: 'POST', json: { bundle: 'no-such-bundle' } }, 'bundle'],
    ];
    for (const [path, init, field] of cases) {
      const res = await api.admin(path, init);
      const label = `${init.method} ${path} ${JSON.stringify(init.json)}`;
      expect(res.status, label).toBe(400);
      const error = await errorOf(res);
      expect(error.code, label).toBe('invalid_request');
      expect(error.field, label).toBe(field);
      expect(error.message.length, label).toBeGreaterThan(10);
    }
  });

  it('answers malformed JSON, unknown routes and wrong methods with JSON errors', async () => {
    const malformed = await api.admin('/v1/admin/clusters', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"name": "x",}',
    });
    expect(malformed.status).toBe(400);
    const error = await errorOf(malformed);
    expect(error.code).toBe('malformed_json');
    expect(error.message).toMatch(/not valid JSON: .*position/);

    const wrongType = await api.admin('/v1/admin/clusters', {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'name=x',
    });
    expect(wrongType.status).toBe(415);

    const unknown = await api.call('/v1/nothing/here');
    expect(unknown.status).toBe(404);
    expect((await errorOf(unknown)).code).toBe('route_not_found');

    const wrongMethod = await api.call('/v1/admin/clusters', { method: 'PUT' });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('GET, POST');
    expect((await errorOf(wrongMethod)).code).toBe('method_not_allowed');
  });

  it('lists clusters by a kubectl-style selector and relabels one, moving bundles onto it', async () => {
    const list = async (selector: string) => {
      const res = await api.admin(`/v1/admin/clusters?selector=${encodeURIComponent(selector)}`);
      expect(res.status).toBe(200);
      return ((await res.json()) as { clusters: { id: string }[] }).clusters.map((c) => c.id);
    };
    expect(await list('env in (prod,staging)')).toEqual([prodEu, stagingUs]);
    expect(await list('env=prod,region in (eu)')).toEqual([prodEu]);
    expect(await list('tier')).toEqual([]);

    const patch = (json: unknown) =>
      api.admin(`/v1/admin/clusters/${stagingUs}/labels`, { method: 'PATCH', json });
    const before = (await desiredState(stagingUs)).manifest;
    const res = await patch({ set: { region: 'eu', tier: 'bronze' } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      cluster: { labels: Record<string, string> };
      sync: { changed: unknown[] };
    };
    expect(body.cluster.labels).toEqual({ env: 'staging', region: 'eu', tier: 'bronze' });
    expect(body.sync.changed).toHaveLength(1);
    const after = (await desiredState(stagingUs)).manifest;
    expect(after?.generation).toBe((before?.generation ?? 0) + 1);
    expect(await list('region in (eu)')).toEqual([prodEu, stagingUs]);
    expect(await list('tier')).toEqual([stagingUs]);

    // A label no bundle looks at changes nothing for the cluster.
    const unused = await patch({ remove: ['tier'] });
    expect(((await unused.json()) as { sync: { changed: unknown[] } }).sync.changed).toEqual([]);
    expect((await desiredState(stagingUs)).manifest?.generation).toBe(after?.generation);
    expect(
      await (
        await api.admin('/v1/admin/clusters/nobody-here/labels', {
          method: 'PATCH',
          json: { set: { a: 'b' } },
        })
      ).status,
    ).toBe(404);
  });

  it('previews uploaded files exactly as sync stores them, and the repo tip too', async () => {
    const files = filesOf(repo.dir);
    const res = await api.admin('/v1/admin/preview', { method: 'POST', json: { files, clusters: [prodEu] } });
    expect(res.status).toBe(200);
    const preview = (await res.json()) as {
      source: string;
      clusters: {
        name: string;
        bundles: {
          name: string;
          hash: string;
          target: { kind: string };
          customization: { name?: string } | null;
        }[];
        excluded: unknown[];
      }[];
      renders: Record<string, { bundle: string; objects: { kind: string }[] }>;
      errors: unknown[];
    };
    expect(preview.source).toBe('upload');
    expect(preview.errors).toEqual([]);
    const { manifest } = await desiredState(prodEu);
    const previewed = preview.clusters[0]?.bundles.map((b) => [b.name, b.hash]);
    expect(previewed).toEqual(manifest?.bundles.map((b) => [b.name, b.hash]));
    const web = preview.clusters[0]?.bundles.find((b) => b.name === 'web');
    expect(web?.customization?.name).toBe('prod-eu');
    expect(preview.renders[web?.hash ?? '']?.objects.some((o) => o.kind === 'Deployment')).toBe(true);

    const tip = await api.admin('/v1/admin/preview', {
      method: 'POST',
      json: { commit: 'HEAD', bundle: 'web' },
    });
    expect(tip.status).toBe(200);
    const tipBody = (await tip.json()) as { commit: string; bundles: { name: string; clusters: string[] }[] };
    expect(tipBody.commit).toBe(repo.git('rev-parse', 'HEAD'));
    expect(tipBody.bundles).toEqual([
      expect.objectContaining({ name: 'web', clusters: [prodEu, stagingUs] }),
    ]);

    // A broken upload: the problem comes back with file and line, nothing is stored.
    const broken = files.map((f) =>
      f.path === 'bundles/web/bundle.yaml'
        ? { ...f, content: f.content.replace('namespace: web\n', 'namespace: web\nreplica: 3\n') }
        : f,
    );
    const bad = await api.admin('/v1/admin/preview', {
      method: 'POST',
      json: {
        files: broken,
        clusters: [prodEu, { name: 'would-be-edge', labels: { env: 'staging', region: 'eu' } }],
      },
    });
    expect(bad.status).toBe(200);
    const badBody = (await bad.json()) as {
      errors: { file: string; line: number; text: string }[];
      clusters: { name: string; registered: boolean; held: { bundle: string }[] }[];
    };
    const webError = badBody.errors.find((e) => e.file === 'bundles/web/bundle.yaml');
    expect(webError).toMatchObject({ line: 3 });
    expect(webError?.text).toMatch(/^bundles\/web\/bundle\.yaml:3: .*replica/);
    // Everything else reported is the knock-on effect on bundles that depend on web.
    for (const e of badBody.errors.filter((x) => x !== webError)) expect(e.text).toMatch(/"web"/);
    expect(badBody.clusters.map((c) => [c.name, c.registered])).toEqual([
      [prodEu, true],
      ['would-be-edge', false],
    ]);
    expect(badBody.clusters[0]?.held.map((h) => h.bundle)).toContain('web');
    expect((await desiredState(prodEu)).manifest?.generation).toBe(manifest?.generation);
  });

  it('syncs on a correctly signed push webhook and refuses a bad signature', async () => {
    repo.write(
      'bundles/web/bundle.yaml',
      readFileSync(join(repo.dir, 'bundles/web/bundle.yaml'), 'utf8').replace('replicas: 6', 'replicas: 7'),
    );
    const commit = repo.commit('Scale EU storefront to 7');
    const body = JSON.stringify({ ref: 'refs/heads/main', after: commit });

    const unsigned = await api.call('/v1/webhooks/git', {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json' },
    });
    expect(unsigned.status).toBe(401);
    const forged = await api.call('/v1/webhooks/git', {
      method: 'POST',
      body,
      headers: {
        'content-type': 'application/json',
        'x-hub-signature-256': sign(body, 'not-the-secret-at-all'),
      },
    });
    expect(forged.status).toBe(401);
    const tampered = await api.call('/v1/webhooks/git', {
      method: 'POST',
      body: body.replace('main', 'evil'),
      headers: { 'content-type': 'application/json', 'x-hub-signature-256': sign(body, api.webhookSecret) },
    });
    expect(tampered.status).toBe(401);
    expect((await api.hub.clusters.get(prodEu))?.head?.commit).not.toBe(commit);

    const otherBranch = JSON.stringify({ ref: 'refs/heads/feature' });
    const ignored = await api.call('/v1/webhooks/git', {
      method: 'POST',
      body: otherBranch,
      headers: {
        'content-type': 'application/json',
        'x-hub-signature-256': sign(otherBranch, api.webhookSecret),
      },
    });
    expect(ignored.status).toBe(202);
    expect(((await ignored.json()) as { status: string }).status).toBe('ignored');

    const good = await api.call('/v1/webhooks/git', {
      method: 'POST',
      body,
      headers: {
        'content-type': 'application/json',
        'x-github-event': 'push',
        'x-hub-signature-256': sign(body, api.webhookSecret),
      },
    });
    expect(good.status).toBe(200);
    const result = (await good.json()) as { status: string; commit: string; changedClusters: number };
    expect(result).toMatchObject({ status: 'synced', commit });
    expect(result.changedClusters).toBe(1);
    expect((await desiredState(prodEu)).manifest?.commit).toBe(commit);

    // A team repository's webhook names its source: its pushes sync whatever their branch.
    const teamPush = await api.call('/v1/webhooks/git?source=team-a', {
      method: 'POST',
      body: otherBranch,
      headers: {
        'content-type': 'application/json',
        'x-github-event': 'push',
        'x-hub-signature-256': sign(otherBranch, api.webhookSecret),
      },
    });
    expect(teamPush.status).toBe(200);
    expect(((await teamPush.json()) as { status: string }).status).toBe('synced');
  });

  it('serves a large bundle gzipped to clients that take gzip, and plain to those that do not', async () => {
    const lines = Array.from({ length: 4000 }, (_, i) => `  key-${i}: "value ${i} ${'x'.repeat(60)}"`).join(
      '\n',
    );
    repo.write('bundles/big/bundle.yaml', `namespace: big\ntargets:\n  - clusterName: ${prodEu}\n`);
    repo.write(
      'bundles/big/config.yaml',
      `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n${lines}\n`,
    );
    repo.commit('A big bundle for one cluster');
    expect((await api.admin('/v1/admin/sync', { method: 'POST' })).status).toBe(200);
    const ref = (await desiredState(prodEu)).manifest?.bundles.find((b) => b.name === 'big');
    expect(ref).toBeDefined();

    const gzipped = await api.call(`/v1/bundles/${ref?.hash}`, {
      token: tokens.get(prodEu),
      headers: { 'accept-encoding': 'gzip' },
    });
    expect(gzipped.status).toBe(200);
    expect(gzipped.headers.get('content-encoding')).toBe('gzip');
    expect(Number(gzipped.headers.get('content-length'))).toBeLessThan(100_000);
    const text = await gzipped.text(); // fetch inflates it
    expect(text.length).toBeGreaterThan(300_000);
    expect(parseRenderedBundle(text, ref?.hash as ContentHash).objects).toHaveLength(1);

    const plain = await api.call(`/v1/bundles/${ref?.hash}`, {
      token: tokens.get(prodEu),
      headers: { 'accept-encoding': 'identity' },
    });
    expect(plain.headers.get('content-encoding')).toBeNull();
    expect(await plain.text()).toBe(text);
    // Another cluster cannot read it, however it asks.
    expect((await api.call(`/v1/bundles/${ref?.hash}`, { token: tokens.get(stagingUs) })).status).toBe(404);
  });

  it('serves a bundle larger than one response in parts that reassemble to its hash', async () => {
    // Incompressible content: 14 ConfigMaps of 900 KB of random hex (each under the API
    // server's 1 MiB), 12.6 MB in all, far over Lambda's 6 MB response limit once gzipped.
    const { randomBytes } = await import('node:crypto');
    const { gunzipSync } = await import('node:zlib');
    const blobs = Array.from({ length: 14 }, () => randomBytes(450 * 1024).toString('hex'));
    repo.write('bundles/huge/bundle.yaml', `namespace: huge\ntargets:\n  - clusterName: ${prodEu}\n`);
    blobs.forEach((blob, i) => {
      const name = `huge-${String(i).padStart(2, '0')}`;
      repo.write(
        `bundles/huge/${name}.yaml`,
        `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  blob: "${blob}"\n`,
      );
    });
    repo.commit('A bundle no single response can carry');
    expect((await api.admin('/v1/admin/sync', { method: 'POST' })).status).toBe(200);
    const ref = (await desiredState(prodEu)).manifest?.bundles.find((b) => b.name === 'huge');
    expect(ref).toBeDefined();

    const first = await api.call(`/v1/bundles/${ref?.hash}/parts/0`, { token: tokens.get(prodEu) });
    expect(first.status).toBe(200);
    const parts = Number(first.headers.get('x-flotilla-parts'));
    expect(parts).toBeGreaterThan(17); // > 6 MB of gzip in parts of at most 350 KB
    const buffers = [Buffer.from(await first.arrayBuffer())];
    for (let i = 1; i < parts; i++) {
      const res = await api.call(`/v1/bundles/${ref?.hash}/parts/${i}`, { token: tokens.get(prodEu) });
      expect(res.status).toBe(200);
      const part = Buffer.from(await res.arrayBuffer());
      expect(part.length).toBeLessThanOrEqual(350 * 1024);
      buffers.push(part);
    }
    const text = gunzipSync(Buffer.concat(buffers)).toString('utf8');
    expect(text.length).toBe(Number(first.headers.get('x-flotilla-size')));
    const doc = parseRenderedBundle(text, ref?.hash as ContentHash);
    expect(doc.objects.map((o) => (o as unknown as { data: { blob: string } }).data.blob)).toEqual(blobs);
    // Parts are authorized like the whole bundle.
    const other = await api.call(`/v1/bundles/${ref?.hash}/parts/0`, { token: tokens.get(stagingUs) });
    expect(other.status).toBe(404);
    repo.remove('bundles/huge');
    repo.commit('Remove the huge bundle');
    expect((await api.admin('/v1/admin/sync', { method: 'POST' })).status).toBe(200);
  });

  it('never logs tokens or keys', () => {
    const logs = api.logLines.join('\n');
    for (const token of tokens.values()) expect(logs).not.toContain(token);
    expect(logs).not.toContain(api.adminKey);
    expect(logs).not.toContain(api.webhookSecret);
  });
});
