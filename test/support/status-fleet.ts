/**
 * A fleet's status as the hub keeps it, written straight into the hub's tables: cluster
 * records labelled as `bench:hub` labels its clusters, each cluster's current desired state
 * and its agent's per-bundle status in the stores' own item layout, and (unless `stale`)
 * the status digest each cluster's last report leaves on its record. Nothing is rendered
 * (`bench:hub` measures that): this is what fleet listings read, for `bench:status`,
 * `bench:dashboard` and the dashboard's browser test at 10,000 clusters.
 */
import { createHash } from 'node:crypto';
import { refreshStatusDigest } from '@flotilla/shared/hub';
import { HubDb } from '../../functions/src/adapters/dynamodb-stores.ts';
import type { HubContext } from '../../functions/src/hub-context.ts';

export interface StatusFleetOptions {
  /** Clusters, named `c000000`, `c000001`, ... ({@link statusFleetClusterId}). */
  readonly size: number;
  /** Bundles per cluster, named `app-00`, `app-01`, ...; every cluster gets all of them. */
  readonly bundles: number;
  /** The hub's now: heartbeats and status times are set from it. */
  readonly now: Date;
  /** No status digests on the records, as right after a sync moved every head. */
  readonly stale?: boolean;
}

/** How long each step took, in seconds. */
export interface StatusFleetTimings {
  /** The records, desired states and bundle statuses (BatchWriteItem). */
  readonly writeSeconds: number;
  /** The status digests, by the hub's own `refreshStatusDigest` (0 when `stale`). */
  readonly digestSeconds: number;
}

/** The `i`th cluster's id: `c` and six digits, so that ids sort as their numbers do. */
export function statusFleetClusterId(i: number): string {
  return `c${String(i).padStart(6, '0')}`;
}

const envs = ['prod', 'prod', 'prod', 'staging', 'staging', 'dev', 'dev', 'dev', 'dev', 'dev'] as const;
const regions = ['eu', 'us', 'ap'] as const;
const tiers = ['gold', 'silver', 'bronze'] as const;

/** The `i`th cluster's labels, as `bench:hub` labels its clusters. */
export function statusFleetLabels(i: number): Record<string, string> {
  return {
    env: envs[i % envs.length] as string,
    region: regions[Math.floor(i / 10) % regions.length] as string,
    tier: tiers[Math.floor(i / 30) % tiers.length] as string,
    team: `team-${i % 17}`,
    ...(i % 10 === 7 ? { canary: 'true' } : {}),
  };
}

const hashOf = (text: string) => `sha256:${createHash('sha256').update(text).digest('hex')}`;

/** Mostly Ready; about 2% of clusters fail one bundle, 3% drift one, 1% still apply one; 5% are offline. */
function bundleState(
  i: number,
  b: number,
  bundleCount: number,
): { state: string; message?: string; drift?: unknown } {
  if (i % 50 === 3 && b === i % bundleCount)
    return { state: 'Failed', message: 'Deployment/app: image pull failed' };
  if (i % 33 === 5 && b === (i + 1) % bundleCount)
    return {
      state: 'Drifted',
      drift: [{ object: 'apps/v1/Deployment/default/app', fields: ['spec.replicas'] }],
    };
  if (i % 100 === 9 && b === 0) return { state: 'NotReady' };
  return { state: 'Ready' };
}

/**
 * Writes the fleet into the hub's tables (which must exist: `ensureHubTables`) and the
 * last sync's record (commit `c1`). Clusters whose index is 11 modulo 20 last reported an
 * hour before `now` (offline with the default grace).
 */
export async function seedStatusFleet(
  hub: HubContext,
  opts: StatusFleetOptions,
): Promise<StatusFleetTimings> {
  const { size, now } = opts;
  const db = new HubDb(hub.dynamodb, hub.config.tables);
  const at = now.toISOString();
  const bundleNames = Array.from({ length: opts.bundles }, (_, b) => `app-${String(b).padStart(2, '0')}`);
  const bundleHashes = bundleNames.map((n) => hashOf(n));
  // Every cluster gets the same references, so they share one refsHash, as the hub computes it.
  const refsHash = hashOf(JSON.stringify(bundleNames.map((name, b) => [name, bundleHashes[b]])));
  const clusters: Record<string, unknown>[] = [];
  const desired: Record<string, unknown>[] = [];
  const statuses: Record<string, unknown>[] = [];
  for (let i = 0; i < size; i++) {
    const id = statusFleetClusterId(i);
    const manifest = JSON.stringify({
      apiVersion: 'flotilla.dev/v1alpha1',
      kind: 'DesiredState',
      cluster: id,
      generation: 1,
      commit: 'c1',
      bundles: bundleNames.map((name, b) => ({
        name,
        hash: bundleHashes[b],
        namespace: 'default',
        dependsOn: [],
        driftPolicy: 'correct',
        paused: false,
      })),
    });
    const etag = hashOf(manifest);
    const head = { generation: 1, etag, refsHash, commit: 'c1' };
    const heartbeat = new Date(now.getTime() - (i % 20 === 11 ? 3600 : 20) * 1000).toISOString();
    clusters.push({
      clusterId: id,
      labels: statusFleetLabels(i),
      tokenHash: '0'.repeat(64),
      registeredAt: at,
      lastHeartbeatAt: heartbeat,
      agentVersion: '0.1.0',
      kubeVersion: 'v1.33.2',
      head,
    });
    const state = {
      clusterId: id,
      generation: 1,
      etag,
      refsHash,
      commit: 'c1',
      manifest,
      signature: 'x',
      keyId: 'k',
      createdAt: at,
    };
    desired.push({ clusterId: id, generation: 0, current: state });
    statuses.push({ clusterId: id, bundle: '#cluster', appliedGeneration: 1 });
    bundleNames.forEach((bundle, b) => {
      statuses.push({
        clusterId: id,
        bundle,
        hash: bundleHashes[b],
        generation: 1,
        since: at,
        updatedAt: at,
        ...bundleState(i, b, opts.bundles),
      });
    });
  }
  const t0 = performance.now();
  const put = (items: Record<string, unknown>[]) => items.map((Item) => ({ PutRequest: { Item } }));
  await db.batchWrite(hub.config.tables.clusters, put(clusters), 16);
  await db.batchWrite(hub.config.tables.desiredStates, put(desired), 16);
  await db.batchWrite(hub.config.tables.bundleStatus, put(statuses), 16);
  await hub.syncState.save({
    commit: 'c1',
    snapshotHash: 's',
    syncedAt: at,
    clusters: size,
    changedClusters: 0,
    errors: [],
  });
  const t1 = performance.now();
  if (opts.stale) return { writeSeconds: seconds(t1 - t0), digestSeconds: 0 };
  // The digest each cluster's last report leaves on its record, by the hub's own code.
  let next = 0;
  const worker = async () => {
    while (next < size) {
      const i = next++;
      await refreshStatusDigest(hub, { id: statusFleetClusterId(i), labels: statusFleetLabels(i) });
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  return { writeSeconds: seconds(t1 - t0), digestSeconds: seconds(performance.now() - t1) };
}

const seconds = (ms: number) => Math.round(ms / 100) / 10;
