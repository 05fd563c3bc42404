import {
  applyRolloutSteps,
  type StatusPorts,
  type SyncPorts,
  stepDueRollouts,
  stepRolloutsOnSchedule,
  syncFleet,
  syncReportView,
  watchFleetHealth,
} from '@flotilla/shared/hub';
import { jsonLogger, type Logger } from './log.ts';

/**
 * One scheduled sync, logged as one line: what changed, what failed to notify, and the
 * fleet repo's errors by file and line. A sync that throws fails the invocation, so
 * EventBridge's retry and the function's error metric see it.
 */
export async function scheduledSync(
  ports: SyncPorts &
    Partial<Pick<StatusPorts, 'statuses'>> & {
      readonly config?: { readonly offlineAfterSeconds: number; readonly notReadyAfterSeconds?: number };
    },
  invocationId: string,
  log: Logger = jsonLogger(),
) {
  // Offline clusters and bundles NotReady past their deadline are told even when the sync fails.
  const health = ports.statuses
    ? await watchFleetHealth(
        { clusters: ports.clusters, statuses: ports.statuses, events: ports.events, now: ports.now },
        {
          offlineAfterSeconds: ports.config?.offlineAfterSeconds ?? 180,
          ...(ports.config?.notReadyAfterSeconds === undefined
            ? {}
            : { notReadyAfterSeconds: ports.config.notReadyAfterSeconds }),
        },
      ).catch((err: unknown) => {
        log.warn('fleet health watch failed', { invocationId, error: (err as Error).message });
        return undefined;
      })
    : undefined;
  if (health && (health.offline.length > 0 || health.notReady.length > 0))
    log.info('fleet health', { invocationId, offline: health.offline, notReady: health.notReady });
  const report = syncReportView(await syncFleet(ports, { holder: `schedule:${invocationId}` }));
  // Rollouts whose bake, deadline, grace or window ran out advance even without reports.
  if (ports.rollouts) {
    // Offline clusters are told to their rollouts too (skip, wait or fail, as `offline:` says).
    const steps = ports.statuses
      ? await stepRolloutsOnSchedule({
          rollouts: ports.rollouts,
          rolloutTimer: ports.rolloutTimer,
          events: ports.events,
          clusters: ports.clusters,
          statuses: ports.statuses,
          now: ports.now,
          offlineAfterMs: (ports.config?.offlineAfterSeconds ?? 180) * 1000,
        })
      : await stepDueRollouts({
          rollouts: ports.rollouts,
          now: ports.now,
          rolloutTimer: ports.rolloutTimer,
          events: ports.events,
        });
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
