import { sha256Hash } from '../canonical.ts';
import {
  buildDesiredState,
  canonicalDesiredState,
  type DesiredState,
  desiredContentHash,
  manifestEtag,
  parseDesiredState,
} from '../desired-state.ts';
import { type FleetError, normalizeFleetErrors } from '../errors.ts';
import { type EnginePorts, type Fleet, loadFleet, type ResolvedChart } from '../fleet/index.ts';
import type { EventSink } from '../notify/events.ts';
import { emitEvents, fleetErrorEvents, policyViolationEvents, syncFailedEvent } from './fleet-events.ts';
import {
  declaredSourceFiles,
  fetchFleetSources,
  type SourceDeclarationStore,
  type SourceFetcher,
  type SourceRecord,
} from './fleet-sources.ts';
import { applyPins } from './pins.ts';
import {
  type BundlePin,
  type BundleStore,
  type ClusterRecord,
  type ClusterStore,
  ConflictError,
  type DesiredStateStore,
  GenerationReason,
  type Notifier,
  type RolloutStore,
  type RolloutTimer,
  type StoredDesiredState,
} from './ports.ts';
import {
  applyRolloutGate,
  loadRolloutGate,
  type RolloutGate,
  type RolloutStepOutcome,
  startRollouts,
} from './rollouts.ts';
import { type ClusterStatusStore, digestAfterCommit } from './status.ts';
import { dispatchSync, type SyncFanout } from './sync-fanout.ts';

/** A file of the fleet repo at one commit. */
export interface FleetSourceFile {
  readonly path: string;
  readonly content: string;
}

/** Where the fleet repo comes from (isomorphic-git in the hub). */
export interface FleetSource {
  fetch(): Promise<{ commit: string; files: FleetSourceFile[] }>;
}

/** Signs a manifest's canonical bytes; an Ed25519 key in memory, or a KMS key. */
export interface Signer {
  readonly keyId: string;
  /** Base64 signature of the UTF-8 bytes of `canonical`. */
  sign(canonical: string): Promise<string>;
}

/** What the hub remembers of its last sync of the fleet repo. */
export interface SyncState {
  readonly commit: string;
  /** Address, in the bundle store, of the fleet files at `commit`: label changes re-plan from it. */
  readonly snapshotHash: string;
  readonly syncedAt: string;
  readonly errors: readonly FleetError[];
  /** Policy warnings (Warn and Audit bindings) of the sync; absent when none. */
  readonly warnings?: readonly FleetError[];
  readonly clusters: number;
  readonly changedClusters: number;
  /** Whether a Helm bundle renders with each cluster's own Kubernetes version, so that a new version reported by an agent needs a re-plan. */
  readonly kubeVersionMatters?: boolean;
  /**
   * The other fleet sources the platform declares, by name: the commit their bundles came
   * from and why that is not their tip, when it is not. `commit` above is the platform's.
   */
  readonly sources?: Readonly<Record<string, SourceRecord>>;
}

export interface SyncStateStore {
  get(): Promise<SyncState | undefined>;
  save(state: SyncState): Promise<void>;
  /**
   * Takes the sync lease until `until`, or, when another sync holds it, asks that sync
   * to run once more when it is done and returns false.
   */
  acquireLease(holder: string, now: string, until: string): Promise<boolean>;
  /** Gives the lease up; `rerun` tells whether another sync was asked for meanwhile. */
  releaseLease(holder: string): Promise<{ rerun: boolean }>;
}

