/**
 * Progressive rollouts run by the hub. A bundle with `rollout:` in bundle.yaml does not
 * reach every cluster at once: a sync starts (or continues, or supersedes) a rollout of
 * the commit, and only the clusters the rollout has released get the new revision; the
 * others keep the revision they have. Status reports, the schedule and operators step the
 * rollout (the pure state machine in `shared/src/rollout/`) through the rollout store,
 * whose version condition makes every step happen once; each step's releases and
 * reverts become new generations of those clusters' desired states.
 */
import { type BundleRef, type DesiredState, orderBundleRefs } from '../desired-state.ts';
import type { Fleet } from '../fleet/index.ts';
import type { EventSink } from '../notify/events.ts';
import type { BundleStatusReport } from '../protocol/status.ts';
import {
  assignWaves,
  type ClusterObservation,
  isFinished,
  type RolloutCluster,
  type RolloutCommand,
  type RolloutEvent,
  type RolloutState,
  type StepResult,
  startRollout,
  stepRollout,
  supersede,
} from '../rollout/index.ts';
import { emitEvents, rolloutFleetEvents } from './fleet-events.ts';
import {
  type ClusterRecord,
  ConflictError,
  type DesiredStateStore,
  type RolloutHead,
  type RolloutStore,
  type RolloutTimer,
  type RolloutWakeMessage,
} from './ports.ts';

/** What the hub keeps of a rollout: the machine's state, its latest events, and the bundle references its hashes stand for. */
export interface RolloutDocument {
  readonly state: RolloutState;
  readonly events: readonly RolloutEvent[];
  /** The reference each `fromHash` and `toHash` of the rollout stands for (namespace, dependsOn, drift policy...). */
  readonly refs: Readonly<Record<string, BundleRef>>;
}

/** Events kept per rollout document (the newest). */
const keptEvents = 500;
const maxStepAttempts = 8;

export interface RolloutPorts {
  readonly rollouts: RolloutStore;
  readonly now: () => Date;
  /** Armed whenever a save moves a rollout's `nextWakeAt`; without it, timers wait for a report or the schedule. */
  readonly rolloutTimer?: RolloutTimer;
  /** Where the step's waves opened, pauses, reverts and completions go, once saved. */
  readonly events?: EventSink | undefined;
}

/** The clusters a step released or reverted: each needs a new generation. */
export interface RolloutStepOutcome {
  readonly bundle: string;
  readonly release: readonly string[];
  readonly revert: readonly string[];
  readonly events: readonly RolloutEvent[];
  readonly state: RolloutState;
}

function phaseStatus(state: RolloutState): string {
  return state.phase === 'pending' ? 'progressing' : state.phase;
}

/**
 * Reads a rollout, applies `step` to its state, and saves it, conditional on the version
 * read; on a conflict (another report or sync stepped it meanwhile) reads and steps again.
 */
