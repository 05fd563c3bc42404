/**
 * A progressive rollout through the local hub on DynamoDB Local, ElasticMQ and the git
 * server: the sync gives a new revision to the canary only; the canary's status report
 * (with its own cluster token, over HTTP) releases the next wave; `flotilla rollout`
 * shows and drives it; a canary that never becomes Ready is reverted past its deadline.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { type DesiredState, openSignedDesiredState } from '@flotilla/shared';
import { type RolloutView, STATUS_API_VERSION } from '@flotilla/shared/hub';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type CliRun, runFlotilla } from '../../support/cli-run.ts';
import { FleetWorkingCopy } from '../../support/fleet-git.ts';
import { until } from '../../support/until.ts';
import { type ApiHub, startApiHub } from '../api/local-hub.ts';

const bed = inject('bed');
const id = `${process.pid % 1000}${Date.now().toString(36).slice(-5)}`;
const names = [`ro-canary-${id}`, `ro-a-${id}`, `ro-b-${id}`];
const [canary] = names as [string, string, string];

let repo: FleetWorkingCopy;
let api: ApiHub;
let stateDir: string;
const tokens = new Map<string, string>();
const fleetDir = mkdtempSync(join(tmpdir(), 'flotilla-ro-fleet-'));

function fleetFiles(version: string): Record<string, string> {
  return {
    'bundles/web/bundle.yaml': `namespace: ro-${id}
targets: [{clusterSelector: suite=${id}}]
rollout:
  waves:
    - {name: canary, clusterSelector: ring=canary, maxParallel: 1}
    - {name: rest}
  progressDeadline: 2s
  failure: {maxFailures: 0, action: revert}
`,
    'bundles/web/config.yaml': `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  version: ${version}\n`,
  };
}

async function push(version: string): Promise<void> {
  for (const [path, content] of Object.entries(fleetFiles(version))) repo.write(path, content);
  await repo.commitAsync(`web ${version}`);
  expect((await api.admin('/v1/admin/sync', { method: 'POST' })).status).toBe(200);
}

async function webHash(cluster: string): Promise<string | undefined> {
  const res = await api.call(`/v1/clusters/${cluster}/desired-state`, { token: tokens.get(cluster) });
  if (res.status === 404) return undefined;
  const state: DesiredState = openSignedDesiredState(await res.json(), api.hub.signer.publicKeyPem);
  return state.bundles.find((b) => b.name === 'web')?.hash;
}

async function report(cluster: string, hash: string, state: 'Ready' | 'NotReady') {
  const res = await api.call(`/v1/clusters/${cluster}/status`, {
    method: 'POST',
    token: tokens.get(cluster),
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      apiVersion: STATUS_API_VERSION,
      kind: 'ClusterStatus',
      agentVersion: '0.1.0',
      bundles: [{ name: 'web', state, hash, generation: 1 }],
    }),
  });
  expect(res.status).toBe(200);
}

function flotilla(args: string[]): Promise<CliRun> {
  return runFlotilla({ hubUrl: api.url, adminKey: api.adminKey, stateDir }, args);
}

beforeAll(async () => {
  stateDir = mkdtempSync(join(tmpdir(), 'flotilla-ro-state-'));
  for (const [path, content] of Object.entries(fleetFiles('v1'))) {
    mkdirSync(dirname(join(fleetDir, path)), { recursive: true });
    writeFileSync(join(fleetDir, path), content);
  }
  repo = await FleetWorkingCopy.create(bed.git, `ro-${id}`, fleetDir);
  api = await startApiHub(bed, repo.url);
  for (const name of names) {
    const reg = await api.admin('/v1/admin/clusters', {
      method: 'POST',
      json: { name, labels: { suite: id, ...(name === canary ? { ring: 'canary' } : {}) } },
    });
    expect(reg.status).toBe(201);
    tokens.set(name, ((await reg.json()) as { token: string }).token);
  }
});

afterAll(async () => {
  await api?.stop();
  repo?.dispose();
  rmSync(fleetDir, { recursive: true, force: true });
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

describe('a progressive rollout through the hub (DynamoDB Local, HTTP, the CLI)', () => {
  it('gives the canary the revision first and the rest once the canary reports it Ready', async () => {
    expect((await api.admin('/v1/admin/sync', { method: 'POST' })).status).toBe(200);
    const v1 = (await webHash(canary)) as string;
    expect(v1).toMatch(/^sha256:/);
    expect(await webHash(names[1] as string)).toBeUndefined();

    const status = await flotilla(['rollout', 'status', 'web', '-o', 'json']);
    expect(status.code).toBe(0);
    expect(status.json<RolloutView>()).toMatchObject({
      bundle: 'web',
      phase: 'progressing',
      currentWave: 'canary',
      waves: [
        { name: 'canary', clusters: 1, inFlight: 1 },
        { name: 'rest', clusters: 2, waiting: 2 },
      ],
    });

    const fleet = await flotilla(['status']);
    expect(fleet.stdout).toContain('rollouts in progress:');
    expect(fleet.stdout).toMatch(/web\s+\S+\s+progressing\s+canary/);

    await report(canary, v1, 'Ready');
    expect(await webHash(names[1] as string)).toBe(v1);
    expect(await webHash(names[2] as string)).toBe(v1);
    for (const n of names.slice(1)) await report(n, v1, 'Ready');
    const list = await flotilla(['rollout', 'list']);
    expect(list.stdout).toMatch(/web\s+\S+\s+completed/);
  });

  it('reverts a canary that never becomes Ready; the rest keep the old revision', async () => {
    const v1 = (await webHash(canary)) as string;
    await push('v2');
    const v2 = (await webHash(canary)) as string;
    expect(v2).not.toBe(v1);
    expect(await webHash(names[1] as string)).toBe(v1);
    await report(canary, v2, 'NotReady');
    // Past the 2 s deadline, the hub's timer (or the next report) fails it and reverts it.
    await new Promise((r) => setTimeout(r, 2_500));
    await report(canary, v2, 'NotReady');
    await until(
      'the canary reverted to v1',
      async () => ((await webHash(canary)) === v1 ? true : undefined),
      {
        timeoutMs: 20_000,
      },
    );
    expect(await webHash(canary)).toBe(v1);
    expect(await webHash(names[1] as string)).toBe(v1);
    const status = await flotilla(['rollout', 'status', 'web']);
    expect(status.stdout).toContain('reverted');
    // Operators cannot resume a rollout that ended.
    const resume = await flotilla(['rollout', 'resume', 'web']);
    expect(resume.code).not.toBe(0);
  });

  it('pauses and promotes from the CLI', async () => {
    await push('v3');
    expect((await flotilla(['rollout', 'pause', 'web'])).code).toBe(0);
    expect((await flotilla(['rollout', 'status', 'web', '-o', 'json'])).json<RolloutView>().phase).toBe(
      'paused',
    );
    expect((await flotilla(['rollout', 'resume', 'web'])).code).toBe(0);
    const promoted = await flotilla(['rollout', 'promote', 'web', '-o', 'json']);
    expect(promoted.code).toBe(0);
    const v3 = (await webHash(canary)) as string;
    expect(await webHash(names[1] as string)).toBe(v3);
    expect(await webHash(names[2] as string)).toBe(v3);
  });
});
