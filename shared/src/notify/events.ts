/**
 * Fleet events: what the hub tells people about (through notification providers) and the
 * port it hands them to. The hub emits events where it learns of them (a sync, a status
 * report, the schedule, a rollout step); the notifier matches them against the alerts of
 * `notifications/` in the fleet repo and delivers them. Emitting never blocks or fails the
 * work that found the event: a sink that cannot take events logs and drops them.
 */
import type { Labels } from '../labels.ts';

export const FleetEventType = {
  /** A sync of the fleet repo failed (the repo could not be read, storage failed). */
  syncFailed: 'sync.failed',
  /** A commit brought fleet-repo errors (file:line) that the previous one did not have. */
  fleetErrors: 'fleet.errors',
  /** A commit cleared the fleet-repo errors of the previous one. */
  fleetErrorsCleared: 'fleet.errors-cleared',
  /** A policy denied (or warned about, or audited) a rendered object for some clusters. */
  policyViolation: 'policy.violation',
  /** A bundle failed on a cluster (apply error, a file it cannot decrypt, a failed health check). */
  bundleFailed: 'bundle.failed',
  /** A bundle stayed NotReady on a cluster past its deadline. */
  bundleNotReady: 'bundle.not-ready',
  /** A bundle's objects drifted on a cluster (with the fields). */
  bundleDrifted: 'bundle.drifted',
  /** A bundle that had failed, drifted or stayed NotReady on a cluster is Ready again. */
  bundleRecovered: 'bundle.recovered',
  clusterOffline: 'cluster.offline',
  clusterOnline: 'cluster.online',
  rolloutWaveOpened: 'rollout.wave-opened',
  rolloutPaused: 'rollout.paused',
  rolloutReverted: 'rollout.reverted',
  rolloutCompleted: 'rollout.completed',
} as const;
export type FleetEventType = (typeof FleetEventType)[keyof typeof FleetEventType];

export const EventSeverity = { info: 'info', warning: 'warning', error: 'error' } as const;
export type EventSeverity = (typeof EventSeverity)[keyof typeof EventSeverity];

/** One thing that happened in the fleet, as providers are told of it. */
export interface FleetEvent {
  readonly type: FleetEventType;
  readonly severity: EventSeverity;
  /**
   * What makes two events "the same" for de-duplication: the same key within the
   * notifier's window is delivered once (e.g. `bundle.failed/prod-eu-1/web/sha256:…`).
   */
  readonly key: string;
  /** When it happened (ISO 8601). */
  readonly at: string;
  /** One line for people: `web failed on prod-eu-1: Deployment "web/storefront": …`. Never a secret value. */
  readonly message: string;
  /** The cluster it is about, with its labels (alerts select clusters by label). */
  readonly cluster?: { readonly name: string; readonly labels: Labels };
  readonly bundle?: string;
  /** The fleet-repo commit it is about, if any. */
  readonly commit?: string;
  /** Type-specific detail, JSON-safe: errors with file:line, drifted fields, violations, wave names. */
  readonly details?: Readonly<Record<string, unknown>>;
}

/**
 * Where the hub hands events: an SQS queue in AWS, the local hub's notifier in memory.
 * `publish` resolves once the events are accepted for delivery (not delivered) and never
 * rejects: a sink that cannot accept them logs and drops them, so emitting never fails a
 * sync or a status report.
 */
export interface EventSink {
  publish(events: readonly FleetEvent[]): Promise<void>;
}

/** A sink that drops everything: the default when no notifier is configured. */
export const noEvents: EventSink = { publish: async () => {} };
