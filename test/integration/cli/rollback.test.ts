/**
 * History and rollback end to end: a local hub on the bed's DynamoDB Local, ElasticMQ and
 * git server; first through the admin API (the generations, pins and errors as DynamoDB
 * stores them, the notification on the cluster's queue, the signed manifest its token
 * reads), then through the CLI with a real agent applying the rollback to a control plane.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { DeleteItemCommand } from '@aws-sdk/client-dynamodb';
import { type DesiredState, openSignedDesiredState } from '@flotilla/shared';
import type { ClusterHistory, RollbackResult } from '@flotilla/shared/hub';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ExitCode } from '../../../cli/src/core/exit-codes.ts';
import { type CliRun, runFlotilla } from '../../support/cli-run.ts';
import { FleetWorkingCopy } from '../../support/fleet-git.ts';
import { drainQueue } from '../../support/hub.ts';
import { until } from '../../support/until.ts';
import { type ApiHub, errorOf, startApiHub } from '../api/local-hub.ts';

const bed = inject('bed');
const id = `${process.pid % 1000}${Date.now().toString(36).slice(-5)}`;
const agentNs = `flotilla-rb-${id}`;
const appNs = `rb-app-${id}`;
const viaApi = `rb-api-${id}`;
const withAgent = `rb-agent-${id}`;

let repo: FleetWorkingCopy;
let api: ApiHub;
let stateDir: string;
const fleetDir = mkdtempSync(join(tmpdir(), 'flotilla-rb-fleet-'));

/** `base` (the namespace), and `app` and `web`, a ConfigMap each carrying a version. */
function fleetFiles(versions: { app: string; web: string }): Record<string, string> {
  const files: Record<string, string> = {
    'bundles/base/bundle.yaml': `targets:\n  - clusterSelector: suite=${id}\n`,
    'bundles/base/namespace.yaml': `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${appNs}\n`,
  };
  for (const name of ['app', 'web'] as const) {
    files[`bundles/${name}/bundle.yaml`] =
      `namespace: ${appNs}\ndependsOn: [base]\ntargets:\n  - clusterSelector: suite=${id}\n`;
    files[`bundles/${name}/config.yaml`] =
      `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  version: ${versions[name]}\n`;
  }
  return files;
}

async function push(versions: { app: string; web: string }): Promise<void> {
  for (const [path, content] of Object.entries(fleetFiles(versions))) repo.write(path, content);
  await repo.commitAsync(`app ${versions.app}, web ${versions.web}`);
  const sync = await api.admin('/v1/admin/sync', { method: 'POST' });
  expect(sync.status).toBe(200);
}

function flotilla(args: string[]): Promise<CliRun> {
  return runFlotilla({ hubUrl: api.url, adminKey: api.adminKey, stateDir }, args);
}

const rollback = (cluster: string, json: unknown) =>
  api.admin(`/v1/admin/clusters/${cluster}/rollback`, { method: 'POST', json });

async function history(cluster: string): Promise<ClusterHistory> {
  const res = await api.admin(`/v1/admin/clusters/${cluster}/history`);
  expect(res.status).toBe(200);
  return (await res.json()) as ClusterHistory;
}

beforeAll(async () => {
  stateDir = mkdtempSync(join(tmpdir(), 'flotilla-rb-state-'));
  for (const [path, content] of Object.entries(fleetFiles({ app: 'a1', web: 'w1' }))) {
    mkdirSync(dirname(join(fleetDir, path)), { recursive: true });
    writeFileSync(join(fleetDir, path), content);
  }
  repo = await FleetWorkingCopy.create(bed.git, `rb-${id}`, fleetDir);
  api = await startApiHub(bed, repo.url);
  expect((await api.admin('/v1/admin/sync', { method: 'POST' })).status).toBe(200);
});

