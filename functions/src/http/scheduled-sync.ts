import {
  applyRolloutSteps,
  type RolloutSchedulePorts,
  type SyncPorts,
  stepDueRollouts,
  stepRolloutsOnSchedule,
  syncFleet,
  syncReportView,
} from '@flotilla/shared/hub';
import { jsonLogger, type Logger } from './log.ts';

/**
 * One scheduled sync, logged as one line: what changed, what failed to notify, and the
 * fleet repo's errors by file and line. A sync that throws fails the invocation, so
 * EventBridge's retry and the function's error metric see it.
 */
export async function scheduledSync(
  ports: SyncPorts &
    Partial<Pick<RolloutSchedulePorts, 'statuses'>> & {
      readonly config?: { readonly offlineAfterSeconds: number };
    },
  invocationId: string,
  log: Logger = jsonLogger(),
) {
  const report = syncReportView(await syncFleet(ports, { holder: `schedule:${invocationId}` }));
  // Rollouts whose bake, deadline, grace or window ran out advance even without reports.
  if (ports.rollouts) {
    // Offline clusters are told to their rollouts too (skip, wait or fail, as `offline:` says).
    const steps = ports.statuses
      ? await stepRolloutsOnSchedule({
          rollouts: ports.rollouts,
          rolloutTimer: ports.rolloutTimer,
          clusters: ports.clusters,
          statuses: ports.statuses,
          now: ports.now,
          offlineAfterMs: (ports.config?.offlineAfterSeconds ?? 180) * 1000,
        })
      : await stepDueRollouts({ rollouts: ports.rollouts, now: ports.now, rolloutTimer: ports.rolloutTimer });
    const applied = await applyRolloutSteps(ports, steps);
    if (steps.length > 0) {
      log.info('rollouts stepped on schedule', {
        invocationId,
        rollouts: steps.map((s) => ({
          bundle: s.bundle,
          phase: s.state.phase,
          released: s.release,
          reverted: s.revert,
        })),
        changed: applied.changed,
        errors: applied.errors.map((e) => e.message),
      });
    }
  }
  log.info('scheduled sync', {
    invocationId,
    status: report.status,
    commit: report.commit,
    clusters: report.clusters,
    changed: report.changed.length,
    notifyFailures: report.notifyFailures,
    errors: report.errors.map((e) => e.text),
    warnings: (report.warnings ?? []).map((e) => e.text),
  });
  return report;
}
