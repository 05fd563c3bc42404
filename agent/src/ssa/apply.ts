import {
  applyWouldChange,
  assessHealth,
  describeRef,
  isClusterFoundation,
  isoTime,
  type KubeJson,
  rankGroups,
  takeOverClientSideFields,
} from '@flotilla/shared/agent';
import { KubeApiError, type KubeResponse } from '../kube/client.ts';
import { resourcePath } from '../kube/discovery.ts';
import { type ManagerContext, ownerLabel, resourceOf } from './context.ts';
import { deleteIfSame } from './delete.ts';
import { getAll } from './read.ts';
import {
  type ApplyOptions,
  ChangeAction,
  type ChangeSet,
  type ChangeSetEntry,
  failureOf,
  ImmutableFieldError,
  type ObjectFailure,
  type PreparedObject,
} from './types.ts';

/**
 * Applies prepared objects in stages: Namespaces and CRDs first (then waits until those
 * CRDs are Established), then the rest by kind rank (Helm's install order), each rank
 * concurrently within the manager's limit. An object that fails does not stop the
 * others; it is listed in `failures` with the API server's message.
 *
 * Per object, one of three paths, cheapest first:
 * - its digest is the one in `previous`: `unchanged`, no request;
 * - `previous` is given but does not know it (new to the agent): applied at once, one
 *   request, `created` when the server answers 201;
 * - `knownToDiffer` (a drift correction): applied at once, as a new object is;
 * - otherwise (content changed, or nothing known): read, then a server-side dry run,
 *   compared with the live object on the fields the agent owns; applied for real only when
 *   they differ (`configured`), else `unchanged` (Flux's way; no time stamps involved).
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
  const run = async (batch: readonly PreparedObject[]) => {
    const compare = opts.knownToDiffer
      ? []
      : batch.filter((p) => opts.previous === undefined || opts.previous.has(p.id));
    const compared = new Set(compare.map((p) => p.id));
    let lives = new Map<string, KubeJson | undefined>();
    if (compare.length > 0) {
      try {
        lives = await getAll(
          ctx,
          compare.map((p) => p.ref),
          opts.labelSelector ? { labelSelector: opts.labelSelector } : {},
        );
      } catch {
        // A list that fails (a kind not served) leaves each object to fail on its own below.
      }
    }
    await Promise.all(
      batch.map(async (p) => {
        try {
          // Read above, or one by one when the list failed.
          const known = lives.has(p.id);
          results.set(
            p.id,
            compared.has(p.id)
              ? await applyIfChanged(ctx, p, known ? lives.get(p.id) : await readOne(ctx, p), opts)
              : await applyNew(ctx, p, opts),
          );
        } catch (e) {
          failures.push(failureOf(p, e));
        }
      }),
    );
  };
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

async function readOne(ctx: ManagerContext, p: PreparedObject): Promise<KubeJson | undefined> {
  return (await getAll(ctx, [p.ref])).get(p.id);
}

/** An object the agent has no record of: one apply, no dry run (this is the path of a first install). */
async function applyNew(ctx: ManagerContext, p: PreparedObject, opts: ApplyOptions): Promise<ChangeSetEntry> {
  const res = await applyOrRecreate(ctx, p, opts);
  if (res.status === 201) return entry(p, ChangeAction.Created, res.body);
  // It existed: adopted. Fields kubectl wrote client-side become the agent's, and the apply
  // runs again so that those git does not have go now.
  const taken = await takeOver(ctx, p, res.body);
  const live = taken ? (await applyOrRecreate(ctx, p, opts)).body : res.body;
  return entry(p, ChangeAction.Configured, live);
}

/** An object that may exist: a dry run compared with `live` decides whether to apply. */
async function applyIfChanged(
  ctx: ManagerContext,
  p: PreparedObject,
  live: KubeJson | undefined,
  opts: ApplyOptions,
): Promise<ChangeSetEntry> {
  if (!live) {
    const res = await applyOrRecreate(ctx, p, opts);
    return entry(p, res.status === 201 ? ChangeAction.Created : ChangeAction.Configured, res.body);
  }
  const current = (await takeOver(ctx, p, live)) ?? live;
  let expected: KubeJson;
  try {
    expected = (await patchApply(ctx, p, true)).body;
  } catch (e) {
    // An immutable field shows in the dry run already; the real apply deals with it.
    if (immutableFields(e).length === 0) throw e;
    const res = await applyOrRecreate(ctx, p, opts);
    return entry(p, res.status === 201 ? ChangeAction.Created : ChangeAction.Configured, res.body);
  }
  if (!applyWouldChange(expected, current, ctx.owner.field)) return entry(p, ChangeAction.Unchanged, current);
  const res = await applyOrRecreate(ctx, p, opts);
  return entry(p, res.status === 201 ? ChangeAction.Created : ChangeAction.Configured, res.body);
}

function entry(p: PreparedObject, action: ChangeAction, live: KubeJson | undefined): ChangeSetEntry {
  return { id: p.id, ref: p.ref, action, digest: p.digest, ...(live ? { live } : {}) };
}

