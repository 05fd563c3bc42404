import {
  type ClusterRecord,
  clusterStatus,
  decodeStatusCursor,
  fleetBundles,
  fleetStatusPage,
  hubTableNames,
  InvalidRequestError,
  NotFoundError,
  parseStatusReport,
  recordClusterStatus,
  type StatusPorts,
  type StoredDesiredState,
} from '@flotilla/shared/hub';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { DynamoDbClusterStatusStore } from '../../../functions/src/adapters/dynamodb-status-store.ts';
import {
  DynamoDbClusterStore,
  DynamoDbDesiredStateStore,
  DynamoDbSyncStateStore,
  HubDb,
} from '../../../functions/src/adapters/dynamodb-stores.ts';
import { ensureHubTables } from '../../../functions/src/adapters/dynamodb-tables.ts';
import { bedDynamoDb } from '../../support/aws-clients.ts';

const bed = inject('bed');
const client = bedDynamoDb(bed);
const tables = hubTableNames(`status-page-${Date.now()}`);
const db = new HubDb(client, tables);
const clusters = new DynamoDbClusterStore(db);
const desiredStates = new DynamoDbDesiredStateStore(db);
const syncState = new DynamoDbSyncStateStore(db);
const statuses = new DynamoDbClusterStatusStore(db);
let statusReads = 0;
const countedStatuses = {
  get: (id: string) => {
    statusReads++;
    return statuses.get(id);
  },
  apply: statuses.apply.bind(statuses),
};
const now = new Date();
const ports = { clusters, desiredStates, statuses: countedStatuses, syncState, now: () => now };
const offlineAfterSeconds = 180;
const h = (c: string) => `sha256:${c.repeat(64)}`;
const count = 60;
const id = (i: number) => `edge-${String(i).padStart(3, '0')}`;

function manifest(cluster: string, generation: number, dbHash: string): StoredDesiredState {
  const text = JSON.stringify({
    apiVersion: 'flotilla.dev/v1alpha1',
    kind: 'DesiredState',
    cluster,
    generation,
    commit: `c${generation}`,
    bundles: [
      {
        name: 'db',
        hash: dbHash,
        namespace: 'default',
        dependsOn: [],
        driftPolicy: 'correct',
        paused: false,
      },
      { name: 'web', hash: h('a'), namespace: 'default', dependsOn: [], driftPolicy: 'warn', paused: false },
    ],
  });
  return {
    clusterId: cluster,
    generation,
    etag: `e-${cluster}-${generation}`,
    refsHash: `r-${dbHash.slice(7, 9)}`,
    commit: `c${generation}`,
    manifest: text,
    signature: 's',
    keyId: 'k',
    createdAt: now.toISOString(),
  };
}

beforeAll(async () => {
  await ensureHubTables(client, tables);
  for (let i = 0; i < count; i++) {
    await clusters.create({
      id: id(i),
      labels: { env: i % 2 === 0 ? 'prod' : 'dev' },
      tokenHash: 't',
      registeredAt: now.toISOString(),
    });
    await desiredStates.commit(manifest(id(i), 1, h('d')), undefined);
    const record = await clusters.get(id(i));
    if (!record) throw new Error(id(i));
    await recordClusterStatus(
      { ...ports, statuses } as unknown as StatusPorts,
      record,
      parseStatusReport({
        apiVersion: 'flotilla.dev/v1alpha1',
        kind: 'ClusterStatus',
        agentVersion: '0.1.0',
        appliedGeneration: 1,
        bundles: [
          i % 4 === 1
            ? { name: 'db', state: 'Failed', hash: h('d'), generation: 1, message: 'boom' }
            : { name: 'db', state: 'Ready', hash: h('d'), generation: 1 },
          { name: 'web', state: 'Ready', hash: h('a'), generation: 1 },
        ],
      }),
    );
  }
  await syncState.save({
    commit: 'c1',
    snapshotHash: 's',
    syncedAt: now.toISOString(),
    clusters: count,
    changedClusters: count,
    errors: [],
  });
}, 120_000);

