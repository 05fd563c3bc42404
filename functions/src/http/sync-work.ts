import {
  isRolloutWakeMessage,
  type RolloutWakeReport,
  type SyncFanout,
  type SyncPorts,
  type SyncWindowReport,
  type SyncWorkMessage,
} from '@flotilla/shared/hub';
import type { Logger } from './log.ts';
import { rolloutWake } from './rollout-wake.ts';
import { syncWindow } from './sync-window.ts';

/**
 * One message off the sync work queue, as the sync function's event source (or the local
 * hub's poller) hands it over: a window of a dispatched sync, or a rollout wake.
 * @throws Error when the hub lacks what the message needs (a misconfiguration, which
 *   SQS's redelivery and dead-letter queue then surface).
 */
export async function syncWork(
  ports: SyncPorts & { readonly fanout?: SyncFanout },
  message: SyncWorkMessage,
  log?: Logger,
): Promise<SyncWindowReport | RolloutWakeReport> {
  if (isRolloutWakeMessage(message)) {
    const { rollouts } = ports;
    if (!rollouts)
      throw new Error(`a rollout wake of ${message.bundle} arrived but this hub keeps no rollouts`);
    return rolloutWake({ ...ports, rollouts }, message, log);
  }
  const { fanout } = ports;
  if (!fanout) throw new Error('a sync window arrived but FLOTILLA_SYNC_QUEUE_URL is not set');
  return syncWindow({ ...ports, fanout }, message, log);
}
