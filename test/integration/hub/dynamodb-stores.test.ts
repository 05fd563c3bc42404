import { randomBytes } from 'node:crypto';
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ConflictError, hubTableNames, NotFoundError, type StoredDesiredState } from '@flotilla/shared/hub';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { DynamoDbClusterStatusStore } from '../../../functions/src/adapters/dynamodb-status-store.ts';
import {
  contentHash,
  DynamoDbBundleStore,
  DynamoDbClusterStore,
  DynamoDbDesiredStateStore,
  HubDb,
} from '../../../functions/src/adapters/dynamodb-stores.ts';
import { ensureHubTables } from '../../../functions/src/adapters/dynamodb-tables.ts';
import { bedDynamoDb } from '../../support/aws-clients.ts';

const bed = inject('bed');
const client = bedDynamoDb(bed);
const tables = hubTableNames(`stores-${Date.now()}`);
const db = new HubDb(client, tables, { historyDepth: 3 });
const clusters = new DynamoDbClusterStore(db);
const states = new DynamoDbDesiredStateStore(db);
const bundles = new DynamoDbBundleStore(db);

beforeAll(async () => {
  await ensureHubTables(client, tables);
});

function state(clusterId: string, generation: number): StoredDesiredState {
  return {
    clusterId,
    generation,
    etag: `etag-${generation}`,
    refsHash: `refs-${generation}`,
    commit: `commit-${generation}`,
    manifest: `{"generation":${generation}}`,
    signature: 'sig',
    keyId: 'key-1',
    createdAt: new Date().toISOString(),
  };
}