export async function stepStoredRollout(
  ports: RolloutPorts,
  bundle: string,
  step: (state: RolloutState | undefined, now: number) => StepResult | undefined,
  refs?: Readonly<Record<string, BundleRef>>,
): Promise<RolloutStepOutcome | undefined> {
  for (let attempt = 1; ; attempt++) {
    const stored = await ports.rollouts.get(bundle);
    const doc = stored ? (JSON.parse(stored.document) as RolloutDocument) : undefined;
    const now = ports.now().getTime();
    const result = step(doc?.state, now);
    if (!result) return undefined;
    const outcome: RolloutStepOutcome = {
      bundle,
      release: result.release,
      revert: result.revert,
      events: result.events,
      state: result.state,
    };
    // A report or heartbeat that moves nothing writes nothing: with every agent of a busy
    // fleet reporting every few seconds, saving each one bumped the version so often that an
    // operator's command lost every retry to them (measured with ten agents on 1 s heartbeats).
    if (stored && doc && refs === undefined && idle(doc.state, result, stored.head.nextWakeAt))
      return outcome;
    const events = [...(doc?.events ?? []), ...result.events].slice(-keptEvents);
    const document: RolloutDocument = { state: result.state, events, refs: refs ?? doc?.refs ?? {} };
    const nextWakeAt = result.nextWakeAt === null ? undefined : new Date(result.nextWakeAt).toISOString();
    try {
      await ports.rollouts.save(
        {
          bundle,
          revision: result.state.revision,
          status: phaseStatus(result.state),
          updatedAt: new Date(now).toISOString(),
          ...(nextWakeAt === undefined ? {} : { nextWakeAt }),
          document: JSON.stringify(document),
        },
        stored?.head.version,
      );
    } catch (err) {
      if (!(err instanceof ConflictError) || attempt >= maxStepAttempts) throw err;
      // Spread the retries of writers that lost the same race.
      await new Promise((r) => setTimeout(r, Math.random() * 25 * attempt));
      continue;
    }
    // This process's next report sees the change at once (others within the cache's time).
    headsCache.delete(ports.rollouts);
    // Only the writer whose save won tells anyone: a step lost to a conflict emitted nothing
    // and is redone from the state that won.
    await emitEvents(ports.events, () => rolloutFleetEvents(result.events));
    // One wake per saved wake time, not per report: the save that moved `nextWakeAt` arms it
    // (after the save, so only a time that was stored is armed; a wake lost to a crash right
    // here is covered by the next report or the schedule's pass).
    if (ports.rolloutTimer && nextWakeAt !== undefined && nextWakeAt !== stored?.head.nextWakeAt)
      await ports.rolloutTimer.wakeAt(bundle, new Date(nextWakeAt));
    return outcome;
  }
}

/** True when a step changed nothing but its own timestamp: no event, release or revert, and the same wake-up. */
function idle(before: RolloutState, result: StepResult, storedWakeAt: string | undefined): boolean {
  if (result.events.length > 0 || result.release.length > 0 || result.revert.length > 0) return false;
  const wakeAt = result.nextWakeAt === null ? undefined : new Date(result.nextWakeAt).toISOString();
  if (wakeAt !== storedWakeAt) return false;
  return JSON.stringify({ ...result.state, updatedAt: 0 }) === JSON.stringify({ ...before, updatedAt: 0 });
}

/**
 * Per sync (or re-plan), which bundles each cluster keeps at the revision it has because a
 * rollout has not released it the new one (yet, or any more).
 */
export class RolloutGate {
  readonly #kept = new Map<string, Map<string, BundleRef | null>>();

  /** True when no rollout holds anything back. */
  get empty(): boolean {
    return this.#kept.size === 0;
  }

  /** Per bundle `cluster` keeps back: the reference it keeps (null: the bundle stays off it). */
  keptFor(cluster: string): ReadonlyMap<string, BundleRef | null> | undefined {
    return this.#kept.get(cluster);
  }

  /** Adds what a rollout holds back: clusters it has not released keep what they have; reverted ones go back. */
  add(doc: RolloutDocument): void {
    const state = doc.state;
    if (state.phase === 'superseded') return;
    for (const c of state.clusters) {
      if (c.unchanged) continue;
      const keeps =
        c.phase === 'waiting' || c.phase === 'reverted' || (c.phase === 'skipped' && c.releasedAt === null);
      if (!keeps) continue;
      let map = this.#kept.get(c.name);
      if (!map) {
        map = new Map();
        this.#kept.set(c.name, map);
      }
      map.set(state.bundle, c.fromHash === null ? null : (doc.refs[c.fromHash] ?? null));
    }
  }
}

/**
 * The gate of the rollouts as stored (the last sync started or kept them), for a re-plan
 * of some clusters (a label change, a new Kubernetes version, a rollout step): nothing
 * is started here.
 */
export async function loadRolloutGate(ports: RolloutPorts, fleet: Fleet): Promise<RolloutGate> {
  const gate = new RolloutGate();
  for (const b of fleet.bundles.filter((x) => x.spec?.rollout)) {
    const stored = await ports.rollouts.get(b.name);
    if (stored) gate.add(JSON.parse(stored.document) as RolloutDocument);
  }
  return gate;
}