export interface SyncPorts {
  /** The platform source: the hub's own fleet repo. */
  readonly source: FleetSource;
  /** Reads the other sources the platform declares (`sources/`); without it, they cannot be read (an error each). */
  readonly sourceFetcher?: SourceFetcher;
  /** The sources declared through the admin API; without it, only the platform's `sources/` are read. */
  readonly declaredSources?: SourceDeclarationStore;
  readonly clusters: ClusterStore;
  readonly desiredStates: DesiredStateStore;
  readonly bundles: BundleStore;
  readonly notifier: Notifier;
  readonly syncState: SyncStateStore;
  readonly signer: Signer;
  readonly now: () => Date;
  /** The render engine and chart fetcher for Helm and Kustomize bundles; without them those bundles are broken. */
  readonly engine?: EnginePorts;
  /** Progressive rollouts (bundles with `rollout:`); without a store, such bundles reach every cluster at once. */
  readonly rollouts?: RolloutStore;
  /** Wakes the hub when a rollout's bake, deadline, grace or window ends; without it, only reports and the schedule step rollouts. */
  readonly rolloutTimer?: RolloutTimer;
  /** Hands the windows of a big fleet to worker invocations; without it every sync runs in one process. */
  readonly fanout?: SyncFanout;
  /** Where fleet events go (sync failed, fleet-repo errors, bundle states, rollouts); without it, nowhere. */
  readonly events?: EventSink;
  /**
   * The agents' reports: with them, each cluster a sync moves gets a fresh status digest
   * at once ({@link digestAfterCommit}), so the fleet listing after a fleet-wide change
   * stays one scan. Without them, the first listing works the digests out.
   */
  readonly statuses?: ClusterStatusStore;
}

/** What one sync did, as data: it is logged, returned by the API and asserted by tests. */
export interface SyncReport {
  /**
   * `synced`: done in this process; `queued`: another sync holds the lease and runs again
   * after it; `dispatched`: the fleet's windows were handed to worker invocations, and
   * the sync state is recorded when the last of them is done.
   */
  readonly status: 'synced' | 'queued' | 'dispatched';
  readonly commit?: string;
  /** The fan-out job, when `dispatched`: its id and how many windows it was split into. */
  readonly job?: { readonly id: string; readonly windows: number };
  readonly clusters: number;
  readonly changed: readonly {
    readonly clusterId: string;
    readonly generation: number;
    readonly etag: string;
  }[];
  readonly unchanged: number;
  readonly errors: readonly FleetError[];
  /** Problems that hold nothing: plain Secrets in the repo (absent when none). */
  readonly warnings?: readonly FleetError[];
  /** Items written to storage (bundle chunks and desired-state transactions' items). */
  readonly itemsWritten: number;
  readonly notified: number;
  readonly notifyFailures: readonly { readonly clusterId: string; readonly error: string }[];
  readonly conflictsRetried: number;
  /** Chart versions resolved from repositories for this sync (ranges resolved to versions). */
  readonly charts?: readonly ResolvedChart[];
}

const utf8 = new TextEncoder();
const emptyRendered = new Map<string, string>();
const maxCommitAttempts = 5;
const commitConcurrency = 16;
export const leaseMs = 15 * 60_000;

/**
 * Syncs every registered cluster to the tip of the fleet repo.
 *
 * 1. Take the sync lease (or queue a rerun behind the sync that holds it).
 * 2. Fetch the repo and load it once.
 * 3. Walk the fleet a window of clusters at a time ({@link SyncOptions}), so memory stays
 *    bounded however big the fleet is. For each window:
 *    a. plan each cluster from its labels; keep the last good reference of any held bundle;
 *    b. skip clusters whose bundle references did not change: nothing written, nothing sent;
 *    c. store the bundles that are new, then each changed cluster's signed desired state,
 *       conditional on the generation it was computed from (retrying on conflict);
 *    d. notify exactly the window's changed clusters (while the next window is written).
 * 4. Record the sync state with its errors.
 */
