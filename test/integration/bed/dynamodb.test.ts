import {
  CreateTableCommand,
  GetItemCommand,
  TransactionCanceledException,
  TransactWriteItemsCommand,
} from '@aws-sdk/client-dynamodb';
import { describe, expect, inject, it } from 'vitest';
import { bedDynamoDb } from '../../support/aws-clients.ts';

const bed = inject('bed');
const client = bedDynamoDb(bed);

describe('DynamoDB Local (smoke)', () => {
  it('cancels a whole transaction when one condition fails, and commits when all hold', async () => {
    const table = `smoke-${Date.now()}`;
    await client.send(
      new CreateTableCommand({
        TableName: table,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      }),
    );
    const put = (pk: string, generation: number) => ({
      Put: {
        TableName: table,
        Item: { pk: { S: pk }, generation: { N: String(generation) } },
        ConditionExpression: 'attribute_not_exists(pk)',
      },
    });
    await client.send(new TransactWriteItemsCommand({ TransactItems: [put('cluster#a', 1)] }));

    // cluster#b is new but cluster#a exists: the transaction must fail as a whole.
    const failed = await client
      .send(new TransactWriteItemsCommand({ TransactItems: [put('cluster#b', 1), put('cluster#a', 2)] }))
      .catch((err: unknown) => err);
    expect(failed).toBeInstanceOf(TransactionCanceledException);
    const reasons = (failed as TransactionCanceledException).CancellationReasons?.map((r) => r.Code);
    expect(reasons).toEqual(['None', 'ConditionalCheckFailed']);

    const b = await client.send(new GetItemCommand({ TableName: table, Key: { pk: { S: 'cluster#b' } } }));
    expect(b.Item).toBeUndefined();
    const a = await client.send(
      new GetItemCommand({ TableName: table, Key: { pk: { S: 'cluster#a' } }, ConsistentRead: true }),
    );
    expect(a.Item?.generation?.N).toBe('1');
  });
});
