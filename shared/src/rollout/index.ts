/**
 * Progressive rollouts, the pure part: wave membership, windows and the state machine that
 * the hub steps on every status report and timer. The `rollout:` block itself is read by
 * `rollout-spec.ts` with the rest of bundle.yaml.
 */
export {
  type Amount,
  DEFAULT_OFFLINE_GRACE_MS,
  DEFAULT_PROGRESS_DEADLINE_MS,
  FailureAction,
  formatDuration,
  OfflineAction,
  parseDuration,
  type RolloutSpec,
  type RolloutWaveSpec,
  type RolloutWindow,
  resolveAmount,
  UnmatchedPolicy,
  type WaveMatch,
  type Weekday,
} from '../rollout-spec.ts';
export { isFinished, markSuperseded, startRollout, stepRollout, supersede } from './machine.ts';
export {
  type ClusterObservation,
  type ClusterPhase,
  type RolloutCluster,
  type RolloutClusterState,
  RolloutCommand,
  RolloutCommandError,
  type RolloutEvent,
  type RolloutEventType,
  RolloutInputError,
  type RolloutPhase,
  type RolloutState,
  type RolloutWaveState,
  type StartInput,
  type StepResult,
} from './types.ts';
export {
  assignWaves,
  UNMATCHED_WAVE,
  unmatchedError,
  unmatchedProblem,
  type WaveAssignment,
} from './waves.ts';
export { inAnyWindow, inWindow, nextWindowOpen } from './windows.ts';
