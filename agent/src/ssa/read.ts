import { type KubeJson, type ObjectRef, objectId } from '@flotilla/shared/agent';
import { resourcePath } from '../kube/discovery.ts';
import type { ManagerContext } from './context.ts';

/**
 * Reads objects, by list where several share a kind and namespace (narrowed by
 * `labelSelector`) and one by one otherwise. Missing objects map to undefined.
 */
export async function getAll(
  ctx: ManagerContext,
  refs: readonly ObjectRef[],
  opts: { labelSelector?: string } = {},
): Promise<Map<string, KubeJson | undefined>> {
  const out = new Map<string, KubeJson | undefined>();
  const groups = new Map<string, ObjectRef[]>();
  for (const r of refs) {
    const key = `${r.apiVersion}\n${r.kind}\n${r.namespace}`;
    const g = groups.get(key) ?? [];
    g.push(r);
    groups.set(key, g);
  }
  await Promise.all(
    [...groups.values()].map(async (group) => {
      const first = group[0] as ObjectRef;
      const info = await ctx.mapper.find(first.apiVersion, first.kind);
      if (!info) {
        for (const r of group) out.set(objectId(r), undefined);
        return;
      }
      const single = async (r: ObjectRef) => {
        const path = resourcePath(r.apiVersion, info, r.namespace, r.name);
        out.set(objectId(r), await ctx.limit.run(() => ctx.client.get<KubeJson>(path)));
      };
      if (group.length < 2 || !opts.labelSelector) {
        await Promise.all(group.map(single));
        return;
      }
      const path = resourcePath(first.apiVersion, info, first.namespace);
      const items = await ctx.limit.run(() =>
        ctx.client.list<KubeJson>(path, { labelSelector: opts.labelSelector as string }),
      );
      const byName = new Map(items.map((i) => [i.metadata.name, i]));
      const missing: ObjectRef[] = [];
      for (const r of group) {
        const live = byName.get(r.name);
        // Lists leave out apiVersion and kind on their items.
        if (live) out.set(objectId(r), { ...live, apiVersion: r.apiVersion, kind: r.kind });
        else missing.push(r);
      }
      // Not in the list: deleted, or someone removed the label; a read tells which.
      await Promise.all(missing.map(single));
    }),
  );
  return out;
}
