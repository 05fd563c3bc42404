import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type {
  ClusterStatusChange,
  ClusterStatusStore,
  StoredBundleStatus,
  StoredClusterStatus,
} from '@flotilla/shared/hub';
import { type HubDb, isConditionFailure } from './dynamodb-stores.ts';

/**
 * The cluster-level part of a status lives beside its bundles under a sort key no bundle
 * can have (bundle names are DNS labels), so one query reads a cluster's whole status
 * and deleting the cluster's partition removes it too.
 */
const summaryKey = '#cluster';

/** Per-bundle status in the bundle-status table: (clusterId, bundle). */
export class DynamoDbClusterStatusStore implements ClusterStatusStore {
  readonly #db: HubDb;

  constructor(db: HubDb) {
    this.#db = db;
  }

  async get(clusterId: string): Promise<StoredClusterStatus | undefined> {
    const items = await this.#db.queryAll({
      TableName: this.#db.tables.bundleStatus,
      KeyConditionExpression: 'clusterId = :id',
      ExpressionAttributeValues: { ':id': clusterId },
      ConsistentRead: true,
    });
    if (items.length === 0) return undefined;
    const summary = items.find((i) => i.bundle === summaryKey);
    const bundles = items
      .filter((i) => i.bundle !== summaryKey)
      .map((i) => {
        const { clusterId: _cluster, ...rest } = i;
        return rest as unknown as StoredBundleStatus;
      })
      .sort((a, b) => (a.bundle < b.bundle ? -1 : a.bundle > b.bundle ? 1 : 0));
    return {
      clusterId,
      ...(typeof summary?.appliedGeneration === 'number'
        ? { appliedGeneration: summary.appliedGeneration }
        : {}),
      ...(typeof summary?.observedAt === 'string' ? { observedAt: summary.observedAt } : {}),
      bundles,
    };
  }

  async apply(change: ClusterStatusChange): Promise<void> {
    const { clusterId } = change;
    const requests: Record<string, unknown>[] = [
      ...change.put.map((status) => ({ PutRequest: { Item: { clusterId, ...status } } })),
      ...change.remove.map((bundle) => ({ DeleteRequest: { Key: { clusterId, bundle } } })),
    ];
    if (change.summary) {
      requests.push({ PutRequest: { Item: { clusterId, bundle: summaryKey, ...change.summary } } });
    }
    await this.#db.batchWrite(this.#db.tables.bundleStatus, requests);
  }

  async markNotReadyReported(clusterId: string, bundle: string, since: string, at: string): Promise<boolean> {
    try {
      await this.#db.doc.send(
        new UpdateCommand({
          TableName: this.#db.tables.bundleStatus,
          Key: { clusterId, bundle },
          UpdateExpression: 'SET notReadyReportedAt = :at',
          ConditionExpression:
            '#state = :notReady AND since = :since AND attribute_not_exists(notReadyReportedAt)',
          ExpressionAttributeNames: { '#state': 'state' },
          ExpressionAttributeValues: { ':at': at, ':since': since, ':notReady': 'NotReady' },
        }),
      );
      return true;
    } catch (err) {
      // Reported already, or the bundle left that NotReady stretch meanwhile.
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }
}
