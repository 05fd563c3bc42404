import { type SyncPorts, syncFleet, syncReportView } from '@flotilla/shared/hub';
import { jsonLogger, type Logger } from './log.ts';

/**
 * One scheduled sync, logged as one line: what changed, what failed to notify, and the
 * fleet repo's errors by file and line. A sync that throws fails the invocation, so
 * EventBridge's retry and the function's error metric see it.
 */
export async function scheduledSync(ports: SyncPorts, invocationId: string, log: Logger = jsonLogger()) {
  const report = syncReportView(await syncFleet(ports, { holder: `schedule:${invocationId}` }));
  log.info('scheduled sync', {
    invocationId,
    status: report.status,
    commit: report.commit,
    clusters: report.clusters,
    changed: report.changed.length,
    notifyFailures: report.notifyFailures,
    errors: report.errors.map((e) => e.text),
  });
  return report;
}
