/**
 * A cluster's history of desired-state generations, and rollback: a new, higher
 * generation that points at the bundle references of an earlier one, with pins that
 * keep them there until the bundle's next change or `rollback --clear`.
 */
import {
  type BundleRef,
  canonicalDesiredState,
  type DesiredState,
  desiredContentHash,
  manifestEtag,
  orderBundleRefs,
  parseDesiredState,
} from '../desired-state.ts';
import { type AdminPorts, type PinView, pinView } from './clusters.ts';
import { sameBundleRef } from './pins.ts';
import {
  type BundlePin,
  type ClusterRecord,
  ConflictError,
  GenerationReason,
  generationReason,
  NotFoundError,
  type StoredDesiredState,
} from './ports.ts';
import { InvalidRequestError } from './status.ts';
import { recomputeCluster } from './sync.ts';

/** One bundle of a generation, and how it differs from the generation before it. */
export interface HistoryBundleView {
  readonly name: string;
  readonly hash: string;
  /** `added`/`changed`/`unchanged` against the previous generation; null when that one is no longer kept. */
  readonly change: 'added' | 'changed' | 'unchanged' | null;
}

/** One generation as `flotilla history` shows it. */
export interface GenerationView {
  readonly generation: number;
  readonly commit: string;
  readonly createdAt: string;
  readonly reason: GenerationReason;
  readonly current: boolean;
  readonly etag: string;
  readonly bundles: readonly HistoryBundleView[];
  /** Bundles the previous generation had and this one has not (empty when that one is no longer kept). */
  readonly removed: readonly string[];
  readonly rollback?: { readonly toGeneration: number; readonly bundle: string | null; readonly by: string };
  readonly pinsEnded?: readonly string[];
}

export interface ClusterHistory {
  readonly clusterId: string;
  /** Newest first. */
  readonly generations: readonly GenerationView[];
  /** Pass as `before` for the next page; null on the last one. */
  readonly nextBefore: number | null;
  /** How many generations the hub keeps per cluster; older ones cannot be rolled back to. */
  readonly historyDepth: number;
}

export const historyPageDefault = 20;
export const historyPageMax = 100;

/**
 * The cluster's generations, newest first, `limit` of them from below `before`, each
 * with its bundles marked against the generation before it.
 * @throws NotFoundError when the cluster does not exist.
 */
export async function clusterHistory(
  ports: Pick<AdminPorts, 'clusters' | 'desiredStates'>,
  clusterId: string,
  opts: { readonly limit?: number; readonly before?: number; readonly historyDepth: number },
): Promise<ClusterHistory> {
  const cluster = await ports.clusters.get(clusterId);
  if (!cluster) throw new NotFoundError(`cluster "${clusterId}" not found`);
  const limit = opts.limit ?? historyPageDefault;
  const all = (await ports.desiredStates.history(clusterId))
    .filter((s) => opts.before === undefined || s.generation < opts.before)
    .sort((a, b) => b.generation - a.generation);
  const page = all.slice(0, limit);
  const generations = page.map((state, i) => {
    const previous = all[i + 1];
    return generationView(
      state,
      previous && previous.generation === state.generation - 1 ? previous : undefined,
      cluster.head?.generation === state.generation,
    );
  });
  const last = page.at(-1);
  return {
    clusterId,
    generations,
    nextBefore: all.length > limit && last ? last.generation : null,
    historyDepth: opts.historyDepth,
  };
}

function manifestOf(state: StoredDesiredState): DesiredState {
  return parseDesiredState(JSON.parse(state.manifest));
}

function generationView(
  state: StoredDesiredState,
  previous: StoredDesiredState | undefined,
  current: boolean,
): GenerationView {
  const bundles = manifestOf(state).bundles;
  const before = previous ? new Map(manifestOf(previous).bundles.map((b) => [b.name, b])) : undefined;
  const names = new Set(bundles.map((b) => b.name));
  return {
    generation: state.generation,
    commit: state.commit,
    createdAt: state.createdAt,
    reason: generationReason(state),
    current,
    etag: state.etag,
    bundles: bundles.map((b) => {
      const old = before?.get(b.name);
      return {
        name: b.name,
        hash: b.hash,
        change: !before ? null : !old ? 'added' : sameBundleRef(old, b) ? 'unchanged' : 'changed',
      };
    }),
    removed: before ? [...before.keys()].filter((n) => !names.has(n)).sort() : [],
    ...(state.rollback ? { rollback: state.rollback } : {}),
    ...(state.pinsEnded?.length ? { pinsEnded: state.pinsEnded } : {}),
  };
}

