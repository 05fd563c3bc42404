import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  BatchWriteCommand,
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  ScanCommand,
  type ScanCommandInput,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import {
  type BundlePart,
  type BundlePin,
  type BundleStore,
  type ClusterRecord,
  type ClusterStatusDigest,
  type ClusterStore,
  ConflictError,
  type DesiredStateStore,
  type Heartbeat,
  type KeyRotationRequest,
  type LabelChange,
  NotFoundError,
  type StoredDesiredState,
  type SyncState,
  type SyncStateStore,
} from '@flotilla/shared/hub';
import { bundleChunkBytes, desiredStateHistoryDepth, type HubTableNames } from '@flotilla/shared/hub/tables';

type Item = Record<string, unknown>;

/** The DynamoDB client and table names every store of the hub shares; built once per runtime. */
export class HubDb {
  readonly doc: DynamoDBDocumentClient;
  readonly tables: HubTableNames;
  readonly historyDepth: number;

  constructor(client: DynamoDBClient, tables: HubTableNames, opts: { historyDepth?: number } = {}) {
    this.doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
    this.tables = tables;
    this.historyDepth = opts.historyDepth ?? desiredStateHistoryDepth;
  }

  async scanAll(input: ScanCommandInput): Promise<Item[]> {
    const items: Item[] = [];
    let start: Item | undefined;
    do {
      const res = await this.doc.send(new ScanCommand({ ...input, ExclusiveStartKey: start }));
      items.push(...((res.Items as Item[] | undefined) ?? []));
      start = res.LastEvaluatedKey as Item | undefined;
    } while (start);
    return items;
  }

  async queryAll(input: QueryCommandInput): Promise<Item[]> {
    const items: Item[] = [];
    let start: Item | undefined;
    do {
      const res = await this.doc.send(new QueryCommand({ ...input, ExclusiveStartKey: start }));
      items.push(...((res.Items as Item[] | undefined) ?? []));
      start = res.LastEvaluatedKey as Item | undefined;
    } while (start);
    return items;
  }

  /** BatchWriteItem in groups of 25, a few groups at a time, retrying unprocessed items with backoff. */
  async batchWrite(table: string, requests: Item[], concurrency = 8): Promise<void> {
    await this.batchWriteGroups(
      table,
      Math.ceil(requests.length / batchWriteMax),
      async (g) => requests.slice(g * batchWriteMax, (g + 1) * batchWriteMax),
      concurrency,
    );
  }

  /**
   * BatchWriteItem of `groups` groups of at most 25 requests, a few at a time, each group
   * built only when a worker is ready to send it: what is in memory is bounded by the
   * concurrency, not by how much is written.
   */
  async batchWriteGroups(
    table: string,
    groups: number,
    build: (group: number) => Promise<Item[]>,
    concurrency = 8,
  ): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < groups) {
        let pending = await build(next++);
        let attempt = 0;
        while (pending.length > 0) {
          const res = await this.doc.send(
            new BatchWriteCommand({ RequestItems: { [table]: pending as never } }),
          );
          pending = (res.UnprocessedItems?.[table] as Item[] | undefined) ?? [];
          if (pending.length > 0)
            await new Promise((r) => setTimeout(r, Math.min(1000, 25 * 2 ** attempt++)));
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, groups) }, worker));
  }
}

const batchWriteMax = 25;
const batchGetMax = 100;
const existingConcurrency = 4;

/** Registered clusters, their labels, token hashes, heartbeats and desired-state heads. */
export class DynamoDbClusterStore implements ClusterStore {
  readonly #db: HubDb;

  constructor(db: HubDb) {
    this.#db = db;
  }

