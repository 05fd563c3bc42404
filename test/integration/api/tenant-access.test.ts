import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ExitCode } from '../../../cli/src/core/exit-codes.ts';
import { runFlotilla } from '../../support/cli-run.ts';
import { FleetWorkingCopy } from '../../support/fleet-git.ts';
import { type ApiHub, errorOf, startApiHub } from './local-hub.ts';

const bed = inject('bed');
let repo: FleetWorkingCopy;
let api: ApiHub;
// The teams' own repositories, which the hub reads as the sources' (empty: no bundles yet).
const teamRepos: FleetWorkingCopy[] = [];
const run = Date.now();
const empty = mkdtempSync(join(tmpdir(), 'flotilla-team-apps-'));
writeFileSync(join(empty, 'README.md'), 'No bundles yet.\n');

const tenant = (name: string, selector: string) => `apiVersion: flotilla.dev/v1alpha1
kind: Tenant
metadata:
  name: ${name}
spec:
  namespaces: ["${name}", "${name}-*"]
  clusterSelector: ${selector}
`;
const source = (name: string) => `apiVersion: flotilla.dev/v1alpha1
kind: FleetSource
metadata:
  name: ${name}
spec:
  repo: ${bed.git.url}/${name}-apps-${run}.git
  ref: { branch: main }
  tenant: ${name}
`;

beforeAll(async () => {
  for (const name of ['team-a', 'team-b'])
    teamRepos.push(await FleetWorkingCopy.create(bed.git, `${name}-apps-${run}`, empty));
  repo = await FleetWorkingCopy.create(bed.git, `tenants-${Date.now()}`);
  repo
    .write('tenants/team-a.yaml', tenant('team-a', '{ matchLabels: { team-a: enabled } }'))
    .write('tenants/team-b.yaml', tenant('team-b', '{}'))
    .write('sources/team-a.yaml', source('team-a'))
    .write('sources/team-b.yaml', source('team-b'));
  await repo.commitAsync('Tenants team-a and team-b');
  api = await startApiHub(bed, repo.url);
});

afterAll(async () => {
  await api?.stop();
  repo?.dispose();
  for (const team of teamRepos) team.dispose();
  rmSync(empty, { recursive: true, force: true });
});

describe('tenant admin keys through the local hub (DynamoDB Local, real HTTP)', () => {
  let key = '';
  let keyId = '';

  it('lets the platform admin create a tenant key after a sync declares the tenant', async () => {
    for (const [name, labels] of [
      ['ta-eu', { env: 'prod', region: 'eu', 'team-a': 'enabled' }],
      ['ta-us', { env: 'staging', region: 'us', 'team-a': 'enabled' }],
      ['other-eu', { env: 'prod', region: 'eu' }],
    ] as const) {
      const res = await api.admin('/v1/admin/clusters', { method: 'POST', json: { name, labels } });
      expect(res.status).toBe(201);
    }
    expect((await api.admin('/v1/admin/sync', { method: 'POST' })).status).toBe(200);

    const created = await api.admin('/v1/admin/tenants/team-a/keys', {
      method: 'POST',
      json: { description: 'team-a CI' },
    });
    expect(created.status).toBe(201);
    const body = (await created.json()) as { key: string; tenantKey: { id: string; tenant: string } };
    expect(body.key).toMatch(/^flt_t_team-a\.[A-Za-z0-9_-]{43}$/);
    expect(body.tenantKey.tenant).toBe('team-a');
    key = body.key;
    keyId = body.tenantKey.id;

    const listed = await api.admin('/v1/admin/tenants/team-a/keys');
    const keys = (await listed.json()) as { tenantKeys: { id: string; description: string }[] };
    expect(keys.tenantKeys).toEqual([expect.objectContaining({ id: keyId, description: 'team-a CI' })]);
    expect(JSON.stringify(keys)).not.toContain(key.split('.')[1]);
    // Only the hash is stored.
    const stored = await api.hub.tenantKeys.list();
    expect(JSON.stringify(stored)).not.toContain(key.split('.')[1]);
  });

  it("reads its tenant's status: the clusters its selector matches, none of the platform's bundles", async () => {
    const res = await api.call('/v1/tenants/team-a/status', { token: key });
    expect(res.status).toBe(200);
    const status = (await res.json()) as {
      summary: { clusters: number };
      clusters: { id: string; bundles: { name: string }[] }[];
      sync: { commit: string };
    };
    expect(status.clusters.map((c) => c.id)).toEqual(['ta-eu', 'ta-us']);
    expect(status.summary.clusters).toBe(2);
    expect(status.clusters.flatMap((c) => c.bundles)).toEqual([]);
    expect(status.sync.commit).toBe(repo.git('rev-parse', 'HEAD'));

    const paged = await api.call('/v1/tenants/team-a/status?limit=1', { token: key });
    const page = (await paged.json()) as { total: number; clusters: { id: string }[]; nextCursor: string };
    expect(page.total).toBe(2);
    expect(page.clusters.map((c) => c.id)).toEqual(['ta-eu']);

    const clusters = await api.call('/v1/tenants/team-a/clusters', { token: key });
    expect(((await clusters.json()) as { clusters: { id: string }[] }).clusters.map((c) => c.id)).toEqual([
      'ta-eu',
      'ta-us',
    ]);
    // The platform's own view still has every cluster, and its bundles.
    const fleet = (await (await api.admin('/v1/admin/status')).json()) as {
      clusters: { id: string; bundles: unknown[] }[];
    };
    expect(fleet.clusters).toHaveLength(3);
    expect(fleet.clusters.some((c) => c.bundles.length > 0)).toBe(true);
  });

  it("is refused, naming what, on another tenant's routes, on admin routes and on bundles it does not own", async () => {
    const other = await api.call('/v1/tenants/team-b/status', { token: key });
    expect(other.status).toBe(403);
    expect(await errorOf(other)).toMatchObject({
      code: 'forbidden',
      message: 'tenant "team-a" may not act on tenant "team-b"',
    });

    const admin = await api.call('/v1/admin/status', { token: key });
    expect(admin.status).toBe(403);
    expect((await errorOf(admin)).message).toBe(
      'tenant "team-a" may not call GET /v1/admin/status: it is a platform admin route (a tenant\'s routes are under /v1/tenants/team-a/)',
    );

    const rollout = await api.call('/v1/tenants/team-a/rollouts/web/pause', { token: key, method: 'POST' });
    expect(rollout.status).toBe(403);
    expect((await errorOf(rollout)).message).toBe('tenant "team-a" may not act on bundle "web"');

    const cluster = await api.call('/v1/tenants/team-a/clusters/other-eu/status', { token: key });
    expect(cluster.status).toBe(403);
    expect((await errorOf(cluster)).message).toBe('tenant "team-a" may not act on cluster "other-eu"');
  });

  it('stops working at once when revoked: 401', async () => {
    const revoked = await api.admin(`/v1/admin/tenants/team-a/keys/${keyId}`, { method: 'DELETE' });
    expect(revoked.status).toBe(204);
    const res = await api.call('/v1/tenants/team-a/status', { token: key });
    expect(res.status).toBe(401);
    expect((await errorOf(res)).message).toBe('the tenant key is not valid (unknown or revoked)');
    expect(JSON.stringify(api.logLines)).not.toContain(key.split('.')[1]);
  });
});