/** One server-side apply (`force`, so the agent's desired values win conflicts), or its dry run. */
export async function patchApply(
  ctx: ManagerContext,
  p: PreparedObject,
  dryRun: boolean,
): Promise<KubeResponse<KubeJson>> {
  const info = await resourceOf(ctx, p.ref);
  const q = `?fieldManager=${encodeURIComponent(ctx.owner.field)}&force=true${dryRun ? '&dryRun=All' : ''}`;
  const path = resourcePath(p.ref.apiVersion, info, p.ref.namespace, p.ref.name) + q;
  return ctx.limit.run(() =>
    ctx.writer.request<KubeJson>('PATCH', path, {
      body: p.object,
      contentType: 'application/apply-patch+yaml',
    }),
  );
}

/**
 * Moves the fields that `kubectl` wrote client-side (apply, create) into the agent's Apply
 * entry of `managedFields` with one JSON patch; the `test` on resourceVersion makes it
 * fail rather than overwrite ownership someone changed meanwhile. Returns the patched
 * object, or undefined when there was nothing to take over.
 */
async function takeOver(
  ctx: ManagerContext,
  p: PreparedObject,
  live: KubeJson,
): Promise<KubeJson | undefined> {
  const managedFields = takeOverClientSideFields(live, ctx.owner.field, isoTime(ctx.clock.now()));
  if (!managedFields) return undefined;
  const info = await resourceOf(ctx, p.ref);
  const path = resourcePath(p.ref.apiVersion, info, p.ref.namespace, p.ref.name);
  const res = await ctx.limit.run(() =>
    ctx.writer.request<KubeJson>('PATCH', path, {
      body: [
        { op: 'test', path: '/metadata/resourceVersion', value: live.metadata.resourceVersion },
        { op: 'replace', path: '/metadata/managedFields', value: managedFields },
      ],
      contentType: 'application/json-patch+json',
    }),
  );
  return res.body;
}

/** The fields an API server's 422 names as immutable, or none when the error is something else. */
export function immutableFields(err: unknown): string[] {
  if (!(err instanceof KubeApiError) || err.status !== 422) return [];
  const causes = (err.details as { causes?: readonly { message?: string; field?: string }[] } | undefined)
    ?.causes;
  const immutable = (text: string) => IMMUTABLE.some((re) => re.test(text));
  const fields = (causes ?? []).filter((c) => immutable(c.message ?? '')).map((c) => c.field ?? '');
  if (fields.length === 0 && immutable(err.message)) return [''];
  return [...new Set(fields)];
}

// What the API server's validation says when a field cannot change (Flux matches the same texts).
const IMMUTABLE = [
  /field is immutable/,
  /may not change once set/,
  /updates to parameters are forbidden/,
  /updates to statefulset spec for fields other than/,
];

/**
 * A real apply; when the server refuses it for an immutable field and the object is
 * annotated `<group>/force: "true"`, the object is deleted (foreground: its dependents
 * first), awaited until gone, and created again.
 *
 * @throws {ImmutableFieldError} for an immutable field without the annotation.
 */
async function applyOrRecreate(
  ctx: ManagerContext,
  p: PreparedObject,
  opts: ApplyOptions,
): Promise<KubeResponse<KubeJson>> {
  try {
    return await patchApply(ctx, p, false);
  } catch (e) {
    const fields = immutableFields(e);
    if (fields.length === 0) throw e;
    const annotation = ownerLabel(ctx, 'force');
    const named = fields.filter(Boolean).join(', ') || 'a field';
    if (p.object.metadata.annotations?.[annotation] !== 'true') {
      throw new ImmutableFieldError(
        `cannot change immutable ${fields.length > 1 ? 'fields' : 'field'} ${named} of ${describeRef(p.ref)}: annotate it ${annotation}: "true" to have the agent delete it and create it again`,
        fields.filter(Boolean),
        { cause: e },
      );
    }
    await deleteAndWait(ctx, p, opts.recreateTimeoutMs ?? 60_000);
    return patchApply(ctx, p, false);
  }
}

async function deleteAndWait(ctx: ManagerContext, p: PreparedObject, timeoutMs: number): Promise<void> {
  const info = await resourceOf(ctx, p.ref);
  const path = resourcePath(p.ref.apiVersion, info, p.ref.namespace, p.ref.name);
  const live = await ctx.limit.run(() => ctx.client.get<KubeJson>(path));
  if (!live) return;
  const uid = live.metadata.uid;
  try {
    await deleteIfSame(ctx, path, uid, 'Foreground');
  } catch (e) {
    if (!(e instanceof KubeApiError && (e.status === 404 || e.status === 409))) throw e;
  }
  const deadline = ctx.clock.now() + timeoutMs;
  for (;;) {
    const now = await ctx.limit.run(() => ctx.client.get<KubeJson>(path));
    if (!now || now.metadata.uid !== uid) return;
    if (ctx.clock.now() >= deadline) {
      throw new Error(
        `${describeRef(p.ref)} is still being deleted after ${Math.round(timeoutMs / 1000)} s (to be created again with changed immutable fields)`,
      );
    }
    await ctx.clock.sleep(250);
  }
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
