/**
 * What only the passing of time reveals, checked on the hub's schedule: clusters whose
 * heartbeat stopped (`cluster.offline`) and bundles NotReady past their deadline
 * (`bundle.not-ready`). Each is emitted once per occurrence: a conditional write marks it
 * reported first, so two schedule runs at once, or a heartbeat landing meanwhile, cannot
 * both emit it.
 */
import type { EventSink, FleetEvent } from '../notify/events.ts';
import { BundleState } from '../protocol/status.ts';
import { bundleNotReadyEvent, clusterOfflineEvent, emitEvents } from './fleet-events.ts';
import type { ClusterRecord, ClusterStore } from './ports.ts';
import type { ClusterStatusStore } from './status.ts';

export interface HealthWatchPorts {
  readonly clusters: Pick<ClusterStore, 'list' | 'markOffline'>;
  readonly statuses: Pick<ClusterStatusStore, 'get' | 'markNotReadyReported'>;
  readonly events?: EventSink | undefined;
  readonly now: () => Date;
}

export interface HealthWatchOptions {
  /** A cluster without a heartbeat for this long is offline (the fleet status's rule). */
  readonly offlineAfterSeconds: number;
  /** A bundle NotReady on its content for this long is reported; 10 minutes unless told. */
  readonly notReadyAfterSeconds?: number;
}

export const defaultNotReadyAfterSeconds = 600;

/** What one pass found and emitted, as data. */
export interface HealthWatchReport {
  readonly offline: readonly string[];
  readonly notReady: readonly { readonly cluster: string; readonly bundle: string }[];
}

const readConcurrency = 8;

/**
 * One pass over the fleet.
 *
 * 1. Each cluster whose last heartbeat is older than the threshold and that is not marked
 *    offline yet is marked, conditional on that heartbeat; the pass that marked it emits
 *    `cluster.offline` (the next heartbeat clears the mark and emits `cluster.online`).
 * 2. For each online cluster, each bundle NotReady since longer than the deadline and not
 *    reported yet is marked reported, conditional on its NotReady stretch; the pass that
 *    marked it emits `bundle.not-ready`.
 *
 * Without an event sink, or a store that cannot mark, there is nothing to do.
 */
export async function watchFleetHealth(
  ports: HealthWatchPorts,
  opts: HealthWatchOptions,
): Promise<HealthWatchReport> {
  const empty: HealthWatchReport = { offline: [], notReady: [] };
  if (!ports.events) return empty;
  const markOffline = ports.clusters.markOffline?.bind(ports.clusters);
  const markNotReady = ports.statuses.markNotReadyReported?.bind(ports.statuses);
  if (!markOffline && !markNotReady) return empty;
  const now = ports.now();
  const nowIso = now.toISOString();
  const offlineMs = opts.offlineAfterSeconds * 1000;
  const notReadyMs = (opts.notReadyAfterSeconds ?? defaultNotReadyAfterSeconds) * 1000;
  const events: FleetEvent[] = [];
  const offline: string[] = [];
  const notReady: { cluster: string; bundle: string }[] = [];
  const online: ClusterRecord[] = [];
  for (const c of await ports.clusters.list()) {
    // A cluster that never reported was never online: nothing went away.
    if (c.lastHeartbeatAt === undefined) continue;
    const silentFor = now.getTime() - Date.parse(c.lastHeartbeatAt);
    if (silentFor <= offlineMs) {
      online.push(c);
      continue;
    }
    if (c.offlineAt !== undefined || !markOffline) continue;
    if (await markOffline(c.id, c.lastHeartbeatAt, nowIso)) {
      offline.push(c.id);
      events.push(clusterOfflineEvent(c, c.lastHeartbeatAt, now, opts.offlineAfterSeconds));
    }
  }
  if (markNotReady) {
    let next = 0;
    const worker = async () => {
      while (next < online.length) {
        const c = online[next++] as ClusterRecord;
        const status = await ports.statuses.get(c.id);
        for (const b of status?.bundles ?? []) {
          if (b.state !== BundleState.NotReady || b.notReadyReportedAt !== undefined) continue;
          if (now.getTime() - Date.parse(b.since) <= notReadyMs) continue;
          if (await markNotReady(c.id, b.bundle, b.since, nowIso)) {
            notReady.push({ cluster: c.id, bundle: b.bundle });
            events.push(bundleNotReadyEvent(c, b, now, notReadyMs / 1000));
          }
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(readConcurrency, online.length) }, worker));
  }
  await emitEvents(ports.events, () => events);
  return { offline, notReady };
}