describe('DynamoDB stores (DynamoDB Local)', () => {
  it('round-trips a 10 MB bundle of incompressible bytes through chunks, intact', async () => {
    const content = randomBytes(10 * 1024 * 1024);
    const hash = contentHash(content);
    const written = await bundles.put(hash, content);
    expect(written).toBeGreaterThan(25); // 10 MiB over 350 KiB chunks
    expect(await bundles.existing([hash, 'sha256:missing'])).toEqual(new Set([hash]));
    const back = await bundles.get(hash);
    expect(back && Buffer.compare(Buffer.from(back), content)).toBe(0);
    // Stored once: writing the same content again adds no head item.
    expect(await bundles.put(hash, content)).toBe(written - 1);
  });

  it('refuses to serve a bundle whose content does not match its hash', async () => {
    const hash = contentHash(Buffer.from('the real content'));
    await bundles.put(hash, Buffer.from('something else'));
    await expect(bundles.get(hash)).rejects.toThrow(/hashes to sha256:/);
  });

  it('keeps the Kubernetes version of the last heartbeat that had one, and tells when it changed', async () => {
    await clusters.create({ id: 'kv-1', labels: {}, tokenHash: 'h', registeredAt: '2024-05-01T00:00:00Z' });
    const beat = (at: string, kubeVersion?: string) =>
      clusters.recordHeartbeat('kv-1', { at, agentVersion: '0.1.0', kubeVersion });
    expect(await beat('2024-05-01T00:01:00Z')).toEqual({ kubeVersionChanged: false });
    expect((await clusters.get('kv-1'))?.kubeVersion).toBeUndefined();
    expect(await beat('2024-05-01T00:02:00Z', 'v1.33.2')).toEqual({ kubeVersionChanged: true });
    expect(await beat('2024-05-01T00:03:00Z', 'v1.33.2')).toEqual({ kubeVersionChanged: false });
    // An older agent sends none: the stored version stays.
    expect(await beat('2024-05-01T00:04:00Z')).toEqual({ kubeVersionChanged: false });
    expect(await beat('2024-05-01T00:05:00Z', 'v1.34.0+k3s1')).toEqual({ kubeVersionChanged: true });
    const stored = await db.doc.send(
      new GetCommand({ TableName: tables.clusters, Key: { clusterId: 'kv-1' }, ConsistentRead: true }),
    );
    expect(stored.Item).toMatchObject({
      kubeVersion: 'v1.34.0+k3s1',
      lastHeartbeatAt: '2024-05-01T00:05:00Z',
    });
    const listed = (await clusters.list()).find((c) => c.id === 'kv-1');
    expect(listed?.kubeVersion).toBe('v1.34.0+k3s1');
    await expect(beat('2024-05-01T00:06:00Z', 'v1.34.0')).resolves.toEqual({ kubeVersionChanged: true });
    await expect(
      clusters.recordHeartbeat('kv-gone', {
        at: '2024-05-01T00:06:00Z',
        agentVersion: '0.1.0',
        kubeVersion: 'v1.34.0',
      }),
    ).rejects.toBeInstanceOf(NotFoundError);
  });

  it('keeps age recipients from the heartbeat that had them, and closes only the open key-rotation request', async () => {
    await clusters.create({ id: 'age-1', labels: {}, tokenHash: 'h', registeredAt: '2024-05-01T00:00:00Z' });
    const recipients = [{ name: 'cluster', recipient: 'age1example' }];
    await clusters.recordHeartbeat('age-1', {
      at: '2024-05-01T00:01:00Z',
      agentVersion: '0.1.0',
      recipients,
    });
    await clusters.recordHeartbeat('age-1', { at: '2024-05-01T00:02:00Z', agentVersion: '0.1.0' });
    expect((await clusters.get('age-1'))?.recipients).toEqual(recipients);
    expect((await clusters.list()).find((c) => c.id === 'age-1')?.recipients).toEqual(recipients);

    const first = { id: 'rot_first_0001', requestedAt: '2024-05-01T00:03:00Z' };
    const second = { id: 'rot_second_001', requestedAt: '2024-05-01T00:04:00Z' };
    expect((await clusters.requestKeyRotation('age-1', first)).keyRotation).toEqual(first);
    await clusters.requestKeyRotation('age-1', second);
    // The agent reports the first one done after the second was asked for: the second stays open.
    await clusters.finishKeyRotation('age-1', first.id);
    expect((await clusters.get('age-1'))?.keyRotation).toEqual(second);
    expect((await clusters.list()).find((c) => c.id === 'age-1')?.keyRotation).toEqual(second);
    await clusters.finishKeyRotation('age-1', second.id);
    expect((await clusters.get('age-1'))?.keyRotation).toBeUndefined();
    await expect(clusters.requestKeyRotation('age-gone', first)).rejects.toBeInstanceOf(NotFoundError);
    await clusters.finishKeyRotation('age-gone', first.id);
  });

  it('lists clusters a page at a time, every one exactly once', async () => {
    const pageTables = hubTableNames(`pages-${Date.now()}`);
    await ensureHubTables(client, pageTables);
    const store = new DynamoDbClusterStore(new HubDb(client, pageTables));
    const ids = Array.from({ length: 7 }, (_, i) => `page-${i}`);
    for (const id of ids)
      await store.create({ id, labels: {}, tokenHash: 'h', registeredAt: '2024-05-01T00:00:00Z' });
    const pages: string[][] = [];
    for await (const page of store.pages(3)) pages.push(page.map((c) => c.id));
    expect(pages.every((p) => p.length >= 1 && p.length <= 3)).toBe(true);
    expect(pages.flat().sort()).toEqual(ids);
    // Read in parts at once (a parallel scan): the same clusters, each once.
    for (const segments of [2, 4, 9]) {
      const parts: string[][] = [];
      for await (const page of store.pages(2, { segments })) parts.push(page.map((c) => c.id));
      expect(parts.every((p) => p.length >= 1 && p.length <= 2)).toBe(true);
      expect(parts.flat().sort(), `segments ${segments}`).toEqual(ids);
    }
  });

  it('registers a cluster once and refuses a second registration of the same name', async () => {
    const record = {
      id: 'edge-1',
      labels: { env: 'prod' },
      tokenHash: 'h1',
      registeredAt: new Date().toISOString(),
    };
    await clusters.create(record);
    await expect(clusters.create({ ...record, tokenHash: 'h2' })).rejects.toBeInstanceOf(ConflictError);
    expect((await clusters.get('edge-1'))?.tokenHash).toBe('h1');
    const updated = await clusters.relabel('edge-1', { set: { env: 'staging', region: 'eu' }, remove: [] });
    expect(updated.labels).toEqual({ env: 'staging', region: 'eu' });
    expect(updated.labelsRevision).toBe(1);
    const removed = await clusters.relabel('edge-1', { set: {}, remove: ['env', 'absent'] });
    expect(removed.labels).toEqual({ region: 'eu' });
    expect(removed.labelsRevision).toBe(2);
    await expect(clusters.relabel('nope', { set: { a: 'b' }, remove: [] })).rejects.toBeInstanceOf(
      NotFoundError,
    );
    await expect(clusters.update('nope', { tokenHash: 'x' })).rejects.toBeInstanceOf(NotFoundError);
  });

  it('moves the head one generation at a time and keeps only the newest generations', async () => {
    await clusters.create({
      id: 'edge-2',
      labels: {},
      tokenHash: 'h',
      registeredAt: new Date().toISOString(),
    });
    await states.commit(state('edge-2', 1), undefined);
    await expect(states.commit(state('edge-2', 1), undefined)).rejects.toBeInstanceOf(ConflictError);
    for (let g = 2; g <= 5; g++) await states.commit(state('edge-2', g), g - 1);
    // A writer that read generation 3 and lost the race must not overwrite generation 5.
    await expect(states.commit(state('edge-2', 4), 3)).rejects.toBeInstanceOf(ConflictError);
    expect((await states.current('edge-2'))?.generation).toBe(5);
    expect((await clusters.get('edge-2'))?.head).toEqual({
      generation: 5,
      etag: 'etag-5',
      refsHash: 'refs-5',
      commit: 'commit-5',
    });
    expect((await states.history('edge-2')).map((s) => s.generation)).toEqual([5, 4, 3]);
  });

  it('keeps the manifest off the cluster record, so listing the fleet reads small items', async () => {
    await clusters.create({
      id: 'edge-5',
      labels: {},
      tokenHash: 'h',
      registeredAt: new Date().toISOString(),
    });
    const first = state('edge-5', 1);
    await states.commit(first, undefined);
    const raw = await db.doc.send(
      new GetCommand({ TableName: tables.clusters, Key: { clusterId: 'edge-5' } }),
    );
    expect(raw.Item?.head).toMatchObject({ generation: 1, etag: 'etag-1' });
    expect(raw.Item?.desired).toBeUndefined();
    expect(await states.current('edge-5')).toEqual(first);
    // The current copy is not a generation of its own.
    expect((await states.history('edge-5')).map((s) => s.generation)).toEqual([1]);
    expect(await states.generation('edge-5', 0)).toBeUndefined();
  });

  it('serves a manifest an earlier layout kept on the cluster record, until the cluster moves on', async () => {
    await clusters.create({
      id: 'edge-6',
      labels: {},
      tokenHash: 'h',
      registeredAt: new Date().toISOString(),
    });
    const old = state('edge-6', 1);
    await db.doc.send(
      new UpdateCommand({
        TableName: tables.clusters,
        Key: { clusterId: 'edge-6' },
        UpdateExpression: 'SET head = :head, desired = :desired',
        ExpressionAttributeValues: {
          ':head': { generation: 1, etag: old.etag, refsHash: old.refsHash, commit: old.commit },
          ':desired': old,
        },
      }),
    );
    expect(await states.current('edge-6')).toEqual(old);
    const next = state('edge-6', 2);
    await states.commit(next, 1);
    expect(await states.current('edge-6')).toEqual(next);
    const raw = await db.doc.send(
      new GetCommand({ TableName: tables.clusters, Key: { clusterId: 'edge-6' } }),
    );
    expect(raw.Item?.desired).toBeUndefined();
  });

  it('stores many small bundles in one call, each intact', async () => {
    const contents = Array.from({ length: 60 }, (_, i) => Buffer.from(`kind: ConfigMap\nname: cm-${i}\n`));
    const list = contents.map((content) => ({ hash: contentHash(content), content }));
    expect(await bundles.putMany(list)).toBe(60);
    expect((await bundles.existing(list.map((b) => b.hash))).size).toBe(60);
    for (const b of [list[0], list[59]]) {
      expect(Buffer.from((await bundles.get(b?.hash ?? '')) ?? []).toString()).toBe(b?.content.toString());
    }
  });

  it('lets exactly one of many concurrent writers take each generation', async () => {
    await clusters.create({
      id: 'edge-3',
      labels: {},
      tokenHash: 'h',
      registeredAt: new Date().toISOString(),
    });
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) =>
        states.commit({ ...state('edge-3', 1), etag: `writer-${i}` }, undefined),
      ),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'rejected' && r.reason instanceof ConflictError)).toHaveLength(
      7,
    );
  });

  it('deletes a cluster with its history, so nothing of it can be read afterwards', async () => {
    await clusters.create({
      id: 'edge-4',
      labels: {},
      tokenHash: 'h',
      registeredAt: new Date().toISOString(),
    });
    await states.commit(state('edge-4', 1), undefined);
    await clusters.delete('edge-4');
    expect(await clusters.get('edge-4')).toBeUndefined();
    expect(await states.history('edge-4')).toEqual([]);
    // A generation for a deleted cluster cannot be committed.
    await expect(states.commit(state('edge-4', 2), 1)).rejects.toBeInstanceOf(ConflictError);
  });

  it('marks a cluster offline once, only on the heartbeat it read, and hands the mark to the next heartbeat', async () => {
    await clusters.create({ id: 'off-1', labels: {}, tokenHash: 'h', registeredAt: '2024-05-01T00:00:00Z' });
    const beat = (at: string) => clusters.recordHeartbeat('off-1', { at, agentVersion: '0.1.0' });
    await beat('2024-05-01T00:01:00Z');
    // A schedule pass that read an older heartbeat loses.
    expect(await clusters.markOffline('off-1', '2024-05-01T00:00:30Z', '2024-05-01T00:10:00Z')).toBe(false);
    const marks = await Promise.all([
      clusters.markOffline('off-1', '2024-05-01T00:01:00Z', '2024-05-01T00:10:00Z'),
      clusters.markOffline('off-1', '2024-05-01T00:01:00Z', '2024-05-01T00:10:01Z'),
    ]);
    expect(marks.filter(Boolean)).toHaveLength(1);
    expect((await clusters.get('off-1'))?.offlineAt).toMatch(/^2024-05-01T00:10:0[01]Z$/);
    expect(await beat('2024-05-01T00:11:00Z')).toEqual({
      kubeVersionChanged: false,
      wasOfflineAt: expect.stringMatching(/^2024-05-01T00:10:0[01]Z$/),
    });
    expect(await beat('2024-05-01T00:12:00Z')).toEqual({ kubeVersionChanged: false });
    expect((await clusters.get('off-1'))?.offlineAt).toBeUndefined();
    expect(await clusters.markOffline('gone', '2024-05-01T00:01:00Z', '2024-05-01T00:10:00Z')).toBe(false);
  });

  it('marks a NotReady stretch reported once, and only that stretch', async () => {
    const statuses = new DynamoDbClusterStatusStore(db);
    const since = '2024-05-01T00:00:00Z';
    const notReady = {
      bundle: 'web',
      state: 'NotReady' as const,
      hash: `sha256:${'a'.repeat(64)}`,
      generation: 1,
      since,
      updatedAt: since,
    };
    await statuses.apply({ clusterId: 'nr-1', put: [notReady], remove: [] });
    expect(await statuses.markNotReadyReported('nr-1', 'web', '2024-04-30T00:00:00Z', since)).toBe(false);
    const marks = await Promise.all([
      statuses.markNotReadyReported('nr-1', 'web', since, '2024-05-01T00:10:00Z'),
      statuses.markNotReadyReported('nr-1', 'web', since, '2024-05-01T00:10:00Z'),
    ]);
    expect(marks.filter(Boolean)).toHaveLength(1);
    expect((await statuses.get('nr-1'))?.bundles[0]?.notReadyReportedAt).toBe('2024-05-01T00:10:00Z');
    await statuses.apply({
      clusterId: 'nr-1',
      put: [{ ...notReady, state: 'Ready', since: '2024-05-01T00:11:00Z' }],
      remove: [],
    });
    expect(await statuses.markNotReadyReported('nr-1', 'web', since, '2024-05-01T00:12:00Z')).toBe(false);
    expect(await statuses.markNotReadyReported('nr-1', 'missing', since, '2024-05-01T00:12:00Z')).toBe(false);
  });
});
