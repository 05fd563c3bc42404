/**
 * Ports of the hub: what its use cases need from storage, queues and git. Adapters
 * (DynamoDB, SQS, isomorphic-git) implement them at the edge and are passed in;
 * unit tests pass plain in-memory fakes.
 */

import type { AgeRecipient } from '../protocol/age-recipients.ts';
import type { BundleRef } from '../protocol/desired-state.ts';

export type Labels = Readonly<Record<string, string>>;

/**
 * Why a generation of a cluster's desired state was written: a sync of a commit, a
 * re-plan after a registration, a label change or a new Kubernetes version, a rollback
 * (or the end of one), or a rollout's wave or revert.
 */
export const GenerationReason = {
  Sync: 'sync',
  Register: 'register',
  Labels: 'labels',
  KubeVersion: 'kube-version',
  Rollback: 'rollback',
  RollbackClear: 'rollback-clear',
  Rollout: 'rollout',
  Revert: 'revert',
} as const;
export type GenerationReason = (typeof GenerationReason)[keyof typeof GenerationReason];

/**
 * A bundle held at an earlier reference by `flotilla rollback`. Syncs and re-plans keep
 * it there while the hub plans for the bundle what it planned when the pin was made;
 * the first plan that differs (the bundle's next change) ends the pin.
 */
export interface BundlePin {
  readonly bundle: string;
  /** The reference the cluster is held at; null keeps the bundle off the cluster (the generation rolled back to did not have it). */
  readonly ref: BundleRef | null;
  /** What the hub planned for the bundle when the pin was made (null: nothing). */
  readonly planned: BundleRef | null;
  /** The generation whose reference this is. */
  readonly fromGeneration: number;
  /** The generation the rollback wrote. */
  readonly generation: number;
  /** Who asked for it: an IAM ARN, or `admin-key`. */
  readonly pinnedBy: string;
  readonly pinnedAt: string;
}

/** Where a cluster's desired state stands; kept on the cluster record so one read gives both. */
export interface DesiredStateHead {
  readonly generation: number;
  /** ETag of the current manifest (its canonical hash). */
  readonly etag: string;
  /** Hash of the ordered bundle references alone: equal means nothing changed for the cluster. */
  readonly refsHash: string;
  readonly commit: string;
}

export interface ClusterRecord {
  readonly id: string;
  readonly labels: Labels;
  /** SHA-256 of the cluster's token; the token itself is never stored. */
  readonly tokenHash: string;
  readonly registeredAt: string;
  readonly queueUrl?: string;
  readonly lastHeartbeatAt?: string;
  readonly agentVersion?: string;
  /** The cluster's Kubernetes version as its agent last reported it (e.g. v1.33.2). */
  readonly kubeVersion?: string;
  readonly head?: DesiredStateHead;
  /** The cluster's age recipients as its agent last reported them (public keys only). */
  readonly recipients?: readonly AgeRecipient[];
  /** An admin's open request that the agent make a new age key; gone once the agent did. */
  readonly keyRotation?: KeyRotationRequest;
  /** Bundles held back by a rollback; absent or empty when none is. Written only with the head. */
  readonly pins?: readonly BundlePin[];
  /**
   * Counts the label changes the record has seen (absent before the first). A re-plan reads
   * it before and after, so it knows whether the labels it planned with are still current.
   */
  readonly labelsRevision?: number;
  /**
   * The cluster's status in brief, kept with its record so that a fleet-wide listing gives
   * every cluster's state without reading its bundles; written as reports change it.
   */
  readonly statusDigest?: ClusterStatusDigest;
  /**
   * When the hub told that the cluster went offline (`cluster.offline`); gone with the
   * next heartbeat, which tells it is back (`cluster.online`).
   */
  readonly offlineAt?: string;
}

/**
 * A cluster's status in brief, as of the desired state whose ETag it names: when the head
 * has moved on since (a sync, a rollback), it is stale and the full status must be read.
 */
export interface ClusterStatusDigest {
  /** The ETag of the desired state it was worked out against; null when there was none. */
  readonly etag: string | null;
  /** The worst effective bundle state. */
  readonly state: string;
  /** Bundles by effective state (only states with at least one). */
  readonly counts: Readonly<Record<string, number>>;
  /** Bundles not Ready, by name, with their effective state. */
  readonly issues: Readonly<Record<string, string>>;
  readonly appliedGeneration: number | null;
  /** Every bundle up to date and Ready. */
  readonly allReady: boolean;
}

/** A change to a cluster's labels, key by key: keys to set to a value and keys to remove. */
export interface LabelChange {
  readonly set: Labels;
  readonly remove: readonly string[];
}

/** A request to rotate a cluster's age key: the agent rotates once per id. */
export interface KeyRotationRequest {
  readonly id: string;
  readonly requestedAt: string;
}

