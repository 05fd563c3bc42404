/**
 * The fleet events the hub emits, built from what it just learned: a sync that failed, a
 * sync state whose fleet-repo errors changed, a bundle status that changed state, a
 * cluster that went offline or came back, a rollout step. Builders are pure (inputs in,
 * events out) so their rules are unit-tested without storage; {@link emitEvents} hands
 * them to the sink without ever failing the work that found them.
 *
 * Keys name the occurrence, not the kind: a bundle that fails, recovers and fails again
 * on the same content is two `bundle.failed` events (their `since` differs), while the
 * same failure seen twice (a redelivered report, two hub processes) is one key, which the
 * notifier de-duplicates.
 */
import { createHash } from 'node:crypto';
import { type FleetError, formatFleetError } from '../errors.ts';
import { isPolicyViolation, violationAction } from '../fleet/policy.ts';
import type { Labels } from '../labels.ts';
import {
  EventSeverity,
  type EventSink,
  type FleetEvent,
  FleetEventType,
  noEvents,
} from '../notify/events.ts';
import { BundleState, type DriftedObject } from '../protocol/status.ts';
import type { RolloutEvent } from '../rollout/index.ts';

/** The cluster an event is about, as alerts select it. */
export interface EventCluster {
  readonly id: string;
  readonly labels?: Labels | undefined;
}

/**
 * Hands events to the sink. Never rejects and never throws: building the events runs
 * inside too, so a bug in a builder cannot fail a sync or a status report. A sink's own
 * failures are the sink's to log (it never rejects); what is caught here is dropped.
 */
export async function emitEvents(
  sink: EventSink | undefined,
  build: () => readonly FleetEvent[],
): Promise<void> {
  if (!sink || sink === noEvents) return;
  try {
    const events = build();
    if (events.length > 0) await sink.publish(events);
  } catch {
    // Emitting is best effort by contract: the work that found the event goes on.
  }
}

function clusterOf(c: EventCluster): FleetEvent['cluster'] {
  return { name: c.id, labels: c.labels ?? {} };
}

/** At most one line of at most `max` characters, with credentials in URLs masked. */
export function oneLine(text: string, max = 300): string {
  const first = (text.split('\n')[0] ?? '').replace(/(\w+:\/\/)[^/@\s]+@/g, '$1***@').trim();
  return first.length > max ? `${first.slice(0, max - 1)}…` : first;
}

/** `sync.failed`: a sync threw (the repo could not be read, storage failed). */
export function syncFailedEvent(
  err: unknown,
  at: Date,
  context: { readonly trigger: string; readonly commit?: string },
): FleetEvent {
  const reason = oneLine(err instanceof Error ? err.message : String(err));
  const name = err instanceof Error ? err.name : 'Error';
  return {
    type: FleetEventType.syncFailed,
    severity: EventSeverity.error,
    // The same failure every run of the schedule is one key: the notifier's window holds it.
    key: `${FleetEventType.syncFailed}/${context.commit ?? 'fetch'}/${shortHash(reason)}`,
    at: at.toISOString(),
    message: `sync of the fleet repo failed (${context.trigger}): ${reason}`,
    ...(context.commit ? { commit: context.commit } : {}),
    details: { trigger: context.trigger, error: name, reason },
  };
}

/**
 * `fleet.errors` when a sync state brings fleet-repo errors the previous one did not
 * have; `fleet.errors-cleared` when the previous one had errors and this one has none.
 * Errors that stay the same from one commit to the next say nothing new.
 */
export function fleetErrorEvents(
  previous: { readonly commit: string; readonly errors: readonly FleetError[] } | undefined,
  next: { readonly commit: string; readonly errors: readonly FleetError[]; readonly syncedAt: string },
): FleetEvent[] {
  const before = new Set((previous?.errors ?? []).map(formatFleetError));
  const now = next.errors.map(formatFleetError);
  if (now.length === 0) {
    if (before.size === 0) return [];
    return [
      {
        type: FleetEventType.fleetErrorsCleared,
        severity: EventSeverity.info,
        key: `${FleetEventType.fleetErrorsCleared}/${next.commit}`,
        at: next.syncedAt,
        message: `commit ${short(next.commit)} cleared the fleet repo's ${plural(before.size, 'error')}`,
        commit: next.commit,
        details: { cleared: [...before], previousCommit: previous?.commit ?? null },
      },
    ];
  }
  const added = now.filter((e) => !before.has(e));
  if (added.length === 0) return [];
  const bundles = [...new Set(next.errors.flatMap((e) => (e.bundle ? [e.bundle] : [])))].sort();
  return [
    {
      type: FleetEventType.fleetErrors,
      severity: EventSeverity.error,
      key: `${FleetEventType.fleetErrors}/${next.commit}`,
      at: next.syncedAt,
      message: `commit ${short(next.commit)} has ${plural(now.length, 'fleet-repo error')}: ${oneLine(added[0] ?? '', 200)}`,
      commit: next.commit,
      ...(bundles.length === 1 ? { bundle: bundles[0] } : {}),
      details: {
        errors: next.errors.map((e) => ({
          file: e.file,
          line: e.line,
          message: e.message,
          text: formatFleetError(e),
          ...(e.bundle ? { bundle: e.bundle } : {}),
        })),
        new: added,
        bundles,
        previousCommit: previous?.commit ?? null,
      },
    },
  ];
}