export type RollbackRequest =
  | { readonly toGeneration: number; readonly bundle?: string | undefined; readonly by: string }
  | { readonly clear: true; readonly by: string };

export interface RollbackResult {
  readonly clusterId: string;
  /** False when the cluster already was where the rollback asked (nothing written, nothing sent). */
  readonly changed: boolean;
  readonly generation: number;
  readonly etag: string;
  readonly notified: boolean;
  /** The cluster's pins after the rollback. */
  readonly pins: readonly PinView[];
  /** Set by `clear`: the bundles whose pin it ended. */
  readonly cleared?: readonly string[];
}

const maxRollbackAttempts = 5;

/**
 * Rolls a cluster back to the bundle references of generation `toGeneration` (all of
 * them, or only `bundle`), or with `clear` drops its pins and goes back to the plan.
 *
 * 1. Read the cluster, its head and current manifest, and the generation rolled back to
 *    (NotFoundError: cluster; InvalidRequestError: a generation not kept, a bundle not in it).
 * 2. Build the new manifest: the current references, with the rolled-back bundles at
 *    their references in that generation (present or absent), as generation head + 1.
 * 3. Pin every rolled-back bundle whose reference differs from what the hub planned.
 * 4. Sign and commit it with the pins, conditional on the head read in 1 (on a conflict,
 *    start again from 1), and notify the cluster.
 */
export async function rollbackCluster(
  ports: AdminPorts,
  clusterId: string,
  request: RollbackRequest,
): Promise<RollbackResult> {
  if ('clear' in request) return clearPins(ports, clusterId);
  for (let attempt = 1; ; attempt++) {
    try {
      return await rollbackOnce(ports, clusterId, request);
    } catch (err) {
      if (!(err instanceof ConflictError) || attempt >= maxRollbackAttempts) throw err;
    }
  }
}

