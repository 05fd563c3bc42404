import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { labelsProblems, nameProblem } from '../labels.ts';
import { type AgeRecipient, sortRecipients } from '../protocol/age-recipients.ts';
import {
  type BundlePin,
  type ClusterRecord,
  type ClusterStore,
  ConflictError,
  GenerationReason,
  type KeyRotationRequest,
  type Labels,
  NotFoundError,
} from './ports.ts';
import { recomputeCluster, type SyncPorts, type SyncReport } from './sync.ts';

/** Creates and removes a cluster's notification queue. */
export interface SpokeQueues {
  create(clusterId: string): Promise<string>;
  delete(queueUrl: string): Promise<void>;
}

/** A request the hub refuses, with the field that is wrong. Maps to HTTP 400. */
export class ValidationError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'ValidationError';
    this.field = field;
  }
}

export type AdminPorts = Omit<SyncPorts, 'source'> & { readonly queues: SpokeQueues };

const tokenPrefix = 'flt_';

/** SHA-256 of a token: tokens are 256-bit random secrets, so a fast hash is the right one. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** A new token for `clusterId`: the id travels in it so the hub can look the cluster up in one read. */
export function newClusterToken(clusterId: string): string {
  return `${tokenPrefix}${clusterId}.${randomBytes(32).toString('base64url')}`;
}

/** The cluster id a token claims, without checking it. */
export function tokenClusterId(token: string): string | undefined {
  if (!token.startsWith(tokenPrefix)) return undefined;
  const dot = token.lastIndexOf('.');
  return dot > tokenPrefix.length ? token.slice(tokenPrefix.length, dot) : undefined;
}

/** The cluster whose token this is, or undefined: unknown cluster, wrong secret, removed cluster alike. */
export async function authenticateCluster(
  clusters: ClusterStore,
  token: string,
): Promise<ClusterRecord | undefined> {
  const id = tokenClusterId(token);
  if (!id) return undefined;
  const cluster = await clusters.get(id);
  if (!cluster) return undefined;
  const expected = Buffer.from(cluster.tokenHash, 'hex');
  const actual = Buffer.from(hashToken(token), 'hex');
  return expected.length === actual.length && timingSafeEqual(expected, actual) ? cluster : undefined;
}

export function validateClusterId(id: unknown, field = 'name'): string {
  if (typeof id !== 'string') throw new ValidationError(field, 'expected a string');
  const problem = nameProblem(id);
  if (problem) throw new ValidationError(field, problem);
  if (id.length > 50) throw new ValidationError(field, `at most 50 characters (got ${id.length})`);
  // The spoke queues' shared dead-letter queue is `<prefix>-spoke-dlq`.
  if (id === 'dlq') throw new ValidationError(field, '"dlq" is reserved');
  return id;
}

export function validateLabels(labels: unknown, field = 'labels'): Labels {
  if (labels === undefined) return {};
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) {
    throw new ValidationError(field, 'expected an object of string values');
  }
  for (const [key, value] of Object.entries(labels)) {
    if (typeof value !== 'string') throw new ValidationError(`${field}.${key}`, 'expected a string value');
  }
  const problems = labelsProblems(labels as Labels);
  if (problems.length > 0) throw new ValidationError(field, problems.join('; '));
  return labels as Labels;
}

export interface Registration {
  readonly cluster: ClusterRecord;
  /** Shown once: the hub keeps only its hash. */
  readonly token: string;
  readonly sync: SyncReport;
}

/**
 * Registers a cluster: creates its queue and record (with its token's hash) and gives
 * it a desired state at the last synced commit.
 * @throws ConflictError when the name is taken.
 */
export async function registerCluster(
  ports: AdminPorts,
  input: { name: string; labels: Labels },
): Promise<Registration> {
  const id = validateClusterId(input.name);
  const labels = validateLabels(input.labels);
  if (await ports.clusters.get(id)) throw new ConflictError(`cluster "${id}" is already registered`);
  const token = newClusterToken(id);
  const queueUrl = await ports.queues.create(id);
  const cluster: ClusterRecord = {
    id,
    labels,
    tokenHash: hashToken(token),
    registeredAt: ports.now().toISOString(),
    queueUrl,
  };
  await ports.clusters.create(cluster);
  const sync = await recomputeCluster(ports, id, { reason: GenerationReason.Register });
  return { cluster, token, sync };
}

/** Removes a cluster: its token stops working at once, then its queue goes. */
export async function deregisterCluster(ports: AdminPorts, id: string): Promise<void> {
  const cluster = await ports.clusters.get(id);
  if (!cluster) throw new NotFoundError(`cluster "${id}" not found`);
  await ports.clusters.delete(id);
  if (cluster.queueUrl) await ports.queues.delete(cluster.queueUrl);
}

