/**
 * Cluster status: what agents report (a versioned, strictly validated payload), how it is
 * kept (per bundle, with the time each bundle entered its state), and the fleet-wide view
 * admins read (clusters x bundles, applied against desired, Offline clusters, last sync).
 * Pure: storage comes in through {@link ClusterStatusStore} and the other ports.
 */
import { isContentHash } from '../canonical.ts';
import { parseDesiredState } from '../desired-state.ts';
import { type FleetError, formatFleetError } from '../errors.ts';
import { bundleNameProblem } from '../labels.ts';
import { recipientsProblems, sameRecipients } from '../protocol/age-recipients.ts';
import {
  BundleState,
  type ClusterStatusReport,
  type DriftedObject,
  keyRotationIdPattern,
  kubeVersionProblem,
  STATUS_API_VERSION,
  STATUS_KIND,
  statusLimits,
} from '../protocol/status.ts';
import type { LabelMatcher } from '../selector.ts';
import { type PinView, pinView, ValidationError } from './clusters.ts';
import { bundleStatusEvents, clusterOnlineEvent, emitEvents } from './fleet-events.ts';
import {
  type ClusterRecord,
  type ClusterStatusDigest,
  type ClusterStore,
  type DesiredStateStore,
  GenerationReason,
  type Labels,
  type RolloutStore,
  type StoredDesiredState,
} from './ports.ts';
import {
  type RolloutDocument,
  type RolloutStepOutcome,
  type RolloutView,
  rolloutView,
  stepRolloutsOnReport,
} from './rollouts.ts';
import {
  applyRolloutSteps,
  recomputeCluster,
  type SyncPorts,
  type SyncReport,
  type SyncState,
  type SyncStateStore,
} from './sync.ts';

export {
  BundleState,
  type BundleStatusReport,
  type ClusterStatusReport,
  type DriftedObject,
  isKubeVersion,
  kubeVersionProblem,
  STATUS_API_VERSION,
  STATUS_KIND,
  type StatusAnswer,
  statusLimits,
} from '../protocol/status.ts';

/** How a cluster's link to the hub stands: Offline when no heartbeat came within the set interval. */
export const Connection = { Online: 'Online', Offline: 'Offline' } as const;
export type Connection = (typeof Connection)[keyof typeof Connection];
const bundleStates: readonly string[] = Object.values(BundleState);

/** One field of a request that is wrong. */
export interface FieldProblem {
  readonly field: string;
  readonly message: string;
}

/**
 * A request with one or more wrong fields; `field` is the first, `problems` lists all of
 * them, so a client can fix everything in one round.
 */
export class InvalidRequestError extends ValidationError {
  readonly problems: readonly FieldProblem[];
  constructor(problems: readonly FieldProblem[]) {
    const first = problems[0] ?? { field: 'body', message: 'invalid' };
    super(first.field, first.message);
    this.name = 'InvalidRequestError';
    this.message =
      problems.length <= 1
        ? this.message
        : `${problems.length} problems: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`;
    this.problems = problems.length > 0 ? problems : [first];
  }
}

const reportFields = [
  'apiVersion',
  'kind',
  'agentVersion',
  'kubeVersion',
  'recipients',
  'keyRotation',
  'observedAt',
  'appliedGeneration',
  'bundles',
];
const bundleFields = ['name', 'state', 'hash', 'generation', 'message', 'failedObject', 'drift'];
const isoTime = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/**
 * Validates a status report strictly: unknown fields, wrong types, unknown states, bad
 * hashes, duplicate bundles and contradictions (a `Failed` bundle without a message, a
 * `Drifted` one without drift) are all reported at once, each naming its field.
 *
 * @throws {InvalidRequestError} listing every problem.
 * @example
 * parseStatusReport({ apiVersion: 'flotilla.dev/v1alpha1', kind: 'ClusterStatus', agentVersion: '0.1.0',
 *   bundles: [{ name: 'web', state: 'Ready', hash: 'sha256:…', generation: 3 }] });
 */