async function rollbackOnce(
  ports: AdminPorts,
  clusterId: string,
  request: { readonly toGeneration: number; readonly bundle?: string | undefined; readonly by: string },
): Promise<RollbackResult> {
  const cluster = await ports.clusters.get(clusterId);
  if (!cluster) throw new NotFoundError(`cluster "${clusterId}" not found`);
  const head = cluster.head;
  const { toGeneration, bundle } = request;
  if (!head) {
    throw new InvalidRequestError([
      { field: 'toGeneration', message: `cluster "${clusterId}" has no desired state yet` },
    ]);
  }
  if (toGeneration >= head.generation) {
    throw new InvalidRequestError([
      {
        field: 'toGeneration',
        message: `generation ${toGeneration} is not before the current generation ${head.generation}`,
      },
    ]);
  }
  const [target, current] = await Promise.all([
    ports.desiredStates.generation(clusterId, toGeneration),
    ports.desiredStates.current(clusterId),
  ]);
  if (!target) {
    const kept = (await ports.desiredStates.history(clusterId)).map((s) => s.generation);
    throw new InvalidRequestError([
      {
        field: 'toGeneration',
        message: `generation ${toGeneration} of "${clusterId}" is not in its history${
          kept.length > 0 ? ` (kept: ${Math.min(...kept)} to ${Math.max(...kept)})` : ''
        }`,
      },
    ]);
  }
  if (!current || current.generation !== head.generation) {
    throw new ConflictError(`desired state of "${clusterId}" is moving; try again`);
  }
  const targetRefs = new Map(manifestOf(target).bundles.map((b) => [b.name, b]));
  const currentManifest = manifestOf(current);
  if (bundle !== undefined && !targetRefs.has(bundle)) {
    throw new InvalidRequestError([
      {
        field: 'bundle',
        message: `bundle "${bundle}" is not in generation ${toGeneration} (it has: ${
          [...targetRefs.keys()].sort().join(', ') || 'no bundles'
        })`,
      },
    ]);
  }

  const refs = new Map(currentManifest.bundles.map((b) => [b.name, b]));
  const existing = new Map((cluster.pins ?? []).map((p) => [p.bundle, p]));
  const names =
    bundle !== undefined
      ? [bundle]
      : [...new Set([...targetRefs.keys(), ...refs.keys(), ...existing.keys()])];
  const generation = head.generation + 1;
  const pinnedAt = ports.now().toISOString();
  const pins = new Map(existing);
  for (const name of names) {
    const ref: BundleRef | null = targetRefs.get(name) ?? null;
    // What the hub plans for the bundle: the current reference, unless a pin already holds it elsewhere.
    const planned = existing.has(name) ? (existing.get(name)?.planned ?? null) : (refs.get(name) ?? null);
    if (ref) refs.set(name, ref);
    else refs.delete(name);
    if (sameBundleRef(ref, planned)) pins.delete(name);
    else
      pins.set(name, {
        bundle: name,
        ref,
        planned,
        fromGeneration: toGeneration,
        generation,
        pinnedBy: request.by,
        pinnedAt,
      });
  }
  const next: DesiredState = {
    ...currentManifest,
    generation,
    commit: head.commit,
    bundles: orderBundleRefs([...refs.values()]),
  };
  const refsHash = desiredContentHash(next);
  const pinList = [...pins.values()].sort((a, b) => (a.bundle < b.bundle ? -1 : 1));
  if (refsHash === head.refsHash && samePins(cluster.pins ?? [], pinList)) {
    return {
      clusterId,
      changed: false,
      generation: head.generation,
      etag: head.etag,
      notified: false,
      pins: pinList.map(pinView),
    };
  }
  const canonical = canonicalDesiredState(next);
  const stored: StoredDesiredState = {
    clusterId,
    generation,
    etag: manifestEtag(next),
    refsHash,
    commit: head.commit,
    manifest: canonical,
    signature: await ports.signer.sign(canonical),
    keyId: ports.signer.keyId,
    createdAt: pinnedAt,
    reason: GenerationReason.Rollback,
    rollback: { toGeneration, bundle: bundle ?? null, by: request.by },
  };
  await ports.desiredStates.commit(stored, head.generation, { pins: pinList });
  const notified = await notifyOne(ports, cluster, stored);
  return { clusterId, changed: true, generation, etag: stored.etag, notified, pins: pinList.map(pinView) };
}

function samePins(a: readonly BundlePin[], b: readonly BundlePin[]): boolean {
  if (a.length !== b.length) return false;
  const byName = new Map(a.map((p) => [p.bundle, p]));
  return b.every((p) => {
    const q = byName.get(p.bundle);
    return q !== undefined && sameBundleRef(q.ref, p.ref) && sameBundleRef(q.planned, p.planned);
  });
}

async function notifyOne(ports: AdminPorts, cluster: ClusterRecord, stored: StoredDesiredState) {
  const res = await ports.notifier.notify([{ cluster, generation: stored.generation, etag: stored.etag }]);
  return res.sent > 0;
}

/** Drops the cluster's pins with a new generation of the plan at the last synced commit. */
async function clearPins(ports: AdminPorts, clusterId: string): Promise<RollbackResult> {
  const cluster = await ports.clusters.get(clusterId);
  if (!cluster) throw new NotFoundError(`cluster "${clusterId}" not found`);
  const cleared = (cluster.pins ?? []).map((p) => p.bundle).sort();
  const report =
    cleared.length === 0
      ? undefined
      : await recomputeCluster(ports, clusterId, { reason: GenerationReason.RollbackClear, clearPins: true });
  const after = (await ports.clusters.get(clusterId)) ?? cluster;
  const change = report?.changed[0];
  return {
    clusterId,
    changed: change !== undefined,
    generation: after.head?.generation ?? 0,
    etag: after.head?.etag ?? '',
    notified: (report?.notified ?? 0) > 0,
    pins: (after.pins ?? []).map(pinView),
    cleared: change ? cleared : [],
  };
}
