import {
  applySyncWindow,
  type SyncFanout,
  type SyncPorts,
  type SyncWindowMessage,
} from '@flotilla/shared/hub';
import { jsonLogger, type Logger } from './log.ts';

/**
 * One window of a dispatched sync (a worker invocation), logged as one line. A window
 * that throws fails the invocation, so SQS hands it out again after the visibility
 * timeout (and to the dead-letter queue after repeated failures).
 */
export async function syncWindow(
  ports: SyncPorts & { readonly fanout: SyncFanout },
  message: SyncWindowMessage,
  log: Logger = jsonLogger(),
) {
  const started = Date.now();
  const report = await applySyncWindow(ports, message);
  log.info('sync window', {
    jobId: report.jobId,
    window: report.window,
    commit: message.commit,
    clusters: report.result.clusters,
    changed: report.result.changed.length,
    redelivered: !report.recorded,
    completed: report.completed,
    notifyFailures: report.result.notifyFailures,
    ms: Date.now() - started,
  });
  return report;
}
