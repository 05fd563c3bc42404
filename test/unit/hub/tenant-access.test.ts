import { sha256Hash } from '@flotilla/shared';
import {
  authenticateTenantKey,
  ConflictError,
  createTenantKey,
  fleetStatus,
  fleetStatusPage,
  revokeTenantKey,
  type StoredDesiredState,
  scopesOfFiles,
  snapshotTenantScopes,
  type TenantKeyRecord,
  type TenantKeyStore,
  tenantOfKey,
  tenantSources,
} from '@flotilla/shared/hub';
import type { Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { createApiHandler } from '../../../functions/src/http/api.ts';
import { parseTenantPrincipals, principalMatches } from '../../../functions/src/http/caller.ts';
import type { ApiEvent } from '../../../functions/src/http/request.ts';
import { toApiGatewayEvent } from '../../../functions/src/local/event.ts';
import { addCluster, adminKey, fakeApiDeps } from './fakes.ts';

class MemoryTenantKeyStore implements TenantKeyStore {
  readonly items = new Map<string, TenantKeyRecord>();
  async create(record: TenantKeyRecord) {
    if (this.items.has(record.keyHash)) throw new ConflictError('exists');
    this.items.set(record.keyHash, record);
  }
  async get(keyHash: string) {
    return this.items.get(keyHash);
  }
  async list() {
    return [...this.items.values()];
  }
  async delete(keyHash: string) {
    this.items.delete(keyHash);
  }
}

const tenantFile = (name: string, selector: string) => ({
  path: `tenants/${name}.yaml`,
  content: `apiVersion: flotilla.dev/v1alpha1
kind: Tenant
metadata:
  name: ${name}
spec:
  namespaces: ["${name}"]
  clusterSelector: ${selector}
`,
});
const sourceFile = (name: string, tenant?: string) => ({
  path: `sources/${name}.yaml`,
  content: `apiVersion: flotilla.dev/v1alpha1
kind: FleetSource
metadata: { name: ${name} }
spec:
  repo: https://git.example.com/${name}.git
  ref: { branch: main }
${tenant ? `  tenant: ${tenant}\n` : ''}`,
});

const fleetFiles = [
  tenantFile('team-a', '{ matchLabels: { team-a: enabled } }'),
  tenantFile('team-b', '{}'),
  sourceFile('team-a', 'team-a'),
  sourceFile('team-a-extra', 'team-a'),
  sourceFile('team-b', 'team-b'),
  sourceFile('shared-infra'),
  { path: 'bundles/web/bundle.yaml', content: 'targets: []\n' },
];

const h = (c: string) => `sha256:${c.repeat(64)}`;
const now = new Date('2024-05-01T12:00:00Z');
const seen = (s: number) => new Date(now.getTime() - s * 1000).toISOString();
const offlineAfterSeconds = 300;

function manifest(cluster: string, bundles: readonly string[]): StoredDesiredState {
  const m = {
    apiVersion: 'flotilla.dev/v1alpha1',
    kind: 'DesiredState',
    cluster,
    generation: 1,
    commit: 'c1',
    bundles: bundles.map((name, i) => ({
      name,
      hash: h(String(i + 1)),
      namespace: 'default',
      dependsOn: [],
      driftPolicy: 'correct',
      paused: false,
    })),
  };
  return {
    clusterId: cluster,
    generation: 1,
    etag: `e-${cluster}`,
    refsHash: `r-${bundles.join(',')}`,
    commit: 'c1',
    manifest: JSON.stringify(m),
    signature: 's',
    keyId: 'k',
    createdAt: now.toISOString(),
  };
}

/**
 * Clusters a-0..a-3 (team-a enabled) and p-0, p-1 (not), each getting `web` (platform) and
 * `team-a/web`; `web` is Failed everywhere, `team-a/web` Failed on a-1 only. The last sync's
 * snapshot holds {@link fleetFiles}.
 */
async function fleet() {
  const tenantKeys = new MemoryTenantKeyStore();
  const deps = { ...fakeApiDeps({ now: () => now }), tenantKeys, tenantScopes: undefined as never };
  const bundles = ['team-a/web', 'web'];
  const clusters: [string, Record<string, string>][] = [
    ['a-0', { 'team-a': 'enabled' }],
    ['a-1', { 'team-a': 'enabled' }],
    ['a-2', { 'team-a': 'enabled' }],
    ['a-3', { 'team-a': 'enabled' }],
    ['p-0', {}],
    ['p-1', {}],
  ];
  for (const [id, labels] of clusters) {
    await addCluster(deps.clusters, id, labels);
    await deps.desiredStates.commit(manifest(id, bundles), undefined);
    await deps.clusters.recordHeartbeat(id, { at: seen(10), agentVersion: '0.1.0' });
    // Written straight to the status store: the agent protocol's check of `<source>/<bundle>`
    // names is the sources work's to relax.
    const failed = (name: string) => name === 'web' || id === 'a-1';
    await deps.statuses.apply({
      clusterId: id,
      summary: { appliedGeneration: 1 },
      put: bundles.map(
        (name, i) =>
          ({
            bundle: name,
            state: failed(name) ? 'Failed' : 'Ready',
            hash: h(String(i + 1)),
            generation: 1,
            since: seen(60),
            updatedAt: seen(60),
            ...(failed(name) ? { message: 'boom' } : {}),
          }) as never,
      ),
      remove: [],
    });
  }
  const snapshotJson = JSON.stringify(fleetFiles.map((f) => [f.path, f.content]));
  const snapshotHash = sha256Hash(snapshotJson);
  await deps.bundles.putMany([{ hash: snapshotHash, content: new TextEncoder().encode(snapshotJson) }]);
  await deps.syncState.save({
    commit: 'c1',
    snapshotHash,
    syncedAt: seen(60),
    clusters: clusters.length,
    changedClusters: 0,
    errors: [
      { file: 'bundles/web/bundle.yaml', line: 4, message: 'platform problem', bundle: 'web' },
      { file: 'team-a:bundles/api/bundle.yaml', line: 2, message: 'team-a problem', bundle: 'team-a/api' },
      { file: 'sources/team-b.yaml', line: 1, message: 'team-b problem' },
    ],
  });
  const withScopes = { ...deps, tenantScopes: snapshotTenantScopes(deps) };
  return withScopes;
}

let counter = 0;
function event(method: string, url: string, token?: string, body?: unknown): ApiEvent {
  return toApiGatewayEvent({
    method,
    url,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: Buffer.from(body === undefined ? '' : JSON.stringify(body)),
    sourceIp: '127.0.0.1',
    requestId: `req-${++counter}`,
    now,
  });
}

async function call(deps: Awaited<ReturnType<typeof fleet>>, e: ApiEvent) {
  const result = await createApiHandler(deps)(e, { awsRequestId: 'l' } as Context);
  return {
    status: result.statusCode,
    json: result.body ? (JSON.parse(result.body) as Record<string, never>) : undefined,
  };
}

describe('what a tenant owns, from the fleet files', () => {
  it('reads sources by name and tenant, and scopes bundles, clusters and errors', () => {
    expect([...tenantSources(fleetFiles)]).toEqual([
      ['team-a', 'team-a'],
      ['team-a-extra', 'team-a'],
      ['team-b', 'team-b'],
    ]);
    const scopes = scopesOfFiles(fleetFiles);
    const a = scopes.get('team-a');
    expect(a?.sources).toEqual(['team-a', 'team-a-extra']);
    expect(a?.ownsBundle('team-a/web')).toBe(true);
    expect(a?.ownsBundle('team-a-extra/db')).toBe(true);
    expect(a?.ownsBundle('web')).toBe(false);
    expect(a?.ownsBundle('team-b/web')).toBe(false);
    expect(a?.ownsBundle('shared-infra/dns')).toBe(false);
    // A source named like the tenant's prefix is not the tenant's: names are matched up to the `/`.
    expect(a?.ownsBundle('team-ab/web')).toBe(false);
    expect(a?.allowsCluster({ 'team-a': 'enabled' })).toBe(true);
    expect(a?.allowsCluster({})).toBe(false);
    expect(a?.ownsError({ file: 'team-a:bundles/x/bundle.yaml', line: 1, message: 'm' })).toBe(true);
    expect(a?.ownsError({ file: 'sources/team-a.yaml', line: 1, message: 'm' })).toBe(true);
    expect(a?.ownsError({ file: 'sources/team-b.yaml', line: 1, message: 'm' })).toBe(false);
    expect(a?.ownsError({ file: 'bundles/web/bundle.yaml', line: 1, message: 'm', bundle: 'web' })).toBe(
      false,
    );
    expect(scopes.get('team-b')?.allowsCluster({})).toBe(true);
    expect(scopes.has('shared-infra')).toBe(false);
  });

  it('reads the snapshot once per snapshot hash, and knows no tenant before the first sync', async () => {
    const deps = await fleet();
    let reads = 0;
    const counted = {
      syncState: deps.syncState,
      bundles: {
        get: async (hash: string) => {
          reads++;
          return deps.bundles.get(hash);
        },
      },
    };
    const scopes = snapshotTenantScopes(counted);
    expect((await scopes.scope('team-a'))?.tenant).toBe('team-a');
    expect(await scopes.scope('team-c')).toBeUndefined();
    expect((await scopes.scope('team-b'))?.tenant).toBe('team-b');
    expect(reads).toBe(1);
    const empty = snapshotTenantScopes({ syncState: { get: async () => undefined }, bundles: deps.bundles });
    expect(await empty.scope('team-a')).toBeUndefined();
  });
});

describe('tenant keys', () => {
  it('are flt_t_<tenant>.<secret>, stored as their hash only, and stop working when revoked', async () => {
    const ports = { tenantKeys: new MemoryTenantKeyStore(), now: () => now };
    const { key, record } = await createTenantKey(ports, { tenant: 'team-a', createdBy: 'admin-key' });
    expect(key).toMatch(/^flt_t_team-a\.[A-Za-z0-9_-]{43}$/);
    expect(tenantOfKey(key)).toBe('team-a');
    expect(JSON.stringify([...ports.tenantKeys.items.values()])).not.toContain(key.split('.')[1]);
    expect((await authenticateTenantKey(ports.tenantKeys, key))?.tenant).toBe('team-a');
    // The tenant in the key is part of what is hashed: renaming it gives a key that does not exist.
    expect(await authenticateTenantKey(ports.tenantKeys, key.replace('team-a', 'team-b'))).toBeUndefined();
    await expect(revokeTenantKey(ports, 'team-b', record.id)).rejects.toThrow('tenant "team-b" has no key');
    await revokeTenantKey(ports, 'team-a', record.id);
    expect(await authenticateTenantKey(ports.tenantKeys, key)).toBeUndefined();
    expect(tenantOfKey('flt_edge-1.secret')).toBeUndefined();
    expect(tenantOfKey('flt_t_Team_A.0123456789abcdefghijk')).toBeUndefined();
  });
});

describe('tenant routes and who may call what (API handler on fakes)', () => {
  it('lets the platform admin issue, list and revoke tenant keys; a revoked key is 401 at once', async () => {
    const deps = await fleet();
    const created = await call(
      deps,
      event('POST', '/v1/admin/tenants/team-a/keys', adminKey, { description: 'ci' }),
    );
    expect(created.status).toBe(201);
    const key = created.json?.key as unknown as string;
    const id = (created.json?.tenantKey as unknown as { id: string } | undefined)?.id;
    expect(key).toMatch(/^flt_t_team-a\./);
    const listed = await call(deps, event('GET', '/v1/admin/tenants/team-a/keys', adminKey));
    expect(listed.json?.tenantKeys).toEqual([
      { id, tenant: 'team-a', description: 'ci', createdBy: 'admin-key', createdAt: now.toISOString() },
    ]);
    expect(JSON.stringify(listed.json)).not.toContain(key);
    expect((await call(deps, event('GET', '/v1/tenants/team-a/status', key))).status).toBe(200);
    // A tenant key cannot issue keys, not even for its own tenant.
    const own = await call(deps, event('POST', '/v1/admin/tenants/team-a/keys', key));
    expect(own.status).toBe(403);
    expect((await call(deps, event('DELETE', `/v1/admin/tenants/team-a/keys/${id}`, adminKey))).status).toBe(
      204,
    );
    const revoked = await call(deps, event('GET', '/v1/tenants/team-a/status', key));
    expect(revoked.status).toBe(401);
    expect(revoked.json?.error).toMatchObject({
      message: 'the tenant key is not valid (unknown or revoked)',
    });
    const unknown = await call(deps, event('POST', '/v1/admin/tenants/team-c/keys', adminKey));
    expect(unknown.status).toBe(404);
    expect(unknown.json?.error).toMatchObject({
      message: 'tenant "team-c" is not declared in the fleet (tenants/team-c.yaml at the last synced commit)',
    });
  });

  it("serves a tenant its own stored bundles by hash, and 404 for anyone else's or a snapshot", async () => {
    const deps = await fleet();
    const { key } = await createTenantKey(deps, { tenant: 'team-a' });
    const doc = (bundle: string) =>
      new TextEncoder().encode(
        JSON.stringify({ apiVersion: 'flotilla.dev/v1alpha1', kind: 'RenderedBundle', bundle, objects: [] }),
      );
    const own = sha256Hash(`own-${Date.now()}`);
    const platform = sha256Hash(`platform-${Date.now()}`);
    const other = sha256Hash(`other-${Date.now()}`);
    await deps.bundles.putMany([
      { hash: own, content: doc('team-a/web') },
      { hash: platform, content: doc('web') },
      { hash: other, content: doc('team-b/web') },
    ]);
    const got = await call(deps, event('GET', `/v1/tenants/team-a/bundles/${own}`, key));
    expect(got.status).toBe(200);
    expect(got.json?.bundle).toBe('team-a/web');
    const snapshot = (await deps.syncState.get())?.snapshotHash as string;
    for (const hash of [platform, other, snapshot, sha256Hash('nobody')]) {
      const res = await call(deps, event('GET', `/v1/tenants/team-a/bundles/${hash}`, key));
      expect(res.status, hash).toBe(404);
      expect(res.json?.error).toMatchObject({ message: `bundle ${hash} is not stored` });
    }
    // The platform admin reads it through the tenant's route too.
    expect((await call(deps, event('GET', `/v1/tenants/team-a/bundles/${own}`, adminKey))).status).toBe(200);
  });

  it('refuses a tenant key on another tenant, on admin routes and on bundles and clusters it does not own', async () => {
    const deps = await fleet();
    const { key } = await createTenantKey(deps, { tenant: 'team-a' });
    const refused = async (method: string, url: string, message: string) => {
      const res = await call(deps, event(method, url, key));
      expect([url, res.status]).toEqual([url, 403]);
      expect(res.json?.error).toMatchObject({ code: 'forbidden', message });
    };
    await refused('GET', '/v1/tenants/team-b/status', 'tenant "team-a" may not act on tenant "team-b"');
    await refused(
      'GET',
      '/v1/admin/status',
      'tenant "team-a" may not call GET /v1/admin/status: it is a platform admin route (a tenant\'s routes are under /v1/tenants/team-a/)',
    );
    await refused(
      'POST',
      '/v1/tenants/team-a/rollouts/web/pause',
      'tenant "team-a" may not act on bundle "web"',
    );
    await refused(
      'GET',
      '/v1/tenants/team-a/rollouts/team-b%2Fweb',
      'tenant "team-a" may not act on bundle "team-b/web"',
    );
    await refused(
      'GET',
      '/v1/tenants/team-a/status?bundle=web',
      'tenant "team-a" may not act on bundle "web"',
    );
    await refused(
      'GET',
      '/v1/tenants/team-a/clusters/p-0/status',
      'tenant "team-a" may not act on cluster "p-0"',
    );
    await refused(
      'GET',
      '/v1/tenants/team-a/clusters/p-0/history',
      'tenant "team-a" may not act on cluster "p-0"',
    );
    const preview = await call(deps, event('POST', '/v1/tenants/team-a/preview', key, { clusters: ['p-1'] }));
    expect(preview.status).toBe(403);
    expect(preview.json?.error).toMatchObject({ message: 'tenant "team-a" may not act on cluster "p-1"' });
    expect(
      (await call(deps, event('GET', '/v1/tenants/team-a/status', 'flt_t_team-a.not-a-key-0123456789abcdef')))
        .status,
    ).toBe(401);
    // As API Gateway delivers it (the path decoded before routing): the name spans two segments.
    await refused(
      'POST',
      '/v1/tenants/team-a/rollouts/team-b/web/pause',
      'tenant "team-a" may not act on bundle "team-b/web"',
    );
    const bare = await call(deps, event('POST', '/v1/tenants/team-a/rollouts/pause', key));
    expect(bare.status).toBe(400);
    for (const url of [
      '/v1/tenants/team-a/rollouts/team-a/web',
      '/v1/tenants/team-a/rollouts/team-a/web/pause',
    ]) {
      const res = await call(deps, event(url.endsWith('pause') ? 'POST' : 'GET', url, key));
      expect([url, res.status, res.json?.error]).toEqual([
        url,
        404,
        expect.objectContaining({ message: 'no rollout of bundle "team-a/web"' }),
      ]);
    }
    // The platform's rollout routes read a source's bundle the same two ways.
    for (const url of ['/v1/admin/rollouts/team-a/web/pause', '/v1/admin/rollouts/team-a%2Fweb/pause']) {
      const res = await call(deps, event('POST', url, adminKey));
      expect([url, res.status, res.json?.error]).toEqual([
        url,
        404,
        expect.objectContaining({ message: 'no rollout of bundle "team-a/web"' }),
      ]);
    }
    // Its own rollout: not found (none started), so past the scope check.
    expect((await call(deps, event('GET', '/v1/tenants/team-a/rollouts/team-a%2Fweb', key))).status).toBe(
      404,
    );
    // The platform admin may call a tenant's routes and sees the tenant's view.
    const asAdmin = await call(deps, event('GET', '/v1/tenants/team-a/clusters', adminKey));
    expect((asAdmin.json?.clusters as unknown as { id: string }[] | undefined)?.map((c) => c.id)).toEqual([
      'a-0',
      'a-1',
      'a-2',
      'a-3',
    ]);
  });

  it("answers status over the tenant's clusters and bundles: pages, totals and summaries are its own", async () => {
    const deps = await fleet();
    const { key } = await createTenantKey(deps, { tenant: 'team-a' });
    const page = await call(deps, event('GET', '/v1/tenants/team-a/status?limit=3', key));
    expect(page.status).toBe(200);
    const body = page.json as unknown as {
      total: number;
      nextCursor: string | null;
      summary: {
        clusters: number;
        clusterStates: Record<string, number>;
        bundleStates: Record<string, number>;
      };
      clusters: { id: string; state: string; bundles: { name: string }[] }[];
      sync: { errors: { text: string }[] };
    };
    expect(body.total).toBe(4);
    expect(body.clusters.map((c) => c.id)).toEqual(['a-0', 'a-1', 'a-2']);
    expect(body.clusters.map((c) => c.state)).toEqual(['Ready', 'Failed', 'Ready']);
    expect(body.clusters.flatMap((c) => c.bundles.map((b) => b.name))).toEqual([
      'team-a/web',
      'team-a/web',
      'team-a/web',
    ]);
    // `web` is Failed on every cluster but is not the tenant's: one Failed cluster, not four.
    expect(body.summary.clusters).toBe(4);
    expect(body.summary.clusterStates.Failed).toBe(1);
    expect(body.summary.clusterStates.Ready).toBe(3);
    expect(body.summary.bundleStates).toMatchObject({ Ready: 3, Failed: 1 });
    expect(body.sync.errors.map((e) => e.text)).toEqual(['team-a:bundles/api/bundle.yaml:2: team-a problem']);
    const next = await call(
      deps,
      event('GET', `/v1/tenants/team-a/status?limit=3&cursor=${body.nextCursor}`, key),
    );
    expect((next.json?.clusters as unknown as { id: string }[] | undefined)?.map((c) => c.id)).toEqual([
      'a-3',
    ]);
    // Failed among its clusters means its bundle Failed there.
    const failed = await call(deps, event('GET', '/v1/tenants/team-a/status?state=Failed', key));
    expect(failed.json?.total).toBe(1);
    // The whole (unpaged) status and the bundle columns agree.
    const whole = await fleetStatus(deps, {
      offlineAfterSeconds,
      scope: (await deps.tenantScopes.scope('team-a')) as never,
    });
    expect(whole.clusters.map((c) => [c.id, c.state, c.inSync])).toEqual([
      ['a-0', 'Ready', true],
      ['a-1', 'Failed', false],
      ['a-2', 'Ready', true],
      ['a-3', 'Ready', true],
    ]);
    const bundles = await call(deps, event('GET', '/v1/tenants/team-a/bundles', key));
    expect(bundles.json?.bundles).toMatchObject([
      { name: 'team-a/web', clusters: 4, states: { Failed: 1, Ready: 3 } },
    ]);
    // The platform's view is unchanged: every cluster Failed by `web`.
    const fleetPage = await fleetStatusPage(deps, { offlineAfterSeconds, limit: 10 });
    expect(fleetPage.summary.clusterStates.Failed).toBe(6);
    const one = await call(deps, event('GET', '/v1/tenants/team-a/clusters/a-0/status', key));
    expect(one.json?.cluster).toMatchObject({ id: 'a-0', state: 'Ready', bundles: [{ name: 'team-a/web' }] });
  });
});

describe('tenant admins in IAM mode', () => {
  it('maps configured principals (roles also by their sessions) to tenants; others are the platform', async () => {
    const { principals, problems } = parseTenantPrincipals(
      JSON.stringify({ 'team-a': ['arn:aws:iam::123456789012:role/teams/team-a-admins'] }),
    );
    expect(problems).toEqual([]);
    expect(
      principalMatches(
        'arn:aws:iam::123456789012:role/teams/team-a-admins',
        'arn:aws:sts::123456789012:assumed-role/team-a-admins/alice',
      ),
    ).toBe(true);
    expect(
      principalMatches(
        'arn:aws:iam::123456789012:role/teams/team-a-admins',
        'arn:aws:sts::999999999999:assumed-role/team-a-admins/alice',
      ),
    ).toBe(false);
    expect(parseTenantPrincipals('{"Team A":["x"]}').problems).toEqual([
      'FLOTILLA_TENANT_PRINCIPALS: "Team A" is not a tenant name (a DNS-1123 label)',
    ]);
    expect(parseTenantPrincipals('{"team-a":["not-an-arn"]}').problems).toEqual([
      'FLOTILLA_TENANT_PRINCIPALS.team-a: expected a list of IAM principal ARNs',
    ]);

    const base = await fleet();
    const deps = {
      ...base,
      config: { ...base.config, adminAuth: 'iam' as const, tenantPrincipals: principals },
    };
    const signed = (url: string, arn: string) => {
      const e = event('GET', url);
      return {
        ...e,
        requestContext: { ...e.requestContext, authorizer: { iam: { userArn: arn } } },
      } as ApiEvent;
    };
    const teamA = 'arn:aws:sts::123456789012:assumed-role/team-a-admins/alice';
    expect((await call(deps, signed('/v1/tenants/team-a/status', teamA))).status).toBe(200);
    const other = await call(deps, signed('/v1/tenants/team-b/status', teamA));
    expect(other.json?.error).toMatchObject({ message: 'tenant "team-a" may not act on tenant "team-b"' });
    expect((await call(deps, signed('/v1/admin/status', teamA))).status).toBe(403);
    const platform = 'arn:aws:sts::123456789012:assumed-role/platform-admins/bob';
    expect((await call(deps, signed('/v1/admin/status', platform))).status).toBe(200);
    expect((await call(deps, signed('/v1/tenants/team-b/status', platform))).status).toBe(200);
  });
});
