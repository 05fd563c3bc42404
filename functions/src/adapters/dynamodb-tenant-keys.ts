import { DeleteCommand, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { ConflictError, type TenantKeyRecord, type TenantKeyStore } from '@flotilla/shared/hub';
import type { HubDb } from './dynamodb-stores.ts';

type Item = Record<string, unknown>;

const keyPrefix = 'tenantkey#';

/**
 * Tenant admin keys in the hub-state table, one item each under `tenantkey#<sha256 of the
 * key>`. Reads are consistent, so a revoked key fails on the very next request.
 */
export class DynamoDbTenantKeyStore implements TenantKeyStore {
  readonly #db: HubDb;

  constructor(db: HubDb) {
    this.#db = db;
  }

  #key(keyHash: string) {
    return { pk: `${keyPrefix}${keyHash}` };
  }

  async create(record: TenantKeyRecord): Promise<void> {
    try {
      await this.#db.doc.send(
        new PutCommand({
          TableName: this.#db.tables.hubState,
          Item: { ...this.#key(record.keyHash), ...record },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
    } catch (err) {
      if (err instanceof Error && err.name === 'ConditionalCheckFailedException')
        throw new ConflictError('tenant key exists', { cause: err });
      throw err;
    }
  }

  async get(keyHash: string): Promise<TenantKeyRecord | undefined> {
    const res = await this.#db.doc.send(
      new GetCommand({ TableName: this.#db.tables.hubState, Key: this.#key(keyHash), ConsistentRead: true }),
    );
    return res.Item ? toRecord(res.Item) : undefined;
  }

  async list(): Promise<TenantKeyRecord[]> {
    const items = await this.#db.scanAll({
      TableName: this.#db.tables.hubState,
      ConsistentRead: true,
      FilterExpression: 'begins_with(pk, :p)',
      ExpressionAttributeValues: { ':p': keyPrefix },
    });
    return items.map(toRecord);
  }

  async delete(keyHash: string): Promise<void> {
    await this.#db.doc.send(
      new DeleteCommand({ TableName: this.#db.tables.hubState, Key: this.#key(keyHash) }),
    );
  }
}

function toRecord(item: Item): TenantKeyRecord {
  const str = (k: string) => (typeof item[k] === 'string' ? (item[k] as string) : undefined);
  const keyHash = str('keyHash') ?? String(item.pk ?? '').slice(keyPrefix.length);
  const description = str('description');
  const createdBy = str('createdBy');
  return {
    keyHash,
    id: str('id') ?? keyHash.slice(0, 12),
    tenant: str('tenant') ?? '',
    createdAt: str('createdAt') ?? '',
    ...(description === undefined ? {} : { description }),
    ...(createdBy === undefined ? {} : { createdBy }),
  };
}
