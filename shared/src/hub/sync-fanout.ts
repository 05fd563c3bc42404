import { type FleetError, normalizeFleetErrors } from '../errors.ts';
import { type Fleet, loadFleet } from '../fleet/index.ts';
import type { SourceRecord } from './fleet-sources.ts';
import { type ClusterRecord, type ClusterStore, GenerationReason, type RolloutWakeMessage } from './ports.ts';
import { loadRolloutGate } from './rollouts.ts';
import {
  applyFleet,
  emitSyncFailed,
  recordSyncState,
  type SyncOptions,
  type SyncPorts,
  type SyncReport,
  type SyncState,
  syncFleet,
} from './sync.ts';

/** One window of a dispatched sync: what a worker invocation plans, commits and notifies. */
export interface SyncWindowMessage {
  readonly jobId: string;
  /** 0-based; a job's windows are numbered 0 to `windows - 1`. */
  readonly window: number;
  readonly commit: string;
  /** The fleet files at `commit`, in the bundle store (as {@link SyncState.snapshotHash}). */
  readonly snapshotHash: string;
  readonly clusterIds: readonly string[];
}

/**
 * What the sync work queue carries: the windows of dispatched syncs, and rollout wakes
 * (delayed messages a {@link RolloutWakeMessage}'s timer sent). Windows carry no `kind`,
 * as they did before wakes shared the queue.
 */
export type SyncWorkMessage = SyncWindowMessage | RolloutWakeMessage;

export function isRolloutWakeMessage(message: SyncWorkMessage): message is RolloutWakeMessage {
  return 'kind' in message && message.kind === 'rollout-wake';
}

/** The work queue of dispatched windows (SQS): at-least-once, redelivered until a worker succeeds. */
export interface SyncWorkQueue {
  send(messages: readonly SyncWindowMessage[]): Promise<void>;
}

/** A dispatched sync as the hub records it (hub-state table). */
export interface SyncJob {
  readonly jobId: string;
  /** The sync lease's holder: the last window gives the lease up in its name. */
  readonly holder: string;
  readonly commit: string;
  readonly snapshotHash: string;
  readonly windows: number;
  readonly windowsDone: number;
  readonly clusters: number;
  readonly changedClusters: number;
  readonly errors: readonly FleetError[];
  readonly startedAt: string;
  readonly kubeVersionMatters: boolean;
  /** The other fleet sources read for this sync (SyncState.sources); absent when none. */
  readonly sources?: Readonly<Record<string, SourceRecord>>;
}

export interface SyncJobStore {
  create(job: Omit<SyncJob, 'windowsDone' | 'clusters' | 'changedClusters'>): Promise<void>;
  /**
   * Records a window as done, once: a window already recorded (a redelivery) changes
   * nothing and comes back with `recorded: false`.
   * @returns the job as the write left it (or found it).
   * @throws Error when the job does not exist.
   */
  completeWindow(
    jobId: string,
    window: number,
    result: {
      readonly clusters: number;
      readonly changedClusters: number;
      readonly errors: readonly FleetError[];
    },
  ): Promise<{ readonly recorded: boolean; readonly job: SyncJob }>;
}

/** How a sync fans out: the queue, the job records, and the fleet size (in windows) past which it does. */
export interface SyncFanout {
  readonly queue: SyncWorkQueue;
  readonly jobs: SyncJobStore;
  /** A fleet of more windows than this is dispatched; up to it, the sync runs in one process. */
  readonly thresholdWindows: number;
  /** A new job id (random in the hub, fixed in tests). */
  readonly newJobId: () => string;
}

const sendBatch = 10;

/**
 * Splits the fleet into windows and, when there are more than the threshold, records a
 * job and enqueues one message per window. Only cluster ids are held, never records.
 * @returns undefined when the fleet is small enough to sync in this process.
 */
export async function dispatchSync(
  fanout: SyncFanout,
  clusters: Pick<ClusterStore, 'pages'>,
  opts: {
    readonly holder: string;
    readonly commit: string;
    readonly snapshotHash: string;
    readonly windowClusters: number;
    readonly startedAt: string;
    readonly kubeVersionMatters: boolean;
    readonly fleetErrors: readonly FleetError[];
    readonly sources?: Readonly<Record<string, SourceRecord>>;
  },
): Promise<Pick<SyncReport, 'status' | 'job' | 'clusters'> | undefined> {
  const windows: string[][] = [];
  let clusterCount = 0;
  for await (const page of clusters.pages(opts.windowClusters)) {
    if (page.length === 0) continue;
    windows.push(page.map((c) => c.id));
    clusterCount += page.length;
  }
  if (windows.length <= fanout.thresholdWindows) return undefined;
  const jobId = fanout.newJobId();
  // The job exists before any window can finish, so every window finds it.
  await fanout.jobs.create({
    jobId,
    holder: opts.holder,
    commit: opts.commit,
    snapshotHash: opts.snapshotHash,
    windows: windows.length,
    errors: opts.fleetErrors,
    startedAt: opts.startedAt,
    kubeVersionMatters: opts.kubeVersionMatters,
    ...(opts.sources ? { sources: opts.sources } : {}),
  });
  for (let i = 0; i < windows.length; i += sendBatch) {
    await fanout.queue.send(
      windows.slice(i, i + sendBatch).map((clusterIds, k) => ({
        jobId,
        window: i + k,
        commit: opts.commit,
        snapshotHash: opts.snapshotHash,
        clusterIds,
      })),
    );
  }
  return { status: 'dispatched', job: { id: jobId, windows: windows.length }, clusters: clusterCount };
}