/** Keeps the gated bundles of a cluster at the references the rollout says (or off the cluster). */
export function applyRolloutGate(
  next: DesiredState,
  kept: ReadonlyMap<string, BundleRef | null> | undefined,
): DesiredState {
  if (!kept || kept.size === 0) return next;
  const bundles = next.bundles.filter((b) => !kept.has(b.name));
  for (const ref of kept.values()) if (ref) bundles.push(ref);
  return { ...next, bundles: orderBundleRefs(bundles) };
}

/**
 * Before a sync writes anything: for each bundle with `rollout:`, the clusters it
 * reaches, their wave, the revision they have and the one planned; then starts a rollout
 * of this commit (superseding a running one whose planned revisions changed), or keeps
 * the one running, and returns the gate the sync plans through.
 *
 * @param windows the clusters, a page at a time; `prepare` readies the fleet for a page.
 */
export async function startRollouts(
  ports: RolloutPorts & { readonly desiredStates: DesiredStateStore },
  fleet: Fleet,
  commit: string,
  windows: AsyncIterable<readonly ClusterRecord[]>,
  prepare: (window: readonly ClusterRecord[]) => Promise<void>,
): Promise<{ gate: RolloutGate; started: RolloutStepOutcome[] }> {
  const gate = new RolloutGate();
  const bundles = fleet.bundles.filter((b) => b.spec?.rollout);
  if (bundles.length === 0) return { gate, started: [] };
  const members = new Map<
    string,
    { name: string; labels: Record<string, string>; from: string | null; to: string }[]
  >(bundles.map((b) => [b.name, []]));
  const refs = new Map<string, Record<string, BundleRef>>(bundles.map((b) => [b.name, {}]));
  for await (const window of windows) {
    await prepare(window);
    for (const cluster of window) {
      const plan = fleet.planCluster({
        name: cluster.id,
        labels: cluster.labels,
        ...(cluster.kubeVersion === undefined ? {} : { kubeVersion: cluster.kubeVersion }),
      });
      const planned = plan.bundles.filter((p) => members.has(p.ref.name));
      if (planned.length === 0) continue;
      const current = cluster.head ? await currentDesiredState(ports.desiredStates, cluster.id) : undefined;
      for (const p of planned) {
        const fromRef = current?.bundles.find((b) => b.name === p.ref.name);
        const known = refs.get(p.ref.name) as Record<string, BundleRef>;
        known[p.ref.hash] ??= p.ref;
        if (fromRef) known[fromRef.hash] ??= fromRef;
        members
          .get(p.ref.name)
          ?.push({ name: cluster.id, labels: plan.labels, from: fromRef?.hash ?? null, to: p.ref.hash });
      }
    }
    fleet.forget(window.map((c) => c.id));
  }
  const started: RolloutStepOutcome[] = [];
  for (const b of bundles) {
    const spec = b.spec?.rollout;
    if (!spec) continue;
    const list = members.get(b.name) ?? [];
    const assignment = assignWaves(spec, list, fleet.groups);
    const waveOf = new Map<string, number>();
    assignment.waves.forEach((names, i) => {
      for (const n of names) waveOf.set(n, i);
    });
    const clusters: RolloutCluster[] = list
      .filter((c) => waveOf.has(c.name))
      .map((c) => ({ name: c.name, wave: waveOf.get(c.name) as number, fromHash: c.from, toHash: c.to }));
    const stored0 = await ports.rollouts.get(b.name);
    const knownRefs = {
      ...(stored0 ? (JSON.parse(stored0.document) as RolloutDocument).refs : {}),
      ...(refs.get(b.name) ?? {}),
    };
    const outcome = await stepStoredRollout(
      ports,
      b.name,
      (state, now) => {
        // The same revisions planned as the stored rollout's: it carries on (running), or
        // stays as it ended (completed; reverted: its later waves never receive it).
        if (state && sameTargets(state, clusters)) return undefined;
        if (clusters.every((c) => c.fromHash === c.toHash)) return undefined; // nothing to roll out
        const input = { bundle: b.name, revision: commit, spec, clusters, now };
        // A new revision during a rollout supersedes it, from the first wave again.
        const fresh = state && !isFinished(state) ? supersede(state, input) : startRollout(input);
        return stepRollout(fresh, new Map(), now);
      },
      knownRefs,
    );
    if (outcome) started.push(outcome);
    const stored = await ports.rollouts.get(b.name);
    if (stored) gate.add(JSON.parse(stored.document) as RolloutDocument);
  }
  return { gate, started };
}

