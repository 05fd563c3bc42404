import { createHash } from 'node:crypto';
import { DeleteCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { DedupStore } from '@flotilla/shared/notify';
import type { HubDb } from './dynamodb-stores.ts';

const keyPrefix = 'notify#';

/**
 * The notifier's de-duplication claims in the hub-state table, one item per (provider,
 * event key) under `notify#<sha256>`. A claim is one conditional put that succeeds only
 * when no claim exists or the existing one has expired, so two notifiers racing on one
 * event deliver it once. DynamoDB's TTL removes old claims.
 */
export class DynamoDbNotificationDedup implements DedupStore {
  readonly #db: HubDb;

  constructor(db: HubDb) {
    this.#db = db;
  }

  #key(key: string) {
    return { pk: `${keyPrefix}${createHash('sha256').update(key).digest('hex')}` };
  }

  async claim(key: string, now: number, windowMs: number): Promise<boolean> {
    const until = now + windowMs;
    try {
      await this.#db.doc.send(
        new PutCommand({
          TableName: this.#db.tables.hubState,
          Item: { ...this.#key(key), until, ttl: Math.ceil(until / 1000) + 3600 },
          ConditionExpression: 'attribute_not_exists(pk) OR #until <= :now',
          ExpressionAttributeNames: { '#until': 'until' },
          ExpressionAttributeValues: { ':now': now },
        }),
      );
      return true;
    } catch (err) {
      if (err instanceof Error && err.name === 'ConditionalCheckFailedException') return false;
      throw err;
    }
  }

  async release(key: string): Promise<void> {
    await this.#db.doc.send(new DeleteCommand({ TableName: this.#db.tables.hubState, Key: this.#key(key) }));
  }
}
