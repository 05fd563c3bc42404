/**
 * The rollout store on DynamoDB Local: a head item every writer conditions on, and a
 * document as large as the fleet, stored content-addressed with the bundles.
 */
import { randomBytes } from 'node:crypto';
import { ConflictError, hubTableNames } from '@flotilla/shared/hub';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { DynamoDbRolloutStore } from '../../../functions/src/adapters/dynamodb-rollout-store.ts';
import { DynamoDbBundleStore, HubDb } from '../../../functions/src/adapters/dynamodb-stores.ts';
import { ensureHubTables } from '../../../functions/src/adapters/dynamodb-tables.ts';
import { bedDynamoDb } from '../../support/aws-clients.ts';

const bed = inject('bed');
const client = bedDynamoDb(bed);
const tables = hubTableNames(`rollouts-${Date.now()}`);
const db = new HubDb(client, tables);
const store = new DynamoDbRolloutStore(db, new DynamoDbBundleStore(db));

beforeAll(async () => {
  await ensureHubTables(client, tables);
});

const at = '2026-12-06T12:00:00.000Z';

describe('rollout store (DynamoDB Local)', () => {
  it('creates a rollout once, then moves it only from the version a writer read', async () => {
    const first = await store.save(
      {
        bundle: 'web',
        revision: 'c1',
        status: 'running',
        updatedAt: at,
        nextWakeAt: at,
        document: '{"w":0}',
      },
      undefined,
    );
    expect(first.version).toBe(1);
    await expect(
      store.save(
        { bundle: 'web', revision: 'c1', status: 'running', updatedAt: at, document: '{}' },
        undefined,
      ),
    ).rejects.toBeInstanceOf(ConflictError);
    const read = await store.get('web');
    expect(read).toEqual({ head: first, document: '{"w":0}' });
    const second = await store.save(
      { bundle: 'web', revision: 'c1', status: 'paused', updatedAt: at, document: '{"w":1}' },
      first.version,
    );
    expect(second).toMatchObject({ version: 2, status: 'paused' });
    expect(second.nextWakeAt).toBeUndefined();
    await expect(
      store.save({ bundle: 'web', revision: 'c1', status: 'running', updatedAt: at, document: '{"w":2}' }, 1),
    ).rejects.toBeInstanceOf(ConflictError);
    expect((await store.get('web'))?.document).toBe('{"w":1}');
  });

  it('lets exactly one of 20 concurrent writers of the same version win', async () => {
    const base = await store.save(
      { bundle: 'race', revision: 'c1', status: 'running', updatedAt: at, document: '{"n":0}' },
      undefined,
    );
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        store.save(
          { bundle: 'race', revision: 'c1', status: 'running', updatedAt: at, document: `{"n":${i + 1}}` },
          base.version,
        ),
      ),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    expect(
      results.filter((r) => r.status === 'rejected').every((r) => r.reason instanceof ConflictError),
    ).toBe(true);
    const winner = (won[0] as PromiseFulfilledResult<{ documentHash: string }>).value;
    expect((await store.get('race'))?.head.documentHash).toBe(winner.documentHash);
  });

  it('keeps a document larger than one item (a rollout over a very large fleet)', async () => {
    const document = JSON.stringify({ clusters: randomBytes(1024 * 1024).toString('hex') });
    await store.save(
      { bundle: 'big', revision: 'c9', status: 'running', updatedAt: at, document },
      undefined,
    );
    expect((await store.get('big'))?.document).toBe(document);
    expect((await store.list()).map((h) => h.bundle)).toEqual(['big', 'race', 'web']);
  });
});
