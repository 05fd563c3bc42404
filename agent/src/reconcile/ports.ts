/**
 * The ports the agent's loop works through. Adapters (hub over HTTPS, SQS, the spoke
 * cluster) implement them; unit tests pass plain fakes.
 */
import type {
  AgeRecipient,
  BundleState,
  ChangeNotification,
  ClusterStatusReport,
  ContentHash,
  DesiredState,
  DriftedObject,
  RenderedBundleDocument,
  StatusAnswer,
} from '@flotilla/shared/agent';

export type { ChangeNotification };

/** A desired state whose signature and every bundle hash have been checked. */
export interface VerifiedDesiredState {
  readonly manifest: DesiredState;
  /** The manifest's ETag, sent back as If-None-Match. */
  readonly etag: string;
  /** The signed document exactly as received, for the cache (verified again when loaded). */
  readonly signed: unknown;
  /** Every bundle of the manifest, by content hash. */
  readonly bundles: ReadonlyMap<string, VerifiedBundle>;
}

export interface VerifiedBundle {
  readonly hash: ContentHash;
  /** The stored bytes, which hash to `hash`. */
  readonly canonical: string;
  /** Parses `canonical` (each call parses again: only the text is kept in memory). */
  parse(): RenderedBundleDocument;
}

export type DesiredStateFetch =
  /** A new signed desired state (not verified yet). */
  | { readonly kind: 'modified'; readonly body: unknown; readonly etag: string }
  /** Same ETag as the If-None-Match sent. */
  | { readonly kind: 'not-modified' }
  /** The hub has no desired state for the cluster yet (not synced since registration). */
  | { readonly kind: 'none'; readonly message: string };

/** What the hub answers to a status report (the wire's answer; `desired` may be absent from older hubs). */
export type StatusReceipt = Partial<StatusAnswer>;

export interface HubPort {
  fetchDesiredState(ifNoneMatch: string | undefined, signal?: AbortSignal): Promise<DesiredStateFetch>;
  /** A rendered bundle's stored bytes (unverified). */
  fetchBundle(hash: string, signal?: AbortSignal): Promise<string>;
  postStatus(report: ClusterStatusReport, signal?: AbortSignal): Promise<StatusReceipt>;
}

export interface QueueMessage {
  readonly id: string;
  readonly receiptHandle: string;
  /** Undefined when the body was not a change notification (it still means "look again"). */
  readonly notification: ChangeNotification | undefined;
}

export interface QueuePort {
  /** Long-polls for notifications; resolves with none when the wait ends empty. */
  receive(signal: AbortSignal): Promise<QueueMessage[]>;
  delete(messages: readonly QueueMessage[]): Promise<void>;
  close?(): void;
}

/** The last verified desired state as cached in the spoke cluster (verified again on load). */
export interface CachedDesiredState {
  readonly signed: unknown;
  readonly etag: string;
  /** Bundle bytes by content hash. */
  readonly bundles: ReadonlyMap<string, string>;
}

export interface CachePort {
  load(): Promise<CachedDesiredState | undefined>;
  save(state: VerifiedDesiredState): Promise<void>;
}

/** What one reconcile made of one bundle. */
export interface BundleOutcome {
  readonly name: string;
  readonly hash: string;
  readonly generation: number;
  readonly state: BundleState;
  readonly message?: string;
  readonly failedObject?: string;
  readonly drift?: readonly DriftedObject[];
  readonly changes: Readonly<
    Record<'created' | 'configured' | 'unchanged' | 'deleted' | 'skipped' | 'failed', number>
  >;
  /** When its apply started and its readiness was settled (ms since the epoch), if it got that far. */
  readonly startedAt?: number;
  readonly settledAt?: number;
}

/** The result of reconciling the cluster with one desired state, as data. */
export interface ReconcileOutcome {
  readonly generation: number;
  readonly bundles: readonly BundleOutcome[];
  /** Every bundle that is not paused was applied without errors (Ready, NotReady or Drifted). */
  readonly complete: boolean;
  /** Something is still settling (not ready, waiting for a dependency): look again soon. */
  readonly requeue: boolean;
  /** Objects deleted because they left the desired state (removed bundles included). */
  readonly pruned: number;
  /** Drift found, per bundle. */
  readonly driftEvents: readonly {
    readonly bundle: string;
    readonly policy: 'correct' | 'warn';
    readonly objects: number;
    readonly corrected: boolean;
  }[];
  /**
   * From the start of the reconcile (inventories read, objects prepared) until every
   * object was applied or pruned and every inventory written: readiness waits and drift
   * detection are not in it, unless they overlap another bundle's apply.
   */
  readonly applySeconds: number;
  /** The whole reconcile, readiness waits included. */
  readonly durationSeconds: number;
}

export interface ReconcileOptions {
  /** Compare the objects the pass does not change with the live ones (and correct per driftPolicy). */
  readonly detectDrift: boolean;
  readonly signal?: AbortSignal | undefined;
  /** Called as each bundle's outcome is settled, before the whole reconcile ends, so status can follow bundle by bundle. */
  readonly onBundle?: ((outcome: BundleOutcome) => void) | undefined;
}

/**
 * The cluster's age identities for SOPS files: its own key (made in the cluster at first
 * start), the keys it had before a rotation, and group keys an operator installed.
 */
export interface SecretKeysPort {
  /** Private identities (`AGE-SECRET-KEY-1…`), newest first. Held in memory only for a decrypt; never logged. */
  identities(signal?: AbortSignal): Promise<readonly string[]>;
}

/**
 * The agent's view of the cluster's age keys beyond decrypting: the public recipients it
 * reports to the hub, and rotation when the hub asks for it.
 */
export interface AgeKeysPort extends SecretKeysPort {
  /** Public recipients, each with the name of its key (`cluster`, `group/<secret-name>`). Creates the cluster key if absent. */
  recipients(signal?: AbortSignal): Promise<readonly AgeRecipient[]>;
  /** Makes a new cluster key once per `requestId`, keeping the previous ones for files not re-encrypted yet. */
  rotate(
    requestId: string,
    signal?: AbortSignal,
  ): Promise<{ readonly recipient: string; readonly rotated: boolean }>;
  /** The id of the last rotation done, as stored in the cluster (so a restart does not rotate twice). */
  lastRotation(signal?: AbortSignal): Promise<string | undefined>;
  /** Keys found unusable at the last read (never the keys themselves). */
  readonly problems?: readonly { readonly secret: string; readonly message: string }[];
}

export interface ClusterPort {
  reconcile(state: VerifiedDesiredState, opts: ReconcileOptions): Promise<ReconcileOutcome>;
}

export { type Clock, systemClock } from '../clock.ts';
