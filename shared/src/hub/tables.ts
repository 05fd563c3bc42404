/**
 * The hub's DynamoDB tables, defined once: the CDK app creates them from this and
 * the functions and the local hub address them through it, so names and key
 * schemas cannot drift apart. Pure data; no SDK types.
 */
export const hubTables = {
  /** One item per registered cluster: labels, token hash, heartbeat, and the head of its desired state. */
  clusters: {
    suffix: 'clusters',
    partitionKey: { name: 'clusterId', type: 'S' },
  },
  /** Content-addressed rendered bundles, split into chunks: (hash, chunk index). */
  bundles: {
    suffix: 'bundles',
    partitionKey: { name: 'hash', type: 'S' },
    sortKey: { name: 'chunk', type: 'N' },
  },
  /**
   * Every desired-state generation per cluster, the newest N kept: (cluster, generation);
   * generation 0 holds a copy of the current one, written with the head in one transaction.
   */
  desiredStates: {
    suffix: 'desired-states',
    partitionKey: { name: 'clusterId', type: 'S' },
    sortKey: { name: 'generation', type: 'N' },
  },
  /** Per-bundle status reported by agents: (cluster, bundle). */
  bundleStatus: {
    suffix: 'bundle-status',
    partitionKey: { name: 'clusterId', type: 'S' },
    sortKey: { name: 'bundle', type: 'S' },
  },
  /** Sync state of each fleet repo (last commit, errors, lease), one-time registration tokens and tenant keys. */
  hubState: {
    suffix: 'hub-state',
    partitionKey: { name: 'pk', type: 'S' },
    /** Used and expired registration tokens carry `ttl` (epoch seconds), so DynamoDB removes them. */
    ttlAttribute: 'ttl',
  },
} as const;

export type HubTableKey = keyof typeof hubTables;
export type HubTableNames = { readonly [K in HubTableKey]: string };

/** Table names for a hub whose resources share `prefix` (for example `flotilla`). */
export function hubTableNames(prefix: string): HubTableNames {
  if (!/^[A-Za-z0-9_.-]{1,200}$/.test(prefix)) {
    throw new RangeError(`table prefix "${prefix}" may contain only A-Z, a-z, 0-9, _, . and -`);
  }
  const entries = Object.entries(hubTables).map(([key, def]) => [key, `${prefix}-${def.suffix}`]);
  return Object.fromEntries(entries) as HubTableNames;
}

/** Spoke notification queues are named `${prefix}-spoke-${clusterId}`; IAM scopes on this prefix. */
export function spokeQueueName(prefix: string, clusterId: string): string {
  return `${prefix}-spoke-${clusterId}`;
}

/** DynamoDB's item limit is 400 KB; chunks stay well under it with room for keys and attributes. */
export const bundleChunkBytes = 350 * 1024;

/**
 * Generations of desired state kept per cluster for rollback and audit. Label changes,
 * Kubernetes version re-plans and rollbacks write generations too, so 10 could lose the
 * last known good revision within a busy day; 25 items of a few KB each cost little.
 */
export const desiredStateHistoryDepth = 25;
