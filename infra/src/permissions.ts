/**
 * What each hub function does to AWS, as data: the IAM grants are built from it and
 * the tests hold it against the SDK commands the functions' adapters send. Read from
 * `functions/src/adapters/*` (the lib-dynamodb command of each store method) and
 * `shared/src/hub/sync.ts` (which ports a sync uses).
 */
import type { HubTableKey } from '@flotilla/shared/hub/tables';

export type DynamoDbAction =
  | 'GetItem'
  | 'PutItem'
  | 'UpdateItem'
  | 'DeleteItem'
  | 'Query'
  | 'Scan'
  | 'BatchGetItem'
  | 'BatchWriteItem';

export type TableAccess = { readonly [K in HubTableKey]?: readonly DynamoDbAction[] };

export interface FunctionAccess {
  readonly tables: TableAccess;
  /** On the spoke queues, `${prefix}-spoke-*` (the queues are created at registration, not by CDK). */
  readonly spokeQueues: readonly string[];
}

/** The API function: every route, including registration, deregistration, status and in-process syncs. */
export const apiAccess: FunctionAccess = {
  tables: {
    // get, create (conditional put), delete, update and heartbeat, list, desired-state head (update, in a transaction)
    // (and a sync window's clusters by id, batched)
    clusters: ['GetItem', 'BatchGetItem', 'PutItem', 'UpdateItem', 'DeleteItem', 'Scan'],
    // the current copy (put in the head's transaction), a generation, the history, history
    // writes and pruning, cleanup on deregistration
    desiredStates: ['GetItem', 'PutItem', 'Query', 'BatchWriteItem'],
    // which hashes exist; chunk writes (batched, the head chunk conditional); a bundle, or one part of it
    bundles: ['BatchGetItem', 'BatchWriteItem', 'PutItem', 'GetItem', 'Query'],
    // a cluster's statuses; changed statuses and cleanup on deregistration; the not-ready mark (conditional update)
    bundleStatus: ['Query', 'BatchWriteItem', 'UpdateItem'],
    // sync state and lease; one-time registration tokens (create, list, use up, revoke)
    hubState: ['GetItem', 'PutItem', 'UpdateItem', 'DeleteItem', 'Scan'],
  },
  // CreateQueue also finds the shared DLQ by name; GetQueueAttributes reads its ARN for the redrive policy.
  spokeQueues: ['sqs:CreateQueue', 'sqs:GetQueueAttributes', 'sqs:DeleteQueue', 'sqs:SendMessage'],
};

/** The scheduled sync: plan, store what changed, notify. No registration, status or deletes. */
export const syncAccess: FunctionAccess = {
  tables: {
    // a window's clusters by id, batched, when the sync fans out
    clusters: ['GetItem', 'BatchGetItem', 'UpdateItem', 'Scan'],
    // the current copy, put in the same transaction as the head; then the history
    desiredStates: ['PutItem', 'BatchWriteItem'],
    // no part reads: those serve agents
    bundles: ['BatchGetItem', 'BatchWriteItem', 'PutItem', 'Query'],
    // sync state and lease; the jobs of syncs that fan out (created, then a window at a time)
    hubState: ['GetItem', 'PutItem', 'UpdateItem'],
  },
  spokeQueues: ['sqs:SendMessage'],
};