  async get(id: string): Promise<ClusterRecord | undefined> {
    const res = await this.#db.doc.send(
      new GetCommand({ TableName: this.#db.tables.clusters, Key: { clusterId: id }, ConsistentRead: true }),
    );
    return res.Item ? toCluster(res.Item) : undefined;
  }

  /** Many clusters by id, 100 per BatchGetItem (a sync window's worth in five calls, not 500 reads). */
  async getMany(ids: readonly string[]): Promise<ClusterRecord[]> {
    const { ProjectionExpression } = this.#listing();
    const found: ClusterRecord[] = [];
    const unique = [...new Set(ids)];
    for (let i = 0; i < unique.length; i += batchGetMax) {
      let keys: Item[] = unique.slice(i, i + batchGetMax).map((clusterId) => ({ clusterId }));
      while (keys.length > 0) {
        const res = await this.#db.doc.send(
          new BatchGetCommand({
            RequestItems: {
              [this.#db.tables.clusters]: { Keys: keys, ProjectionExpression, ConsistentRead: true },
            },
          }),
        );
        for (const item of res.Responses?.[this.#db.tables.clusters] ?? []) found.push(toCluster(item));
        keys = (res.UnprocessedKeys?.[this.#db.tables.clusters]?.Keys as Item[] | undefined) ?? [];
      }
    }
    return found;
  }

  async list(): Promise<ClusterRecord[]> {
    const items = await this.#db.scanAll(this.#listing());
    return items.map(toCluster).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async *pages(
    size: number,
    options: { readonly statusDigest?: boolean; readonly segments?: number } = {},
  ): AsyncIterable<readonly ClusterRecord[]> {
    const listing = this.#listing(options.statusDigest === true);
    const segments = Math.max(1, Math.min(16, Math.floor(options.segments ?? 1)));
    const scan = (segment: number, start: Record<string, unknown> | undefined) =>
      this.#db.doc.send(
        new ScanCommand({
          ...listing,
          Limit: Math.max(1, size),
          ExclusiveStartKey: start,
          ...(segments > 1 ? { Segment: segment, TotalSegments: segments } : {}),
        }),
      );
    // Each segment walks its part of the table; the next page of whichever answers first is
    // asked for before that page is handed on, so the parts stay busy while the caller works.
    const inFlight = new Map<number, ReturnType<typeof scan>>();
    for (let segment = 0; segment < segments; segment++) inFlight.set(segment, scan(segment, undefined));
    try {
      while (inFlight.size > 0) {
        const [segment, res] = await Promise.race(
          [...inFlight].map(([s, p]) => p.then((r) => [s, r] as const)),
        );
        const next = res.LastEvaluatedKey as Record<string, unknown> | undefined;
        if (next) inFlight.set(segment, scan(segment, next));
        else inFlight.delete(segment);
        const items = (res.Items as Record<string, unknown>[] | undefined) ?? [];
        if (items.length > 0) yield items.map(toCluster);
      }
    } finally {
      // A caller that stops early (or a part that failed) leaves the other parts' reads unread.
      for (const p of inFlight.values()) p.catch(() => undefined);
    }
  }

  // The current manifest lives on the item too; a fleet-wide listing leaves it behind, and
  // the status digest too unless a status listing asks for it.
  #listing(statusDigest = false): ScanCommandInput {
    return {
      TableName: this.#db.tables.clusters,
      ConsistentRead: true,
      ProjectionExpression: `clusterId, labels, tokenHash, registeredAt, queueUrl, lastHeartbeatAt, agentVersion, kubeVersion, head, pins, recipients, keyRotation${statusDigest ? ', statusDigest' : ''}`,
    };
  }

  async create(record: ClusterRecord): Promise<void> {
    try {
      await this.#db.doc.send(
        new PutCommand({
          TableName: this.#db.tables.clusters,
          Item: fromCluster(record),
          ConditionExpression: 'attribute_not_exists(clusterId)',
        }),
      );
    } catch (err) {
      if (isConditionFailure(err))
        throw new ConflictError(`cluster "${record.id}" already exists`, { cause: err });
      throw err;
    }
  }

  async delete(id: string): Promise<void> {
    await this.#db.doc.send(
      new DeleteCommand({ TableName: this.#db.tables.clusters, Key: { clusterId: id } }),
    );
    // The cluster record is gone first, so its token stops working before the rest is cleaned up.
    for (const table of [this.#db.tables.desiredStates, this.#db.tables.bundleStatus] as const) {
      const sortKey = table === this.#db.tables.desiredStates ? 'generation' : 'bundle';
      const items = await this.#db.queryAll({
        TableName: table,
        KeyConditionExpression: 'clusterId = :id',
        ExpressionAttributeValues: { ':id': id },
        ProjectionExpression: 'clusterId, #sk',
        ExpressionAttributeNames: { '#sk': sortKey },
      });
      await this.#db.batchWrite(
        table,
        items.map((key) => ({ DeleteRequest: { Key: { clusterId: id, [sortKey]: key[sortKey] } } })),
      );
    }
  }

  async update(id: string, change: { tokenHash?: string; queueUrl?: string }): Promise<ClusterRecord> {
    const sets: string[] = [];
    const values: Item = {};
    for (const [key, value] of Object.entries(change)) {
      if (value === undefined) continue;
      sets.push(`${key} = :${key}`);
      values[`:${key}`] = value;
    }
    if (sets.length === 0) {
      const current = await this.get(id);
      if (!current) throw new NotFoundError(`cluster "${id}" not found`);
      return current;
    }
    try {
      const res = await this.#db.doc.send(
        new UpdateCommand({
          TableName: this.#db.tables.clusters,
          Key: { clusterId: id },
          // The offline mark goes in the same write: exactly one heartbeat sees it (its old value).
          UpdateExpression: `SET ${sets.join(', ')} REMOVE offlineAt`,
          ConditionExpression: 'attribute_exists(clusterId)',
          ExpressionAttributeValues: values,
          ReturnValues: 'ALL_NEW',
        }),
      );
      return toCluster(res.Attributes ?? {});
    } catch (err) {
      if (isConditionFailure(err)) throw new NotFoundError(`cluster "${id}" not found`, { cause: err });
      throw err;
    }
  }

  async relabel(id: string, change: LabelChange): Promise<ClusterRecord> {
    // One path per key (`labels.#k`), never the whole map: a read-merge-write of the map
    // lost keys when calls overlapped (20 parallel calls kept 11 of 20 keys).
    const names: Record<string, string> = {};
    const values: Item = { ':zero': 0, ':one': 1 };
    const sets = ['labelsRevision = if_not_exists(labelsRevision, :zero) + :one'];
    Object.entries(change.set).forEach(([key, value], i) => {
      names[`#s${i}`] = key;
      values[`:s${i}`] = value;
      sets.push(`labels.#s${i} = :s${i}`);
    });
    const removes = change.remove.map((key, i) => {
      names[`#r${i}`] = key;
      return `labels.#r${i}`;
    });
    const input = {
      TableName: this.#db.tables.clusters,
      Key: { clusterId: id },
      UpdateExpression: `SET ${sets.join(', ')}${removes.length > 0 ? ` REMOVE ${removes.join(', ')}` : ''}`,
      ConditionExpression: 'attribute_exists(clusterId)',
      ...(Object.keys(names).length > 0 ? { ExpressionAttributeNames: names } : {}),
      ExpressionAttributeValues: values,
      ReturnValues: 'ALL_NEW' as const,
    };
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await this.#db.doc.send(new UpdateCommand(input));
        return toCluster(res.Attributes ?? {});
      } catch (err) {
        if (isConditionFailure(err)) throw new NotFoundError(`cluster "${id}" not found`, { cause: err });
        // DynamoDB rejects a write to an item that a transaction (a re-plan committing this
        // cluster's head) holds at that moment, and the SDK does not retry it; nothing was written.
        if (!isItemInTransaction(err) || attempt >= itemInTransactionAttempts) throw err;
        await new Promise((r) => setTimeout(r, 20 * 2 ** attempt * (0.5 + Math.random())));
      }
    }
  }

  async recordHeartbeat(
    id: string,
    heartbeat: Heartbeat,
  ): Promise<{ kubeVersionChanged: boolean; wasOfflineAt?: string }> {
    const { at, agentVersion, kubeVersion, recipients } = heartbeat;
    const sets = ['lastHeartbeatAt = :at', 'agentVersion = :v'];
    if (kubeVersion !== undefined) sets.push('kubeVersion = :k');
    if (recipients !== undefined) sets.push('recipients = :r');
    try {
      // One write either way; its old value of kubeVersion tells whether the version changed.
      const res = await this.#db.doc.send(
        new UpdateCommand({
          TableName: this.#db.tables.clusters,
          Key: { clusterId: id },
          // The offline mark goes in the same write: exactly one heartbeat sees it (its old value).
          UpdateExpression: `SET ${sets.join(', ')} REMOVE offlineAt`,
          ConditionExpression: 'attribute_exists(clusterId)',
          ExpressionAttributeValues: {
            ':at': at,
            ':v': agentVersion,
            ...(kubeVersion === undefined ? {} : { ':k': kubeVersion }),
            ...(recipients === undefined
              ? {}
              : { ':r': recipients.map((r) => ({ name: r.name, recipient: r.recipient })) }),
          },
          ReturnValues: 'UPDATED_OLD',
        }),
      );
      const wasOfflineAt = res.Attributes?.offlineAt;
      return {
        kubeVersionChanged: kubeVersion !== undefined && res.Attributes?.kubeVersion !== kubeVersion,
        ...(typeof wasOfflineAt === 'string' ? { wasOfflineAt } : {}),
      };
    } catch (err) {
      if (isConditionFailure(err)) throw new NotFoundError(`cluster "${id}" not found`, { cause: err });
      throw err;
    }
  }

  async markOffline(id: string, lastHeartbeatAt: string, at: string): Promise<boolean> {
    try {
      await this.#db.doc.send(
        new UpdateCommand({
          TableName: this.#db.tables.clusters,
          Key: { clusterId: id },
          UpdateExpression: 'SET offlineAt = :at',
          ConditionExpression: 'lastHeartbeatAt = :beat AND attribute_not_exists(offlineAt)',
          ExpressionAttributeValues: { ':at': at, ':beat': lastHeartbeatAt },
        }),
      );
      return true;
    } catch (err) {
      // Marked already, a heartbeat came meanwhile, or the cluster is gone: not this call's to report.
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  async requestKeyRotation(id: string, request: KeyRotationRequest): Promise<ClusterRecord> {
    try {
      const res = await this.#db.doc.send(
        new UpdateCommand({
          TableName: this.#db.tables.clusters,
          Key: { clusterId: id },
          UpdateExpression: 'SET keyRotation = :r',
          ConditionExpression: 'attribute_exists(clusterId)',
          ExpressionAttributeValues: { ':r': { id: request.id, requestedAt: request.requestedAt } },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return toCluster(res.Attributes ?? {});
    } catch (err) {
      if (isConditionFailure(err)) throw new NotFoundError(`cluster "${id}" not found`, { cause: err });
      throw err;
    }
  }

  async finishKeyRotation(id: string, rotationId: string): Promise<void> {
    try {
      // Conditional on the id: a request made after the agent read the old one stays open.
      await this.#db.doc.send(
        new UpdateCommand({
          TableName: this.#db.tables.clusters,
          Key: { clusterId: id },
          UpdateExpression: 'REMOVE keyRotation',
          ConditionExpression: 'keyRotation.id = :id',
          ExpressionAttributeValues: { ':id': rotationId },
        }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
  }

  async recordStatusDigest(id: string, digest: ClusterStatusDigest, onlyIfStale = false): Promise<void> {
    try {
      await this.#db.doc.send(
        new UpdateCommand({
          TableName: this.#db.tables.clusters,
          Key: { clusterId: id },
          UpdateExpression: 'SET statusDigest = :digest',
          ConditionExpression: onlyIfStale
            ? 'attribute_exists(clusterId) AND (attribute_not_exists(statusDigest) OR statusDigest.etag <> :etag)'
            : 'attribute_exists(clusterId)',
          ExpressionAttributeValues: { ':digest': digest, ...(onlyIfStale ? { ':etag': digest.etag } : {}) },
        }),
      );
    } catch (err) {
      // Deregistered meanwhile, or (onlyIfStale) a report kept a fresh digest first.
      if (!isConditionFailure(err)) throw err;
    }
  }
}

/**
 * Sort key of the copy of a cluster's current desired state in the desired-states table,
 * beside its numbered generations (the "version 0 holds the latest" pattern).
 */
const currentSlot = 0;

/**
 * Desired-state generations. The head on the cluster record and the copy of the manifest
 * it points at move together in one transaction; the manifest stays off the cluster
 * record, so that the fleet-wide listing every sync makes reads small items only.
 */
export class DynamoDbDesiredStateStore implements DesiredStateStore {
  readonly #db: HubDb;

  constructor(db: HubDb) {
    this.#db = db;
  }

  /** Writes three items: the head (cluster record), the current manifest, its history entry. */
  async commit(
    state: StoredDesiredState,
    expectedGeneration: number | undefined,
    change: { readonly pins?: readonly BundlePin[] } = {},
  ): Promise<number> {
    const head = {
      generation: state.generation,
      etag: state.etag,
      refsHash: state.refsHash,
      commit: state.commit,
    };
    try {
      await this.#db.doc.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Update: {
                TableName: this.#db.tables.clusters,
                Key: { clusterId: state.clusterId },
                // `desired` is where an earlier layout kept the manifest: gone once the cluster moves.
                // Pins move with the head, so a pin and the generation it shaped never disagree.
                UpdateExpression:
                  change.pins === undefined
                    ? 'SET head = :head REMOVE desired'
                    : change.pins.length > 0
                      ? 'SET head = :head, pins = :pins REMOVE desired'
                      : 'SET head = :head REMOVE desired, pins',
                ConditionExpression:
                  expectedGeneration === undefined
                    ? 'attribute_exists(clusterId) AND attribute_not_exists(head)'
                    : 'attribute_exists(clusterId) AND head.generation = :expected',
                ExpressionAttributeValues: {
                  ':head': head,
                  ...(change.pins !== undefined && change.pins.length > 0 ? { ':pins': change.pins } : {}),
                  ...(expectedGeneration === undefined ? {} : { ':expected': expectedGeneration }),
                },
              },
            },
            {
              Put: {
                TableName: this.#db.tables.desiredStates,
                Item: { clusterId: state.clusterId, generation: currentSlot, current: state },
              },
            },
          ],
        }),
      );
    } catch (err) {
      if (isConditionFailure(err) || isTransactionConflict(err)) {
        throw new ConflictError(
          `desired state of "${state.clusterId}" moved past generation ${expectedGeneration ?? 0} (or the cluster is gone)`,
          { cause: err },
        );
      }
      throw err;
    }
    // History for rollback and audit, written only by the writer that won the generation.
    const pruneGeneration = state.generation - this.#db.historyDepth;
    await this.#db.batchWrite(this.#db.tables.desiredStates, [
      { PutRequest: { Item: { ...state } } },
      ...(pruneGeneration > currentSlot
        ? [{ DeleteRequest: { Key: { clusterId: state.clusterId, generation: pruneGeneration } } }]
        : []),
    ]);
    return 3;
  }

  async current(clusterId: string): Promise<StoredDesiredState | undefined> {
    const res = await this.#db.doc.send(
      new GetCommand({
        TableName: this.#db.tables.desiredStates,
        Key: { clusterId, generation: currentSlot },
        ConsistentRead: true,
      }),
    );
    if (res.Item) return res.Item.current as StoredDesiredState;
    // A cluster last committed by the earlier layout keeps its manifest on its own record.
    const legacy = await this.#db.doc.send(
      new GetCommand({
        TableName: this.#db.tables.clusters,
        Key: { clusterId },
        ProjectionExpression: 'desired',
        ConsistentRead: true,
      }),
    );
    return (legacy.Item?.desired as StoredDesiredState | undefined) ?? undefined;
  }

  async generation(clusterId: string, generation: number): Promise<StoredDesiredState | undefined> {
    if (generation <= currentSlot) return undefined;
    const res = await this.#db.doc.send(
      new GetCommand({
        TableName: this.#db.tables.desiredStates,
        Key: { clusterId, generation },
        ConsistentRead: true,
      }),
    );
    return res.Item ? (res.Item as unknown as StoredDesiredState) : undefined;
  }

  async history(clusterId: string): Promise<StoredDesiredState[]> {
    const items = await this.#db.queryAll({
      TableName: this.#db.tables.desiredStates,
      KeyConditionExpression: 'clusterId = :id AND generation > :current',
      ExpressionAttributeValues: { ':id': clusterId, ':current': currentSlot },
      ScanIndexForward: false,
      ConsistentRead: true,
    });
    return items as unknown as StoredDesiredState[];
  }
}