export async function syncFleet(
  ports: SyncPorts,
  opts: { holder: string } & SyncOptions,
): Promise<SyncReport> {
  const now = ports.now();
  const acquired = await ports.syncState.acquireLease(
    opts.holder,
    now.toISOString(),
    new Date(now.getTime() + leaseMs).toISOString(),
  );
  if (!acquired) return { ...emptyReport(), status: 'queued' };
  let report: SyncReport;
  try {
    for (;;) {
      report = await syncOnce(ports, opts);
      // The last window of a dispatched sync records its state and gives the lease up.
      if (report.status === 'dispatched') return report;
      const { rerun } = await ports.syncState.releaseLease(opts.holder);
      if (!rerun) return report;
      const again = ports.now();
      const reacquired = await ports.syncState.acquireLease(
        opts.holder,
        again.toISOString(),
        new Date(again.getTime() + leaseMs).toISOString(),
      );
      if (!reacquired) return report;
    }
  } catch (err) {
    await ports.syncState.releaseLease(opts.holder).catch(() => undefined);
    await emitSyncFailed(ports, err, syncTrigger(opts.holder));
    throw err;
  }
}

/** What started a sync, from its lease holder (`schedule:…`, `webhook:…`, `api:…`). */
function syncTrigger(holder: string): string {
  const kind = holder.split(':')[0] ?? '';
  return kind === 'api' ? 'admin' : kind || 'sync';
}

const reportedFailures = new WeakSet<object>();

/** Emits `sync.failed` for a sync that threw; the caller rethrows. */
export async function emitSyncFailed(
  ports: Pick<SyncPorts, 'events' | 'now'>,
  err: unknown,
  trigger: string,
  commit?: string,
): Promise<void> {
  // A fan-out job's rerun sync that failed is reported once, not again by the window that ran it.
  if (err !== null && typeof err === 'object') {
    if (reportedFailures.has(err)) return;
    reportedFailures.add(err);
  }
  await emitEvents(ports.events, () => [
    syncFailedEvent(err, ports.now(), { trigger, ...(commit ? { commit } : {}) }),
  ]);
}

/**
 * Saves a sync's state and emits what changed in the fleet-repo errors against the state
 * it replaces (`fleet.errors` when new ones appeared, `fleet.errors-cleared` when none are
 * left). `previous` is the state read before saving, when the caller read it already.
 */
export async function recordSyncState(
  ports: Pick<SyncPorts, 'syncState' | 'events'>,
  state: SyncState,
  previous?: SyncState,
): Promise<void> {
  const before = previous ?? (ports.events ? await ports.syncState.get() : undefined);
  await ports.syncState.save(state);
  await emitEvents(ports.events, () => [
    ...fleetErrorEvents(before, state),
    ...policyViolationEvents(before, state),
  ]);
}