describe('flotilla with a tenant key, against the same hub', () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'flotilla-tenant-cli-'));
  const asAdmin = (args: string[]) =>
    runFlotilla({ hubUrl: api.url, adminKey: api.adminKey, stateDir }, args);

  it('creates, lists and revokes keys as the platform admin, and scopes status, rollouts and sync by the key', async () => {
    const created = await asAdmin(['tenant', 'key', 'create', 'team-a', '--description', 'cli']);
    expect(created.code).toBe(ExitCode.Ok);
    const key = created.stdout.trim();
    expect(key).toMatch(/^flt_t_team-a\./);
    const asTenant = (args: string[], env: Record<string, string> = {}) =>
      runFlotilla({ hubUrl: api.url, adminKey: key, stateDir }, args, env);

    const listed = await asAdmin(['tenant', 'key', 'list', 'team-a', '-o', 'json']);
    const ids = listed.json<{ tenantKeys: { id: string; description: string }[] }>().tenantKeys;
    const mine = ids.find((k) => k.description === 'cli');
    expect(mine).toBeDefined();

    const status = await asTenant(['status', '-o', 'json']);
    expect(status.code).toBe(ExitCode.Ok);
    expect(status.json<{ clusters: { id: string }[] }>().clusters.map((c) => c.id)).toEqual([
      'ta-eu',
      'ta-us',
    ]);

    const sync = await asTenant(['sync', '-o', 'json']);
    expect(sync.code).toBe(ExitCode.Ok);
    expect(sync.json<{ commit: string }>().commit).toBe(repo.git('rev-parse', 'HEAD'));

    const pause = await asTenant(['rollout', 'pause', 'web']);
    expect(pause.code).toBe(ExitCode.Unauthorized);
    expect(pause.stderr).toContain('tenant "team-a" may not act on bundle "web"');

    const other = await asTenant(['status'], { FLOTILLA_TENANT: 'team-b' });
    expect(other.code).toBe(ExitCode.Config);
    expect(other.stderr).toContain(
      'FLOTILLA_TENANT names tenant "team-b", but the admin key is a key of tenant "team-a"',
    );

    // The platform admin reads a tenant's view with --tenant.
    const scoped = await asAdmin(['status', '--tenant', 'team-a', '-o', 'json']);
    expect(scoped.json<{ clusters: { id: string }[] }>().clusters).toHaveLength(2);

    expect((await asAdmin(['tenant', 'key', 'revoke', 'team-a', mine?.id ?? ''])).code).toBe(ExitCode.Ok);
    const after = await asTenant(['status']);
    expect(after.code).toBe(ExitCode.Unauthorized);
    expect(after.stderr).toContain('the tenant key is not valid (unknown or revoked)');
  });
});
