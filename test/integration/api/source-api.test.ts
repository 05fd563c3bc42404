/**
 * Sources declared through the admin API, on the local hub over real HTTP with DynamoDB
 * Local and the bed's git server: a source added by the API delivers its bundle
 * (`team-x/app`) at the next sync and takes it away when removed; the platform repository's
 * declarations win a name in both; `flotilla source` drives the same routes.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ExitCode } from '../../../cli/src/core/exit-codes.ts';
import { runFlotilla } from '../../support/cli-run.ts';
import { FleetWorkingCopy } from '../../support/fleet-git.ts';
import { type ApiHub, errorOf, startApiHub } from './local-hub.ts';

const bed = inject('bed');
const run = Date.now();
const folders: string[] = [];
let platform: FleetWorkingCopy;
const teams: FleetWorkingCopy[] = [];
let api: ApiHub;
let stateDir: string;

function folder(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-source-api-'));
  folders.push(dir);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}

const configMap = (name: string, namespace: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}, namespace: ${namespace}}\ndata: {value: "${name}"}\n`;
const teamRepo = (team: string) =>
  folder({
    'deploy/bundles/app/bundle.yaml': `namespace: ${team}\ntargets:\n  - clusterSelector: {}\n`,
    'deploy/bundles/app/cm.yaml': configMap('app', team),
  });
const sourceFile = (name: string, url: string) => `apiVersion: flotilla.dev/v1alpha1
kind: FleetSource
metadata: {name: ${name}}
spec:
  repo: ${url}
  ref: {branch: main}
  path: deploy
`;

async function bundlesOf(cluster: string): Promise<string[]> {
  const res = await api.admin(`/v1/admin/clusters/${cluster}/desired-state`);
  expect(res.status).toBe(200);
  const body = (await res.json()) as { manifest: { bundles: { name: string }[] } };
  return body.manifest.bundles.map((b) => b.name);
}

const cli = (args: string[]) => runFlotilla({ hubUrl: api.url, adminKey: api.adminKey, stateDir }, args);

beforeAll(async () => {
  for (const team of ['team-a', 'team-x', 'team-y', 'team-z'])
    teams.push(await FleetWorkingCopy.create(bed.git, `${team}-${run}`, teamRepo(team)));
  const [teamA] = teams as [FleetWorkingCopy];
  platform = await FleetWorkingCopy.create(
    bed.git,
    `source-api-platform-${run}`,
    folder({
      'tenants/team-a.yaml':
        'apiVersion: flotilla.dev/v1alpha1\nkind: Tenant\nmetadata: {name: team-a}\nspec:\n  namespaces: [team-a]\n  clusterSelector: {}\n',
      'sources/team-a.yaml': `${sourceFile('team-a', teamA.url)}  tenant: team-a\n`,
      'bundles/web/bundle.yaml': 'namespace: web\ntargets:\n  - clusterSelector: {}\n',
      'bundles/web/cm.yaml': configMap('web', 'web'),
    }),
  );
  api = await startApiHub(bed, platform.url);
  stateDir = mkdtempSync(join(tmpdir(), 'flotilla-source-api-state-'));
  folders.push(stateDir);
  const res = await api.admin('/v1/admin/clusters', { method: 'POST', json: { name: 'dev-1', labels: {} } });
  expect(res.status).toBe(201);
  expect((await api.admin('/v1/admin/sync', { method: 'POST' })).status).toBe(200);
});

afterAll(async () => {
  await api?.stop();
  for (const copy of [platform, ...teams]) copy?.dispose();
  for (const dir of folders) rmSync(dir, { recursive: true, force: true });
});

describe('sources through the admin API (local hub, DynamoDB Local, git server)', () => {
  it('adds a source, syncs its bundle team-x/app to the cluster, removes it and the bundle leaves', async () => {
    expect(await bundlesOf('dev-1')).toEqual(['team-a/app', 'web']);
    const teamX = teams[1] as FleetWorkingCopy;
    const created = await api.admin('/v1/admin/sources', {
      method: 'POST',
      json: {
        metadata: { name: 'team-x' },
        spec: { repo: teamX.url, ref: { branch: 'main' }, path: 'deploy' },
      },
    });
    expect(created.status).toBe(201);

    const synced = await api.admin('/v1/admin/sources/team-x/sync', { method: 'POST' });
    expect(synced.status).toBe(200);
    const report = (await synced.json()) as {
      errors: unknown[];
      source: { name: string; origin: string; lastFetch: { commit: string; error: string | null } };
    };
    expect(report.errors).toEqual([]);
    expect(report.source).toMatchObject({
      name: 'team-x',
      origin: 'api',
      lastFetch: { commit: teamX.git('rev-parse', 'HEAD'), error: null },
    });
    expect(await bundlesOf('dev-1')).toEqual(['team-a/app', 'team-x/app', 'web']);

    const listed = (await (await api.admin('/v1/admin/sources')).json()) as {
      sources: { name: string; origin: string; lastFetch: { commit: string } | null }[];
    };
    expect(listed.sources.map((s) => [s.name, s.origin])).toEqual([
      ['team-a', 'repo'],
      ['team-x', 'api'],
    ]);

    const repoOne = await api.admin('/v1/admin/sources/team-a', { method: 'DELETE' });
    expect(repoOne.status).toBe(409);
    expect((await errorOf(repoOne)).message).toBe(
      'source "team-a" is declared in sources/team-a.yaml: remove it there',
    );
    const dup = await api.admin('/v1/admin/sources', {
      method: 'POST',
      json: { metadata: { name: 'team-a' }, spec: { repo: teamX.url, ref: { branch: 'main' } } },
    });
    expect(dup.status).toBe(409);
    const bad = await api.admin('/v1/admin/sources', {
      method: 'POST',
      json: {
        metadata: { name: 'team-q' },
        spec: { repo: teamX.url, ref: { branch: 'main' }, interval: '1s' },
      },
    });
    expect(bad.status).toBe(400);
    expect((await errorOf(bad)).problems).toEqual([
      { field: 'spec.interval', message: 'at least 10s (got 1s)' },
    ]);

    expect((await api.admin('/v1/admin/sources/team-x', { method: 'DELETE' })).status).toBe(204);
    expect((await api.admin('/v1/admin/sync', { method: 'POST' })).status).toBe(200);
    expect(await bundlesOf('dev-1')).toEqual(['team-a/app', 'web']);
  });

  it('reads the platform repository’s declaration when a name is declared in both, and says so', async () => {
    const teamY = teams[2] as FleetWorkingCopy;
    const created = await api.admin('/v1/admin/sources', {
      method: 'POST',
      json: {
        metadata: { name: 'team-y' },
        spec: { repo: teamY.url, ref: { branch: 'main' }, path: 'deploy' },
      },
    });
    expect(created.status).toBe(201);
    platform.write('sources/team-y.yaml', sourceFile('team-y', teamY.url));
    await platform.commitAsync('Declare team-y in the repo');
    const synced = await api.admin('/v1/admin/sync', { method: 'POST' });
    const report = (await synced.json()) as { errors: { text: string }[] };
    expect(report.errors.map((e) => e.text)).toEqual([
      'sources/team-y.yaml:1: source "team-y" is declared both in sources/team-y.yaml and through the admin API (api:sources/team-y): the file\'s declaration is read; remove one of them',
    ]);
    expect(await bundlesOf('dev-1')).toEqual(['team-a/app', 'team-y/app', 'web']);
    const listed = (await (await api.admin('/v1/admin/sources')).json()) as {
      sources: { name: string; origin: string }[];
    };
    expect(listed.sources.find((s) => s.name === 'team-y')?.origin).toBe('repo');
    // Removing the API's copy clears the error; the file's declaration stays, and then only it.
    expect((await api.admin('/v1/admin/sources/team-y', { method: 'DELETE' })).status).toBe(204);
    const clean = (await (await api.admin('/v1/admin/sync', { method: 'POST' })).json()) as {
      errors: unknown[];
    };
    expect(clean.errors).toEqual([]);
    expect(await bundlesOf('dev-1')).toEqual(['team-a/app', 'team-y/app', 'web']);
    expect((await api.admin('/v1/admin/sources/team-y', { method: 'DELETE' })).status).toBe(409);
  });

  it('flotilla source add, list, sync and remove against the same hub', async () => {
    const teamZ = teams[3] as FleetWorkingCopy;
    const added = await cli([
      'source',
      'add',
      'team-z',
      '--repo',
      teamZ.url,
      '--branch',
      'main',
      '--path',
      'deploy',
    ]);
    expect(added.code, added.stderr).toBe(ExitCode.Ok);
    expect(added.stdout).toContain('source team-z declared');

    const synced = await cli(['source', 'sync', 'team-z']);
    expect(synced.code, synced.stderr).toBe(ExitCode.Ok);
    expect(synced.stdout).toContain(`source team-z: ${teamZ.git('rev-parse', 'HEAD').slice(0, 12)}`);
    expect(await bundlesOf('dev-1')).toEqual(['team-a/app', 'team-y/app', 'team-z/app', 'web']);

    const list = await cli(['source', 'list', '-o', 'json']);
    expect(list.code).toBe(ExitCode.Ok);
    expect(
      list
        .json<{ sources: { name: string; origin: string }[] }>()
        .sources.map((s) => `${s.name}:${s.origin}`),
    ).toEqual(['team-a:repo', 'team-y:repo', 'team-z:api']);
    const table = await cli(['source', 'list']);
    expect(table.stdout).toMatch(/^team-z\s+api\s+<none>\s+http/m);

    const wrong = await cli(['source', 'remove', 'team-a']);
    expect(wrong.code).not.toBe(ExitCode.Ok);
    expect(wrong.stderr).toContain('source "team-a" is declared in sources/team-a.yaml: remove it there');
    const removed = await cli(['source', 'remove', 'team-z']);
    expect(removed.code).toBe(ExitCode.Ok);
    await cli(['sync']);
    expect(await bundlesOf('dev-1')).toEqual(['team-a/app', 'team-y/app', 'web']);
  });

  it("gives a tenant's key its own sources, by the API and by flotilla source", async () => {
    const created = await api.admin('/v1/admin/tenants/team-a/keys', { method: 'POST', json: {} });
    expect(created.status).toBe(201);
    const { key } = (await created.json()) as { key: string };
    const mine = await api.call('/v1/tenants/team-a/sources', { token: key });
    expect(mine.status).toBe(200);
    expect(((await mine.json()) as { sources: { name: string }[] }).sources.map((s) => s.name)).toEqual([
      'team-a',
    ]);
    const synced = await api.call('/v1/tenants/team-a/sources/team-a/sync', { token: key, method: 'POST' });
    expect(synced.status).toBe(200);
    const other = await api.call('/v1/tenants/team-a/sources/team-y/sync', { token: key, method: 'POST' });
    expect(other.status).toBe(403);
    expect((await errorOf(other)).message).toBe('tenant "team-a" may not act on source "team-y"');
    const add = await api.call('/v1/admin/sources', {
      token: key,
      method: 'POST',
      body: '{}',
      headers: { 'content-type': 'application/json' },
    });
    expect(add.status).toBe(403);

    const list = await runFlotilla({ hubUrl: api.url, adminKey: key, stateDir }, [
      'source',
      'list',
      '-o',
      'json',
    ]);
    expect(list.code, list.stderr).toBe(ExitCode.Ok);
    expect(list.json<{ sources: { name: string }[] }>().sources.map((s) => s.name)).toEqual(['team-a']);
  });
});
