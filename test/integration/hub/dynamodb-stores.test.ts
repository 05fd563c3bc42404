import { randomBytes } from 'node:crypto';
import { ConflictError, hubTableNames, NotFoundError, type StoredDesiredState } from '@flotilla/shared/hub';
import { beforeAll, describe, expect, inject, it } from 'vitest';
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
    const updated = await clusters.update('edge-1', { labels: { env: 'staging', region: 'eu' } });
    expect(updated.labels).toEqual({ env: 'staging', region: 'eu' });
    await expect(clusters.update('nope', { labels: {} })).rejects.toBeInstanceOf(NotFoundError);
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
});
