import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { FleetError } from '@flotilla/shared';
import type { SyncJob, SyncJobStore } from '@flotilla/shared/hub';
import { type HubDb, isConditionFailure } from './dynamodb-stores.ts';

/** A finished job's record stays a week for inspection, then DynamoDB removes it. */
const jobTtlSeconds = 7 * 24 * 3600;
/**
 * Distinct errors a window adds to its job, at most: the job is one item (400 KB), and a
 * broken bundle reports the same error in every window, which the set keeps once.
 */
const maxErrorsPerWindow = 50;

/**
 * Dispatched syncs in the hub-state table, one item per job (`syncjob#<id>`). A window is
 * recorded with one conditional update that adds its number to the set of done windows,
 * its counts to the totals and its errors to the error set, so a redelivered window is
 * never counted twice and the write that completes the job is known.
 */
export class DynamoDbSyncJobStore implements SyncJobStore {
  readonly #db: HubDb;
  readonly #now: () => Date;

  constructor(db: HubDb, now: () => Date = () => new Date()) {
    this.#db = db;
    this.#now = now;
  }

  async create(job: Omit<SyncJob, 'windowsDone' | 'clusters' | 'changedClusters'>): Promise<void> {
    await this.#db.doc.send(
      new PutCommand({
        TableName: this.#db.tables.hubState,
        Item: {
          pk: key(job.jobId),
          jobId: job.jobId,
          holder: job.holder,
          commit: job.commit,
          snapshotHash: job.snapshotHash,
          windows: job.windows,
          clusters: 0,
          changedClusters: 0,
          startedAt: job.startedAt,
          kubeVersionMatters: job.kubeVersionMatters,
          ...(job.sources ? { sources: JSON.stringify(job.sources) } : {}),
          ...(job.errors.length > 0 ? { errors: new Set(job.errors.map((e) => JSON.stringify(e))) } : {}),
          ttl: Math.floor(this.#now().getTime() / 1000) + jobTtlSeconds,
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  }

  async completeWindow(
    jobId: string,
    window: number,
    result: {
      readonly clusters: number;
      readonly changedClusters: number;
      readonly errors: readonly FleetError[];
    },
  ): Promise<{ readonly recorded: boolean; readonly job: SyncJob }> {
    const errors = result.errors.slice(0, maxErrorsPerWindow).map((e) => JSON.stringify(e));
    try {
      const res = await this.#db.doc.send(
        new UpdateCommand({
          TableName: this.#db.tables.hubState,
          Key: { pk: key(jobId) },
          UpdateExpression: `ADD #done :w, #clusters :c, #changed :ch${errors.length > 0 ? ', #errors :e' : ''}`,
          ConditionExpression: 'attribute_exists(pk) AND NOT contains(#done, :n)',
          ExpressionAttributeNames: {
            '#done': 'doneWindows',
            '#clusters': 'clusters',
            '#changed': 'changedClusters',
            ...(errors.length > 0 ? { '#errors': 'errors' } : {}),
          },
          ExpressionAttributeValues: {
            ':w': new Set([window]),
            ':n': window,
            ':c': result.clusters,
            ':ch': result.changedClusters,
            ...(errors.length > 0 ? { ':e': new Set(errors) } : {}),
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return { recorded: true, job: jobOf(res.Attributes ?? {}) };
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
    const found = await this.#db.doc.send(
      new GetCommand({ TableName: this.#db.tables.hubState, Key: { pk: key(jobId) }, ConsistentRead: true }),
    );
    if (!found.Item) throw new Error(`sync job ${jobId} does not exist`);
    return { recorded: false, job: jobOf(found.Item) };
  }
}

function key(jobId: string): string {
  return `syncjob#${jobId}`;
}

function jobOf(item: Record<string, unknown>): SyncJob {
  const done = item.doneWindows as Set<number> | undefined;
  const errors = item.errors as Set<string> | undefined;
  return {
    jobId: String(item.jobId),
    holder: String(item.holder),
    commit: String(item.commit),
    snapshotHash: String(item.snapshotHash),
    windows: Number(item.windows),
    windowsDone: done?.size ?? 0,
    clusters: Number(item.clusters ?? 0),
    changedClusters: Number(item.changedClusters ?? 0),
    errors: [...(errors ?? [])].map((e) => JSON.parse(e) as FleetError),
    startedAt: String(item.startedAt),
    kubeVersionMatters: item.kubeVersionMatters === true,
    ...(typeof item.sources === 'string'
      ? { sources: JSON.parse(item.sources) as NonNullable<SyncJob['sources']> }
      : {}),
  };
}
