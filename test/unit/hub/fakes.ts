/** Hand-written in-memory fakes of the hub's ports, for unit tests of the API and use cases. */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { generateSigningKeyPair, publicKeyFingerprint, sha256Hash } from '@flotilla/shared';
import {
  type BundlePin,
  type BundleStore,
  type ClusterRecord,
  type ClusterStatusChange,
  type ClusterStatusDigest,
  type ClusterStatusStore,
  type ClusterStore,
  ConflictError,
  type DesiredStateStore,
  type FleetSource,
  type FleetSourceFile,
  type Heartbeat,
  hashToken,
  InvalidRequestError,
  type KeyRotationRequest,
  type LabelChange,
  type Labels,
  NotFoundError,
  type Notifier,
  parseStatusReport,
  type RolloutHead,
  type RolloutStore,
  type SpokeQueues,
  STATUS_API_VERSION,
  type StoredClusterStatus,
  type StoredDesiredState,
  type SyncState,
  type SyncStateStore,
} from '@flotilla/shared/hub';
import type { ApiDeps } from '../../../functions/src/http/deps.ts';
import type { Logger } from '../../../functions/src/http/log.ts';

export class MemoryClusterStore implements ClusterStore {
  readonly records = new Map<string, ClusterRecord>();

  async get(id: string) {
    return this.records.get(id);
  }
  async list() {
    return [...this.records.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
  }
  async *pages(size: number) {
    const all = [...this.records.values()];
    for (let i = 0; i < all.length; i += size) yield all.slice(i, i + size);
  }
  async create(record: ClusterRecord) {
    if (this.records.has(record.id)) throw new ConflictError(`cluster "${record.id}" already exists`);
    this.records.set(record.id, record);
  }
  async delete(id: string) {
    this.records.delete(id);
  }
  async update(id: string, change: { tokenHash?: string; queueUrl?: string }) {
    const current = this.records.get(id);
    if (!current) throw new NotFoundError(`cluster "${id}" not found`);
    const next = {
      ...current,
      ...Object.fromEntries(Object.entries(change).filter(([, v]) => v !== undefined)),
    };
    this.records.set(id, next);
    return next;
  }
  /** Like DynamoDB's `SET labels.#k` / `REMOVE labels.#k`: key by key, in one step, with no await between read and write. */
  async relabel(id: string, change: LabelChange) {
    const current = this.records.get(id);
    if (!current) throw new NotFoundError(`cluster "${id}" not found`);
    const labels: Record<string, string> = { ...current.labels, ...change.set };
    for (const key of change.remove) delete labels[key];
    const next = { ...current, labels, labelsRevision: (current.labelsRevision ?? 0) + 1 };
    this.records.set(id, next);
    return next;
  }
  async recordHeartbeat(id: string, { at, agentVersion, kubeVersion, recipients }: Heartbeat) {
    const current = this.records.get(id);
    if (!current) throw new NotFoundError(`cluster "${id}" not found`);
    this.heartbeatWrites.push({ id, recipients });
    const { offlineAt, ...rest } = current;
    this.records.set(id, {
      ...rest,
      lastHeartbeatAt: at,
      agentVersion,
      ...(kubeVersion === undefined ? {} : { kubeVersion }),
      ...(recipients === undefined ? {} : { recipients }),
    });
    return {
      kubeVersionChanged: kubeVersion !== undefined && kubeVersion !== current.kubeVersion,
      ...(offlineAt === undefined ? {} : { wasOfflineAt: offlineAt }),
    };
  }
  /** Like the DynamoDB store's conditional write: only on that heartbeat, only once. */
  async markOffline(id: string, lastHeartbeatAt: string, at: string) {
    const current = this.records.get(id);
    if (!current || current.lastHeartbeatAt !== lastHeartbeatAt || current.offlineAt !== undefined)
      return false;
    this.records.set(id, { ...current, offlineAt: at });
    return true;
  }
  /** What each heartbeat wrote besides the heartbeat itself. */
  readonly heartbeatWrites: { id: string; recipients: Heartbeat['recipients'] }[] = [];
  async requestKeyRotation(id: string, keyRotation: KeyRotationRequest) {
    const current = this.records.get(id);
    if (!current) throw new NotFoundError(`cluster "${id}" not found`);
    const next = { ...current, keyRotation };
    this.records.set(id, next);
    return next;
  }
  async finishKeyRotation(id: string, rotationId: string) {
    const current = this.records.get(id);
    if (current?.keyRotation?.id !== rotationId) return;
    const { keyRotation: _done, ...rest } = current;
    this.records.set(id, rest);
  }
  async recordStatusDigest(id: string, digest: ClusterStatusDigest, onlyIfStale = false) {
    const current = this.records.get(id);
    if (!current) return;
    if (onlyIfStale && current.statusDigest && current.statusDigest.etag === digest.etag) return;
    this.records.set(id, { ...current, statusDigest: digest });
  }
}

export class MemoryDesiredStateStore implements DesiredStateStore {
  readonly states = new Map<string, StoredDesiredState[]>();
  readonly clusters: MemoryClusterStore;
  constructor(clusters: MemoryClusterStore) {
    this.clusters = clusters;
  }