/** What an agent's report tells about the agent and its cluster, kept on the cluster record. */
export interface Heartbeat {
  /** When the hub received the report (the hub's clock). */
  readonly at: string;
  readonly agentVersion: string;
  /** Absent from older agents: the stored one then stays as it is. */
  readonly kubeVersion?: string | undefined;
  /** Set only when they changed: the stored list is replaced by it. */
  readonly recipients?: readonly AgeRecipient[] | undefined;
}

/** One generation of a cluster's desired state, as served to its agent. */
export interface StoredDesiredState {
  readonly clusterId: string;
  readonly generation: number;
  readonly etag: string;
  readonly refsHash: string;
  readonly commit: string;
  /** The manifest's canonical JSON: exactly the bytes that were signed. */
  readonly manifest: string;
  /** Base64 signature over `manifest`. */
  readonly signature: string;
  readonly keyId: string;
  readonly createdAt: string;
  /** Why it was written; absent from generations stored before reasons were recorded, which were all syncs. */
  readonly reason?: GenerationReason;
  /** Set on a `rollback` generation: what it rolled back to, and who asked. */
  readonly rollback?: {
    readonly toGeneration: number;
    /** The bundle rolled back, or null for all of them. */
    readonly bundle: string | null;
    readonly by: string;
  };
  /** Bundles whose pin this generation ended (their next change, or a `rollback --clear`). */
  readonly pinsEnded?: readonly string[];
}

/** A generation's reason; generations stored before reasons were recorded were all written by syncs. */
export function generationReason(state: Pick<StoredDesiredState, 'reason'>): GenerationReason {
  return state.reason ?? GenerationReason.Sync;
}

export class ConflictError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ConflictError';
  }
}

export class NotFoundError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'NotFoundError';
  }
}

export interface ClusterStore {
  get(id: string): Promise<ClusterRecord | undefined>;
  /**
   * The clusters of these ids that exist, in no particular order, as a sync's listing holds
   * them (without the current manifest). Optional: without it, each is read with `get`.
   */
  getMany?(ids: readonly string[]): Promise<ClusterRecord[]>;
  /** Every cluster; the hub filters by selector in memory (selectors cannot be indexed). */
  list(): Promise<ClusterRecord[]>;
  /**
   * Every cluster, a page of at most `size` at a time, in no particular order: what a sync
   * walks, so that its memory does not grow with the fleet. Records come without their
   * `statusDigest` unless asked for (a sync has no use for it). `segments` reads that many
   * parts of the table at once (a parallel scan) for a listing that wants all of it
   * quickly; pages then come in whatever order the parts answer.
   */
  pages(
    size: number,
    options?: { readonly statusDigest?: boolean; readonly segments?: number },
  ): AsyncIterable<readonly ClusterRecord[]>;
  /** @throws ConflictError when the id is taken. */
  create(record: ClusterRecord): Promise<void>;
  /** Removes the cluster, its desired-state history and its status; access ends at once. */
  delete(id: string): Promise<void>;
  /** @throws NotFoundError when the cluster does not exist. */
  update(id: string, change: { tokenHash?: string; queueUrl?: string }): Promise<ClusterRecord>;
  /**
   * Sets and removes the given label keys in one atomic write that leaves every other key
   * as it is, so concurrent changes to different keys all survive, and adds one to
   * `labelsRevision`. A key must not be both set and removed.
   * @returns the record as the write left it.
   * @throws NotFoundError when the cluster does not exist.
   */
  relabel(id: string, change: LabelChange): Promise<ClusterRecord>;
  /**
   * Records a heartbeat in one write, and tells whether it changed the stored Kubernetes
   * version (a first one counts as a change).
   * @throws NotFoundError when the cluster does not exist.
   */
  recordHeartbeat(
    id: string,
    heartbeat: Heartbeat,
  ): Promise<{
    readonly kubeVersionChanged: boolean;
    /** The cluster's `offlineAt`, which this heartbeat cleared: it was reported offline and is back. */
    readonly wasOfflineAt?: string | undefined;
  }>;
  /**
   * Marks the cluster reported offline at `at`, only if its last heartbeat is still
   * `lastHeartbeatAt` and it is not marked already, so that of two schedule runs (or a
   * heartbeat arriving meanwhile) exactly one outcome wins.
   * Optional: a store without it emits no offline events.
   * @returns whether this call marked it.
   */
  markOffline?(id: string, lastHeartbeatAt: string, at: string): Promise<boolean>;
  /**
   * Opens a key-rotation request, replacing any open one.
   * @throws NotFoundError when the cluster does not exist.
   */
  requestKeyRotation(id: string, request: KeyRotationRequest): Promise<ClusterRecord>;
  /** Closes the key-rotation request `rotationId` if it is still the open one; nothing otherwise. */
  finishKeyRotation(id: string, rotationId: string): Promise<void>;
  /**
   * Keeps the cluster's status digest with its record (nothing when the cluster is gone).
   * With `onlyIfStale`, only when the stored one names another desired state than
   * `digest.etag` (or there is none): a fleet listing fills in stale digests that way, and
   * loses to a report that wrote a fresh one meanwhile.
   * Optional: without it, fleet listings read every cluster's full status.
   */
  recordStatusDigest?(id: string, digest: ClusterStatusDigest, onlyIfStale?: boolean): Promise<void>;
}