/** Content-addressed rendered bundles, gzipped and split into chunks below the item limit. */
export class DynamoDbBundleStore implements BundleStore {
  readonly #db: HubDb;

  constructor(db: HubDb) {
    this.#db = db;
  }

  async existing(hashes: readonly string[]): Promise<Set<string>> {
    const found = new Set<string>();
    const unique = [...new Set(hashes)];
    const groups = Math.ceil(unique.length / batchGetMax);
    let next = 0;
    // A few BatchGetItem calls at a time: a window of a big sync asks about thousands of hashes.
    const worker = async () => {
      while (next < groups) {
        const g = next++;
        let keys: Item[] = unique
          .slice(g * batchGetMax, (g + 1) * batchGetMax)
          .map((hash) => ({ hash, chunk: 0 }));
        while (keys.length > 0) {
          const res = await this.#db.doc.send(
            new BatchGetCommand({
              RequestItems: {
                [this.#db.tables.bundles]: {
                  Keys: keys,
                  ProjectionExpression: '#h',
                  ExpressionAttributeNames: { '#h': 'hash' },
                  ConsistentRead: true,
                },
              },
            }),
          );
          for (const item of res.Responses?.[this.#db.tables.bundles] ?? []) found.add(String(item.hash));
          keys = (res.UnprocessedKeys?.[this.#db.tables.bundles]?.Keys as Item[] | undefined) ?? [];
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(existingConcurrency, groups) }, worker));
    return found;
  }

  async putMany(
    bundles: readonly { readonly hash: string; readonly content: Uint8Array }[],
  ): Promise<number> {
    let written = 0;
    // Each group is compressed just before it is sent, so however many bundles come in,
    // only a few groups' compressed bytes are alive at once.
    await this.#db.batchWriteGroups(
      this.#db.tables.bundles,
      Math.ceil(bundles.length / batchWriteMax),
      async (g) => {
        const single: Item[] = [];
        for (const { hash, content } of bundles.slice(g * batchWriteMax, (g + 1) * batchWriteMax)) {
          const packed = gzipExact(content);
          if (packed.length > bundleChunkBytes) {
            // Groups run concurrently: read `written` only after the wait.
            const chunks = await this.#putChunked(hash, content.byteLength, packed);
            written += chunks;
            continue;
          }
          // One item holds it all: an unconditional put is safe, the same hash always carries the same bytes.
          single.push({
            PutRequest: {
              Item: { hash, chunk: 0, data: packed, chunks: 1, size: content.byteLength, encoding: 'gzip' },
            },
          });
        }
        written += single.length;
        return single;
      },
    );
    return written;
  }

  async put(hash: string, content: Uint8Array): Promise<number> {
    return this.#putChunked(hash, content.byteLength, gzipExact(content));
  }

  async #putChunked(hash: string, size: number, packed: Uint8Array): Promise<number> {
    const chunks: Uint8Array[] = [];
    for (let offset = 0; offset < packed.length; offset += bundleChunkBytes) {
      chunks.push(packed.subarray(offset, offset + bundleChunkBytes));
    }
    if (chunks.length === 0) chunks.push(new Uint8Array(0));
    // Chunks 1..n first; chunk 0 carries the count and is written last, so a reader
    // never sees a bundle whose chunks are not all there.
    await this.#db.batchWrite(
      this.#db.tables.bundles,
      chunks.slice(1).map((data, i) => ({ PutRequest: { Item: { hash, chunk: i + 1, data } } })),
    );
    try {
      await this.#db.doc.send(
        new PutCommand({
          TableName: this.#db.tables.bundles,
          Item: {
            hash,
            chunk: 0,
            data: chunks[0],
            chunks: chunks.length,
            size,
            encoding: 'gzip',
          },
          ConditionExpression: 'attribute_not_exists(#h)',
          ExpressionAttributeNames: { '#h': 'hash' },
        }),
      );
    } catch (err) {
      // Content-addressed: someone stored the same bytes under the same hash first.
      if (isConditionFailure(err)) return chunks.length - 1;
      throw err;
    }
    return chunks.length;
  }

  async getPart(hash: string, index: number): Promise<BundlePart | undefined> {
    const res = await this.#db.doc.send(
      new GetCommand({
        TableName: this.#db.tables.bundles,
        Key: { hash, chunk: index },
        ConsistentRead: true,
      }),
    );
    if (!res.Item) return undefined;
    const data = res.Item.data as Uint8Array;
    return index === 0 ? { data, parts: Number(res.Item.chunks), size: Number(res.Item.size) } : { data };
  }

  async get(hash: string): Promise<Uint8Array | undefined> {
    const items = await this.#db.queryAll({
      TableName: this.#db.tables.bundles,
      KeyConditionExpression: '#h = :h',
      ExpressionAttributeNames: { '#h': 'hash' },
      ExpressionAttributeValues: { ':h': hash },
      ConsistentRead: true,
    });
    const head = items.find((i) => i.chunk === 0);
    if (!head) return undefined;
    const count = Number(head.chunks);
    const parts = items
      .filter((i) => Number(i.chunk) < count)
      .sort((a, b) => Number(a.chunk) - Number(b.chunk))
      .map((i) => Buffer.from(i.data as Uint8Array));
    if (parts.length !== count) {
      throw new Error(`bundle ${hash}: ${parts.length} of ${count} chunks stored`);
    }
    const content = gunzipSync(Buffer.concat(parts));
    if (hash.startsWith('sha256:')) {
      const actual = `sha256:${createHash('sha256').update(content).digest('hex')}`;
      if (actual !== hash) throw new Error(`bundle ${hash}: stored content hashes to ${actual}`);
    }
    return content;
  }
}