export function parseStatusReport(value: unknown): ClusterStatusReport {
  const problems: FieldProblem[] = [];
  const fail = (field: string, message: string) => {
    problems.push({ field, message });
  };
  if (!isRecord(value)) throw new InvalidRequestError([{ field: 'body', message: 'expected a JSON object' }]);
  unknownFields(value, reportFields, '', fail);
  if (value.apiVersion !== STATUS_API_VERSION) {
    fail('apiVersion', `expected "${STATUS_API_VERSION}", got ${show(value.apiVersion)}`);
  }
  if (value.kind !== STATUS_KIND) fail('kind', `expected "${STATUS_KIND}", got ${show(value.kind)}`);
  checkString(value.agentVersion, 'agentVersion', statusLimits.agentVersionChars, fail, true);
  if (value.kubeVersion !== undefined) {
    const problem = kubeVersionProblem(value.kubeVersion);
    if (problem) fail('kubeVersion', `${problem}, got ${show(value.kubeVersion)}`);
  }
  if (value.recipients !== undefined) {
    for (const p of recipientsProblems(value.recipients)) fail(p.field, p.message);
  }
  if (value.keyRotation !== undefined) {
    if (typeof value.keyRotation !== 'string' || !keyRotationIdPattern.test(value.keyRotation))
      fail('keyRotation', `expected a key-rotation id the hub issued, got ${show(value.keyRotation)}`);
  }
  if (value.observedAt !== undefined) checkTime(value.observedAt, 'observedAt', fail);
  if (value.appliedGeneration !== undefined)
    checkGeneration(value.appliedGeneration, 'appliedGeneration', fail);
  if (value.bundles !== undefined) {
    if (!Array.isArray(value.bundles)) fail('bundles', 'expected an array');
    else {
      if (value.bundles.length > statusLimits.bundles) {
        fail('bundles', `at most ${statusLimits.bundles} bundles (got ${value.bundles.length})`);
      }
      const seen = new Set<string>();
      value.bundles.slice(0, statusLimits.bundles).forEach((b: unknown, i: number) => {
        const at = `bundles[${i}]`;
        if (!isRecord(b)) {
          fail(at, 'expected an object');
          return;
        }
        checkBundle(b, at, fail);
        if (typeof b.name === 'string') {
          if (seen.has(b.name)) fail(`${at}.name`, `bundle "${b.name}" is reported twice`);
          seen.add(b.name);
        }
      });
    }
  }
  if (problems.length > 0) throw new InvalidRequestError(problems);
  return value as unknown as ClusterStatusReport;
}

function checkBundle(b: Record<string, unknown>, at: string, fail: (f: string, m: string) => void): void {
  unknownFields(b, bundleFields, `${at}.`, fail);
  if (typeof b.name !== 'string') fail(`${at}.name`, 'expected a bundle name');
  else {
    const problem = bundleNameProblem(b.name);
    if (problem) fail(`${at}.name`, problem);
  }
  if (typeof b.state !== 'string' || !bundleStates.includes(b.state)) {
    fail(`${at}.state`, `expected one of ${bundleStates.join(', ')}, got ${show(b.state)}`);
  }
  if (!isContentHash(b.hash)) fail(`${at}.hash`, `expected "sha256:" and 64 hex digits, got ${show(b.hash)}`);
  checkGeneration(b.generation, `${at}.generation`, fail);
  if (b.message !== undefined) checkString(b.message, `${at}.message`, statusLimits.messageChars, fail);
  if (b.failedObject !== undefined) {
    checkString(b.failedObject, `${at}.failedObject`, statusLimits.fieldChars, fail, true);
  }
  if (b.state === BundleState.Failed && (typeof b.message !== 'string' || b.message.trim() === '')) {
    fail(`${at}.message`, 'required when state is Failed: say why the apply failed');
  }
  if (b.drift !== undefined) {
    if (!Array.isArray(b.drift)) fail(`${at}.drift`, 'expected an array of {object, fields}');
    else {
      if (b.drift.length > statusLimits.driftObjects) {
        fail(`${at}.drift`, `at most ${statusLimits.driftObjects} objects (got ${b.drift.length})`);
      }
      b.drift.slice(0, statusLimits.driftObjects).forEach((d: unknown, j: number) => {
        const dAt = `${at}.drift[${j}]`;
        if (!isRecord(d)) {
          fail(dAt, 'expected an object {object, fields}');
          return;
        }
        unknownFields(d, ['object', 'fields'], `${dAt}.`, fail);
        checkString(d.object, `${dAt}.object`, statusLimits.fieldChars, fail, true);
        if (!Array.isArray(d.fields)) fail(`${dAt}.fields`, 'expected an array of field paths');
        else if (d.fields.length > statusLimits.driftFields) {
          fail(`${dAt}.fields`, `at most ${statusLimits.driftFields} fields (got ${d.fields.length})`);
        } else {
          d.fields.forEach((f: unknown, k: number) => {
            checkString(f, `${dAt}.fields[${k}]`, statusLimits.fieldChars, fail, true);
          });
        }
      });
    }
  }
  if (b.state === BundleState.Drifted && (!Array.isArray(b.drift) || b.drift.length === 0)) {
    fail(`${at}.drift`, 'required when state is Drifted: list the objects that differ');
  }
}

function unknownFields(
  value: Record<string, unknown>,
  allowed: readonly string[],
  prefix: string,
  fail: (f: string, m: string) => void,
): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) fail(`${prefix}${key}`, `unknown field (allowed: ${allowed.join(', ')})`);
  }
}

function checkString(
  value: unknown,
  field: string,
  max: number,
  fail: (f: string, m: string) => void,
  nonEmpty = false,
): void {
  if (typeof value !== 'string') fail(field, `expected a string, got ${show(value)}`);
  else if (nonEmpty && value.trim() === '') fail(field, 'must not be empty');
  else if (value.length > max) fail(field, `at most ${max} characters (got ${value.length})`);
}