export interface DesiredStateStore {
  /**
   * Makes `state` the cluster's current desired state, atomically with moving the
   * head on the cluster record, and prunes generations beyond the history depth.
   * `change.pins` replaces the cluster's rollback pins in the same write (empty: none
   * left); without it they stay as they are.
   * @returns how many items it wrote (the bench and sync reports count them)
   * @throws ConflictError when the head is no longer at `expectedGeneration`
   *   (another writer got there first) or the cluster is gone.
   */
  commit(
    state: StoredDesiredState,
    expectedGeneration: number | undefined,
    change?: { readonly pins?: readonly BundlePin[] },
  ): Promise<number>;
  current(clusterId: string): Promise<StoredDesiredState | undefined>;
  generation(clusterId: string, generation: number): Promise<StoredDesiredState | undefined>;
  /** Newest first. */
  history(clusterId: string): Promise<StoredDesiredState[]>;
}

export interface BundleStore {
  /** The subset of `hashes` already stored, complete. */
  existing(hashes: readonly string[]): Promise<Set<string>>;
  /** Stores rendered bundles under their hashes, batching writes; returns the number of items written. */
  putMany(bundles: readonly { readonly hash: string; readonly content: Uint8Array }[]): Promise<number>;
  get(hash: string): Promise<Uint8Array | undefined>;
  /**
   * One stored part of a bundle, as stored: a slice of its gzip stream. Part 0 also tells
   * how many parts there are, so a bundle of any size is served in pieces that each fit
   * in one response.
   */
  getPart(hash: string, index: number): Promise<BundlePart | undefined>;
}

/**
 * Where a progressive rollout of one bundle stands: a small head item that concurrent
 * writers (syncs, status reports, the schedule, operators) condition on, and the rollout's
 * document (the state machine's state and its recent events), stored content-addressed
 * like a bundle, so it may be as large as the fleet is.
 */
export interface RolloutHead {
  readonly bundle: string;
  /** The commit being rolled out. */
  readonly revision: string;
  /** `running`, `paused`, `completed`, `reverted`, `superseded`: the state machine's word for it. */
  readonly status: string;
  /** Increments on every save; a save names the version it read. */
  readonly version: number;
  readonly documentHash: string;
  readonly updatedAt: string;
  /** When a timer (bake, deadline, grace, window) needs a step even without status reports. */
  readonly nextWakeAt?: string;
}

export interface RolloutStore {
  get(bundle: string): Promise<{ readonly head: RolloutHead; readonly document: string } | undefined>;
  /** Every rollout's head, by bundle name. */
  list(): Promise<RolloutHead[]>;
  /**
   * Stores a new document and moves the head to it, only if the head is still at
   * `expectedVersion` (undefined: no rollout of the bundle yet).
   * @throws ConflictError when another writer moved it first: read again and redo the step.
   */
  save(
    input: Omit<RolloutHead, 'version' | 'documentHash'> & { readonly document: string },
    expectedVersion: number | undefined,
  ): Promise<RolloutHead>;
}

/**
 * Wakes the hub at a rollout's `nextWakeAt` (a bake, deadline, grace or window ending), so
 * a wave advances on time even when no status report arrives then. In AWS a delayed
 * message on the sync work queue (SQS delays at most 15 minutes: a wake that fires early
 * re-arms itself); the local hub's one-second ticker needs none. Without a timer, rollouts
 * still step on reports and on the schedule's pass.
 */
export interface RolloutTimer {
  /**
   * Arms one wake of `bundle`'s rollout at `at` (at once when `at` is past). Never rejects:
   * a wake that could not be armed is the adapter's to report, and the rollout then steps
   * on the next status report or the schedule's pass instead.
   */
  wakeAt(bundle: string, at: Date): Promise<void>;
}

/** The work-queue message a {@link RolloutTimer} sends: step `bundle`'s rollout if its wake at `at` is due. */
export interface RolloutWakeMessage {
  readonly kind: 'rollout-wake';
  readonly bundle: string;
  /** The `nextWakeAt` (ISO 8601) the wake was armed for. */
  readonly at: string;
}

export interface BundlePart {
  readonly data: Uint8Array;
  /** Set on part 0: how many parts, and the size of the uncompressed bundle. */
  readonly parts?: number;
  readonly size?: number;
}

export interface Notifier {
  /** Tells each cluster's agent its desired state changed. Failures are returned, not thrown. */
  notify(
    changes: readonly {
      readonly cluster: ClusterRecord;
      readonly generation: number;
      readonly etag: string;
    }[],
  ): Promise<{ sent: number; failed: { clusterId: string; error: string }[] }>;
}
