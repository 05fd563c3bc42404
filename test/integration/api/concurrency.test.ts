import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSignedDesiredState } from '@flotilla/shared';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FleetWorkingCopy } from '../../support/fleet-git.ts';
import { type ApiHub, errorOf, startApiHub } from './local-hub.ts';

const bed = inject('bed');
let repo: FleetWorkingCopy;
let api: ApiHub;
let fleetDir: string;
let publicKeyPem: string;

/** A fleet repo with one bundle `b<i>` per label key `k<i>`, for clusters that have that key. */
function keyedFleet(count: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-keyed-fleet-'));
  for (let i = 0; i < count; i++) {
    mkdirSync(join(dir, 'bundles', `b${i}`), { recursive: true });
    writeFileSync(
      join(dir, 'bundles', `b${i}`, 'bundle.yaml'),
      `namespace: n\ntargets:\n  - clusterSelector: "k${i}"\n`,
    );
    writeFileSync(
      join(dir, 'bundles', `b${i}`, 'cm.yaml'),
      `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b${i}\ndata:\n  v: "\${cluster.labels.k${i}}"\n`,
    );
  }
  return dir;
}

async function register(name: string, labels: Record<string, string> = {}) {
  const res = await api.admin('/v1/admin/clusters', { method: 'POST', json: { name, labels } });
  expect(res.status).toBe(201);
  return ((await res.json()) as { token: string }).token;
}

const patchLabels = (name: string, json: unknown) =>
  api.admin(`/v1/admin/clusters/${name}/labels`, { method: 'PATCH', json });

/** The cluster's labels as the API shows them, and the bundles of its desired state. */
async function labelsAndDesired(name: string) {
  const { cluster } = (await (await api.admin(`/v1/admin/clusters/${name}`)).json()) as {
    cluster: { labels: Record<string, string>; desiredState: { generation: number } | null };
  };
  const res = await api.admin(`/v1/admin/clusters/${name}/desired-state`);
  expect(res.status).toBe(200);
  const manifest = openSignedDesiredState(await res.json(), publicKeyPem);
  return {
    labels: cluster.labels,
    generation: cluster.desiredState?.generation,
    desired: manifest.bundles.map((b) => b.name).sort(),
    wanted: Object.keys(cluster.labels)
      .map((k) => `b${k.slice(1)}`)
      .sort(),
  };
}

function postStatus(name: string, token: string, extra: Record<string, unknown>) {
  return api.call(`/v1/clusters/${name}/status`, {
    token,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      apiVersion: 'flotilla.dev/v1alpha1',
      kind: 'ClusterStatus',
      agentVersion: '0.1.0',
      ...extra,
    }),
  });
}

beforeAll(async () => {
  fleetDir = keyedFleet(30);
  repo = await FleetWorkingCopy.create(bed.git, `concurrency-${Date.now()}`, fleetDir);
  api = await startApiHub(bed, repo.url);
  publicKeyPem = ((await (await api.admin('/v1/admin/public-key')).json()) as { publicKeyPem: string })
    .publicKeyPem;
  const sync = await api.admin('/v1/admin/sync', { method: 'POST' });
  expect(sync.status).toBe(200);
});

afterAll(async () => {
  await api?.stop();
  repo?.dispose();
  if (fleetDir) rmSync(fleetDir, { recursive: true, force: true });
});

describe('label changes under concurrency, through the API on DynamoDB Local', () => {
  it('keeps all 20 keys of 20 parallel PATCHes, and the desired state follows the final labels', async () => {
    await register('race-set');
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => patchLabels('race-set', { set: { [`k${i}`]: `v${i}` } })),
    );
    expect(answers.map((r) => r.status)).toEqual(Array(20).fill(200));
    const state = await labelsAndDesired('race-set');
    expect(state.labels).toEqual(
      Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, `v${i}`])),
    );
    expect(state.desired).toEqual(state.wanted);
    expect(state.desired).toHaveLength(20);
  });

  it('sets and removes different keys in parallel', async () => {
    await register('race-mixed', Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, 'old'])));
    expect((await labelsAndDesired('race-mixed')).desired).toHaveLength(10);
    const answers = await Promise.all([
      ...Array.from({ length: 10 }, (_, i) => patchLabels('race-mixed', { remove: [`k${i}`] })),
      ...Array.from({ length: 10 }, (_, i) => patchLabels('race-mixed', { set: { [`k${i + 10}`]: 'new' } })),
    ]);
    expect(answers.map((r) => r.status)).toEqual(Array(20).fill(200));
    const state = await labelsAndDesired('race-mixed');
    expect(state.labels).toEqual(
      Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i + 10}`, 'new'])),
    );
    expect(state.desired).toEqual(state.wanted);
  });

  it('sets and removes the same key in parallel, and the desired state follows whichever came last', async () => {
    await register('race-flip');
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        patchLabels('race-flip', i % 2 === 0 ? { set: { k0: `v${i}` } } : { remove: ['k0'] }),
      ),
    );
    expect(answers.map((r) => r.status)).toEqual(Array(10).fill(200));
    const state = await labelsAndDesired('race-flip');
    expect(state.desired).toEqual(state.wanted);
  });
});

describe('reported generations, through the API', () => {
  it('refuses an applied generation above the desired one with a 400 naming the field', async () => {
    const token = await register('honest');
    const desired = (await labelsAndDesired('honest')).generation ?? 0;
    expect(desired).toBeGreaterThan(0);

    const claim = await postStatus('honest', token, { appliedGeneration: 10 ** 15 });
    expect(claim.status).toBe(400);
    const error = await errorOf(claim);
    expect(error.code).toBe('invalid_request');
    expect(error.field).toBe('appliedGeneration');
    expect(error.message).toContain(`above the cluster's desired generation ${desired}`);

    const bundle = await postStatus('honest', token, {
      appliedGeneration: desired,
      bundles: [{ name: 'b0', state: 'Ready', hash: `sha256:${'a'.repeat(64)}`, generation: desired + 1 }],
    });
    expect(bundle.status).toBe(400);
    expect((await errorOf(bundle)).problems?.map((p) => p.field)).toEqual(['bundles[0].generation']);

    const fraction = await postStatus('honest', token, { appliedGeneration: 0.5 });
    expect(fraction.status).toBe(400);
    expect((await errorOf(fraction)).field).toBe('appliedGeneration');

    // Nothing of the refused reports shows: no heartbeat, no applied generation.
    const before = (await (await api.admin('/v1/admin/status')).json()) as {
      clusters: { id: string; connection: string; appliedGeneration: number | null }[];
    };
    expect(before.clusters.find((c) => c.id === 'honest')).toMatchObject({
      connection: 'Offline',
      appliedGeneration: null,
    });

    const honest = await postStatus('honest', token, { appliedGeneration: desired });
    expect(honest.status).toBe(200);
    const after = (await (await api.admin('/v1/admin/status')).json()) as typeof before;
    expect(after.clusters.find((c) => c.id === 'honest')).toMatchObject({
      connection: 'Online',
      appliedGeneration: desired,
    });
  });
});