/** Issues a new token; the old one stops working at once. */
export async function rotateClusterToken(ports: AdminPorts, id: string): Promise<string> {
  const token = newClusterToken(id);
  await ports.clusters.update(id, { tokenHash: hashToken(token) });
  return token;
}

/**
 * Sets and removes labels, then re-plans just this cluster at the last synced commit,
 * so a bundle moves onto or off it without waiting for the next sync.
 *
 * The change is written key by key in one atomic write, so concurrent changes to other
 * keys survive; the re-plan runs until it planned from labels that stayed current
 * ({@link recomputeCluster}), so the desired state ends up following the final labels.
 *
 * @returns the cluster as it is after the re-plan, and the re-plan's report.
 * @throws ValidationError for a bad label, or a key both set and removed.
 * @throws NotFoundError when the cluster does not exist.
 * @throws ConflictError when the labels kept changing through every re-plan.
 */
export async function relabelCluster(
  ports: AdminPorts,
  id: string,
  change: { set?: Labels; remove?: readonly string[] },
): Promise<{ cluster: ClusterRecord; sync: SyncReport }> {
  const set = validateLabels(change.set ?? {}, 'set');
  const remove = change.remove ?? [];
  remove.forEach((key, i) => {
    if (Object.hasOwn(set, key))
      throw new ValidationError(`remove[${i}]`, `label "${key}" is both set and removed`);
  });
  await ports.clusters.relabel(id, { set, remove });
  const sync = await recomputeCluster(ports, id, { reason: GenerationReason.Labels });
  const cluster = await ports.clusters.get(id);
  if (!cluster) throw new NotFoundError(`cluster "${id}" not found`);
  return { cluster, sync };
}

/** A cluster as the hub shows it to admins: never its token or token hash. The wire form the CLI reads. */
export interface ClusterView {
  readonly id: string;
  readonly labels: Labels;
  readonly registeredAt: string;
  readonly queueUrl: string | null;
  readonly lastHeartbeatAt: string | null;
  readonly agentVersion: string | null;
  /** The cluster's Kubernetes version as its agent last reported it, e.g. `v1.33.2`. */
  readonly kubeVersion: string | null;
  readonly desiredState: {
    readonly generation: number;
    readonly etag: string;
    readonly commit: string;
  } | null;
  /** Bundles a rollback holds at an earlier revision (empty when none); absent from hubs older than rollback. */
  readonly pins?: readonly PinView[];
  /**
   * The cluster's age recipients (public keys for SOPS files), the cluster's own key first;
   * empty until its agent reported them. Absent from hubs older than the field.
   */
  readonly recipients?: readonly AgeRecipient[];
  /** An open request to rotate the cluster's age key, or null. Absent from hubs older than the field. */
  readonly keyRotation?: KeyRotationRequest | null;
}

/** A rollback pin as admins see it. */
export interface PinView {
  readonly bundle: string;
  /** The content hash the bundle is held at, or null when it is held off the cluster. */
  readonly hash: string | null;
  /** What the hub planned for it when the pin was made; the pin ends when the plan moves from it. */
  readonly plannedHash: string | null;
  readonly fromGeneration: number;
  readonly generation: number;
  readonly pinnedBy: string;
  readonly pinnedAt: string;
}

export function pinView(p: BundlePin): PinView {
  return {
    bundle: p.bundle,
    hash: p.ref?.hash ?? null,
    plannedHash: p.planned?.hash ?? null,
    fromGeneration: p.fromGeneration,
    generation: p.generation,
    pinnedBy: p.pinnedBy,
    pinnedAt: p.pinnedAt,
  };
}

export function clusterView(c: ClusterRecord): ClusterView {
  return {
    id: c.id,
    labels: c.labels,
    registeredAt: c.registeredAt,
    queueUrl: c.queueUrl ?? null,
    lastHeartbeatAt: c.lastHeartbeatAt ?? null,
    agentVersion: c.agentVersion ?? null,
    kubeVersion: c.kubeVersion ?? null,
    desiredState: c.head ? { generation: c.head.generation, etag: c.head.etag, commit: c.head.commit } : null,
    pins: (c.pins ?? []).map(pinView),
    recipients: sortRecipients(c.recipients ?? []),
    keyRotation: c.keyRotation ?? null,
  };
}

/**
 * Asks the cluster's agent to make a new age key: the request rides on the answers to its
 * status reports until a report says it was done. Asking again replaces an open request.
 * @throws NotFoundError when the cluster does not exist.
 */
export async function requestKeyRotation(
  ports: Pick<AdminPorts, 'clusters' | 'now'>,
  id: string,
): Promise<{ cluster: ClusterRecord; rotation: KeyRotationRequest }> {
  const rotation: KeyRotationRequest = {
    id: randomBytes(12).toString('base64url'),
    requestedAt: ports.now().toISOString(),
  };
  const cluster = await ports.clusters.requestKeyRotation(id, rotation);
  return { cluster, rotation };
}