/**
 * `policy.violation` for each policy violation of a sync (a Deny holding a bundle, a Warn
 * or Audit reported) that the previous sync did not have: a violation that persists is
 * told once, not at every commit.
 */
export function policyViolationEvents(
  previous: { readonly errors: readonly FleetError[]; readonly warnings?: readonly FleetError[] } | undefined,
  next: {
    readonly commit: string;
    readonly errors: readonly FleetError[];
    readonly warnings?: readonly FleetError[];
    readonly syncedAt: string;
  },
): FleetEvent[] {
  const seen = new Set(
    [...(previous?.errors ?? []), ...(previous?.warnings ?? [])]
      .filter(isPolicyViolation)
      .map(formatFleetError),
  );
  return [...next.errors, ...(next.warnings ?? [])]
    .filter((e) => isPolicyViolation(e) && !seen.has(formatFleetError(e)))
    .map((e): FleetEvent => {
      const text = formatFleetError(e);
      const action = violationAction(e);
      return {
        type: FleetEventType.policyViolation,
        severity:
          action === 'Deny'
            ? EventSeverity.error
            : action === 'Warn'
              ? EventSeverity.warning
              : EventSeverity.info,
        key: `${FleetEventType.policyViolation}/${createHash('sha256').update(text).digest('hex').slice(0, 32)}`,
        at: next.syncedAt,
        message: oneLine(text),
        commit: next.commit,
        ...(e.bundle ? { bundle: e.bundle } : {}),
        details: { action, file: e.file, line: e.line, text },
      };
    });
}

/** What the transition rules read of a stored bundle status. */
export interface BundleStatusSnapshot {
  readonly bundle: string;
  readonly state: BundleState;
  readonly hash: string;
  readonly generation: number;
  readonly message?: string;
  readonly failedObject?: string;
  readonly drift?: readonly DriftedObject[];
  readonly since: string;
  /** Set once `bundle.not-ready` was emitted for this stretch of NotReady. */
  readonly notReadyReportedAt?: string;
}

/**
 * The events of one status report's changes, by transition against what was stored:
 * `bundle.failed` and `bundle.drifted` when a bundle enters the state (or enters it again
 * on new content), `bundle.recovered` when one that was Failed, Drifted or reported
 * NotReady past its deadline is Ready. A report that repeats the stored state emits
 * nothing, since the stored status already holds it.
 */
export function bundleStatusEvents(
  cluster: EventCluster,
  previous: readonly BundleStatusSnapshot[],
  written: readonly BundleStatusSnapshot[],
  at: string,
): FleetEvent[] {
  const before = new Map(previous.map((b) => [b.bundle, b]));
  const out: FleetEvent[] = [];
  for (const next of written) {
    const old = before.get(next.bundle);
    const entered = !old || old.state !== next.state || old.hash !== next.hash;
    const ref = `${cluster.id}/${next.bundle}/${next.hash}/${next.since}`;
    const base = { at, cluster: clusterOf(cluster), bundle: next.bundle };
    const common = { hash: next.hash, generation: next.generation, since: next.since };
    if (next.state === BundleState.Failed && entered) {
      out.push({
        ...base,
        type: FleetEventType.bundleFailed,
        severity: EventSeverity.error,
        key: `${FleetEventType.bundleFailed}/${ref}`,
        message: `${next.bundle} failed on ${cluster.id}: ${oneLine(next.message ?? 'no message', 240)}`,
        details: {
          ...common,
          message: next.message ?? null,
          failedObject: next.failedObject ?? null,
        },
      });
    } else if (next.state === BundleState.Drifted && entered) {
      const drift = next.drift ?? [];
      out.push({
        ...base,
        type: FleetEventType.bundleDrifted,
        severity: EventSeverity.warning,
        key: `${FleetEventType.bundleDrifted}/${ref}`,
        message: `${next.bundle} drifted on ${cluster.id}: ${drift
          .slice(0, 3)
          .map((d) => `${d.object} (${d.fields.slice(0, 3).join(', ')})`)
          .join('; ')}${drift.length > 3 ? ` and ${drift.length - 3} more` : ''}`,
        details: { ...common, drift: drift.map((d) => ({ object: d.object, fields: [...d.fields] })) },
      });
    } else if (next.state === BundleState.Ready && old && wasUnhealthy(old)) {
      out.push({
        ...base,
        type: FleetEventType.bundleRecovered,
        severity: EventSeverity.info,
        key: `${FleetEventType.bundleRecovered}/${ref}`,
        message: `${next.bundle} is Ready again on ${cluster.id} (was ${old.state})`,
        details: { ...common, previousState: old.state, previousSince: old.since },
      });
    }
  }
  return out;
}

