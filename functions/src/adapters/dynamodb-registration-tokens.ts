import { DeleteCommand, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import {
  ConflictError,
  type ConsumeResult,
  type RegistrationTokenRecord,
  type RegistrationTokenStore,
  registrationTokenState,
} from '@flotilla/shared/hub';
import type { HubDb } from './dynamodb-stores.ts';

type Item = Record<string, unknown>;

const keyPrefix = 'regtoken#';
/** Used and expired tokens stay listable this long, then DynamoDB's TTL (when enabled on the table) removes them. */
const keepAfterExpirySeconds = 7 * 24 * 3600;

/**
 * One-time registration tokens in the hub-state table, one item each under
 * `regtoken#<sha256 of the token>`. Using a token is one conditional update, so of two
 * registrations racing on one token exactly one wins.
 */
export class DynamoDbRegistrationTokenStore implements RegistrationTokenStore {
  readonly #db: HubDb;

  constructor(db: HubDb) {
    this.#db = db;
  }

  #key(tokenHash: string) {
    return { pk: `${keyPrefix}${tokenHash}` };
  }

  async create(record: RegistrationTokenRecord): Promise<void> {
    const expiresEpoch = Math.ceil(Date.parse(record.expiresAt) / 1000);
    try {
      await this.#db.doc.send(
        new PutCommand({
          TableName: this.#db.tables.hubState,
          Item: { ...this.#key(record.tokenHash), ...record, ttl: expiresEpoch + keepAfterExpirySeconds },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
    } catch (err) {
      if (isConditionFailure(err)) throw new ConflictError('registration token exists', { cause: err });
      throw err;
    }
  }

  async get(tokenHash: string): Promise<RegistrationTokenRecord | undefined> {
    const res = await this.#db.doc.send(
      new GetCommand({
        TableName: this.#db.tables.hubState,
        Key: this.#key(tokenHash),
        ConsistentRead: true,
      }),
    );
    return res.Item ? toRecord(res.Item) : undefined;
  }

  async list(): Promise<RegistrationTokenRecord[]> {
    const items = await this.#db.scanAll({
      TableName: this.#db.tables.hubState,
      ConsistentRead: true,
      FilterExpression: 'begins_with(pk, :p)',
      ExpressionAttributeValues: { ':p': keyPrefix },
    });
    return items
      .map(toRecord)
      .sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0));
  }

  async consume(tokenHash: string, clusterId: string, now: string): Promise<ConsumeResult> {
    try {
      const res = await this.#db.doc.send(
        new UpdateCommand({
          TableName: this.#db.tables.hubState,
          Key: this.#key(tokenHash),
          UpdateExpression: 'SET usedAt = :now, usedBy = :cluster',
          ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(usedAt) AND expiresAt > :now',
          ExpressionAttributeValues: { ':now': now, ':cluster': clusterId },
          ReturnValues: 'ALL_NEW',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return { ok: true, record: toRecord(res.Attributes ?? {}) };
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      const old = (err as { Item?: Item }).Item;
      if (!old) return { ok: false, reason: 'unknown' };
      const record = toRecord(unmarshalled(old));
      const state = registrationTokenState(record, new Date(now));
      return { ok: false, reason: state === 'active' ? 'used' : state, record };
    }
  }

  async release(tokenHash: string, clusterId: string): Promise<void> {
    try {
      await this.#db.doc.send(
        new UpdateCommand({
          TableName: this.#db.tables.hubState,
          Key: this.#key(tokenHash),
          UpdateExpression: 'REMOVE usedAt, usedBy',
          ConditionExpression: 'usedBy = :cluster',
          ExpressionAttributeValues: { ':cluster': clusterId },
        }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
  }

  async delete(tokenHash: string): Promise<void> {
    await this.#db.doc.send(
      new DeleteCommand({ TableName: this.#db.tables.hubState, Key: this.#key(tokenHash) }),
    );
  }
}

/**
 * The item a failed condition returns comes in DynamoDB's attribute-value form (the
 * document client does not convert it); the token items hold only strings and a map of strings.
 */
function unmarshalled(item: Item): Item {
  const out: Item = {};
  for (const [key, value] of Object.entries(item)) out[key] = plain(value);
  return out;
}

function plain(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  const v = value as Record<string, unknown>;
  if ('S' in v) return v.S;
  if ('N' in v) return Number(v.N);
  if ('BOOL' in v) return v.BOOL;
  if ('NULL' in v) return null;
  if ('M' in v && v.M && typeof v.M === 'object') {
    return Object.fromEntries(Object.entries(v.M as Record<string, unknown>).map(([k, x]) => [k, plain(x)]));
  }
  if ('L' in v && Array.isArray(v.L)) return v.L.map(plain);
  return value;
}

function toRecord(item: Item): RegistrationTokenRecord {
  const str = (k: string) => (typeof item[k] === 'string' ? (item[k] as string) : undefined);
  const tokenHash = str('tokenHash') ?? String(item.pk ?? '').slice(keyPrefix.length);
  const optional = (k: 'description' | 'createdBy' | 'usedAt' | 'usedBy') => {
    const value = str(k);
    return value === undefined ? {} : { [k]: value };
  };
  return {
    tokenHash,
    id: str('id') ?? tokenHash.slice(0, 12),
    labels: (item.labels as Record<string, string> | undefined) ?? {},
    createdAt: str('createdAt') ?? '',
    expiresAt: str('expiresAt') ?? '',
    ...optional('description'),
    ...optional('createdBy'),
    ...optional('usedAt'),
    ...optional('usedBy'),
  };
}

function isConditionFailure(err: unknown): boolean {
  return err instanceof Error && err.name === 'ConditionalCheckFailedException';
}