/** What one worker invocation did with its window. */
export interface SyncWindowReport {
  readonly jobId: string;
  readonly window: number;
  /** False when the window had been recorded already (a redelivery). */
  readonly recorded: boolean;
  /** Whether this window was the job's last one, so that the sync state is now recorded. */
  readonly completed: boolean;
  readonly result: Omit<SyncReport, 'status' | 'commit'>;
}

/**
 * The fleet loaded from a snapshot, kept per snapshot hash while the worker stays warm:
 * every window of a job plans from the same snapshot.
 */
const fleetCache = new Map<string, Fleet>();
const fleetCacheLimit = 2;

async function fleetOfSnapshot(ports: Pick<SyncPorts, 'bundles'>, snapshotHash: string, commit: string) {
  const cached = fleetCache.get(snapshotHash);
  if (cached) return cached;
  const snapshot = await ports.bundles.get(snapshotHash);
  if (!snapshot) throw new Error(`fleet snapshot ${snapshotHash} of commit ${commit} is missing`);
  const entries = JSON.parse(new TextDecoder().decode(snapshot)) as [string, string][];
  const fleet = loadFleet(entries.map(([path, content]) => ({ path, content })));
  if (fleetCache.size >= fleetCacheLimit) fleetCache.clear();
  fleetCache.set(snapshotHash, fleet);
  return fleet;
}

/**
 * Applies one dispatched window (a worker invocation).
 *
 * 1. Load the fleet from the job's snapshot (cached while warm) and the rollout gate.
 * 2. Read the window's clusters (a cluster deleted meanwhile is skipped) and apply them as
 *    a sync does: commits are conditional on each cluster's head and skip unchanged
 *    references, so a redelivered window writes no generation twice.
 * 3. Record the window done, once. The window that completes the job records the sync
 *    state and gives the lease up (and runs the sync again when one was asked for meanwhile).
 *
 * A worker that fails midway throws: the queue redelivers the window and the rerun
 * finishes what the failed one left.
 */
export async function applySyncWindow(
  ports: SyncPorts & { readonly fanout: SyncFanout },
  message: SyncWindowMessage,
  opts: SyncOptions = {},
): Promise<SyncWindowReport> {
  try {
    return await applyWindow(ports, message, opts);
  } catch (err) {
    // Redelivered until it succeeds: the notifier's window de-duplicates a failure that repeats.
    await emitSyncFailed(ports, err, 'fan-out', message.commit);
    throw err;
  }
}

async function applyWindow(
  ports: SyncPorts & { readonly fanout: SyncFanout },
  message: SyncWindowMessage,
  opts: SyncOptions,
): Promise<SyncWindowReport> {
  const fleet = await fleetOfSnapshot(ports, message.snapshotHash, message.commit);
  const gate = ports.rollouts
    ? await loadRolloutGate({ ...ports, rollouts: ports.rollouts }, fleet)
    : undefined;
  // A cluster deregistered since the job was dispatched is simply not there.
  const window = ports.clusters.getMany
    ? await ports.clusters.getMany(message.clusterIds)
    : (await Promise.all(message.clusterIds.map((id) => ports.clusters.get(id)))).filter(
        (c): c is ClusterRecord => c !== undefined,
      );
  const result = await applyFleet(ports, fleet, message.commit, [window], {
    ...opts,
    reason: GenerationReason.Sync,
    ...(gate ? { gate } : {}),
  });
  const { recorded, job } = await ports.fanout.jobs.completeWindow(message.jobId, message.window, {
    clusters: result.clusters,
    changedClusters: result.changed.length,
    errors: result.errors,
  });
  const completed = job.windowsDone >= job.windows;
  if (completed) await finishJob(ports, job, opts);
  return { jobId: message.jobId, window: message.window, recorded, completed, result };
}

/**
 * Whether the sync state was saved since the job started: by this job already (its last
 * window delivered again), or by a sync that started after this job's lease ran out. Either
 * way, saving the job's state now could put an older commit over a newer one. Nothing else
 * saves it while the job holds the lease.
 */
async function finishedSince(
  ports: Pick<SyncPorts, 'syncState'>,
  job: SyncJob,
): Promise<{ readonly finished: boolean; readonly state: SyncState | undefined }> {
  const state = await ports.syncState.get();
  return { finished: state !== undefined && state.syncedAt >= job.startedAt, state };
}

/** Records the job's sync state (unless a newer one is there), gives the lease up, and runs a sync asked for meanwhile. */
async function finishJob(ports: SyncPorts, job: SyncJob, opts: SyncOptions): Promise<void> {
  const since = await finishedSince(ports, job);
  if (!since.finished)
    await recordSyncState(
      ports,
      {
        commit: job.commit,
        snapshotHash: job.snapshotHash,
        syncedAt: ports.now().toISOString(),
        errors: normalizeFleetErrors([...job.errors]),
        clusters: job.clusters,
        changedClusters: job.changedClusters,
        ...(job.kubeVersionMatters ? { kubeVersionMatters: true } : {}),
        ...(job.sources ? { sources: job.sources } : {}),
      },
      since.state,
    );
  const { rerun } = await ports.syncState.releaseLease(job.holder);
  // The repo moved while the job ran: sync again, as the in-process path goes round once more.
  if (rerun) await syncFleet(ports, { ...opts, holder: `${job.holder}+rerun:${job.jobId}` });
}
