import { assessHealth, hasReadiness, type KubeJson, type ObjectRef, objectId } from '@flotilla/shared/agent';
import type { ManagerContext } from './context.ts';
import { getAll } from './read.ts';
import type { HealthReport } from './types.ts';

/** Readiness of each object, from `known` live copies where given and reads otherwise. */
export async function health(
  ctx: ManagerContext,
  refs: readonly ObjectRef[],
  opts: { known?: ReadonlyMap<string, KubeJson | undefined>; labelSelector?: string } = {},
): Promise<HealthReport[]> {
  const checked = refs.filter((r) => hasReadiness(r));
  const unknown = checked.filter((r) => !opts.known?.has(objectId(r)));
  const read =
    unknown.length > 0 ? await getAll(ctx, unknown, opts) : new Map<string, KubeJson | undefined>();
  return refs.map((ref) => {
    const id = objectId(ref);
    if (!hasReadiness(ref)) return { id, ref, ready: true, message: '' };
    const live = opts.known?.has(id) ? opts.known.get(id) : read.get(id);
    if (!live) return { id, ref, ready: false, message: 'not found' };
    return { id, ref, ...assessHealth(live) };
  });
}

/**
 * Waits until every object is ready, one has failed for good, or the timeout passes,
 * reading the not-ready ones again every `intervalMs`. Returns the last readiness seen.
 */
export async function waitForReady(
  ctx: ManagerContext,
  refs: readonly ObjectRef[],
  opts: {
    timeoutMs: number;
    intervalMs?: number;
    known?: ReadonlyMap<string, KubeJson | undefined>;
    labelSelector?: string;
    signal?: AbortSignal;
  },
): Promise<HealthReport[]> {
  const deadline = ctx.clock.now() + opts.timeoutMs;
  const latest = new Map<string, HealthReport>();
  let pending = refs.filter((r) => hasReadiness(r));
  for (const r of refs)
    if (!hasReadiness(r)) latest.set(objectId(r), { id: objectId(r), ref: r, ready: true, message: '' });
  let known = opts.known;
  while (pending.length > 0) {
    const reports = await health(ctx, pending, {
      ...(known ? { known } : {}),
      ...(opts.labelSelector ? { labelSelector: opts.labelSelector } : {}),
    });
    known = undefined;
    for (const h of reports) latest.set(h.id, h);
    if (reports.some((h) => h.failed)) break;
    pending = reports.filter((h) => !h.ready).map((h) => h.ref);
    if (pending.length === 0 || ctx.clock.now() >= deadline || opts.signal?.aborted) break;
    await ctx.clock.sleep(
      Math.min(opts.intervalMs ?? 1_000, Math.max(0, deadline - ctx.clock.now())),
      opts.signal,
    );
  }
  return refs.map((r) => latest.get(objectId(r)) as HealthReport);
}