async function syncOnce(ports: SyncPorts, opts: { holder: string } & SyncOptions): Promise<SyncReport> {
  const fetchedPlatform = await ports.source.fetch();
  // The admin API's declarations join the platform's files (`api:sources/<name>`).
  const platform = ports.declaredSources
    ? {
        ...fetchedPlatform,
        files: [...fetchedPlatform.files, ...(await declaredSourceFiles(ports.declaredSources))],
      }
    : fetchedPlatform;
  const commit = platform.commit;
  const previous = await ports.syncState.get();
  // The other sources' bundles join the platform's; one that cannot be read keeps its last good files.
  const fetched = await fetchFleetSources(
    platform,
    ports.sourceFetcher,
    {
      ...(previous?.sources ? { sources: previous.sources } : {}),
      files: async () => (previous ? await snapshotFiles(ports, previous.snapshotHash) : undefined),
    },
    // A scheduled sync reads each source at its own interval; a webhook or an admin's sync reads them all.
    { now: ports.now(), respectIntervals: opts.holder.startsWith('schedule:') },
  );
  const files = fetched.files;
  const sources = Object.keys(fetched.sources).length > 0 ? { sources: fetched.sources } : {};
  const fleet = loadFleet(files.map((f) => ({ path: f.path, content: f.content })));
  const snapshotJson = JSON.stringify(files.map((f) => [f.path, f.content]));
  const snapshot = utf8.encode(snapshotJson);
  const snapshotHash = sha256Hash(snapshotJson);
  let itemsWritten = 0;
  if (!(await ports.bundles.existing([snapshotHash])).has(snapshotHash)) {
    itemsWritten += await ports.bundles.putMany([{ hash: snapshotHash, content: snapshot }]);
  }
  // A page of clusters at a time, one window each: memory does not grow with the fleet.
  const windowClusters = Math.max(1, opts.windowClusters ?? defaultWindowClusters);
  // Bundles with `rollout:`: start, keep or supersede their rollouts before anything is written.
  const gate = ports.rollouts
    ? (
        await startRollouts(
          { ...ports, rollouts: ports.rollouts },
          fleet,
          commit,
          ports.clusters.pages(windowClusters),
          (window) => fleet.prepare(window.map(clusterInputOf), ports.engine ?? {}),
        )
      ).gate
    : undefined;
  if (ports.fanout) {
    const dispatched = await dispatchSync(ports.fanout, ports.clusters, {
      holder: opts.holder,
      commit,
      snapshotHash,
      windowClusters,
      startedAt: isoNow(ports),
      kubeVersionMatters: fleet.usesClusterKubeVersion,
      fleetErrors: normalizeFleetErrors([...fetched.errors, ...fleet.errors]),
      ...sources,
    });
    if (dispatched)
      return {
        ...emptyReport(),
        ...dispatched,
        commit,
        itemsWritten,
        ...warningsOf(fleet, fetched.warnings),
      };
  }
  const result = await applyFleet(ports, fleet, commit, ports.clusters.pages(windowClusters), {
    ...opts,
    reason: GenerationReason.Sync,
    ...(gate ? { gate } : {}),
  });
  const errors =
    fetched.errors.length > 0 ? normalizeFleetErrors([...fetched.errors, ...result.errors]) : result.errors;
  const planWarnings = [...fetched.warnings, ...(result.warnings ?? [])];
  const state: SyncState = {
    commit,
    snapshotHash,
    syncedAt: ports.now().toISOString(),
    errors,
    ...(planWarnings.length > 0 ? { warnings: normalizeFleetErrors(planWarnings) } : {}),
    clusters: result.clusters,
    changedClusters: result.changed.length,
    ...(fleet.usesClusterKubeVersion ? { kubeVersionMatters: true } : {}),
    ...sources,
  };
  await recordSyncState(ports, state, previous);
  return {
    ...result,
    status: 'synced',
    commit,
    errors,
    itemsWritten: itemsWritten + result.itemsWritten,
    ...warningsOf(fleet, planWarnings),
  };
}

/** The files of a stored fleet snapshot, undefined when it is gone. */
/** The fleet files of a sync snapshot (the combined tree), or undefined when it is gone. */
export async function snapshotFiles(
  ports: Pick<SyncPorts, 'bundles'>,
  snapshotHash: string,
): Promise<{ path: string; content: string }[] | undefined> {
  const snapshot = await ports.bundles.get(snapshotHash);
  if (!snapshot) return undefined;
  const entries = JSON.parse(new TextDecoder().decode(snapshot)) as [string, string][];
  return entries.map(([path, content]) => ({ path, content }));
}

function warningsOf(fleet: Fleet, planned: readonly FleetError[] = []): Pick<SyncReport, 'warnings'> {
  const all = planned.length > 0 ? normalizeFleetErrors([...fleet.warnings, ...planned]) : fleet.warnings;
  return all.length > 0 ? { warnings: all } : {};
}

/** Re-plans of one cluster whose inputs or head changed while it planned, at most this many. */
const maxReplans = 30;

/**
 * Re-plans one cluster at the last synced commit, as after a label change. Does
 * nothing before the first sync, and nothing when the plan is unchanged.
 *
 * A plan reads the cluster's labels and Kubernetes version from its record. When another
 * change to them lands while this one plans, this plan may be committed from inputs no
 * longer current, after that change's own re-plan found nothing to do: so the record is
 * read again after committing, and the cluster planned again until one plan ran with its
 * inputs unchanged (the label revision and Kubernetes version as before). Likewise when
 * other re-plans of the cluster won every commit attempt of this one.
 *
 * @throws ConflictError when the inputs kept changing through every re-plan.
 */
