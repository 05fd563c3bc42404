/**
 * The rollout state machine's values: what goes in (clusters, observations, commands),
 * the state kept between steps (JSON-serializable, so the hub can store it as it is), and
 * what comes out (events, clusters to release or revert, when to wake up next).
 */
import type { Amount, RolloutSpec } from '../rollout-spec.ts';

/** One cluster of a rollout: its wave and the bundle hashes it goes from and to. */
export interface RolloutCluster {
  readonly name: string;
  /** Index into `spec.waves`; `spec.waves.length` for the implicit final wave of unmatched clusters. */
  readonly wave: number;
  /** The bundle hash the cluster has now (null: it does not have the bundle yet). */
  readonly fromHash: string | null;
  /** The bundle hash of the new revision for this cluster. */
  readonly toHash: string;
}

/** What the hub last heard from a cluster about this bundle. */
export interface ClusterObservation {
  /** The bundle hash the cluster reports applied (null: none yet). */
  readonly hash: string | null;
  /** Whether that hash is Ready on the cluster. */
  readonly ready: boolean;
  /** False once the cluster missed its heartbeat (the hub's Offline). */
  readonly online: boolean;
  readonly reportedAt: number;
}

export const RolloutCommand = {
  pause: 'pause',
  resume: 'resume',
  promote: 'promote',
  abort: 'abort',
} as const;
export type RolloutCommand = (typeof RolloutCommand)[keyof typeof RolloutCommand];

/** What a rollout starts from. */
export interface StartInput {
  readonly bundle: string;
  /** The fleet-repo commit. */
  readonly revision: string;
  readonly spec: RolloutSpec;
  readonly clusters: readonly RolloutCluster[];
  readonly now: number;
}

/**
 * `pending`: started, not stepped yet (the first step opens the first wave).
 * `progressing`, `paused`: running. `completed`, `reverted`, `superseded`: finished.
 */
export type RolloutPhase = 'pending' | 'progressing' | 'paused' | 'completed' | 'reverted' | 'superseded';

/**
 * `waiting`: its wave is not open or no slot is free; it keeps `fromHash`.
 * `released`: given `toHash`, not yet reporting it Ready (in flight).
 * `done`: reports exactly `toHash` Ready. `failed`: missed the progress deadline, or was
 * offline past the grace with `offline.action: fail`. `skipped`: offline past the grace
 * with `offline.action: skip`. `reverted`: given `fromHash` back.
 */
export type ClusterPhase = 'waiting' | 'released' | 'done' | 'failed' | 'skipped' | 'reverted';

export interface RolloutClusterState {
  readonly name: string;
  readonly wave: number;
  readonly fromHash: string | null;
  readonly toHash: string;
  phase: ClusterPhase;
  /** `fromHash === toHash`: done from the start, never released, reverted or baked. */
  readonly unchanged: boolean;
  releasedAt: number | null;
  /** Where the progress deadline counts from: the release, the return from offline, or leaving Ready during the bake. */
  deadlineFrom: number | null;
  doneAt: number | null;
  /** Since when the cluster has been seen offline (null: online). */
  offlineSince: number | null;
  /** Why it failed. */
  failure: 'deadline' | 'offline' | null;
  /** A failure the operator accepted by resuming: it no longer counts against the budget. */
  forgiven: boolean;
}

export interface RolloutWaveState {
  readonly name: string;
  /** The implicit final wave of clusters no wave matched. */
  readonly implicit: boolean;
  readonly bakeMs: number;
  /** Null: every cluster of the wave at once. */
  readonly maxParallel: Amount | null;
  /** Clusters of the wave whose hash changes (the base of percentages). */
  readonly changed: number;
  openedAt: number | null;
  bakedAt: number | null;
  /** Opened past by `promote`: the next wave did not wait for this one's bake. */
  promoted: boolean;
}

/** The whole state of one bundle's rollout of one revision. JSON-serializable. */
export interface RolloutState {
  readonly version: 1;
  readonly bundle: string;
  readonly revision: string;
  readonly spec: RolloutSpec;
  phase: RolloutPhase;
  pauseReason: 'command' | 'failures' | null;
  revertReason: 'failures' | 'abort' | null;
  /** The revision this one superseded. */
  readonly supersedes: string | null;
  readonly createdAt: number;
  updatedAt: number;
  finishedAt: number | null;
  /** The last wave opened; -1 before the first step. */
  currentWave: number;
  /** True while the next wave is due but outside every window. */
  waitingForWindow: boolean;
  readonly waves: RolloutWaveState[];
  /** Sorted by wave, then name. */
  readonly clusters: RolloutClusterState[];
}

export type RolloutEventType =
  | 'rollout-started'
  | 'rollout-superseded'
  | 'wave-opened'
  | 'cluster-released'
  | 'cluster-done'
  | 'cluster-not-ready'
  | 'cluster-offline'
  | 'cluster-failed'
  | 'cluster-skipped'
  | 'wave-baked'
  | 'rollout-paused'
  | 'rollout-resumed'
  | 'rollout-reverted'
  | 'rollout-completed';

/** Something a rollout did, for status, the CLI and notifications. */
export interface RolloutEvent {
  readonly type: RolloutEventType;
  readonly at: number;
  readonly bundle: string;
  readonly revision: string;
  /** Index into `state.waves`, and its name. */
  readonly wave?: number;
  readonly waveName?: string;
  readonly cluster?: string;
  /** A short machine-readable why: deadline, offline, failures, command, abort, promote, window, unchanged. */
  readonly reason?: string;
  /** One sentence for people. */
  readonly message: string;
}

export interface StepResult {
  readonly state: RolloutState;
  readonly events: RolloutEvent[];
  /** Clusters to give `toHash` now. */
  readonly release: string[];
  /** Clusters to give `fromHash` back now (a null `fromHash` means: remove the bundle). */
  readonly revert: string[];
  /** When a timer (bake end, deadline, grace, window opening) needs a step even without reports; null: none. */
  readonly nextWakeAt: number | null;
}

/** A command that does not apply to the rollout's phase (a finished rollout cannot be paused). */
export class RolloutCommandError extends Error {
  readonly command: RolloutCommand;
  readonly phase: RolloutPhase;
  constructor(message: string, command: RolloutCommand, phase: RolloutPhase, options?: ErrorOptions) {
    super(message, options);
    this.name = 'RolloutCommandError';
    this.command = command;
    this.phase = phase;
  }
}

/** The caller handed the machine something inconsistent (a cluster twice, a wave index out of range). */
export class RolloutInputError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'RolloutInputError';
  }
}