/** Whether a rollout's clusters go to exactly the revisions planned now. */
function sameTargets(state: RolloutState, clusters: readonly RolloutCluster[]): boolean {
  if (state.clusters.length !== clusters.length) return false;
  const to = new Map(state.clusters.map((c) => [c.name, c.toHash]));
  return clusters.every((c) => to.get(c.name) === c.toHash);
}

async function currentDesiredState(
  store: DesiredStateStore,
  clusterId: string,
): Promise<DesiredState | undefined> {
  const current = await store.current(clusterId);
  return current ? (JSON.parse(current.manifest) as DesiredState) : undefined;
}

/** How long a hub process reuses the list of running rollouts before reading it again. */
const headsTtlMs = 2_000;
const headsCache = new WeakMap<
  RolloutStore,
  { readonly at: number; readonly heads: Promise<RolloutHead[]> }
>();

/**
 * The running rollouts' heads, read at most every {@link headsTtlMs} per store: every
 * status report asks, and a fleet without rollouts must not pay a scan per report. A
 * rollout started elsewhere is seen within that time; its steps are exact regardless,
 * since each reads and conditions on the stored version.
 */
function runningHeads(ports: RolloutPorts): Promise<RolloutHead[]> {
  const now = Date.now();
  const cached = headsCache.get(ports.rollouts);
  if (cached && now - cached.at < headsTtlMs) return cached.heads;
  const heads = ports.rollouts
    .list()
    .then((all) => all.filter((h) => h.status === 'progressing' || h.status === 'paused'));
  headsCache.set(ports.rollouts, { at: now, heads });
  heads.catch(() => headsCache.delete(ports.rollouts));
  return heads;
}

/**
 * Steps every running rollout that `cluster` takes part in with what it just reported,
 * and returns the steps that released or reverted clusters.
 */
export async function stepRolloutsOnReport(
  ports: RolloutPorts,
  cluster: string,
  bundles: readonly BundleStatusReport[],
): Promise<RolloutStepOutcome[]> {
  const heads = (await runningHeads(ports)).filter((h) => bundles.some((b) => b.name === h.bundle));
  const out: RolloutStepOutcome[] = [];
  for (const head of heads) {
    const report = bundles.find((b) => b.name === head.bundle);
    const outcome = await stepStoredRollout(ports, head.bundle, (state, now) => {
      if (!state || isFinished(state) || !state.clusters.some((c) => c.name === cluster)) return undefined;
      const observation: ClusterObservation = {
        hash: report?.hash ?? null,
        ready: report?.state === 'Ready',
        online: true,
        reportedAt: now,
      };
      return stepRollout(state, new Map([[cluster, observation]]), now);
    });
    if (outcome && (outcome.release.length > 0 || outcome.revert.length > 0 || outcome.events.length > 0))
      out.push(outcome);
  }
  return out;
}

/** What the schedule reads to tell which clusters of a rollout are offline. */
export interface RolloutSchedulePorts extends RolloutPorts {
  readonly clusters: { list(): Promise<readonly ClusterRecord[]> };
  /** The last status each cluster reported, for the revision an offline cluster was last seen on. */
  readonly statuses: {
    get(clusterId: string): Promise<
      | {
          readonly bundles: readonly {
            readonly bundle: string;
            readonly state: string;
            readonly hash: string;
          }[];
        }
      | undefined
    >;
  };
  /** A cluster without a heartbeat for this long is offline (the fleet status's rule). */
  readonly offlineAfterMs: number;
}