describe('fleet status pages on DynamoDB Local', () => {
  it('keeps each cluster digest on its record, and pages from the digests, reading only the page', async () => {
    // A sync's listing leaves the digests behind; a status listing asks for them.
    expect((await clusters.list()).some((c) => c.statusDigest !== undefined)).toBe(false);
    const listed: ClusterRecord[] = [];
    for await (const page of clusters.pages(25, { statusDigest: true })) listed.push(...page);
    expect(listed.find((c) => c.id === id(1))?.statusDigest).toMatchObject({
      etag: `e-${id(1)}-1`,
      state: 'Failed',
      issues: { db: 'Failed' },
      appliedGeneration: 1,
      allReady: false,
    });
    const seen: string[] = [];
    let cursor: string | undefined;
    statusReads = 0;
    do {
      const page = await fleetStatusPage(ports, {
        offlineAfterSeconds,
        limit: 25,
        ...(cursor ? { cursor } : {}),
      });
      expect(page.total).toBe(count);
      expect(page.summary.clusterStates.Failed).toBe(15);
      expect(page.summary.online).toBe(count);
      seen.push(...page.clusters.map((c) => c.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(seen).toEqual(Array.from({ length: count }, (_, i) => id(i)));
    expect(statusReads).toBe(count);
  });

  it('filters by selector, state and name together, with cursors bound to the filter', async () => {
    const filter = { states: ['Failed' as const], search: 'EDGE-0' };
    const page = await fleetStatusPage(ports, { offlineAfterSeconds, limit: 3, ...filter });
    expect(page.clusters.map((c) => c.id)).toEqual([id(1), id(5), id(9)]);
    expect(page.total).toBe(15);
    expect(page.clusters[0]?.bundles[0]).toMatchObject({ name: 'db', state: 'Failed', message: 'boom' });
    expect(() => decodeStatusCursor(page.nextCursor as string, { states: ['Ready'] })).toThrow(
      InvalidRequestError,
    );
    const bundles = await fleetBundles(ports, { offlineAfterSeconds });
    expect(bundles.bundles.map((b) => [b.name, b.clusters, b.states.Failed, b.states.Ready])).toEqual([
      ['db', count, 15, 45],
      ['web', count, 0, count],
    ]);
  });

  it('reads the full status of clusters whose desired state moved on since their digest', async () => {
    await desiredStates.commit(manifest(id(2), 2, h('e')), 1);
    const page = await fleetStatusPage(ports, { offlineAfterSeconds, limit: 10, states: ['Pending'] });
    expect(page.clusters.map((c) => c.id)).toEqual([id(2)]);
    expect(page.clusters[0]?.bundles[0]).toMatchObject({ name: 'db', state: 'Pending', upToDate: false });
    const bundles = await fleetBundles(ports, { offlineAfterSeconds });
    expect(bundles.bundles[0]?.states).toMatchObject({ Pending: 1, Failed: 15, Ready: 44 });
    // The listing kept the digest it worked out, for the next one.
    expect((await clusters.get(id(2)))?.statusDigest).toMatchObject({
      etag: `e-${id(2)}-2`,
      state: 'Pending',
    });
  });

  it('fills in a digest only while the stored one is stale, so a report written meanwhile wins', async () => {
    const fresh = (await clusters.get(id(3)))?.statusDigest;
    expect(fresh?.etag).toBe(`e-${id(3)}-1`);
    const older = { ...(fresh as NonNullable<typeof fresh>), state: 'Failed', issues: { db: 'Failed' } };
    await clusters.recordStatusDigest(id(3), older, true);
    expect((await clusters.get(id(3)))?.statusDigest).toEqual(fresh);
    await clusters.recordStatusDigest(id(3), { ...older, etag: `e-${id(3)}-9` }, true);
    expect((await clusters.get(id(3)))?.statusDigest?.etag).toBe(`e-${id(3)}-9`);
    await clusters.recordStatusDigest(id(3), fresh as NonNullable<typeof fresh>);
  });

  it("filters by bundle from one manifest per list of references, state= naming that bundle's state", async () => {
    // Three clusters given another list of references: cache and web.
    const mix = (i: number) => `mix-${i}`;
    for (let i = 0; i < 3; i++) {
      await clusters.create({
        id: mix(i),
        labels: { env: 'prod' },
        tokenHash: 't',
        registeredAt: now.toISOString(),
      });
      const text = JSON.stringify({
        apiVersion: 'flotilla.dev/v1alpha1',
        kind: 'DesiredState',
        cluster: mix(i),
        generation: 1,
        commit: 'c1',
        bundles: ['cache', 'web'].map((name) => ({
          name,
          hash: h(name === 'cache' ? 'c' : 'a'),
          namespace: 'default',
          dependsOn: [],
          driftPolicy: 'warn',
          paused: false,
        })),
      });
      await desiredStates.commit(
        { ...manifest(mix(i), 1, h('d')), manifest: text, etag: `e-${mix(i)}-1`, refsHash: 'r-mix' },
        undefined,
      );
      const record = await clusters.get(mix(i));
      if (!record) throw new Error(mix(i));
      await recordClusterStatus(
        { ...ports, statuses } as unknown as StatusPorts,
        record,
        parseStatusReport({
          apiVersion: 'flotilla.dev/v1alpha1',
          kind: 'ClusterStatus',
          agentVersion: '0.1.0',
          appliedGeneration: 1,
          bundles: [
            i === 0
              ? {
                  name: 'cache',
                  state: 'Drifted',
                  hash: h('c'),
                  generation: 1,
                  drift: [{ object: 'apps/Deployment/default/cache', fields: ['spec.replicas'] }],
                }
              : { name: 'cache', state: 'Ready', hash: h('c'), generation: 1 },
            i === 1
              ? { name: 'web', state: 'Failed', hash: h('a'), generation: 1, message: 'boom' }
              : { name: 'web', state: 'Ready', hash: h('a'), generation: 1 },
          ],
        }),
      );
    }
    let manifestReads = 0;
    const counted = {
      ...ports,
      desiredStates: {
        ...desiredStates,
        current: (clusterId: string) => {
          manifestReads++;
          return desiredStates.current(clusterId);
        },
      } as typeof desiredStates,
    };
    statusReads = 0;
    // edge-001, edge-005, ... are Failed through db, but web is Ready on them.
    const webFailed = await fleetStatusPage(counted, {
      offlineAfterSeconds,
      limit: 10,
      bundle: 'web',
      states: ['Failed'],
    });
    expect(webFailed.clusters.map((c) => c.id)).toEqual([mix(1)]);
    expect(webFailed.total).toBe(1);
    expect(webFailed.summary.clusterStates.Failed).toBe(1);
    expect(webFailed.bundle).toBe('web');
    // Three lists of references (db at two revisions, and cache+web), then the page's one cluster.
    expect(manifestReads).toBe(3 + 1);
    expect(statusReads).toBe(1);

    const page = (bundle: string, more = {}) =>
      fleetStatusPage(ports, { offlineAfterSeconds, bundle, ...more });
    expect((await page('db', { limit: 1 })).total).toBe(count);
    expect((await page('db', { limit: 1, states: ['Failed'] })).total).toBe(15);
    expect((await page('db', { states: ['Pending'] })).clusters.map((c) => c.id)).toEqual([id(2)]);
    expect((await page('cache', { states: ['Drifted'] })).clusters.map((c) => c.id)).toEqual([mix(0)]);
    expect(await page('nope', { limit: 5 })).toMatchObject({ total: 0, clusters: [], nextCursor: null });

    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const p = await page('web', { states: ['Ready'], limit: 25, ...(cursor ? { cursor } : {}) });
      expect(p.total).toBe(count + 2);
      seen.push(...p.clusters.map((c) => c.id));
      cursor = p.nextCursor ?? undefined;
      if (cursor) expect(() => decodeStatusCursor(cursor as string, { states: ['Ready'] })).toThrow(/bundle/);
    } while (cursor);
    expect(seen).toEqual([...Array.from({ length: count }, (_, i) => id(i)), mix(0), mix(2)]);
  });

  it("gives one cluster's status view as the fleet status has it", async () => {
    const page = await fleetStatusPage(ports, { offlineAfterSeconds, search: id(1) });
    const one = await clusterStatus(ports, id(1), { offlineAfterSeconds });
    expect(one.cluster).toEqual(page.clusters[0]);
    expect(one.cluster.bundles[0]).toMatchObject({ name: 'db', state: 'Failed', message: 'boom' });
    expect(one).toMatchObject({ offlineAfterSeconds, sync: { commit: 'c1', errors: [] } });
    await expect(clusterStatus(ports, 'edge-999', { offlineAfterSeconds })).rejects.toThrow(NotFoundError);
  });
});
