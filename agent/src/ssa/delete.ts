import { type KubeJson, type ObjectRef, objectId, pruneOrder, rankGroups } from '@flotilla/shared/agent';
import { KubeApiError } from '../kube/client.ts';
import { resourcePath } from '../kube/discovery.ts';
import { type ManagerContext, ownerLabel } from './context.ts';
import { ChangeAction, type ChangeSet, type ChangeSetEntry, failureOf, type ObjectFailure } from './types.ts';

/**
 * Deletes objects in prune order (the reverse of apply order, kind rank by kind rank),
 * only those that still carry `ownedBy`'s labels and are not annotated
 * `<group>/prune: disabled`. Gone objects are `skipped`.
 */
export async function deleteAll(
  ctx: ManagerContext,
  refs: readonly ObjectRef[],
  opts: { ownedBy?: Readonly<Record<string, string>> } = {},
): Promise<ChangeSet> {
  const entries: ChangeSetEntry[] = [];
  const failures: ObjectFailure[] = [];
  const ordered = pruneOrder(refs);
  const groups = rankGroups(ordered, (r) => r.kind).reverse();
  for (const group of groups) {
    await Promise.all(
      group.map(async (ref) => {
        const id = objectId(ref);
        try {
          entries.push(await deleteOne(ctx, ref, id, opts.ownedBy ?? {}));
        } catch (e) {
          failures.push(failureOf({ id, ref }, e));
        }
      }),
    );
  }
  const order = new Map(ordered.map((r, i) => [objectId(r), i]));
  entries.sort((a, b) => (order.get(a.id) ?? 0) - (order.get(b.id) ?? 0));
  return { entries, failures };
}

async function deleteOne(
  ctx: ManagerContext,
  ref: ObjectRef,
  id: string,
  ownedBy: Readonly<Record<string, string>>,
): Promise<ChangeSetEntry> {
  const skipped = (reason: string): ChangeSetEntry => ({ id, ref, action: ChangeAction.Skipped, reason });
  const info = await ctx.mapper.find(ref.apiVersion, ref.kind);
  if (!info) return skipped('its kind is no longer served');
  const path = resourcePath(ref.apiVersion, info, ref.namespace, ref.name);
  const live = await ctx.limit.run(() => ctx.client.get<KubeJson>(path));
  if (!live) return skipped('already gone');
  for (const [key, want] of Object.entries(ownedBy)) {
    const have = live.metadata.labels?.[key];
    if (have !== want)
      return skipped(`label ${key} is ${have === undefined ? 'absent' : `"${have}"`}, not "${want}"`);
  }
  if (live.metadata.annotations?.[ownerLabel(ctx, 'prune')] === 'disabled') {
    return skipped(`annotated ${ownerLabel(ctx, 'prune')}: disabled`);
  }
  try {
    await deleteIfSame(ctx, path, live.metadata.uid, 'Background');
  } catch (e) {
    if (e instanceof KubeApiError && e.status === 404) return skipped('already gone');
    if (e instanceof KubeApiError && e.status === 409) return skipped('replaced by another object meanwhile');
    throw e;
  }
  return { id, ref, action: ChangeAction.Deleted };
}

/**
 * Deletes the object at `path` only if it is still the one with `uid` (a precondition: an
 * object replaced meanwhile is left alone, and the API server answers 409).
 */
export async function deleteIfSame(
  ctx: ManagerContext,
  path: string,
  uid: unknown,
  propagationPolicy: 'Background' | 'Foreground',
): Promise<void> {
  await ctx.limit.run(() =>
    ctx.writer.request('DELETE', path, {
      body: { apiVersion: 'v1', kind: 'DeleteOptions', propagationPolicy, preconditions: { uid } },
    }),
  );
}
