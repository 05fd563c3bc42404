/**
 * One cluster's status, as the fleet status shows it, for a page about that cluster: what
 * a dashboard polls instead of the fleet when it shows one cluster.
 * Pure: storage comes in through the ports of {@link fleetStatus}.
 */
import { NotFoundError } from './ports.ts';
import {
  type ClusterStatusView,
  clusterStatusView,
  type FleetStatus,
  type FleetStatusPorts,
  syncView,
} from './status.ts';

/** The fleet status's envelope around one cluster's view. */
export interface ClusterStatus extends Pick<FleetStatus, 'generatedAt' | 'offlineAfterSeconds' | 'sync'> {
  /** The same view the cluster has in the fleet status's `clusters`. */
  readonly cluster: ClusterStatusView;
}

/**
 * One cluster's status: each bundle of its current desired state against what its agent
 * last reported, whether it is Offline, and the last sync with its errors.
 *
 * The desired state is read even when the record shows no head yet (a cluster's first
 * sync may land between the two reads): four reads in two rounds, whatever the fleet's size.
 *
 * @throws {NotFoundError} when no cluster has this id.
 */
export async function clusterStatus(
  ports: FleetStatusPorts,
  id: string,
  opts: { readonly offlineAfterSeconds: number },
): Promise<ClusterStatus> {
  const now = ports.now();
  const [record, sync] = await Promise.all([ports.clusters.get(id), ports.syncState.get()]);
  if (!record) throw new NotFoundError(`cluster "${id}" not found`);
  return {
    generatedAt: now.toISOString(),
    offlineAfterSeconds: opts.offlineAfterSeconds,
    sync: syncView(sync),
    cluster: await clusterStatusView(ports, record, now, opts.offlineAfterSeconds, true),
  };
}