/**
 * The schedule's step of every running rollout: timers that ran out (bake, deadline, grace,
 * window), and clusters that went offline or came back since the last step, so that an
 * offline cluster is skipped, waited for or failed as `offline:` says instead of failing
 * its deadline (one dead edge box cannot stall, or revert, a fleet's rollout).
 */
export async function stepRolloutsOnSchedule(ports: RolloutSchedulePorts): Promise<RolloutStepOutcome[]> {
  const heads = (await ports.rollouts.list()).filter(
    (h) => h.status === 'progressing' || h.status === 'paused',
  );
  if (heads.length === 0) return [];
  const records = new Map((await ports.clusters.list()).map((c) => [c.id, c]));
  const out: RolloutStepOutcome[] = [];
  for (const head of heads) {
    // Read outside the step: the step may run again on a conflict, and must not do I/O.
    const stored = await ports.rollouts.get(head.bundle);
    if (!stored) continue;
    const doc = JSON.parse(stored.document) as RolloutDocument;
    const now = ports.now().getTime();
    const observations = new Map<string, ClusterObservation>();
    for (const c of doc.state.clusters) {
      if (c.phase !== 'waiting' && c.phase !== 'released') continue;
      const beat = records.get(c.name)?.lastHeartbeatAt;
      const online = beat !== undefined && now - Date.parse(beat) <= ports.offlineAfterMs;
      if (online === (c.offlineSince === null)) continue; // no change
      const reported = (await ports.statuses.get(c.name))?.bundles.find((b) => b.bundle === head.bundle);
      observations.set(c.name, {
        hash: reported?.hash ?? null,
        ready: reported?.state === 'Ready',
        online,
        reportedAt: beat === undefined ? now : Date.parse(beat),
      });
    }
    const due = head.nextWakeAt !== undefined && Date.parse(head.nextWakeAt) <= now;
    if (observations.size === 0 && !due) continue;
    const outcome = await stepStoredRollout(ports, head.bundle, (state, t) =>
      state && !isFinished(state) ? stepRollout(state, observations, t) : undefined,
    );
    if (outcome) out.push(outcome);
  }
  return out;
}

/** Steps the rollouts (or `bundle`'s rollout alone) whose timer (bake, deadline, grace, window) is due. */
export async function stepDueRollouts(ports: RolloutPorts, bundle?: string): Promise<RolloutStepOutcome[]> {
  const now = ports.now().toISOString();
  const heads =
    bundle === undefined
      ? await ports.rollouts.list()
      : [(await ports.rollouts.get(bundle))?.head].filter((h) => h !== undefined);
  const due = heads.filter((h) => isRunning(h) && h.nextWakeAt !== undefined && h.nextWakeAt <= now);
  const out: RolloutStepOutcome[] = [];
  for (const head of due) {
    const outcome = await stepStoredRollout(ports, head.bundle, (state, t) =>
      state && !isFinished(state) ? stepRollout(state, new Map(), t) : undefined,
    );
    if (outcome) out.push(outcome);
  }
  return out;
}

function isRunning(head: RolloutHead): boolean {
  return head.status === 'progressing' || head.status === 'paused';
}

/** What a rollout wake did: stepped the rollout, re-armed a wake that fired early, or nothing (a stale or duplicate wake). */
export interface RolloutWakeReport {
  readonly bundle: string;
  readonly at: string;
  readonly outcome: 'stepped' | 'rearmed' | 'stale';
  readonly step?: RolloutStepOutcome;
}

/**
 * A wake armed by a {@link RolloutTimer}, when it fires.
 * 1. The rollout's timer is due: step it as the schedule would (the version condition makes a
 *    duplicate wake, or a report that got there first, step nothing twice); the save arms
 *    the next wake.
 * 2. Not due yet, and still waiting for this very wake time: the wake fired early (SQS delays
 *    at most 15 minutes), so it is armed again.
 * 3. Otherwise the rollout moved on (finished, or a later save armed another wake): nothing.
 */