export async function recomputeCluster(
  ports: Omit<SyncPorts, 'source'>,
  clusterId: string,
  opts: {
    readonly onlyIfKubeVersionMatters?: boolean;
    /** Recorded on the generation it writes; `labels` unless told. */
    readonly reason?: GenerationReason;
    /** Drops the cluster's rollback pins: the new generation is the plan as it is. */
    readonly clearPins?: boolean;
  } = {},
): Promise<SyncReport> {
  const state = await ports.syncState.get();
  if (!state) return emptyReport();
  // A new Kubernetes version changes nothing unless a chart renders with it: no snapshot load, no plan.
  if (opts.onlyIfKubeVersionMatters && !state.kubeVersionMatters) return emptyReport();
  let cluster = await ports.clusters.get(clusterId);
  if (!cluster) return emptyReport();
  const snapshot = await ports.bundles.get(state.snapshotHash);
  if (!snapshot) throw new Error(`fleet snapshot ${state.snapshotHash} of commit ${state.commit} is missing`);
  const entries = JSON.parse(new TextDecoder().decode(snapshot)) as [string, string][];
  const fleet = loadFleet(entries.map(([path, content]) => ({ path, content })));
  const gate = ports.rollouts
    ? await loadRolloutGate({ ...ports, rollouts: ports.rollouts }, fleet)
    : undefined;
  const applyOptions = {
    ...(gate ? { gate } : {}),
    reason: opts.reason ?? GenerationReason.Labels,
    ...(opts.clearPins ? { clearPins: true } : {}),
  };
  let report: SyncReport | undefined;
  for (let replan = 1; ; replan++) {
    let moved = false;
    try {
      const result = await applyFleet(ports, fleet, state.commit, [[cluster]], applyOptions);
      const planned: SyncReport = { ...result, status: 'synced', commit: state.commit };
      report = report ? mergeReplans(report, planned) : planned;
    } catch (err) {
      // Other re-plans of this cluster kept moving its head through every commit attempt:
      // plan again from the record as it is now, as when its inputs changed.
      if (!(err instanceof ConflictError)) throw err;
      moved = true;
    }
    const after: ClusterRecord | undefined = await ports.clusters.get(clusterId);
    if (!after) return report ?? emptyReport();
    if (!moved && samePlanInputs(cluster, after)) return report ?? emptyReport();
    if (replan >= maxReplans) {
      throw new ConflictError(
        `cluster "${clusterId}" kept changing (its labels, Kubernetes version or desired state) while it was re-planned`,
      );
    }
    cluster = after;
  }
}

/** Whether a plan made from `before` still holds for `after`: no label change and the same Kubernetes version. */
function samePlanInputs(before: ClusterRecord, after: ClusterRecord): boolean {
  return before.labelsRevision === after.labelsRevision && before.kubeVersion === after.kubeVersion;
}

/** One report for successive re-plans of one cluster: what each wrote and changed, the last one's errors. */
function mergeReplans(first: SyncReport, then: SyncReport): SyncReport {
  const changed = new Map([...first.changed, ...then.changed].map((c) => [c.clusterId, c]));
  return {
    ...then,
    changed: [...changed.values()],
    unchanged: changed.size > 0 ? 0 : then.unchanged,
    itemsWritten: first.itemsWritten + then.itemsWritten,
    notified: first.notified + then.notified,
    notifyFailures: [...first.notifyFailures, ...then.notifyFailures],
    conflictsRetried: first.conflictsRetried + then.conflictsRetried,
  };
}

interface PendingChange {
  readonly cluster: ClusterRecord;
  readonly generation: number;
  readonly etag: string;
}

