/**
 * The rollout state machine: pure functions from a state, what the clusters reported and
 * the time to the next state, with events and the clusters to release or revert. No I/O
 * and no clock of its own: the hub stores the state, calls {@link stepRollout} on every
 * status report and at `nextWakeAt`, and writes the desired states it asks for.
 *
 * One step:
 * 1. the first step of a rollout starts it and opens the first wave (if a window allows);
 * 2. a command (pause, resume, promote, abort) is applied;
 * 3. observations: a released cluster reporting exactly its new hash Ready is done; a done
 *    cluster of a wave still baking that stops being Ready is in flight again; offline
 *    clusters are noted;
 * 4. timers: a released cluster past its progress deadline fails; an offline cluster past
 *    the grace is skipped or fails (`offline.action`);
 * 5. the failure budget: one failure over it pauses the rollout or reverts it;
 * 6. waves: a wave whose clusters are all finished and baked lets the next one open (in a
 *    window, when windows are set); free slots of open waves are filled (`maxParallel`);
 * 7. the rollout completes when the last wave has baked.
 */
import { resolveAmount } from '../rollout-spec.ts';
import {
  type ClusterObservation,
  type RolloutClusterState,
  type RolloutCommand,
  RolloutCommandError,
  type RolloutEvent,
  type RolloutEventType,
  RolloutInputError,
  type RolloutState,
  type RolloutWaveState,
  type StartInput,
  type StepResult,
} from './types.ts';
import { UNMATCHED_WAVE } from './waves.ts';
import { inAnyWindow, nextWindowOpen } from './windows.ts';

const FINISHED = new Set(['completed', 'reverted', 'superseded']);

/** Whether the rollout is over (completed, reverted or superseded). */
export function isFinished(state: RolloutState): boolean {
  return FINISHED.has(state.phase);
}

/**
 * A new rollout, not yet stepped: the first {@link stepRollout} opens its first wave and
 * says which clusters to release. Clusters whose `fromHash` equals `toHash` are done at once.
 *
 * @throws {RolloutInputError} for a cluster listed twice or a wave index out of range.
 */
export function startRollout(input: StartInput): RolloutState {
  return build(input, null);
}

/**
 * A new commit while a rollout runs: the newest revision starts again from the first wave.
 * Each cluster's `fromHash` is what it has now (as the caller gives it): a cluster the old
 * rollout had already released keeps that older new revision until its wave of the new
 * rollout opens, and a revert takes it back to that revision. Clusters the old rollout saw
 * offline keep their offline time, so the grace does not start over with every commit.
 * The old state is left as it was; mark it superseded with {@link markSuperseded}.
 */
export function supersede(state: RolloutState, next: StartInput): RolloutState {
  const built = build(next, state.revision);
  const offline = new Map(state.clusters.map((c) => [c.name, c.offlineSince]));
  for (const c of built.clusters) c.offlineSince = offline.get(c.name) ?? null;
  return built;
}

/** The old rollout once a newer revision superseded it. */
export function markSuperseded(state: RolloutState, now: number): RolloutState {
  if (isFinished(state)) return state;
  return { ...clone(state), phase: 'superseded', finishedAt: now, updatedAt: now };
}

