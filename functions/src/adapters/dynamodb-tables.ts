import {
  type AttributeDefinition,
  CreateTableCommand,
  DescribeTableCommand,
  type DynamoDBClient,
  type KeySchemaElement,
  ResourceInUseException,
} from '@aws-sdk/client-dynamodb';
import { type HubTableNames, hubTables } from '@flotilla/shared/hub/tables';

/**
 * Creates the hub's tables where nothing else does (DynamoDB Local, tests, LocalStack);
 * in AWS the CDK app creates the same tables from the same definitions.
 */
export async function ensureHubTables(client: DynamoDBClient, names: HubTableNames): Promise<void> {
  await Promise.all(
    (Object.keys(hubTables) as (keyof typeof hubTables)[]).map(async (key) => {
      const def = hubTables[key];
      const keySchema: KeySchemaElement[] = [{ AttributeName: def.partitionKey.name, KeyType: 'HASH' }];
      const attributes: AttributeDefinition[] = [
        { AttributeName: def.partitionKey.name, AttributeType: def.partitionKey.type },
      ];
      if ('sortKey' in def) {
        keySchema.push({ AttributeName: def.sortKey.name, KeyType: 'RANGE' });
        attributes.push({ AttributeName: def.sortKey.name, AttributeType: def.sortKey.type });
      }
      try {
        await client.send(
          new CreateTableCommand({
            TableName: names[key],
            BillingMode: 'PAY_PER_REQUEST',
            KeySchema: keySchema,
            AttributeDefinitions: attributes,
          }),
        );
      } catch (err) {
        if (!(err instanceof ResourceInUseException)) throw err;
      }
      for (let i = 0; i < 100; i++) {
        const res = await client.send(new DescribeTableCommand({ TableName: names[key] }));
        if (res.Table?.TableStatus === 'ACTIVE') return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`table ${names[key]} did not become ACTIVE`);
    }),
  );
}
