import { DeleteCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { ConflictError, type DeclaredSourceRecord, type SourceDeclarationStore } from '@flotilla/shared/hub';
import type { HubDb } from './dynamodb-stores.ts';

type Item = Record<string, unknown>;

const keyPrefix = 'source#';

/**
 * The sources declared through the admin API, in the hub-state table, one item each under
 * `source#<name>` holding the FleetSource document as JSON text. Reads are consistent, so
 * the sync right after a declaration or a removal sees it.
 */
export class DynamoDbSourceDeclarationStore implements SourceDeclarationStore {
  readonly #db: HubDb;

  constructor(db: HubDb) {
    this.#db = db;
  }

  async create(record: DeclaredSourceRecord): Promise<void> {
    try {
      await this.#db.doc.send(
        new PutCommand({
          TableName: this.#db.tables.hubState,
          Item: {
            pk: `${keyPrefix}${record.name}`,
            name: record.name,
            document: JSON.stringify(record.document),
            createdAt: record.createdAt,
            ...(record.createdBy ? { createdBy: record.createdBy } : {}),
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
    } catch (err) {
      if (err instanceof Error && err.name === 'ConditionalCheckFailedException')
        throw new ConflictError(`source "${record.name}" is declared already`, { cause: err });
      throw err;
    }
  }

  async list(): Promise<DeclaredSourceRecord[]> {
    const items = await this.#db.scanAll({
      TableName: this.#db.tables.hubState,
      ConsistentRead: true,
      FilterExpression: 'begins_with(pk, :p)',
      ExpressionAttributeValues: { ':p': keyPrefix },
    });
    return items.map(toRecord).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async delete(name: string): Promise<boolean> {
    const res = await this.#db.doc.send(
      new DeleteCommand({
        TableName: this.#db.tables.hubState,
        Key: { pk: `${keyPrefix}${name}` },
        ReturnValues: 'ALL_OLD',
      }),
    );
    return res.Attributes !== undefined;
  }
}

function toRecord(item: Item): DeclaredSourceRecord {
  const str = (k: string) => (typeof item[k] === 'string' ? (item[k] as string) : undefined);
  const createdBy = str('createdBy');
  return {
    name: str('name') ?? String(item.pk ?? '').slice(keyPrefix.length),
    document: JSON.parse(str('document') ?? '{}') as DeclaredSourceRecord['document'],
    createdAt: str('createdAt') ?? '',
    ...(createdBy === undefined ? {} : { createdBy }),
  };
}