export async function wakeRollout(
  ports: RolloutPorts,
  message: RolloutWakeMessage,
): Promise<RolloutWakeReport> {
  const { bundle, at } = message;
  const head = (await ports.rollouts.get(bundle))?.head;
  if (!head || !isRunning(head) || head.nextWakeAt === undefined) return { bundle, at, outcome: 'stale' };
  if (head.nextWakeAt <= ports.now().toISOString()) {
    const [step] = await stepDueRollouts(ports, bundle);
    return step ? { bundle, at, outcome: 'stepped', step } : { bundle, at, outcome: 'stale' };
  }
  if (head.nextWakeAt === at && ports.rolloutTimer) {
    await ports.rolloutTimer.wakeAt(bundle, new Date(head.nextWakeAt));
    return { bundle, at, outcome: 'rearmed' };
  }
  return { bundle, at, outcome: 'stale' };
}

/** An operator's command (pause, resume, promote, abort) applied to a bundle's rollout. */
export async function commandRollout(
  ports: RolloutPorts,
  bundle: string,
  command: RolloutCommand,
): Promise<RolloutStepOutcome | undefined> {
  return stepStoredRollout(ports, bundle, (state, now) =>
    state ? stepRollout(state, new Map(), now, command) : undefined,
  );
}

/** A bundle's rollout as stored, or undefined. */
export async function readRollout(ports: RolloutPorts, bundle: string): Promise<RolloutDocument | undefined> {
  const stored = await ports.rollouts.get(bundle);
  return stored ? (JSON.parse(stored.document) as RolloutDocument) : undefined;
}

/** A rollout as the API and the CLI show it: where it stands, wave by wave, and what it did last. */
export interface RolloutView {
  readonly bundle: string;
  readonly revision: string;
  readonly phase: string;
  readonly pauseReason: string | null;
  readonly revertReason: string | null;
  readonly currentWave: string | null;
  readonly waitingForWindow: boolean;
  readonly startedAt: string;
  readonly updatedAt: string;
  readonly finishedAt: string | null;
  readonly nextWakeAt: string | null;
  readonly waves: readonly {
    readonly name: string;
    readonly clusters: number;
    readonly done: number;
    readonly inFlight: number;
    readonly waiting: number;
    readonly failed: number;
    readonly skipped: number;
    readonly reverted: number;
    readonly openedAt: string | null;
    readonly bakedAt: string | null;
  }[];
  /** The newest events, oldest first. */
  readonly events: readonly (Omit<RolloutEvent, 'at'> & { readonly at: string })[];
}

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

export function rolloutView(doc: RolloutDocument, nextWakeAt?: string, events = 50): RolloutView {
  const s = doc.state;
  return {
    bundle: s.bundle,
    revision: s.revision,
    phase: phaseStatus(s),
    pauseReason: s.pauseReason,
    revertReason: s.revertReason,
    currentWave: s.currentWave >= 0 ? (s.waves[s.currentWave]?.name ?? null) : null,
    waitingForWindow: s.waitingForWindow,
    startedAt: new Date(s.createdAt).toISOString(),
    updatedAt: new Date(s.updatedAt).toISOString(),
    finishedAt: iso(s.finishedAt),
    nextWakeAt: nextWakeAt ?? null,
    waves: s.waves.map((w, i) => {
      const of = s.clusters.filter((c) => c.wave === i);
      const count = (phase: string) => of.filter((c) => c.phase === phase).length;
      return {
        name: w.name,
        clusters: of.length,
        done: count('done'),
        inFlight: count('released'),
        waiting: count('waiting'),
        failed: count('failed'),
        skipped: count('skipped'),
        reverted: count('reverted'),
        openedAt: iso(w.openedAt),
        bakedAt: iso(w.bakedAt),
      };
    }),
    events: doc.events.slice(-events).map((e) => ({ ...e, at: new Date(e.at).toISOString() })),
  };
}

/** The answer to an operator's rollout command: the rollout after it, and whom it released or reverted. */
export interface RolloutCommandResult {
  readonly rollout: RolloutView;
  readonly released: readonly string[];
  readonly reverted: readonly string[];
  readonly generationsWritten: number;
}
