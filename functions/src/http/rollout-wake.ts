import {
  applyRolloutSteps,
  type RolloutWakeMessage,
  type RolloutWakeReport,
  type SyncPorts,
  wakeRollout,
} from '@flotilla/shared/hub';
import { jsonLogger, type Logger } from './log.ts';

/**
 * A rollout wake off the sync work queue (a worker invocation), logged as one line: the
 * rollout's due timer stepped, and whoever the step released or reverted given a
 * generation. A wake that throws (the rollout store unreachable) fails the invocation,
 * so SQS hands it out again.
 */
export async function rolloutWake(
  ports: Omit<SyncPorts, 'source'> & { readonly rollouts: NonNullable<SyncPorts['rollouts']> },
  message: RolloutWakeMessage,
  log: Logger = jsonLogger(),
): Promise<RolloutWakeReport & { readonly generationsWritten: number }> {
  const report = await wakeRollout(ports, message);
  const applied = report.step ? await applyRolloutSteps(ports, [report.step]) : { changed: 0, errors: [] };
  // Redelivering the wake would not redo these (the rollout has stepped); as after a
  // report's step, the next sync re-plans those clusters through the rollout.
  const level = applied.errors.length > 0 ? 'error' : 'info';
  log[level]('rollout wake', {
    bundle: report.bundle,
    at: report.at,
    outcome: report.outcome,
    ...(report.step
      ? {
          phase: report.step.state.phase,
          released: report.step.release,
          reverted: report.step.revert,
          events: report.step.events.map((e) => e.type),
        }
      : {}),
    changed: applied.changed,
    errors: applied.errors.map((e) => e.message),
  });
  return { ...report, generationsWritten: applied.changed };
}