/**
 * gzip into a buffer of exactly the compressed size. zlib writes into 16 KiB blocks carved
 * from a shared pool and returns a view of one: kept as is, a 500-byte bundle would hold
 * its whole block (and the pool slab under it) alive, tens of KiB per bundle outside the
 * JavaScript heap.
 */
export function gzipExact(content: Uint8Array): Uint8Array {
  return new Uint8Array(gzipSync(content));
}

export function isConditionFailure(err: unknown): boolean {
  return err instanceof Error && err.name === 'ConditionalCheckFailedException';
}

/** A single-item write refused because a transaction held the item at that moment. */
function isItemInTransaction(err: unknown): boolean {
  return err instanceof Error && err.name === 'TransactionConflictException';
}

const itemInTransactionAttempts = 5;

/** A transaction cancelled because its condition failed or another write to the same item raced it. */
function isTransactionConflict(err: unknown): boolean {
  if (!(err instanceof Error) || err.name !== 'TransactionCanceledException') return false;
  const reasons = (err as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? [];
  return reasons.some((r) => r.Code === 'ConditionalCheckFailed' || r.Code === 'TransactionConflict');
}

function fromCluster(record: ClusterRecord): Item {
  const { id, ...rest } = record;
  return { clusterId: id, ...rest };
}

function toCluster(item: Item): ClusterRecord {
  const { clusterId, desired: _desired, ...rest } = item;
  return { id: String(clusterId), ...(rest as Omit<ClusterRecord, 'id'>) };
}

/** Hash of bytes in the form bundles are addressed by. */
export function contentHash(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** The sync state and lease of one fleet repo, one item in the hub-state table. */
export class DynamoDbSyncStateStore implements SyncStateStore {
  readonly #db: HubDb;
  readonly #key: { pk: string };

  constructor(db: HubDb, repoId = 'fleet') {
    this.#db = db;
    this.#key = { pk: `sync#${repoId}` };
  }

  async get(): Promise<SyncState | undefined> {
    const res = await this.#db.doc.send(
      new GetCommand({ TableName: this.#db.tables.hubState, Key: this.#key, ConsistentRead: true }),
    );
    return (res.Item?.state as SyncState | undefined) ?? undefined;
  }

  async save(state: SyncState): Promise<void> {
    await this.#db.doc.send(
      new UpdateCommand({
        TableName: this.#db.tables.hubState,
        Key: this.#key,
        UpdateExpression: 'SET #s = :s',
        ExpressionAttributeNames: { '#s': 'state' },
        ExpressionAttributeValues: { ':s': state },
      }),
    );
  }

  async acquireLease(holder: string, now: string, until: string): Promise<boolean> {
    try {
      await this.#db.doc.send(
        new UpdateCommand({
          TableName: this.#db.tables.hubState,
          Key: this.#key,
          UpdateExpression: 'SET leaseHolder = :h, leaseUntil = :u, rerun = :f',
          ConditionExpression: 'attribute_not_exists(leaseHolder) OR leaseUntil < :now OR leaseHolder = :h',
          ExpressionAttributeValues: { ':h': holder, ':u': until, ':now': now, ':f': false },
        }),
      );
      return true;
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
    // Someone else is syncing: leave word that the repo moved, so they go round once more.
    await this.#db.doc.send(
      new UpdateCommand({
        TableName: this.#db.tables.hubState,
        Key: this.#key,
        UpdateExpression: 'SET rerun = :t',
        ExpressionAttributeValues: { ':t': true },
      }),
    );
    return false;
  }

  async releaseLease(holder: string): Promise<{ rerun: boolean }> {
    try {
      const res = await this.#db.doc.send(
        new UpdateCommand({
          TableName: this.#db.tables.hubState,
          Key: this.#key,
          UpdateExpression: 'REMOVE leaseHolder, leaseUntil SET rerun = :f',
          ConditionExpression: 'leaseHolder = :h',
          ExpressionAttributeValues: { ':h': holder, ':f': false },
          ReturnValues: 'ALL_OLD',
        }),
      );
      return { rerun: res.Attributes?.rerun === true };
    } catch (err) {
      if (isConditionFailure(err)) return { rerun: false };
      throw err;
    }
  }
}