afterAll(async () => {
  if (stateDir && api) await flotilla(['local-agent', 'stop', '--all']);
  const cluster = bed.clusters[0];
  if (cluster) {
    const kc = new KubeConfig();
    kc.loadFromFile(cluster.kubeconfigPath);
    for (const name of [agentNs, appNs])
      await kc
        .makeApiClient(CoreV1Api)
        .deleteNamespace({ name })
        .catch(() => undefined);
  }
  await api?.stop();
  repo?.dispose();
  rmSync(fleetDir, { recursive: true, force: true });
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

describe('history and rollback through the admin API and DynamoDB', () => {
  it('rolls back as a new signed generation, keeps the pin through syncs until the bundle changes, and clears', async () => {
    const reg = await api.admin('/v1/admin/clusters', {
      method: 'POST',
      json: { name: viaApi, labels: { suite: id } },
    });
    expect(reg.status).toBe(201);
    const { token, queueUrl } = (await reg.json()) as { token: string; queueUrl: string };
    const publicKeyPem = api.hub.signer.publicKeyPem;
    const served = async (): Promise<DesiredState> => {
      const res = await api.call(`/v1/clusters/${viaApi}/desired-state`, { token });
      expect(res.status).toBe(200);
      return openSignedDesiredState(await res.json(), publicKeyPem);
    };
    const hashes = (m: DesiredState) => Object.fromEntries(m.bundles.map((b) => [b.name, b.hash]));
    const g1 = hashes(await served());

    await push({ app: 'a2', web: 'w1' }); // 2
    await push({ app: 'a3', web: 'w2' }); // 3
    const g3 = hashes(await served());
    expect(g3.app).not.toBe(g1.app);

    const h = await history(viaApi);
    expect(h.generations.map((g) => [g.generation, g.reason, g.current])).toEqual([
      [3, 'sync', true],
      [2, 'sync', false],
      [1, 'register', false],
    ]);
    expect(h.generations[0]?.bundles.map((b) => [b.name, b.change])).toEqual([
      ['base', 'unchanged'],
      ['app', 'changed'],
      ['web', 'changed'],
    ]);
    expect(h.historyDepth).toBe(25);
    // A cluster's own token never reads its history, nor rolls it back.
    expect((await api.call(`/v1/admin/clusters/${viaApi}/history`, { token })).status).toBe(401);
    const asCluster = await api.call(`/v1/admin/clusters/${viaApi}/rollback`, {
      token,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ toGeneration: 1 }),
    });
    expect(asCluster.status).toBe(401);

    await drainQueue(api.hub, queueUrl);
    const res = await rollback(viaApi, { toGeneration: 1 });
    expect(res.status).toBe(200);
    const result = (await res.json()) as RollbackResult;
    expect(result).toMatchObject({ changed: true, generation: 4, notified: true });
    expect(result.pins.map((p) => [p.bundle, p.hash, p.fromGeneration, p.pinnedBy])).toEqual([
      ['app', g1.app, 1, 'admin-key'],
      ['web', g1.web, 1, 'admin-key'],
    ]);
    const g4 = await served();
    expect(g4.generation).toBe(4);
    expect(hashes(g4)).toEqual(g1);
    expect(await drainQueue(api.hub, queueUrl)).toMatchObject([{ clusterId: viaApi, generation: 4 }]);

    // web changes in git: its pin ends; app stays at generation 1's revision.
    await push({ app: 'a3', web: 'w3' });
    const g5 = await served();
    expect(g5.generation).toBe(5);
    expect(hashes(g5).app).toBe(g1.app);
    expect([g1.web, g3.web]).not.toContain(hashes(g5).web);
    const cluster = await api.admin(`/v1/admin/clusters/${viaApi}`);
    const view = ((await cluster.json()) as { cluster: { pins: { bundle: string }[] } }).cluster;
    expect(view.pins.map((p) => p.bundle)).toEqual(['app']);
    const status = (await (await api.admin('/v1/admin/status')).json()) as {
      clusters: { id: string; pins: { bundle: string }[] }[];
    };
    expect(status.clusters.find((c) => c.id === viaApi)?.pins.map((p) => p.bundle)).toEqual(['app']);

    // A commit that changes neither bundle keeps the pin and writes nothing.
    await push({ app: 'a3', web: 'w3' });
    expect((await served()).generation).toBe(5);

    const cleared = await rollback(viaApi, { clear: true });
    expect(cleared.status).toBe(200);
    expect(await cleared.json()).toMatchObject({ changed: true, generation: 6, pins: [], cleared: ['app'] });
    const g6 = await served();
    expect(hashes(g6).app).toBe(g3.app);

    const after = await history(viaApi);
    expect(after.generations.slice(0, 3).map((g) => [g.generation, g.reason, g.pinsEnded ?? []])).toEqual([
      [6, 'rollback-clear', ['app']],
      [5, 'sync', ['web']],
      [4, 'rollback', []],
    ]);
    expect(after.generations[2]?.rollback).toEqual({ toGeneration: 1, bundle: null, by: 'admin-key' });
    const page = await api.admin(`/v1/admin/clusters/${viaApi}/history?limit=2&before=5`);
    const paged = (await page.json()) as ClusterHistory;
    expect(paged.generations.map((g) => g.generation)).toEqual([4, 3]);
    expect(paged.nextBefore).toBe(3);
  });

  it('refuses by field: a generation not kept, a bundle not in it, a bad body; 404 for an unknown cluster', async () => {
    const cases: [string, unknown, number, string, RegExp][] = [
      [viaApi, { toGeneration: 99 }, 400, 'toGeneration', /not before the current generation 6/],
      [
        viaApi,
        { toGeneration: 2, bundle: 'db' },
        400,
        'bundle',
        /bundle "db" is not in generation 2 \(it has: app, base, web\)/,
      ],
      [viaApi, { clear: true, toGeneration: 2 }, 400, 'toGeneration', /not allowed with clear/],
      [viaApi, { toGeneration: 'two' }, 400, 'toGeneration', /expected a generation number/],
      [viaApi, {}, 400, 'toGeneration', /required/],
      [`nope-${id}`, { toGeneration: 1 }, 404, '', /cluster "nope-.*" not found/],
    ];
    for (const [cluster, body, status, field, message] of cases) {
      const res = await rollback(cluster, body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      const error = await errorOf(res);
      if (field) expect(error.field ?? error.problems?.[0]?.field).toBe(field);
      expect(error.message).toMatch(message);
    }
    // Generations pruned from the history: gone from DynamoDB, refused by field.
    await api.hub.dynamodb.send(
      new DeleteItemCommand({
        TableName: api.hub.config.tables.desiredStates,
        Key: { clusterId: { S: viaApi }, generation: { N: '1' } },
      }),
    );
    const pruned = await rollback(viaApi, { toGeneration: 1 });
    expect(pruned.status).toBe(400);
    expect((await errorOf(pruned)).message).toMatch(
      /generation 1 of ".*" is not in its history \(kept: 2 to 6\)/,
    );
    const badQuery = await api.admin(`/v1/admin/clusters/${viaApi}/history?limit=0`);
    expect(badQuery.status).toBe(400);
    expect((await api.admin(`/v1/admin/clusters/nope-${id}/history`)).status).toBe(404);
  });
});

describe('history and rollback from the CLI, applied by a real agent', () => {
  it('rolls one bundle back on the spoke, shows the pin in status, and clears it', async () => {
    const spoke = bed.clusters[0];
    if (!spoke) throw new Error('the bed has no cluster');
    const kc = new KubeConfig();
    kc.loadFromFile(spoke.kubeconfigPath);
    const core = kc.makeApiClient(CoreV1Api);
    const appVersion = () =>
      core
        .readNamespacedConfigMap({ name: 'app', namespace: appNs })
        .then((cm) => cm.data?.version)
        .catch(() => undefined);

    const boot = await flotilla([
      'bootstrap',
      withAgent,
      '--kubeconfig',
      spoke.kubeconfigPath,
      '--label',
      `suite=${id}`,
      '--run-agent',
      'local',
      '--namespace',
      agentNs,
      '--agent-env',
      'FLOTILLA_HEARTBEAT_INTERVAL=2s',
      '--timeout',
      '60s',
    ]);
    expect(boot.code, boot.stderr).toBe(0);
    await until('the agent to apply app a3', async () => ((await appVersion()) === 'a3' ? true : undefined));

    await push({ app: 'a4', web: 'w3' }); // generation 2 of this cluster
    await until('the agent to apply app a4', async () => ((await appVersion()) === 'a4' ? true : undefined));

    const hist = await flotilla(['history', withAgent]);
    expect(hist.code, hist.stderr).toBe(0);
    expect(hist.stdout).toMatch(/^2\*\s+\w{12}\s+.*\ssync\s+base@\w{12} ~app@\w{12} web@\w{12}$/m);
    expect(hist.stdout).toMatch(/^1\s+.*\sregister\s+/m);

    const rb = await flotilla(['rollback', withAgent, '--to-generation', '1', '--bundle', 'app']);
    expect(rb.code, rb.stderr).toBe(0);
    expect(rb.stdout).toContain(
      `cluster "${withAgent}" rolled back to generation 1's bundles as generation 3`,
    );
    await until('the agent to apply the rollback (app a3)', async () =>
      (await appVersion()) === 'a3' ? true : undefined,
    );
    const applied = await until('the agent to report generation 3', async () => {
      const c = await api.hub.clusters.get(withAgent);
      const s = await api.hub.statuses.get(withAgent);
      return c && s?.appliedGeneration === 3 ? s : undefined;
    });
    expect(applied.appliedGeneration).toBe(3);

    const status = await flotilla(['status', '-l', `suite=${id}`]);
    expect(status.stdout).toMatch(/pinned by rollback:/);
    expect(status.stdout).toMatch(new RegExp(`${withAgent}\\s+app\\s+\\w{12}\\s+1\\s+\\w{12}\\s+admin-key`));

    const bad = await flotilla(['rollback', withAgent, '--to-generation', '1', '--bundle', 'nope']);
    expect(bad.code).toBe(ExitCode.Usage);
    expect(bad.stderr).toMatch(/bundle "nope" is not in generation 1/);

    const clear = await flotilla(['rollback', withAgent, '--clear', '-o', 'json']);
    expect(clear.code, clear.stderr).toBe(0);
    expect(clear.json()).toMatchObject({ changed: true, generation: 4, cleared: ['app'], pins: [] });
    await until('the agent to apply the cleared plan (app a4)', async () =>
      (await appVersion()) === 'a4' ? true : undefined,
    );
    const json = (await flotilla(['history', withAgent, '-o', 'json'])).json<ClusterHistory>();
    expect(json.generations.map((g) => g.reason)).toEqual(['rollback-clear', 'rollback', 'sync', 'register']);
  });
});
