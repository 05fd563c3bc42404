import { readdirSync, readFileSync } from 'node:fs';
import { type HubTableKey, hubTables } from '@flotilla/shared/hub/tables';
import { describe, expect, it } from 'vitest';
import { apiAccess, syncAccess } from '../../../infra/src/permissions.ts';

const adaptersDir = new URL('../../../functions/src/adapters/', import.meta.url);
// Creates tables where nothing else does (DynamoDB Local, LocalStack); in AWS the stack does.
const localOnly = new Set(['dynamodb-tables.ts']);
const files = readdirSync(adaptersDir).filter((f) => f.endsWith('.ts') && !localOnly.has(f));
const source = (file: string) => readFileSync(new URL(file, adaptersDir), 'utf8');

/** The IAM action behind each lib-dynamodb command and each helper of `HubDb`. */
const dynamoDbActions: Record<string, string> = {
  GetCommand: 'GetItem',
  PutCommand: 'PutItem',
  UpdateCommand: 'UpdateItem',
  DeleteCommand: 'DeleteItem',
  QueryCommand: 'Query',
  ScanCommand: 'Scan',
  BatchGetCommand: 'BatchGetItem',
  BatchWriteCommand: 'BatchWriteItem',
  queryAll: 'Query',
  scanAll: 'Scan',
  batchWrite: 'BatchWriteItem',
};

/**
 * Reads the DynamoDB stores' source for what they do to which table: each command or
 * helper call, with the `tables.<key>` it names before the next call. Calls on a table
 * held in a variable (the generic helpers, loops over tables) are "unresolved".
 */
function dynamoDbCalls(): { perTable: Map<string, Set<string>>; unresolved: Set<string> } {
  const perTable = new Map<string, Set<string>>();
  const unresolved = new Set<string>();
  for (const file of files.filter((f) => f.startsWith('dynamodb-'))) {
    const text = source(file);
    const calls = [...text.matchAll(/new (\w+Command)\(|\.(queryAll|scanAll|batchWrite)\(/g)];
    calls.forEach((call, i) => {
      const name = (call[1] ?? call[2]) as string;
      const until = calls[i + 1]?.index ?? text.length;
      if (name === 'TransactWriteCommand') {
        // IAM authorises each item of a transaction as the single-item action it is.
        const items = text
          .slice(call.index, until)
          .matchAll(/(Put|Update|Delete|ConditionCheck): \{\s*TableName: this\.#db\.tables\.(\w+)/g);
        for (const [, kind, table] of items) {
          const itemAction = kind === 'ConditionCheck' ? 'ConditionCheckItem' : `${kind}Item`;
          perTable.set(table as string, (perTable.get(table as string) ?? new Set()).add(itemAction));
        }
        return;
      }
      const action = dynamoDbActions[name];
      if (!action) throw new Error(`${file}: unknown DynamoDB call ${name}: map it to its IAM action here`);
      const table = /tables\.(\w+)/.exec(text.slice(call.index, until))?.[1];
      if (!table) unresolved.add(action);
      else perTable.set(table, (perTable.get(table) ?? new Set()).add(action));
    });
  }
  return { perTable, unresolved };
}

describe('function permissions against what the adapters call', () => {
  const { perTable, unresolved } = dynamoDbCalls();

  it('grants the API function every DynamoDB action the stores send on each table', () => {
    expect([...perTable.keys()].sort()).toEqual(Object.keys(hubTables).sort());
    const missing = [...perTable].flatMap(([table, actions]) => {
      const granted: readonly string[] = apiAccess.tables[table as HubTableKey] ?? [];
      return [...actions].filter((a) => !granted.includes(a)).map((a) => `${table}: dynamodb:${a}`);
    });
    expect(missing).toEqual([]);
  });

  it('grants no DynamoDB action that no store sends', () => {
    const sent = new Set([...unresolved, ...[...perTable.values()].flatMap((s) => [...s])]);
    expect([...new Set(Object.values(apiAccess.tables).flat())].sort()).toEqual([...sent].sort());
  });

  it('grants the API function every SQS action the spoke queues send, and no other', () => {
    const sent = [...source('sqs-spoke-queues.ts').matchAll(/new (\w+)Command\(/g)].map((m) => `sqs:${m[1]}`);
    expect([...apiAccess.spokeQueues].sort()).toEqual([...new Set(sent)].sort());
  });

  it('gives the sync function a subset of the API function, without registration or deletes', () => {
    for (const [table, actions] of Object.entries(syncAccess.tables)) {
      expect(apiAccess.tables[table as keyof typeof apiAccess.tables]).toEqual(
        expect.arrayContaining([...actions]),
      );
    }
    expect(Object.values(syncAccess.tables).flat()).not.toContain('DeleteItem');
    expect(syncAccess.spokeQueues).toEqual(['sqs:SendMessage']);
  });

  it('signs with exactly the KMS calls the stack grants (kms:GetPublicKey, kms:Sign)', () => {
    const sent = [...source('kms-signer.ts').matchAll(/new (\w+)Command\(/g)].map((m) => m[1]);
    expect([...new Set(sent)].sort()).toEqual(['GetPublicKey', 'Sign']);
  });
});