function build(input: StartInput, supersedes: string | null): RolloutState {
  const { spec } = input;
  const implicitAllowed = spec.unmatched === 'final-wave';
  const maxWave = spec.waves.length + (implicitAllowed ? 0 : -1);
  const seen = new Set<string>();
  for (const c of input.clusters) {
    if (seen.has(c.name)) throw new RolloutInputError(`cluster "${c.name}" is listed twice`);
    seen.add(c.name);
    if (!Number.isInteger(c.wave) || c.wave < 0 || c.wave > maxWave)
      throw new RolloutInputError(
        `cluster "${c.name}" is in wave ${c.wave}, but the rollout has waves 0 to ${maxWave}${implicitAllowed ? '' : ' (unmatched: error)'}`,
      );
  }
  const hasImplicit = input.clusters.some((c) => c.wave === spec.waves.length);
  const clusters: RolloutClusterState[] = [...input.clusters]
    .sort((a, b) => a.wave - b.wave || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((c) => {
      const unchanged = c.fromHash === c.toHash;
      return {
        name: c.name,
        wave: c.wave,
        fromHash: c.fromHash,
        toHash: c.toHash,
        phase: unchanged ? 'done' : 'waiting',
        unchanged,
        releasedAt: null,
        deadlineFrom: null,
        doneAt: unchanged ? input.now : null,
        offlineSince: null,
        failure: null,
        forgiven: false,
      };
    });
  const changed = (i: number) => clusters.filter((c) => c.wave === i && !c.unchanged).length;
  const waves: RolloutWaveState[] = spec.waves.map((w, i) => ({
    name: w.name,
    implicit: false,
    bakeMs: w.bakeMs,
    maxParallel: w.maxParallel ?? null,
    changed: changed(i),
    openedAt: null,
    bakedAt: null,
    promoted: false,
  }));
  if (hasImplicit)
    waves.push({
      name: UNMATCHED_WAVE,
      implicit: true,
      bakeMs: 0,
      maxParallel: null,
      changed: changed(spec.waves.length),
      openedAt: null,
      bakedAt: null,
      promoted: false,
    });
  return {
    version: 1,
    bundle: input.bundle,
    revision: input.revision,
    spec,
    phase: 'pending',
    pauseReason: null,
    revertReason: null,
    supersedes,
    createdAt: input.now,
    updatedAt: input.now,
    finishedAt: null,
    currentWave: -1,
    waitingForWindow: false,
    waves,
    clusters,
  };
}

/**
 * Advances a rollout to `now`. Pure: the input state is not changed.
 *
 * @param observations what each cluster last reported about this bundle. A cluster missing
 *   from the map keeps its state (no news): a step on one cluster's report may pass only that
 *   one. Timers (deadlines, grace, bake) run for every cluster regardless.
 * @throws {RolloutCommandError} when a command is given to a finished rollout.
 */
export function stepRollout(
  state: RolloutState,
  observations: ReadonlyMap<string, ClusterObservation>,
  now: number,
  command?: RolloutCommand,
): StepResult {
  const step = new Step(clone(state), now);
  return step.run(observations, command);
}

function clone(state: RolloutState): RolloutState {
  return structuredClone(state);
}

class Step {
  readonly s: RolloutState;
  readonly now: number;
  readonly events: RolloutEvent[] = [];
  readonly release: string[] = [];
  readonly revert: string[] = [];

  constructor(s: RolloutState, now: number) {
    this.s = s;
    this.now = now;
  }

  run(observations: ReadonlyMap<string, ClusterObservation>, command?: RolloutCommand): StepResult {
    const s = this.s;
    if (isFinished(s)) {
      if (command)
        throw new RolloutCommandError(
          `the rollout of ${s.bundle} at ${s.revision} is ${s.phase}: nothing to ${command}`,
          command,
          s.phase,
        );
      return this.result();
    }
    s.updatedAt = Math.max(s.updatedAt, this.now);
    if (s.phase === 'pending') this.start();
    if (command) this.command(command);
    if (!isFinished(s)) this.observe(observations);
    // Each pass may open one wave; a wave can finish within the same step (empty, all unchanged, all skipped).
    for (let pass = 0; pass <= s.waves.length + 1 && !isFinished(s); pass++) {
      this.timers();
      if (this.overBudget()) break;
      this.markBaked();
      if (s.phase !== 'progressing') break;
      const opened = this.advance();
      this.fill();
      if (this.complete() || !opened) break;
    }
    return this.result();
  }

  result(): StepResult {
    return {
      state: this.s,
      events: this.events,
      release: this.release,
      revert: this.revert,
      nextWakeAt: this.nextWakeAt(),
    };
  }

  emit(
    type: RolloutEventType,
    message: string,
    extra: { wave?: number; cluster?: string; reason?: string } = {},
  ): void {
    const wave = extra.wave === undefined ? undefined : this.s.waves[extra.wave];
    this.events.push({
      type,
      at: this.now,
      bundle: this.s.bundle,
      revision: this.s.revision,
      ...(extra.wave === undefined ? {} : { wave: extra.wave, waveName: wave?.name }),
      ...(extra.cluster === undefined ? {} : { cluster: extra.cluster }),
      ...(extra.reason === undefined ? {} : { reason: extra.reason }),
      message,
    } as RolloutEvent);
  }

  start(): void {
    const s = this.s;
    s.phase = 'progressing';
    if (s.supersedes !== null)
      this.emit(
        'rollout-superseded',
        `revision ${s.revision} supersedes ${s.supersedes}; starting again from the first wave`,
        {
          reason: s.supersedes,
        },
      );
    const unchanged = s.clusters.filter((c) => c.unchanged).length;
    this.emit(
      'rollout-started',
      `rollout of ${s.bundle} at ${s.revision} started: ${s.clusters.length} clusters in ${s.waves.length} waves${unchanged > 0 ? ` (${unchanged} already have it)` : ''}`,
    );
  }

  command(command: RolloutCommand): void {
    const s = this.s;
    if (command === 'pause') {
      if (s.phase !== 'progressing') return;
      s.phase = 'paused';
      s.pauseReason = 'command';
      this.emit('rollout-paused', 'paused by an operator: no cluster is released until it resumes', {
        reason: 'command',
      });
    } else if (command === 'resume') {
      if (s.phase !== 'paused') return;
      const forgiven = s.clusters.filter((c) => c.phase === 'failed' && !c.forgiven);
      for (const c of forgiven) c.forgiven = true;
      s.phase = 'progressing';
      s.pauseReason = null;
      this.emit(
        'rollout-resumed',
        forgiven.length > 0
          ? `resumed by an operator; ${forgiven.length} failed clusters no longer count against the failure budget`
          : 'resumed by an operator',
        { reason: 'command' },
      );
    } else if (command === 'promote') {
      const cur = s.waves[s.currentWave];
      if (!cur) return;
      cur.promoted = true;
      if (s.currentWave + 1 < s.waves.length) this.open(s.currentWave + 1, 'promote');
    } else {
      const reverted = this.revertWhere((c) => c.releasedAt !== null);
      this.finishReverted(
        'abort',
        `aborted by an operator: ${reverted} clusters go back to the revision they had`,
      );
    }
  }

  observe(observations: ReadonlyMap<string, ClusterObservation>): void {
    const s = this.s;
    for (const c of s.clusters) {
      if (c.unchanged || c.phase === 'reverted') continue;
      const o = observations.get(c.name);
      // No observation is no news: the cluster stays as it was (its timers still run).
      if (o === undefined) continue;
      const online = o.online;
      const open = (s.waves[c.wave] as RolloutWaveState).openedAt !== null;
      if (!online && c.offlineSince === null) {
        c.offlineSince = this.now;
        if (open && (c.phase === 'waiting' || c.phase === 'released')) this.offlineEvent(c);
      } else if (online && c.offlineSince !== null) {
        c.offlineSince = null;
        // Back online: it gets the whole progress deadline from now.
        if (c.phase === 'released') c.deadlineFrom = this.now;
      }
      if (!open) continue;
      const readyOnNew = o.hash === c.toHash && o.ready;
      if (c.phase === 'released' && readyOnNew) {
        c.phase = 'done';
        c.doneAt = this.now;
        this.emit('cluster-done', `${c.name} reports the new revision Ready`, {
          wave: c.wave,
          cluster: c.name,
        });
      } else if (
        c.phase === 'done' &&
        !readyOnNew &&
        (s.waves[c.wave] as RolloutWaveState).bakedAt === null
      ) {
        // Left Ready while its wave bakes: in flight again; the bake starts over when it is Ready again.
        c.phase = 'released';
        c.doneAt = null;
        c.deadlineFrom = this.now;
        this.emit(
          'cluster-not-ready',
          `${c.name} no longer reports the new revision Ready while its wave bakes`,
          { wave: c.wave, cluster: c.name },
        );
      }
    }
  }

  timers(): void {
    const s = this.s;
    const { progressDeadlineMs } = s.spec;
    const { action, graceMs } = s.spec.offline;
    for (const c of s.clusters) {
      if (c.phase !== 'waiting' && c.phase !== 'released') continue;
      if ((s.waves[c.wave] as RolloutWaveState).openedAt === null) continue;
      if (c.offlineSince !== null) {
        if (action === 'wait' || this.now - c.offlineSince < graceMs) continue;
        if (action === 'skip') {
          c.phase = 'skipped';
          this.emit('cluster-skipped', `${c.name} was offline for longer than the grace: skipped`, {
            wave: c.wave,
            cluster: c.name,
            reason: 'offline',
          });
        } else this.fail(c, 'offline', `${c.name} was offline for longer than the grace`);
      } else if (c.phase === 'released' && this.now - (c.deadlineFrom as number) >= progressDeadlineMs) {
        this.fail(
          c,
          'deadline',
          `${c.name} did not report the new revision Ready within the progress deadline`,
        );
      }
    }
  }

  fail(c: RolloutClusterState, why: 'deadline' | 'offline', message: string): void {
    c.phase = 'failed';
    c.failure = why;
    this.emit('cluster-failed', message, { wave: c.wave, cluster: c.name, reason: why });
  }

  /** Applies `failure.action` when failures go over the budget; true when the step should stop here. */
  overBudget(): boolean {
    const s = this.s;
    const counted = s.clusters.filter((c) => c.phase === 'failed' && !c.forgiven);
    if (counted.length === 0) return false;
    const { maxFailures, maxFailuresPerWave, action } = s.spec.failure;
    const changed = s.clusters.filter((c) => !c.unchanged).length;
    let over: string | undefined;
    if (counted.length > resolveAmount(maxFailures, changed, 'down'))
      over = `${counted.length} clusters failed, over the budget of ${resolveAmount(maxFailures, changed, 'down')}`;
    else if (maxFailuresPerWave) {
      for (let i = 0; i < s.waves.length && !over; i++) {
        const n = counted.filter((c) => c.wave === i).length;
        const budget = resolveAmount(maxFailuresPerWave, (s.waves[i] as RolloutWaveState).changed, 'down');
        if (n > budget)
          over = `${n} clusters of wave ${s.waves[i]?.name} failed, over its budget of ${budget}`;
      }
    }
    if (!over) return false;
    if (action === 'revert') {
      // Failed and in-flight clusters (and those skipped after their release) go back; done ones keep it.
      const n = this.revertWhere(
        (c) =>
          c.phase === 'failed' || c.phase === 'released' || (c.phase === 'skipped' && c.releasedAt !== null),
      );
      this.finishReverted(
        'failures',
        `${over}: ${n} failed and in-flight clusters go back to the revision they had`,
      );
      return true;
    }
    if (s.phase === 'paused') {
      if (s.pauseReason !== 'failures')
        this.emit('rollout-paused', `${over}: stays paused until an operator resumes or aborts`, {
          reason: 'failures',
        });
      s.pauseReason = 'failures';
      return false;
    }
    s.phase = 'paused';
    s.pauseReason = 'failures';
    this.emit('rollout-paused', `${over}: paused (resume to accept these failures and go on, or abort)`, {
      reason: 'failures',
    });
    return false;
  }

  revertWhere(pick: (c: RolloutClusterState) => boolean): number {
    let n = 0;
    for (const c of this.s.clusters) {
      if (c.unchanged || c.phase === 'reverted' || c.phase === 'waiting' || !pick(c)) continue;
      c.phase = 'reverted';
      this.revert.push(c.name);
      n++;
    }
    return n;
  }

  finishReverted(reason: 'failures' | 'abort', message: string): void {
    const s = this.s;
    s.phase = 'reverted';
    s.revertReason = reason;
    s.finishedAt = this.now;
    this.emit('rollout-reverted', message, { reason });
  }

  /** When the wave's changed clusters have all finished, the instant its bake ends; null while some are in flight. */
  bakeEnd(i: number): number | null {
    const w = this.s.waves[i] as RolloutWaveState;
    let end = Number.NEGATIVE_INFINITY;
    for (const c of this.s.clusters) {
      if (c.wave !== i || c.unchanged) continue;
      if (c.phase === 'waiting' || c.phase === 'released') return null;
      if (c.phase === 'done') end = Math.max(end, (c.doneAt as number) + (w.promoted ? 0 : w.bakeMs));
    }
    return end;
  }

  markBaked(): void {
    const s = this.s;
    s.waves.forEach((w, i) => {
      if (w.openedAt === null || w.bakedAt !== null) return;
      const end = this.bakeEnd(i);
      if (end === null || end > this.now) return;
      w.bakedAt = this.now;
      this.emit(
        'wave-baked',
        w.bakeMs > 0 && !w.promoted
          ? `wave ${w.name} stayed Ready through its bake`
          : `every cluster of wave ${w.name} is finished`,
        { wave: i },
      );
    });
  }

  /** Opens the next wave when the current one has baked; false when none opened. */
  advance(): boolean {
    const s = this.s;
    const next = s.currentWave + 1;
    if (next >= s.waves.length) return false;
    if (s.currentWave >= 0 && (s.waves[s.currentWave] as RolloutWaveState).bakedAt === null) return false;
    if (!inAnyWindow(s.spec.windows, this.now)) {
      s.waitingForWindow = true;
      return false;
    }
    this.open(next, null);
    return true;
  }

  open(i: number, reason: 'promote' | null): void {
    const s = this.s;
    const w = s.waves[i] as RolloutWaveState;
    s.currentWave = i;
    s.waitingForWindow = false;
    w.openedAt = this.now;
    const n = s.clusters.filter((c) => c.wave === i).length;
    this.emit(
      'wave-opened',
      `wave ${w.name} opened${reason === 'promote' ? ' by promote' : ''} (${n} clusters)`,
      reason === null ? { wave: i } : { wave: i, reason },
    );
    for (const c of s.clusters) {
      if (c.wave === i && c.phase === 'waiting' && c.offlineSince !== null) this.offlineEvent(c);
    }
  }

  offlineEvent(c: RolloutClusterState): void {
    this.emit('cluster-offline', `${c.name} is offline (offline.action: ${this.s.spec.offline.action})`, {
      wave: c.wave,
      cluster: c.name,
    });
  }

  /** Releases waiting clusters of open waves into free slots; offline clusters are not released. */
  fill(): void {
    const s = this.s;
    s.waves.forEach((w, i) => {
      if (w.openedAt === null) return;
      const limit =
        w.maxParallel === null ? Number.POSITIVE_INFINITY : resolveAmount(w.maxParallel, w.changed, 'up');
      let inFlight = s.clusters.filter((c) => c.wave === i && c.phase === 'released').length;
      for (const c of s.clusters) {
        if (inFlight >= limit) break;
        if (c.wave !== i || c.phase !== 'waiting' || c.offlineSince !== null) continue;
        c.phase = 'released';
        c.releasedAt = this.now;
        c.deadlineFrom = this.now;
        this.release.push(c.name);
        inFlight++;
        this.emit('cluster-released', `${c.name} gets the new revision`, { wave: i, cluster: c.name });
      }
    });
  }

  complete(): boolean {
    const s = this.s;
    if (s.currentWave !== s.waves.length - 1 || s.waves.some((w) => w.bakedAt === null)) return false;
    s.phase = 'completed';
    s.finishedAt = this.now;
    const count = (p: string) => s.clusters.filter((c) => c.phase === p).length;
    const failed = count('failed');
    const skipped = count('skipped');
    this.emit(
      'rollout-completed',
      `rollout of ${s.bundle} at ${s.revision} completed: ${count('done')} done${failed > 0 ? `, ${failed} failed` : ''}${skipped > 0 ? `, ${skipped} skipped` : ''}`,
    );
    return true;
  }

  nextWakeAt(): number | null {
    const s = this.s;
    if (isFinished(s) || s.phase === 'pending') return null;
    let at = Number.POSITIVE_INFINITY;
    const { progressDeadlineMs } = s.spec;
    const { action, graceMs } = s.spec.offline;
    for (const c of s.clusters) {
      if (c.phase !== 'waiting' && c.phase !== 'released') continue;
      if ((s.waves[c.wave] as RolloutWaveState).openedAt === null) continue;
      if (c.offlineSince !== null) {
        if (action !== 'wait') at = Math.min(at, c.offlineSince + graceMs);
      } else if (c.phase === 'released') at = Math.min(at, (c.deadlineFrom as number) + progressDeadlineMs);
    }
    s.waves.forEach((w, i) => {
      if (w.openedAt === null || w.bakedAt !== null) return;
      const end = this.bakeEnd(i);
      if (end !== null && end > this.now) at = Math.min(at, end);
    });
    if (s.phase === 'progressing' && s.waitingForWindow) {
      const open = nextWindowOpen(s.spec.windows, this.now);
      if (open !== null) at = Math.min(at, open);
    }
    return Number.isFinite(at) ? at : null;
  }
}
