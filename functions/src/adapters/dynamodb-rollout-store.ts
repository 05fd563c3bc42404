/**
 * Rollouts in DynamoDB: per bundle, a head item in the hub-state table (`rollout#<bundle>`)
 * that every writer conditions on by version, and the rollout's document stored
 * content-addressed in the bundles table, so a rollout over 100,000 clusters is not held
 * to one item's 400 KB.
 */
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { sha256Hash } from '@flotilla/shared';
import { ConflictError, type RolloutHead, type RolloutStore } from '@flotilla/shared/hub';
import { type DynamoDbBundleStore, type HubDb, isConditionFailure } from './dynamodb-stores.ts';

const prefix = 'rollout#';
const utf8 = new TextEncoder();

export class DynamoDbRolloutStore implements RolloutStore {
  readonly #db: HubDb;
  readonly #bundles: DynamoDbBundleStore;

  constructor(db: HubDb, bundles: DynamoDbBundleStore) {
    this.#db = db;
    this.#bundles = bundles;
  }

  async get(bundle: string): Promise<{ head: RolloutHead; document: string } | undefined> {
    const res = await this.#db.doc.send(
      new GetCommand({
        TableName: this.#db.tables.hubState,
        Key: { pk: `${prefix}${bundle}` },
        ConsistentRead: true,
      }),
    );
    if (!res.Item) return undefined;
    const head = headOf(res.Item);
    const bytes = await this.#bundles.get(head.documentHash);
    if (!bytes) throw new Error(`rollout of "${bundle}": document ${head.documentHash} is missing`);
    return { head, document: new TextDecoder().decode(bytes) };
  }

  async list(): Promise<RolloutHead[]> {
    const items = await this.#db.scanAll({
      TableName: this.#db.tables.hubState,
      FilterExpression: 'begins_with(pk, :p)',
      ExpressionAttributeValues: { ':p': prefix },
      ConsistentRead: true,
    });
    return items.map(headOf).sort((a, b) => (a.bundle < b.bundle ? -1 : a.bundle > b.bundle ? 1 : 0));
  }

  async save(
    input: Omit<RolloutHead, 'version' | 'documentHash'> & { readonly document: string },
    expectedVersion: number | undefined,
  ): Promise<RolloutHead> {
    const documentHash = sha256Hash(input.document);
    // The document first: a head never points at a document that is not there. A document
    // left by a save that then lost the race is content-addressed garbage, harmless.
    if (!(await this.#bundles.existing([documentHash])).has(documentHash)) {
      await this.#bundles.putMany([{ hash: documentHash, content: utf8.encode(input.document) }]);
    }
    const head: RolloutHead = {
      bundle: input.bundle,
      revision: input.revision,
      status: input.status,
      version: (expectedVersion ?? 0) + 1,
      documentHash,
      updatedAt: input.updatedAt,
      ...(input.nextWakeAt === undefined ? {} : { nextWakeAt: input.nextWakeAt }),
    };
    try {
      await this.#db.doc.send(
        new PutCommand({
          TableName: this.#db.tables.hubState,
          Item: { pk: `${prefix}${input.bundle}`, ...head },
          ...(expectedVersion === undefined
            ? { ConditionExpression: 'attribute_not_exists(pk)' }
            : {
                ConditionExpression: 'version = :v',
                ExpressionAttributeValues: { ':v': expectedVersion },
              }),
        }),
      );
    } catch (err) {
      if (isConditionFailure(err)) {
        throw new ConflictError(
          `rollout of "${input.bundle}" moved past version ${expectedVersion ?? 'none'}: read it again`,
          { cause: err },
        );
      }
      throw err;
    }
    return head;
  }
}

function headOf(item: Record<string, unknown>): RolloutHead {
  return {
    bundle: item.bundle as string,
    revision: item.revision as string,
    status: item.status as string,
    version: item.version as number,
    documentHash: item.documentHash as string,
    updatedAt: item.updatedAt as string,
    ...(typeof item.nextWakeAt === 'string' ? { nextWakeAt: item.nextWakeAt } : {}),
  };
}