/** How a sync walks the fleet; the defaults suit the hub's Lambda. */
export interface SyncOptions {
  /**
   * Clusters planned, stored, committed and notified together. A sync holds the rendered
   * bundles and pending manifests of one window at a time (and notifies the previous one
   * meanwhile), so its memory does not grow with the fleet.
   */
  readonly windowClusters?: number;
  /**
   * How many bundle hashes a sync remembers as stored, so that shared bundles are not
   * looked up again in every window; past it the oldest are forgotten and, when met again,
   * asked of the store (a read, never a second write).
   */
  readonly rememberedBundles?: number;
}

export const defaultWindowClusters = 500;
const defaultRememberedBundles = 20_000;

/** Hashes known to be stored, least recently seen first, at most `limit` of them. */
class RecentHashes {
  readonly #set = new Set<string>();
  readonly #limit: number;

  constructor(limit: number) {
    this.#limit = Math.max(1, limit);
  }

  has(hash: string): boolean {
    if (!this.#set.delete(hash)) return false;
    this.#set.add(hash);
    return true;
  }

  add(hash: string): void {
    this.#set.delete(hash);
    this.#set.add(hash);
    if (this.#set.size > this.#limit) {
      const oldest = this.#set.values().next();
      if (!oldest.done) this.#set.delete(oldest.value);
    }
  }
}

/**
 * Plans, stores, commits and notifies the clusters of `windows`, one window at a time
 * (a page of the cluster listing, the one cluster a re-plan is for, or the window a
 * fan-out worker was handed).
 */
export async function applyFleet(
  ports: Omit<SyncPorts, 'source' | 'syncState'>,
  fleet: Fleet,
  commit: string,
  windows: AsyncIterable<readonly ClusterRecord[]> | Iterable<readonly ClusterRecord[]>,
  opts: SyncOptions & {
    readonly reason: GenerationReason;
    readonly clearPins?: boolean;
    /** What rollouts hold back from which clusters. */
    readonly gate?: RolloutGate;
  },
): Promise<Omit<SyncReport, 'status' | 'commit'>> {
  let clusterCount = 0;
  let errors: FleetError[] = [...fleet.errors];
  // Policy warnings (Warn and Audit bindings) on what the clusters get, one of each.
  let warnings: FleetError[] = [];
  const changed: { clusterId: string; generation: number; etag: string }[] = [];
  let unchanged = 0;
  let itemsWritten = 0;
  let conflictsRetried = 0;
  let notifiedCount = 0;
  const notifyFailures: { clusterId: string; error: string }[] = [];
  const storedBundles = new RecentHashes(opts.rememberedBundles ?? defaultRememberedBundles);
  const clusterInput = clusterInputOf;

  /** Stores the rendered bundles a manifest references that are not stored yet; many at a time. */
  const storeBundles = async (rendered: ReadonlyMap<string, string>) => {
    const wanted = [...rendered.keys()].filter((h) => !storedBundles.has(h));
    if (wanted.length === 0) return;
    for (const h of wanted) storedBundles.add(h);
    const present = await ports.bundles.existing(wanted);
    const missing = wanted.filter((h) => !present.has(h));
    if (missing.length === 0) return;
    const written = await ports.bundles.putMany(
      missing.map((hash) => ({ hash, content: utf8.encode(rendered.get(hash) ?? '') })),
    );
    itemsWritten += written;
  };

  /** Plans one cluster; undefined when its desired state would not change. */
  const prepare = async (cluster: ClusterRecord, collectErrors: boolean) => {
    const plan = fleet.planCluster(clusterInput(cluster));
    if (collectErrors) errors.push(...plan.errors);
    if (collectErrors && plan.warnings) warnings.push(...plan.warnings);
    const head = cluster.head;
    // The last good state is only read when something is held, so a healthy sync of a
    // big fleet reads no manifests at all.
    const kept = opts.gate?.keptFor(cluster.id);
    const needsLastGood =
      head !== undefined && (plan.status === 'held' || plan.held.length > 0 || kept !== undefined);
    const lastGood = needsLastGood ? await currentManifest(ports.desiredStates, cluster.id) : undefined;
    const planned = buildDesiredState({
      plan,
      commit,
      generation: (head?.generation ?? 0) + 1,
      lastGood,
      tenants: fleet.tenantNamespaces,
    });
    const pinned = opts.clearPins
      ? { state: planned, pins: [], ended: (cluster.pins ?? []).map((p) => p.bundle).sort() }
      : applyPins(planned, plan, cluster.pins);
    // A rollout that has not released this cluster (or reverted it) keeps its bundle where it is.
    const next = applyRolloutGate(pinned.state, kept);
    const refsHash = desiredContentHash(next);
    // A pin that ends is recorded with a generation of its own even when the references stay.
    if (head && head.refsHash === refsHash && pinned.ended.length === 0) return undefined;
    const rendered = new Map<string, string>();
    for (const b of plan.bundles) rendered.set(b.rendered.hash, b.rendered.canonical);
    const pins: readonly BundlePin[] | undefined = pinned.ended.length > 0 ? pinned.pins : undefined;
    return { cluster, next, refsHash, rendered, pins, pinsEnded: pinned.ended };
  };

  /** Commits one cluster's manifest, re-planning on conflict; undefined when there is nothing left to commit. */
  const commitCluster = async (
    prepared: NonNullable<Awaited<ReturnType<typeof prepare>>>,
  ): Promise<PendingChange | undefined> => {
    let current: typeof prepared | undefined = prepared;
    for (let attempt = 1; current; attempt++) {
      const { cluster, next, refsHash, pins, pinsEnded } = current;
      const canonical = canonicalDesiredState(next);
      const stored: StoredDesiredState = {
        clusterId: cluster.id,
        generation: next.generation,
        etag: manifestEtag(next),
        refsHash,
        commit,
        manifest: canonical,
        signature: await ports.signer.sign(canonical),
        keyId: ports.signer.keyId,
        createdAt: ports.now().toISOString(),
        reason: opts.reason,
        ...(pinsEnded.length > 0 ? { pinsEnded } : {}),
      };
      try {
        // Awaited first: `itemsWritten += await ...` would add to a value read before the wait.
        const written = await ports.desiredStates.commit(
          stored,
          cluster.head?.generation,
          pins ? { pins } : undefined,
        );
        itemsWritten += written;
        if (ports.statuses) await digestAfterCommit({ ...ports, statuses: ports.statuses }, cluster, stored);
        return { cluster, generation: stored.generation, etag: stored.etag };
      } catch (err) {
        if (!(err instanceof ConflictError) || attempt >= maxCommitAttempts) throw err;
        // Someone else moved this cluster (a label change, another sync): plan again from its new head.
        conflictsRetried++;
        const fresh = await ports.clusters.get(cluster.id);
        if (fresh) await fleet.prepare([clusterInput(fresh)], ports.engine ?? {});
        current = fresh ? await prepare(fresh, false) : undefined;
        if (current) await storeBundles(current.rendered);
      }
    }
    return undefined;
  };

  // Notifying one window overlaps with the next window's writes; at most one is in flight.
  let notifying: Promise<void> = Promise.resolve();
  let notifyError: unknown;
  const notifyWindow = (changes: readonly PendingChange[]) =>
    ports.notifier.notify(changes).then(
      (res) => {
        notifiedCount += res.sent;
        notifyFailures.push(...res.failed);
      },
      (err: unknown) => {
        notifyError ??= err;
      },
    );

  for await (const window of windows) {
    clusterCount += window.length;
    // 0. Overlays, Helm and Kustomize for the window's clusters: one render per distinct
    //    variant, values and Kubernetes version (repeats across windows come from the cache).
    await fleet.prepare(window.map(clusterInput), ports.engine ?? {});
    // 1. Plan the window's clusters (pure, apart from reading last good states of held
    //    bundles), keeping only what the next steps need.
    const pending: NonNullable<Awaited<ReturnType<typeof prepare>>>[] = [];
    const windowRendered = new Map<string, string>();
    for (const cluster of window) {
      const prepared = await prepare(cluster, true);
      if (!prepared) {
        unchanged++;
        continue;
      }
      for (const [hash, canonical] of prepared.rendered)
        if (!windowRendered.has(hash)) windowRendered.set(hash, canonical);
      pending.push({ ...prepared, rendered: emptyRendered });
    }
    // Planned: what prepare kept for these clusters can go (memory follows the window).
    fleet.forget(window.map((c) => c.id));
    // A broken bundle reports the same error for every cluster it targets: keep one of each.
    errors = normalizeFleetErrors(errors);
    if (warnings.length > 0) warnings = normalizeFleetErrors(warnings);
    if (pending.length === 0) continue;
    // 2. Store the window's new bundles, before any manifest points at them.
    await storeBundles(windowRendered);
    windowRendered.clear();
    // 3. Commit each changed cluster's manifest, conditional on the head it was planned from.
    const committed: PendingChange[] = [];
    let nextIndex = 0;
    const worker = async () => {
      while (nextIndex < pending.length) {
        const p = pending[nextIndex++];
        const done = p ? await commitCluster(p) : undefined;
        if (done) committed.push(done);
      }
    };
    await Promise.all(Array.from({ length: Math.min(commitConcurrency, pending.length) }, worker));
    for (const c of committed)
      changed.push({ clusterId: c.cluster.id, generation: c.generation, etag: c.etag });
    // 4. Notify exactly the window's changed clusters, once the previous window's are sent.
    await notifying;
    if (committed.length > 0) notifying = notifyWindow(committed);
  }
  await notifying;
  if (notifyError !== undefined) throw notifyError;

  return {
    clusters: clusterCount,
    changed: changed.sort((a, b) => (a.clusterId < b.clusterId ? -1 : 1)),
    unchanged,
    errors: normalizeFleetErrors(errors),
    ...(warnings.length > 0 ? { warnings: normalizeFleetErrors(warnings) } : {}),
    itemsWritten,
    notified: notifiedCount,
    notifyFailures,
    conflictsRetried,
    ...(fleet.resolvedCharts.length > 0 ? { charts: fleet.resolvedCharts } : {}),
  };
}

/**
 * Gives the clusters a rollout step released the new revision, and the clusters it
 * reverted their old one: a new generation each (re-planned through the stored rollout),
 * notified as a sync's changes are.
 */
export async function applyRolloutSteps(
  ports: Omit<SyncPorts, 'source'>,
  steps: readonly RolloutStepOutcome[],
): Promise<{ readonly changed: number; readonly errors: readonly Error[] }> {
  let changed = 0;
  const errors: Error[] = [];
  const jobs = steps.flatMap((s) => [
    ...s.release.map((id) => ({ id, reason: GenerationReason.Rollout })),
    ...s.revert.map((id) => ({ id, reason: GenerationReason.Revert })),
  ]);
  for (const job of jobs) {
    try {
      changed += (await recomputeCluster(ports, job.id, { reason: job.reason })).changed.length;
    } catch (err) {
      errors.push(err instanceof Error ? err : new Error(String(err)));
    }
  }
  return { changed, errors };
}

/** What the fleet plans a cluster from: its name, registered labels and Kubernetes version. */
export function clusterInputOf(c: ClusterRecord) {
  return {
    name: c.id,
    labels: c.labels,
    ...(c.kubeVersion === undefined ? {} : { kubeVersion: c.kubeVersion }),
  };
}

async function currentManifest(
  store: DesiredStateStore,
  clusterId: string,
): Promise<DesiredState | undefined> {
  const current = await store.current(clusterId);
  return current ? parseDesiredState(JSON.parse(current.manifest)) : undefined;
}

function isoNow(ports: Pick<SyncPorts, 'now'>): string {
  return ports.now().toISOString();
}

export function emptyReport(): SyncReport {
  return {
    status: 'synced',
    clusters: 0,
    changed: [],
    unchanged: 0,
    errors: [],
    itemsWritten: 0,
    notified: 0,
    notifyFailures: [],
    conflictsRetried: 0,
  };
}