  async commit(
    state: StoredDesiredState,
    expected: number | undefined,
    change: { readonly pins?: readonly BundlePin[] } = {},
  ) {
    const cluster = this.clusters.records.get(state.clusterId);
    if (!cluster || cluster.head?.generation !== expected) throw new ConflictError('moved');
    const list = this.states.get(state.clusterId) ?? [];
    list.unshift(state);
    this.states.set(state.clusterId, list);
    const { pins: _pins, ...rest } = cluster;
    const pins = change.pins === undefined ? cluster.pins : change.pins;
    this.clusters.records.set(state.clusterId, {
      ...rest,
      ...(pins && pins.length > 0 ? { pins } : {}),
      head: {
        generation: state.generation,
        etag: state.etag,
        refsHash: state.refsHash,
        commit: state.commit,
      },
    });
    return 2; // the head and the state
  }
  async current(id: string) {
    return this.states.get(id)?.[0];
  }
  async generation(id: string, generation: number) {
    return this.states.get(id)?.find((s) => s.generation === generation);
  }
  async history(id: string) {
    return [...(this.states.get(id) ?? [])];
  }
}

export class MemoryBundleStore implements BundleStore {
  readonly blobs = new Map<string, Uint8Array>();
  async existing(hashes: readonly string[]) {
    return new Set(hashes.filter((h) => this.blobs.has(h)));
  }
  async putMany(bundles: readonly { readonly hash: string; readonly content: Uint8Array }[]) {
    for (const b of bundles) this.blobs.set(b.hash, b.content);
    return bundles.length;
  }
  async get(hash: string) {
    return this.blobs.get(hash);
  }
  async getPart(hash: string, index: number) {
    const blob = this.blobs.get(hash);
    if (!blob || index !== 0) return undefined;
    return { data: gzipSync(blob), parts: 1, size: blob.byteLength };
  }
}

export class MemorySyncStateStore implements SyncStateStore {
  state: SyncState | undefined;
  holder: string | undefined;
  async get() {
    return this.state;
  }
  async save(state: SyncState) {
    this.state = state;
  }
  async acquireLease(holder: string) {
    if (this.holder && this.holder !== holder) return false;
    this.holder = holder;
    return true;
  }
  async releaseLease() {
    this.holder = undefined;
    return { rerun: false };
  }
}

export class MemoryStatusStore implements ClusterStatusStore {
  readonly statuses = new Map<string, StoredClusterStatus>();
  readonly applied: ClusterStatusChange[] = [];
  async get(id: string) {
    return this.statuses.get(id);
  }
  async apply(change: ClusterStatusChange) {
    this.applied.push(change);
    const before = this.statuses.get(change.clusterId) ?? { clusterId: change.clusterId, bundles: [] };
    const bundles = new Map(before.bundles.map((b) => [b.bundle, b]));
    for (const b of change.put) bundles.set(b.bundle, b);
    for (const name of change.remove) bundles.delete(name);
    this.statuses.set(change.clusterId, {
      ...before,
      ...(change.summary ?? {}),
      bundles: [...bundles.values()].sort((a, b) => (a.bundle < b.bundle ? -1 : 1)),
    });
  }
  /** Like the DynamoDB store's conditional write: only that NotReady stretch, only once. */
  async markNotReadyReported(id: string, bundle: string, since: string, at: string) {
    const status = this.statuses.get(id);
    const b = status?.bundles.find((x) => x.bundle === bundle);
    if (!status || !b || b.state !== 'NotReady' || b.since !== since || b.notReadyReportedAt !== undefined)
      return false;
    this.statuses.set(id, {
      ...status,
      bundles: status.bundles.map((x) => (x === b ? { ...x, notReadyReportedAt: at } : x)),
    });
    return true;
  }
}

export class MemoryFleetSource implements FleetSource {
  commit: string;
  files: FleetSourceFile[];
  constructor(commit: string, files: FleetSourceFile[]) {
    this.commit = commit;
    this.files = files;
  }
  async fetch() {
    return { commit: this.commit, files: this.files };
  }
}

export const noQueues: SpokeQueues & Notifier = {
  create: async (id) => `memory://queues/${id}`,
  delete: async () => {},
  notify: async (changes) => ({ sent: changes.length, failed: [] }),
};

/** Captures log lines, so tests can check what a 5xx logged and that no secret was logged. */
export function captureLog(): Logger & {
  lines: { level: string; message: string; fields: Record<string, unknown> }[];
} {
  const lines: { level: string; message: string; fields: Record<string, unknown> }[] = [];
  const push =
    (level: string) =>
    (message: string, fields: Record<string, unknown> = {}) => {
      lines.push({ level, message, fields });
    };
  return { lines, info: push('info'), warn: push('warn'), error: push('error') };
}

export const adminKey = 'test-admin-key-0123456789';

/** API dependencies on in-memory fakes, with the admin key above and a webhook secret. */
export function fakeApiDeps(overrides: Partial<Omit<ApiDeps, 'log'>> = {}) {
  const clusters = new MemoryClusterStore();
  const { publicKeyPem } = generateSigningKeyPair();
  const log = captureLog();
  const deps = {
    clusters,
    desiredStates: new MemoryDesiredStateStore(clusters),
    bundles: new MemoryBundleStore(),
    syncState: new MemorySyncStateStore(),
    statuses: new MemoryStatusStore(),
    rollouts: new MemoryRolloutStore(),
    notifier: noQueues,
    queues: noQueues,
    source: new MemoryFleetSource('0'.repeat(40), []),
    signer: {
      keyId: publicKeyFingerprint(publicKeyPem),
      publicKeyPem,
      sign: async () => 'signature',
    },
    now: () => new Date('2024-05-01T12:00:00Z'),
    config: {
      adminAuth: 'key' as const,
      adminKeySha256: createHash('sha256').update(adminKey).digest('hex'),
      webhookSecret: 'webhook-secret-0123456789',
      offlineAfterSeconds: 180,
      fleetRepo: { ref: 'main' },
    },
    ...overrides,
    log,
  };
  return deps;
}

/** Adds a cluster with a known token to a fake store. */
export async function addCluster(clusters: ClusterStore, id: string, labels: Labels = {}): Promise<string> {
  const token = `flt_${id}.secret-of-${id}`;
  await clusters.create({ id, labels, tokenHash: hashToken(token), registeredAt: '2024-05-01T00:00:00Z' });
  return token;
}

/** Rollouts in memory, with the store's version condition. */
export class MemoryRolloutStore implements RolloutStore {
  readonly items = new Map<string, { head: RolloutHead; document: string }>();
  async get(bundle: string) {
    return this.items.get(bundle);
  }
  async list() {
    return [...this.items.values()].map((i) => i.head).sort((a, b) => (a.bundle < b.bundle ? -1 : 1));
  }
  async save(
    input: Omit<RolloutHead, 'version' | 'documentHash'> & { readonly document: string },
    expectedVersion: number | undefined,
  ): Promise<RolloutHead> {
    const current = this.items.get(input.bundle);
    if ((current?.head.version ?? undefined) !== expectedVersion) {
      throw new ConflictError(`rollout of "${input.bundle}" moved past version ${expectedVersion ?? 'none'}`);
    }
    const { document, ...rest } = input;
    const head: RolloutHead = {
      ...rest,
      version: (expectedVersion ?? 0) + 1,
      documentHash: sha256Hash(document),
    };
    this.items.set(input.bundle, { head, document });
    return head;
  }
}

/** A status report body as an agent sends it, with `extra` fields. */
export const statusReport = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  apiVersion: STATUS_API_VERSION,
  kind: 'ClusterStatus',
  agentVersion: '0.1.0',
  ...extra,
});

/** The field problems `parseStatusReport` finds in `value` (none: it parsed). */
export function statusReportProblems(value: unknown): { field: string; message: string }[] {
  try {
    parseStatusReport(value);
  } catch (err) {
    if (err instanceof InvalidRequestError) return [...err.problems];
    throw err;
  }
  return [];
}
