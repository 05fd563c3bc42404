/**
 * A fleet's status as the hub keeps it, written straight into the hub's tables: cluster
 * records labelled as `bench:hub` labels its clusters, each cluster's current desired state
 * and its agent's per-bundle status in the stores' own item layout, and (unless `stale`)
 * the status digest each cluster's last report leaves on its record. Nothing is rendered
 * (`bench:hub` measures that): this is what fleet listings read, for `bench:status`,
 * `bench:dashboard` and the dashboard's browser test at 10,000 clusters.
 *
 * The digests are worked out by the hub's own code (`clusterStatusView`, `statusDigestOf`)
 * from the items about to be written, and go into the cluster records' first write, rather
 * than by `refreshStatusDigest` once everything is stored (two reads and a write per
 * cluster: 110 s of the 270 s 10,000 clusters took that way on DynamoDB Local under load).
 * A sample of clusters is then read back through the hub's stores and must give the same
 * digest, so a change to the stores' layout or to the digest fails the seeding instead of
 * seeding a fleet the hub would see differently.
 */
import { createHash } from 'node:crypto';
import {
  type ClusterRecord,
  type ClusterStatusDigest,
  clusterStatusView,
  type StoredBundleStatus,
  type StoredDesiredState,
  statusDigestOf,
} from '@flotilla/shared/hub';
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
  /** The sampled check of the digests against the hub's own reads (0 when `stale`). */
  readonly checkSeconds: number;
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
    const record = {
      clusterId: id,
      labels: statusFleetLabels(i),
      tokenHash: '0'.repeat(64),
      registeredAt: at,
      lastHeartbeatAt: heartbeat,
      agentVersion: '0.1.0',
      kubeVersion: 'v1.33.2',
      head,
    };
    const state: StoredDesiredState = {
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
    const reported = bundleNames.map((bundle, b) => ({
      bundle,
      hash: bundleHashes[b],
      generation: 1,
      since: at,
      updatedAt: at,
      ...bundleState(i, b, opts.bundles),
    }));
    for (const status of reported) statuses.push({ clusterId: id, ...status });
    clusters.push(
      opts.stale ? record : { ...record, statusDigest: await digestOf(record, state, reported, now) },
    );
  }
  const t0 = performance.now();
  const put = (items: Record<string, unknown>[]) => items.map((Item) => ({ PutRequest: { Item } }));
  await Promise.all([
    db.batchWrite(hub.config.tables.clusters, put(clusters), 4),
    db.batchWrite(hub.config.tables.desiredStates, put(desired), 4),
    db.batchWrite(hub.config.tables.bundleStatus, put(statuses), 16),
  ]);
  await hub.syncState.save({
    commit: 'c1',
    snapshotHash: 's',
    syncedAt: at,
    clusters: size,
    changedClusters: 0,
    errors: [],
  });
  const t1 = performance.now();
  if (opts.stale) return { writeSeconds: seconds(t1 - t0), checkSeconds: 0 };
  // Every 500th cluster and the first 100 (which hold each kind of state), read back.
  for (let i = 0; i < size; i += i < 100 ? 1 : 500) {
    const id = statusFleetClusterId(i);
    const record = await hub.clusters.get(id);
    if (!record) throw new Error(`seeded cluster ${id} is not in the hub's cluster store`);
    const digest = statusDigestOf(await clusterStatusView(hub, record, now, 0, true));
    if (canonical(digest) !== canonical(record.statusDigest))
      throw new Error(
        `seeded cluster ${id}: the hub reads its status digest as ${JSON.stringify(digest)}, the seeding wrote ${JSON.stringify(record.statusDigest)}`,
      );
  }
  return { writeSeconds: seconds(t1 - t0), checkSeconds: seconds(performance.now() - t1) };
}

/** The digest the hub works out for a cluster from these items, as its stores return them. */
function digestOf(
  record: Record<string, unknown> & { clusterId: string },
  state: StoredDesiredState,
  bundles: readonly Record<string, unknown>[],
  now: Date,
): Promise<ClusterStatusDigest> {
  const { clusterId, ...rest } = record;
  const cluster = { id: clusterId, ...rest } as unknown as ClusterRecord;
  const ports = {
    desiredStates: { current: async () => state },
    statuses: {
      get: async () => ({
        clusterId,
        appliedGeneration: 1,
        bundles: bundles as unknown as StoredBundleStatus[],
      }),
    },
  };
  return clusterStatusView(
    ports as unknown as Parameters<typeof clusterStatusView>[0],
    cluster,
    now,
    0,
    true,
  ).then(statusDigestOf);
}

/** JSON with every object's keys sorted: DynamoDB gives maps back in an order of its own. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

const seconds = (ms: number) => Math.round(ms / 100) / 10;