/** Whether a bundle's stored state was one that people were told about (or would have been). */
function wasUnhealthy(b: BundleStatusSnapshot): boolean {
  return (
    b.state === BundleState.Failed ||
    b.state === BundleState.Drifted ||
    (b.state === BundleState.NotReady && b.notReadyReportedAt !== undefined)
  );
}

/** `bundle.not-ready`: a bundle NotReady on a cluster since `since`, past the deadline. */
export function bundleNotReadyEvent(
  cluster: EventCluster,
  b: BundleStatusSnapshot,
  at: Date,
  deadlineSeconds: number,
): FleetEvent {
  const minutes = Math.round((at.getTime() - Date.parse(b.since)) / 60_000);
  return {
    type: FleetEventType.bundleNotReady,
    severity: EventSeverity.warning,
    key: `${FleetEventType.bundleNotReady}/${cluster.id}/${b.bundle}/${b.hash}/${b.since}`,
    at: at.toISOString(),
    message: `${b.bundle} has been NotReady on ${cluster.id} for ${minutes} min${b.message ? `: ${oneLine(b.message, 200)}` : ''}`,
    cluster: clusterOf(cluster),
    bundle: b.bundle,
    details: {
      hash: b.hash,
      generation: b.generation,
      since: b.since,
      deadlineSeconds,
      message: b.message ?? null,
    },
  };
}

/** `cluster.offline`: no heartbeat since `lastHeartbeatAt`, past the threshold. */
export function clusterOfflineEvent(
  cluster: EventCluster,
  lastHeartbeatAt: string,
  at: Date,
  offlineAfterSeconds: number,
): FleetEvent {
  return {
    type: FleetEventType.clusterOffline,
    severity: EventSeverity.warning,
    key: `${FleetEventType.clusterOffline}/${cluster.id}/${lastHeartbeatAt}`,
    at: at.toISOString(),
    message: `${cluster.id} is offline: no heartbeat since ${lastHeartbeatAt}`,
    cluster: clusterOf(cluster),
    details: { lastHeartbeatAt, offlineAfterSeconds },
  };
}

/** `cluster.online`: a heartbeat from a cluster that was reported offline. */
export function clusterOnlineEvent(cluster: EventCluster, offlineAt: string, at: string): FleetEvent {
  return {
    type: FleetEventType.clusterOnline,
    severity: EventSeverity.info,
    key: `${FleetEventType.clusterOnline}/${cluster.id}/${offlineAt}`,
    at,
    message: `${cluster.id} is back online (offline since ${offlineAt})`,
    cluster: clusterOf(cluster),
    details: { offlineAt, heartbeatAt: at },
  };
}

const rolloutTypes: Partial<Record<RolloutEvent['type'], { type: FleetEventType; severity: EventSeverity }>> =
  {
    'wave-opened': { type: FleetEventType.rolloutWaveOpened, severity: EventSeverity.info },
    'rollout-paused': { type: FleetEventType.rolloutPaused, severity: EventSeverity.warning },
    'rollout-reverted': { type: FleetEventType.rolloutReverted, severity: EventSeverity.error },
    'rollout-completed': { type: FleetEventType.rolloutCompleted, severity: EventSeverity.info },
  };

/**
 * The fleet events of a saved rollout step: waves opened, pauses, reverts and completions
 * (the machine's other events, cluster by cluster, stay in the rollout's own history).
 */
export function rolloutFleetEvents(events: readonly RolloutEvent[]): FleetEvent[] {
  const out: FleetEvent[] = [];
  for (const e of events) {
    const mapped = rolloutTypes[e.type];
    if (!mapped) continue;
    const what =
      mapped.type === FleetEventType.rolloutWaveOpened
        ? `${e.wave ?? 'wave'}`
        : mapped.type === FleetEventType.rolloutPaused
          ? `${e.at}`
          : 'done';
    out.push({
      type: mapped.type,
      severity: mapped.severity,
      key: `${mapped.type}/${e.bundle}/${e.revision}/${what}`,
      at: new Date(e.at).toISOString(),
      message: oneLine(`${e.bundle} rollout of ${short(e.revision)}: ${e.message}`),
      bundle: e.bundle,
      commit: e.revision,
      details: {
        revision: e.revision,
        ...(e.wave !== undefined ? { wave: e.wave } : {}),
        ...(e.waveName !== undefined ? { waveName: e.waveName } : {}),
        ...(e.cluster !== undefined ? { cluster: e.cluster } : {}),
        ...(e.reason !== undefined ? { reason: e.reason } : {}),
      },
    });
  }
  return out;
}

function short(commit: string): string {
  return commit.length > 12 ? commit.slice(0, 12) : commit;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** A short stable hash (FNV-1a, 32 bits) for keys built from free text. */
function shortHash(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}