function checkGeneration(value: unknown, field: string, fail: (f: string, m: string) => void): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    fail(field, `expected a non-negative integer, got ${show(value)}`);
  }
}

function checkTime(value: unknown, field: string, fail: (f: string, m: string) => void): void {
  if (typeof value !== 'string' || !isoTime.test(value) || Number.isNaN(Date.parse(value))) {
    fail(field, `expected an RFC 3339 time such as "2024-05-01T12:00:00Z", got ${show(value)}`);
  }
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** One bundle's status as the hub keeps it. */
export interface StoredBundleStatus {
  readonly bundle: string;
  readonly state: BundleState;
  readonly hash: string;
  readonly generation: number;
  readonly message?: string;
  readonly failedObject?: string;
  readonly drift?: readonly DriftedObject[];
  /** When the bundle entered `state` on its content `hash` (hub clock), kept while both stay the same. */
  readonly since: string;
  /** When the agent last reported this bundle differently; unchanged reports write nothing. */
  readonly updatedAt: string;
  /** When `bundle.not-ready` was emitted for this stretch of NotReady (kept while it lasts). */
  readonly notReadyReportedAt?: string;
}

/** What the hub keeps of a cluster's last status report besides the heartbeat on its record. */
export interface StoredClusterStatus {
  readonly clusterId: string;
  readonly appliedGeneration?: number;
  readonly observedAt?: string;
  readonly bundles: readonly StoredBundleStatus[];
}

/** The writes one report needs: only the bundles whose status changed, and those no longer reported. */
export interface ClusterStatusChange {
  readonly clusterId: string;
  /** Set when the cluster-level part (applied generation) changed. */
  readonly summary?: { readonly appliedGeneration?: number; readonly observedAt?: string };
  readonly put: readonly StoredBundleStatus[];
  readonly remove: readonly string[];
}

/** Per-bundle status storage (the bundle-status table). */
export interface ClusterStatusStore {
  get(clusterId: string): Promise<StoredClusterStatus | undefined>;
  apply(change: ClusterStatusChange): Promise<void>;
  /**
   * Records that `bundle.not-ready` was emitted for the bundle's NotReady stretch that began
   * at `since`, only if it is still that stretch and not recorded yet, so the schedule
   * emits it once. Optional: a store without it emits no `bundle.not-ready`.
   * @returns whether this call recorded it.
   */
  markNotReadyReported?(clusterId: string, bundle: string, since: string, at: string): Promise<boolean>;
}

/** What recording a report needs: the status store, and the sync's ports to re-plan a cluster whose Kubernetes version changed. */
export interface StatusPorts extends Omit<SyncPorts, 'source'> {
  readonly statuses: ClusterStatusStore;
}

/** What recording one report did, as data. */
export interface StatusReceipt {
  readonly clusterId: string;
  readonly receivedAt: string;
  readonly bundles: number;
  readonly changed: number;
  readonly removed: number;
  /**
   * Set when the report changed the cluster's Kubernetes version, so the cluster was
   * planned again at the last synced commit (a chart may render differently for it).
   */
  readonly replan?: KubeVersionReplan;
  /** Set when the report changed the cluster's age recipients (they were written). */
  readonly recipientsChanged?: true;
  /** An open request to rotate the cluster's age key, which the agent has not done yet: part of the answer. */
  readonly rotateKey?: { readonly id: string };
  /** The rollouts this report stepped, and whom they released or reverted. */
  readonly rollouts?: readonly {
    readonly bundle: string;
    readonly released: readonly string[];
    readonly reverted: readonly string[];
  }[];
}

/** The re-plan a new Kubernetes version caused: its sync report, or why it failed. */
export type KubeVersionReplan =
  | { readonly kubeVersion: string; readonly sync: SyncReport }
  | { readonly kubeVersion: string; readonly error: Error };

/**
 * Computes the writes a report needs against what is stored: a bundle keeps `since` while
 * its state stays the same, and is written only when something about it changed.
 */
export function statusChange(
  previous: StoredClusterStatus | undefined,
  report: ClusterStatusReport,
  clusterId: string,
  receivedAt: string,
): ClusterStatusChange {
  const summaryChanged =
    report.appliedGeneration !== undefined && report.appliedGeneration !== previous?.appliedGeneration;
  const summary = summaryChanged
    ? {
        appliedGeneration: report.appliedGeneration,
        ...(report.observedAt ? { observedAt: report.observedAt } : {}),
      }
    : undefined;
  if (!report.bundles) return { clusterId, ...(summary ? { summary } : {}), put: [], remove: [] };
  const before = new Map((previous?.bundles ?? []).map((b) => [b.bundle, b]));
  const put: StoredBundleStatus[] = [];
  for (const b of report.bundles) {
    const old = before.get(b.name);
    const next: StoredBundleStatus = {
      bundle: b.name,
      state: b.state,
      hash: b.hash,
      generation: b.generation,
      ...(b.message !== undefined ? { message: b.message } : {}),
      ...(b.failedObject !== undefined ? { failedObject: b.failedObject } : {}),
      ...(b.drift !== undefined ? { drift: b.drift } : {}),
      // A state on new content is a new stretch: a deadline (NotReady past 10 minutes) counts from it.
      since: old && old.state === b.state && old.hash === b.hash ? old.since : receivedAt,
      updatedAt: receivedAt,
      // Still the NotReady stretch that was reported: rewriting it (a new message) must not report it again.
      ...(old?.notReadyReportedAt !== undefined &&
      old.state === b.state &&
      old.hash === b.hash &&
      b.state === BundleState.NotReady
        ? { notReadyReportedAt: old.notReadyReportedAt }
        : {}),
    };
    if (!old || !sameStatus(old, next)) put.push(next);
  }
  const reported = new Set(report.bundles.map((b) => b.name));
  const remove = [...before.keys()].filter((name) => !reported.has(name)).sort();
  return { clusterId, ...(summary ? { summary } : {}), put, remove };
}

function sameStatus(a: StoredBundleStatus, b: StoredBundleStatus): boolean {
  return (
    a.state === b.state &&
    a.hash === b.hash &&
    a.generation === b.generation &&
    a.message === b.message &&
    a.failedObject === b.failedObject &&
    JSON.stringify(a.drift ?? null) === JSON.stringify(b.drift ?? null)
  );
}

/**
 * Refuses generations a report cannot honestly claim: the hub numbers desired states, so an
 * agent can only have applied, or be reporting on, a generation up to the cluster's
 * current one. Each problem names its field (`appliedGeneration`, `bundles[i].generation`).
 *
 * @param desiredGeneration the cluster's current desired generation (0 before its first).
 * @throws {InvalidRequestError} listing every generation above it.
 */
export function checkReportedGenerations(report: ClusterStatusReport, desiredGeneration: number): void {
  const problems: FieldProblem[] = [];
  const check = (value: number | undefined, field: string) => {
    if (value !== undefined && value > desiredGeneration) {
      problems.push({
        field,
        message: `generation ${value} is above the cluster's desired generation ${desiredGeneration}; the hub has not issued it`,
      });
    }
  };
  check(report.appliedGeneration, 'appliedGeneration');
  report.bundles?.forEach((b, i) => {
    check(b.generation, `bundles[${i}].generation`);
  });
  if (problems.length > 0) throw new InvalidRequestError(problems);
}

/**
 * Records an agent's report.
 *
 * 1. Refuse generations above the cluster's desired one ({@link checkReportedGenerations}),
 *    before anything is written.
 * 2. Record the heartbeat, agent version and Kubernetes version on the cluster
 *    (NotFoundError if it is gone).
 * 3. When that changed the Kubernetes version, re-plan the cluster at the last synced
 *    commit, as a label change does. A failed re-plan does not fail the report: the
 *    heartbeat is recorded, and the next sync plans every cluster with what is stored.
 * 4. Compare the report with the stored status, and write only what changed.
 * 5. When the status changed, or the cluster's status digest names an earlier desired
 *    state, keep a new digest on its record ({@link refreshStatusDigest}): two reads, and
 *    a write only when it differs. Heartbeats that change nothing cost nothing more.
 *
 * Age recipients ride along with the heartbeat write, only when they differ from the
 * record's; a report that names the open key-rotation request closes it, and one that does
 * not gets it back in the answer (`rotateKey`).
 *
 * @param cluster the reporting cluster's record as the hub read it to authenticate the
 *   report; generations only grow, so its head bounds what the agent can have been given.
 */
export async function recordClusterStatus(
  ports: StatusPorts,
  cluster: Pick<ClusterRecord, 'id' | 'head' | 'recipients' | 'keyRotation'> &
    Partial<Pick<ClusterRecord, 'labels' | 'statusDigest'>>,
  report: ClusterStatusReport,
): Promise<StatusReceipt> {
  checkReportedGenerations(report, cluster.head?.generation ?? 0);
  const clusterId = cluster.id;
  const receivedAt = ports.now().toISOString();
  // Recipients are written only when they changed: most reports are heartbeats.
  const recipients =
    report.recipients !== undefined && !sameRecipients(report.recipients, cluster.recipients)
      ? report.recipients
      : undefined;
  // The hub's clock, not the agent's, decides Offline: edge clocks drift.
  const { kubeVersionChanged, wasOfflineAt } = await ports.clusters.recordHeartbeat(clusterId, {
    at: receivedAt,
    agentVersion: report.agentVersion,
    kubeVersion: report.kubeVersion,
    ...(recipients ? { recipients } : {}),
  });
  // The heartbeat write cleared the offline mark: exactly one report tells it is back.
  if (wasOfflineAt !== undefined)
    await emitEvents(ports.events, () => [clusterOnlineEvent(cluster, wasOfflineAt, receivedAt)]);
  // The agent did the rotation asked for: the request is closed (unless a newer one replaced it meanwhile).
  const rotationDone = cluster.keyRotation !== undefined && report.keyRotation === cluster.keyRotation.id;
  if (rotationDone) await ports.clusters.finishKeyRotation(clusterId, cluster.keyRotation.id);
  const rotateKey =
    cluster.keyRotation !== undefined && !rotationDone ? { id: cluster.keyRotation.id } : undefined;
  let replan: KubeVersionReplan | undefined;
  if (kubeVersionChanged && report.kubeVersion !== undefined) {
    try {
      replan = {
        kubeVersion: report.kubeVersion,
        sync: await recomputeCluster(ports, clusterId, {
          onlyIfKubeVersionMatters: true,
          reason: GenerationReason.KubeVersion,
        }),
      };
    } catch (err) {
      replan = {
        kubeVersion: report.kubeVersion,
        error: err instanceof Error ? err : new Error(String(err)),
      };
    }
  }
  const previous = await ports.statuses.get(clusterId);
  const change = statusChange(previous, report, clusterId, receivedAt);
  const changed = change.summary !== undefined || change.put.length > 0 || change.remove.length > 0;
  if (changed) await ports.statuses.apply(change);
  // Transitions against the stored status: a report that repeats it wrote nothing and emits nothing.
  if (change.put.length > 0)
    await emitEvents(ports.events, () =>
      bundleStatusEvents(cluster, previous?.bundles ?? [], change.put, receivedAt),
    );
  // 4. Rollouts advance as reports arrive: this cluster's news may finish its wave's bake,
  //    fail it, or free a slot; whoever the step releases or reverts gets a generation now.
  let rollouts: RolloutStepOutcome[] = [];
  if (ports.rollouts && report.bundles) {
    rollouts = await stepRolloutsOnReport(
      { rollouts: ports.rollouts, now: ports.now, rolloutTimer: ports.rolloutTimer, events: ports.events },
      clusterId,
      report.bundles,
    );
    if (rollouts.some((r) => r.release.length > 0 || r.revert.length > 0))
      await applyRolloutSteps(ports, rollouts);
  }
  // 5. The digest fleet listings read: again when the status changed, or when the one kept
  //    was worked out against an earlier desired state (a sync moved the head since).
  const stale = cluster.statusDigest?.etag !== (cluster.head?.etag ?? null);
  if (changed || stale || replan !== undefined || rollouts.length > 0)
    await refreshStatusDigest(ports, { labels: {}, ...cluster });
  return {
    clusterId,
    receivedAt,
    bundles: report.bundles?.length ?? 0,
    changed: change.put.length,
    removed: change.remove.length,
    ...(replan ? { replan } : {}),
    ...(recipients ? { recipientsChanged: true } : {}),
    ...(rotateKey ? { rotateKey } : {}),
    ...(rollouts.length > 0
      ? { rollouts: rollouts.map((r) => ({ bundle: r.bundle, released: r.release, reverted: r.revert })) }
      : {}),
  };
}

/** One bundle of one cluster in the fleet view: desired against applied. */
export interface BundleStatusView {
  readonly name: string;
  /** The effective state: the reported one when it is about the desired content, otherwise Pending. */
  readonly state: BundleState;
  readonly desiredHash: string;
  readonly appliedHash: string | null;
  readonly desiredGeneration: number;
  readonly appliedGeneration: number | null;
  /** Whether the agent's report is about the content the hub wants now. */
  readonly upToDate: boolean;
  readonly driftPolicy: string;
  readonly paused: boolean;
  readonly reportedState: BundleState | null;
  readonly message?: string;
  readonly failedObject?: string;
  readonly drift?: readonly DriftedObject[];
  readonly since?: string;
}

export interface ClusterStatusView {
  readonly id: string;
  readonly labels: Labels;
  readonly connection: Connection;
  readonly lastHeartbeatAt: string | null;
  readonly agentVersion: string | null;
  /** The cluster's Kubernetes version as its agent last reported it, e.g. `v1.33.2`. */
  readonly kubeVersion: string | null;
  /** The worst state of its bundles (Failed, Drifted, NotReady, Applying, Pending, Ready); Ready when it has none. */
  readonly state: BundleState;
  readonly desired: { readonly generation: number; readonly commit: string; readonly etag: string } | null;
  readonly appliedGeneration: number | null;
  /** Online, applied the desired generation, and every bundle up to date and Ready. */
  readonly inSync: boolean;
  readonly bundles: readonly BundleStatusView[];
  /** Bundles a rollback holds at an earlier revision (empty when none). */
  readonly pins: readonly PinView[];
}

export interface FleetErrorView extends FleetError {
  /** `file:line: message`. */
  readonly text: string;
}

export interface FleetStatus {
  readonly generatedAt: string;
  readonly offlineAfterSeconds: number;
  readonly sync: {
    readonly commit: string;
    readonly syncedAt: string;
    readonly clusters: number;
    readonly changedClusters: number;
    readonly errors: readonly FleetErrorView[];
    /** The other fleet sources: the commit each one's bundles come from, and why it is stale; absent when there are none. */
    readonly sources?: Readonly<
      Record<string, { readonly commit: string; readonly fetchedAt: string; readonly error?: string }>
    >;
  } | null;
  readonly summary: {
    readonly clusters: number;
    readonly online: number;
    readonly offline: number;
    readonly inSync: number;
    /** Clusters by their worst bundle state. */
    readonly clusterStates: Readonly<Record<BundleState, number>>;
    /** Bundle instances (cluster x bundle) by effective state. */
    readonly bundleStates: Readonly<Record<BundleState, number>>;
  };
  readonly clusters: readonly ClusterStatusView[];
  /** Rollouts not finished (progressing or paused), without their events. */
  readonly rollouts: readonly RolloutView[];
}

/**
 * What one caller may see of the fleet: a tenant's bundles on the clusters its selector
 * matches. Status functions given one count, filter and page over that part alone, so
 * totals and summaries are the scope's own.
 */
export interface StatusScope {
  ownsBundle(name: string): boolean;
  allowsCluster(labels: Labels): boolean;
  /** Whether a sync error or warning is the scope's: one about its bundles or files. */
  ownsError(error: FleetError): boolean;
  /** Whether a fleet source (its commit and fetch error in the sync state) is the scope's. */
  ownsSource(name: string): boolean;
}

export interface FleetStatusPorts {
  readonly clusters: ClusterStore;
  readonly desiredStates: DesiredStateStore;
  readonly statuses: ClusterStatusStore;
  readonly syncState: Pick<SyncStateStore, 'get'>;
  readonly rollouts?: RolloutStore;
  readonly now: () => Date;
}

/** Bundle states from best to worst: a cluster's state is the worst of its bundles'. */
export const stateSeverity: readonly BundleState[] = [
  'Ready',
  'Pending',
  'Applying',
  'NotReady',
  'Drifted',
  'Failed',
];
const severity = stateSeverity;
const readConcurrency = 16;

/**
 * The fleet's status: every cluster (those matching `matcher`, when given) with each
 * bundle of its current desired state against what its agent last reported, whether it
 * is Offline, and the last sync with its errors.
 */
export async function fleetStatus(
  ports: FleetStatusPorts,
  opts: { offlineAfterSeconds: number; matcher?: LabelMatcher; scope?: StatusScope },
): Promise<FleetStatus> {
  const now = ports.now();
  const [all, sync] = await Promise.all([ports.clusters.list(), ports.syncState.get()]);
  const { scope } = opts;
  const clusters = all.filter(
    (c) => (!opts.matcher || opts.matcher(c.labels)) && (!scope || scope.allowsCluster(c.labels)),
  );
  const views: ClusterStatusView[] = new Array(clusters.length);
  let next = 0;
  const worker = async () => {
    while (next < clusters.length) {
      const i = next++;
      const cluster = clusters[i] as ClusterRecord;
      const view = await clusterStatusView(ports, cluster, now, opts.offlineAfterSeconds);
      views[i] = scope ? scopeClusterView(view, scope) : view;
    }
  };
  await Promise.all(Array.from({ length: Math.min(readConcurrency, clusters.length) }, worker));

  const zero = () => Object.fromEntries(severity.map((s) => [s, 0])) as Record<BundleState, number>;
  const clusterStates = zero();
  const bundleStates = zero();
  let online = 0;
  let inSync = 0;
  for (const v of views) {
    clusterStates[v.state]++;
    for (const b of v.bundles) bundleStates[b.state]++;
    if (v.connection === 'Online') online++;
    if (v.inSync) inSync++;
  }
  return {
    generatedAt: now.toISOString(),
    offlineAfterSeconds: opts.offlineAfterSeconds,
    sync: syncView(sync, scope),
    summary: {
      clusters: views.length,
      online,
      offline: views.length - online,
      inSync,
      clusterStates,
      bundleStates,
    },
    clusters: views,
    rollouts: await activeRollouts(ports.rollouts, scope),
  };
}

/** Rollouts not finished (progressing or paused), without their events; only the scope's bundles' when given. */
export async function activeRollouts(
  store: RolloutStore | undefined,
  scope?: Pick<StatusScope, 'ownsBundle'>,
): Promise<RolloutView[]> {
  if (!store) return [];
  const out: RolloutView[] = [];
  for (const head of await store.list()) {
    if (head.status !== 'progressing' && head.status !== 'paused') continue;
    if (scope && !scope.ownsBundle(head.bundle)) continue;
    const stored = await store.get(head.bundle);
    if (stored) out.push(rolloutView(JSON.parse(stored.document) as RolloutDocument, head.nextWakeAt, 0));
  }
  return out;
}

/** A fleet error with its `file:line: message` text, as the API shows it. */
export function fleetErrorView(error: FleetError): FleetErrorView {
  return { ...error, text: formatFleetError(error) };
}

/** Online when the last heartbeat came within `offlineAfterSeconds` of `now`. */
export function connectionAt(
  lastHeartbeatAt: string | undefined,
  now: Date,
  offlineAfterSeconds: number,
): Connection {
  const heartbeat = lastHeartbeatAt ? Date.parse(lastHeartbeatAt) : Number.NaN;
  return !Number.isNaN(heartbeat) && now.getTime() - heartbeat <= offlineAfterSeconds * 1000
    ? Connection.Online
    : Connection.Offline;
}

/** One cluster's status view: its current desired state against its agent's last report. */
export async function clusterStatusView(
  ports: Pick<FleetStatusPorts, 'desiredStates' | 'statuses'>,
  cluster: ClusterRecord,
  now: Date,
  offlineAfterSeconds: number,
  /** Read the current desired state even when the record shows no head (it may be older than the read). */
  readDesired = cluster.head !== undefined,
): Promise<ClusterStatusView> {
  const [stored, status] = await Promise.all([
    readDesired ? ports.desiredStates.current(cluster.id) : Promise.resolve(undefined),
    ports.statuses.get(cluster.id),
  ]);
  return statusViewOf(cluster, stored, status, now, offlineAfterSeconds);
}

/** A cluster's status view from what was read: its current desired state and its agent's last report. */
function statusViewOf(
  cluster: ClusterRecord,
  stored: StoredDesiredState | undefined,
  status: Awaited<ReturnType<ClusterStatusStore['get']>>,
  now: Date,
  offlineAfterSeconds: number,
): ClusterStatusView {
  const manifest = stored ? parseDesiredState(JSON.parse(stored.manifest)) : undefined;
  const reported = new Map((status?.bundles ?? []).map((b) => [b.bundle, b]));
  const bundles: BundleStatusView[] = (manifest?.bundles ?? []).map((ref) => {
    const r = reported.get(ref.name);
    const upToDate = r !== undefined && r.hash === ref.hash;
    return {
      name: ref.name,
      state: r && upToDate ? r.state : BundleState.Pending,
      desiredHash: ref.hash,
      appliedHash: r?.hash ?? null,
      desiredGeneration: manifest?.generation ?? 0,
      appliedGeneration: r?.generation ?? null,
      upToDate,
      driftPolicy: ref.driftPolicy,
      paused: ref.paused,
      reportedState: r?.state ?? null,
      ...(r?.message !== undefined ? { message: r.message } : {}),
      ...(r?.failedObject !== undefined ? { failedObject: r.failedObject } : {}),
      ...(r?.drift !== undefined ? { drift: r.drift } : {}),
      ...(r ? { since: r.since } : {}),
    };
  });
  const connection = connectionAt(cluster.lastHeartbeatAt, now, offlineAfterSeconds);
  const state = bundles.reduce<BundleState>(
    (worst, b) => (severity.indexOf(b.state) > severity.indexOf(worst) ? b.state : worst),
    BundleState.Ready,
  );
  const desired = stored ? { generation: stored.generation, commit: stored.commit, etag: stored.etag } : null;
  const appliedGeneration = status?.appliedGeneration ?? null;
  return {
    id: cluster.id,
    labels: cluster.labels,
    connection,
    lastHeartbeatAt: cluster.lastHeartbeatAt ?? null,
    agentVersion: cluster.agentVersion ?? null,
    kubeVersion: cluster.kubeVersion ?? null,
    state,
    desired,
    appliedGeneration,
    inSync:
      connection === 'Online' &&
      desired !== null &&
      appliedGeneration === desired.generation &&
      bundles.every((b) => b.upToDate && b.state === 'Ready'),
    bundles,
    pins: (cluster.pins ?? []).map(pinView),
  };
}

/** The worst of some bundle states; Ready for none. */
export function worstState(states: Iterable<BundleState>): BundleState {
  let worst: BundleState = BundleState.Ready;
  for (const s of states) if (severity.indexOf(s) > severity.indexOf(worst)) worst = s;
  return worst;
}

/**
 * A cluster's view cut to the scope's bundles: its state is the worst of those, and it is
 * in sync when it applied the desired generation and those are up to date and Ready.
 * Pins of other bundles are left out too.
 */
export function scopeClusterView(
  view: ClusterStatusView,
  scope: Pick<StatusScope, 'ownsBundle'>,
): ClusterStatusView {
  const bundles = view.bundles.filter((b) => scope.ownsBundle(b.name));
  return {
    ...view,
    state: worstState(bundles.map((b) => b.state)),
    inSync:
      view.connection === Connection.Online &&
      view.desired !== null &&
      view.appliedGeneration === view.desired.generation &&
      bundles.every((b) => b.upToDate && b.state === BundleState.Ready),
    bundles,
    pins: view.pins.filter((p) => scope.ownsBundle(p.bundle)),
  };
}

/** A cluster's status digest from its view: what a fleet-wide listing needs of it. */
export function statusDigestOf(view: ClusterStatusView): ClusterStatusDigest {
  const counts: Record<string, number> = {};
  const issues: Record<string, string> = {};
  for (const b of view.bundles) {
    counts[b.state] = (counts[b.state] ?? 0) + 1;
    if (b.state !== BundleState.Ready) issues[b.name] = b.state;
  }
  return {
    etag: view.desired?.etag ?? null,
    state: view.state,
    counts,
    issues,
    appliedGeneration: view.appliedGeneration,
    allReady: view.bundles.every((b) => b.upToDate && b.state === BundleState.Ready),
  };
}

function sameDigest(a: ClusterStatusDigest | undefined, b: ClusterStatusDigest): boolean {
  return a !== undefined && JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Works the cluster's status digest out again and keeps it with its record when it
 * changed: after a report changed its status, or when the one kept is stale (the desired
 * state moved on since). Two reads, and a write only on a change.
 */
export async function refreshStatusDigest(
  ports: Pick<FleetStatusPorts, 'clusters' | 'desiredStates' | 'statuses' | 'now'>,
  cluster: Pick<ClusterRecord, 'id' | 'labels'> & Partial<Pick<ClusterRecord, 'statusDigest'>>,
): Promise<void> {
  if (!ports.clusters.recordStatusDigest) return;
  // Connection plays no part in the digest: the lister works it out from the heartbeat.
  const record = { ...cluster, tokenHash: '', registeredAt: '' };
  const view = await clusterStatusView(ports, record, ports.now(), 0, true);
  const digest = statusDigestOf(view);
  if (!sameDigest(cluster.statusDigest, digest)) await ports.clusters.recordStatusDigest(cluster.id, digest);
}

/**
 * Keeps a fresh status digest on a cluster's record right after a sync committed its new
 * desired state (`stored`), so that the next fleet listing reads the digest instead of the
 * cluster's full status: without it, the first listing after a fleet-wide change reads
 * every cluster (bench:status --stale). One read (the agent's last report; the desired
 * state is the one just written) and a write that loses to a report's fresher digest.
 * Best effort: a failure costs the next listing a read, never the sync.
 */
export async function digestAfterCommit(
  ports: Pick<FleetStatusPorts, 'clusters' | 'statuses' | 'now'>,
  cluster: ClusterRecord,
  stored: StoredDesiredState,
): Promise<void> {
  if (!ports.clusters.recordStatusDigest) return;
  try {
    const status = await ports.statuses.get(cluster.id);
    const digest = statusDigestOf(statusViewOf(cluster, stored, status, ports.now(), 0));
    await ports.clusters.recordStatusDigest(cluster.id, digest, true);
  } catch {
    // The listing works a stale digest out again.
  }
}

/** A sync report as the API sends it: errors carry their `file:line: message` text. */
export type SyncReportView = Omit<SyncReport, 'errors' | 'warnings'> & {
  readonly errors: readonly FleetErrorView[];
  readonly warnings?: readonly FleetErrorView[];
};

export function syncReportView(report: SyncReport): SyncReportView {
  const { warnings, ...rest } = report;
  return {
    ...rest,
    errors: report.errors.map(fleetErrorView),
    ...(warnings ? { warnings: warnings.map(fleetErrorView) } : {}),
  };
}

/** The other sources of the last sync, with their commit and error; a scope's own only. */
function sourcesView(
  sources: NonNullable<SyncState['sources']>,
  scope: Pick<StatusScope, 'ownsSource'> | undefined,
): Pick<NonNullable<FleetStatus['sync']>, 'sources'> {
  const out: Record<string, { commit: string; fetchedAt: string; error?: string }> = {};
  for (const [name, s] of Object.entries(sources)) {
    if (scope && !scope.ownsSource(name)) continue;
    out[name] = {
      commit: s.commit,
      fetchedAt: s.fetchedAt,
      ...(s.error === undefined ? {} : { error: s.error }),
    };
  }
  return { sources: out };
}

/** The last sync as the fleet status shows it: errors with their `file:line: message` text. */
export function syncView(
  sync: SyncState | undefined,
  scope?: Pick<StatusScope, 'ownsError' | 'ownsSource'>,
): FleetStatus['sync'] {
  return sync
    ? {
        commit: sync.commit,
        syncedAt: sync.syncedAt,
        clusters: sync.clusters,
        changedClusters: sync.changedClusters,
        errors: (scope ? sync.errors.filter((e) => scope.ownsError(e)) : sync.errors).map(fleetErrorView),
        ...(sync.sources ? sourcesView(sync.sources, scope) : {}),
      }
    : null;
}
