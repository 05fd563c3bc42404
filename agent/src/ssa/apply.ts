import { assessHealth, isClusterFoundation, type KubeJson, rankGroups } from '@flotilla/shared/agent';
import { resourcePath } from '../kube/discovery.ts';
import { type ManagerContext, resourceOf } from './context.ts';
import {
  type ApplyOptions,
  ChangeAction,
  type ChangeSet,
  type ChangeSetEntry,
  failureOf,
  type ObjectFailure,
  type PreparedObject,
} from './types.ts';

/**
 * Applies prepared objects in stages: Namespaces and CRDs first (then waits until those
 * CRDs are Established), then the rest by kind rank (Helm's install order), each rank
 * concurrently within the manager's limit. An object that fails does not stop the
 * others; it is listed in `failures` with the API server's message.
 */
export async function applyPrepared(
  ctx: ManagerContext,
  prepared: readonly PreparedObject[],
  opts: ApplyOptions = {},
): Promise<ChangeSet> {
  const results = new Map<string, ChangeSetEntry>();
  const failures: ObjectFailure[] = [];
  const todo: PreparedObject[] = [];
  for (const p of prepared) {
    if (opts.previous !== undefined && opts.previous.get(p.id) === p.digest) {
      results.set(p.id, { id: p.id, ref: p.ref, action: ChangeAction.Unchanged, digest: p.digest });
    } else todo.push(p);
  }
  const run = (batch: readonly PreparedObject[]) =>
    Promise.all(
      batch.map(async (p) => {
        try {
          const before = opts.previous?.get(p.id);
          results.set(p.id, await applyOne(ctx, p, false, before !== undefined && before !== p.digest));
        } catch (e) {
          failures.push(failureOf(p, e));
        }
      }),
    );
  const foundation = todo.filter((p) => isClusterFoundation(p.ref));
  await run(foundation);
  const crds = foundation.filter((p) => p.ref.kind === 'CustomResourceDefinition' && results.has(p.id));
  if (crds.length > 0) {
    failures.push(
      ...(await waitEstablished(ctx, crds, opts.crdTimeoutMs ?? 60_000, (p, live) => {
        // The established definition, not the one the apply returned, tells readiness later.
        const entry = results.get(p.id);
        if (entry) results.set(p.id, { ...entry, live });
      })),
    );
    for (const crd of crds) {
      const group = (crd.object as { spec?: { group?: string } }).spec?.group;
      if (group) ctx.mapper.invalidate(group);
    }
  }
  for (const group of rankGroups(
    todo.filter((p) => !isClusterFoundation(p.ref)),
    (p) => p.ref.kind,
  )) {
    await run(group);
  }
  const entries = prepared.flatMap((p) => results.get(p.id) ?? []);
  return { entries, failures };
}

/**
 * One server-side apply (`force`, so the agent's desired values win conflicts), or its
 * dry run.
 *
 * @param contentChanged the content differs from what was applied before (so a 200 means `configured`).
 */
export async function applyOne(
  ctx: ManagerContext,
  p: PreparedObject,
  dryRun: boolean,
  contentChanged = false,
): Promise<ChangeSetEntry> {
  const info = await resourceOf(ctx, p.ref);
  const q = `?fieldManager=${encodeURIComponent(ctx.owner.field)}&force=true${dryRun ? '&dryRun=All' : ''}`;
  const path = resourcePath(p.ref.apiVersion, info, p.ref.namespace, p.ref.name) + q;
  const res = await ctx.limit.run(() =>
    ctx.client.request<KubeJson>('PATCH', path, {
      body: p.object,
      contentType: 'application/apply-patch+yaml',
    }),
  );
  const live = res.body;
  if (dryRun) return { id: p.id, ref: p.ref, action: ChangeAction.Configured, digest: p.digest, live };
  const stamp = applyStamp(live, ctx.owner.field);
  const seen = ctx.seen.get(p.id);
  ctx.seen.set(p.id, stamp);
  let action: ChangeAction;
  if (res.status === 201) action = ChangeAction.Created;
  else if (contentChanged) action = ChangeAction.Configured;
  else if (seen !== undefined && stamp !== '')
    action = seen === stamp ? ChangeAction.Unchanged : ChangeAction.Configured;
  else action = untouched(stamp, res.date) ? ChangeAction.Unchanged : ChangeAction.Configured;
  return { id: p.id, ref: p.ref, action, digest: p.digest, live };
}

/** When the API server last stamped this manager's Apply entry: it does so only when an apply changes the object. */
function applyStamp(live: KubeJson | undefined, manager: string): string {
  const entries = live?.metadata?.managedFields as
    | readonly { manager?: string; operation?: string; time?: string }[]
    | undefined;
  return entries?.find((e) => e.manager === manager && e.operation === 'Apply')?.time ?? '';
}

/**
 * Whether an apply changed nothing, by the server's own clock: an Apply entry stamped
 * before the answer (by more than the second of precision both have) was not written now.
 */
function untouched(stamp: string, dateHeader: string | undefined): boolean {
  const serverDate = dateHeader ? Date.parse(dateHeader) : Number.NaN;
  if (Number.isNaN(serverDate) || stamp === '') return false;
  const stamped = Date.parse(stamp);
  return !Number.isNaN(stamped) && stamped <= serverDate - 2_000;
}

async function waitEstablished(
  ctx: ManagerContext,
  crds: readonly PreparedObject[],
  timeoutMs: number,
  seen: (p: PreparedObject, live: KubeJson) => void,
): Promise<ObjectFailure[]> {
  const deadline = ctx.clock.now() + timeoutMs;
  let pending = [...crds];
  const last = new Map<string, string>();
  while (pending.length > 0) {
    const next: PreparedObject[] = [];
    await Promise.all(
      pending.map(async (p) => {
        const live = await ctx.limit.run(() =>
          ctx.client.get<KubeJson>(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${p.ref.name}`),
        );
        if (live) seen(p, live);
        const h = assessHealth(live);
        if (!h.ready) {
          last.set(p.id, h.message);
          next.push(p);
        }
      }),
    );
    pending = next;
    if (pending.length === 0 || ctx.clock.now() >= deadline) break;
    await ctx.clock.sleep(200);
  }
  return pending.map((p) => ({
    id: p.id,
    ref: p.ref,
    message: `CustomResourceDefinition ${p.ref.name} not established within ${Math.round(timeoutMs / 1000)} s: ${last.get(p.id) ?? 'unknown'}`,
  }));
}
