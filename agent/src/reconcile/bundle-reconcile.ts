/**
 * One bundle's turn in a reconcile, step by step: apply what changed, prune what left it,
 * save its inventory, look for drift, take one look at readiness. Each step is a function
 * that returns data; {@link reconcileBundle} runs them in that order and words the outcome.
 * Nothing here waits for readiness: a bundle that is not ready yet is reported NotReady
 * and looked at again by the agent's next requeue, so one slow bundle holds up nothing.
 */
import {
  type BundleRef,
  bundleKey,
  type DriftedObject,
  type HealthCheck,
  type Inventory,
  isClusterFoundation,
  type KubeJson,
  objectId,
  removedWhenDone,
  sameInventory,
  staleEntries,
} from '@flotilla/shared/agent';
import type { Logger } from '../log.ts';
import {
  type ChangeSetEntry,
  type HealthReport,
  type ObjectFailure,
  type PreparedObject,
  type ResourceManager,
  summarize,
} from '../ssa/resource-manager.ts';
import type { InventoryPort } from '../stores/inventory-store.ts';
import {
  addCounts,
  type Changes,
  type DriftEvent,
  failureMessage,
  noChanges,
  notReadyMessage,
  plural,
} from './outcomes.ts';
import type { BundleOutcome } from './ports.ts';
import type { ReconcilePlan } from './reconcile-plan.ts';
import { type TenantAccess, tenantNamespaces } from './tenant-access.ts';

/** What every bundle of one reconcile shares. */
export interface BundleStepContext {
  /** The agent's own manager; a tenant's bundle is written through `tenants.manager(tenant)` instead. */
  readonly manager: ResourceManager;
  readonly tenants: TenantAccess;
  readonly inventory: InventoryPort;
  readonly log: Logger;
  readonly now: () => number;
  readonly plan: ReconcilePlan;
  /** What the reconcile's first stage (Namespaces and CRDs of every bundle) did, by object id. */
  readonly foundation: {
    readonly entries: ReadonlyMap<string, ChangeSetEntry>;
    readonly failures: ReadonlyMap<string, ObjectFailure>;
  };
  readonly detectDrift: boolean;
}

export interface BundleStepResult {
  readonly outcome: BundleOutcome;
  /** Objects deleted because they left the bundle. */
  readonly pruned: number;
  readonly drift?: DriftEvent | undefined;
  /** When its apply and prune ended (ms since the epoch). */
  readonly appliedAt: number;
}

interface Applied {
  readonly entries: Map<string, ChangeSetEntry>;
  readonly failures: ObjectFailure[];
  changes: Changes;
}

/** Applies the bundle's objects that are not Namespaces or CRDs (those went first, for every bundle). */
async function apply(
  ctx: BundleStepContext,
  ref: BundleRef,
  objects: readonly PreparedObject[],
): Promise<Applied> {
  const { manager, plan, foundation } = ctx;
  const rest = await manager.applyPrepared(
    objects.filter((p) => !isClusterFoundation(p.ref)),
    { previous: plan.previous, labelSelector: `${plan.bundleLabel}=${bundleKey(ref.name)}` },
  );
  const entries = new Map<string, ChangeSetEntry>();
  const failures: ObjectFailure[] = [];
  for (const p of objects) {
    const e = foundation.entries.get(p.id);
    if (e) entries.set(p.id, e);
    const f = foundation.failures.get(p.id);
    if (f) failures.push(f);
  }
  for (const e of rest.entries) entries.set(e.id, e);
  failures.push(...rest.failures);
  return { entries, failures, changes: summarize({ entries: [...entries.values()], failures }) };
}

/** Deletes what left the bundle, only after a clean apply: a failed one may have left objects half-moved. */
async function prune(
  ctx: BundleStepContext,
  ref: BundleRef,
  applied: Applied,
): Promise<{ stale: Inventory['entries']; failures: readonly ObjectFailure[]; pruned: number }> {
  const { manager, plan, log } = ctx;
  const before = plan.inventories.get(ref.name);
  const clean = applied.failures.length === 0 && !plan.unreadable.has(ref.name);
  const stale = clean ? staleEntries(before, plan.wanted) : [];
  if (stale.length === 0) return { stale, failures: [], pruned: 0 };
  const removed = await manager.deleteAll(stale, { ownedBy: { [plan.bundleLabel]: bundleKey(ref.name) } });
  applied.changes = addCounts(applied.changes, summarize(removed));
  log.info('pruned objects that left the bundle', {
    bundle: ref.name,
    deleted: removed.entries.filter((e) => e.action === 'deleted').map((e) => e.id),
    skipped: removed.entries.filter((e) => e.action === 'skipped').map((e) => `${e.id}: ${e.reason}`),
  });
  return {
    stale,
    failures: removed.failures,
    pruned: removed.entries.filter((e) => e.action === 'deleted').length,
  };
}

/**
 * Writes the bundle's inventory: every object it has now with the digest applied, plus what
 * could not be pruned (or, after a failed apply, everything it had). Only a clean pass
 * records the bundle's hash and generation as applied.
 */
async function saveInventory(
  ctx: BundleStepContext,
  ref: BundleRef,
  objects: readonly PreparedObject[],
  applied: Applied,
  pruned: { stale: Inventory['entries']; failures: readonly ObjectFailure[] },
): Promise<void> {
  const { plan, inventory } = ctx;
  const before = plan.inventories.get(ref.name);
  const ids = new Set(objects.map((p) => p.id));
  const pruneFailed = new Set(pruned.failures.map((f) => f.id));
  const kept =
    applied.failures.length > 0
      ? (before?.entries ?? []).filter((e) => !ids.has(objectId(e)))
      : pruned.stale.filter((e) => pruneFailed.has(objectId(e)));
  const clean = applied.failures.length === 0 && pruned.failures.length === 0;
  const after: Inventory = {
    bundle: ref.name,
    ...(clean ? { hash: ref.hash, generation: plan.manifest.generation } : {}),
    ...(!clean && before?.hash !== undefined ? { hash: before.hash } : {}),
    ...(!clean && before?.generation !== undefined ? { generation: before.generation } : {}),
    entries: [
      ...objects.map((p) => {
        const digest = applied.entries.get(p.id)?.digest;
        return { ...p.ref, ...(digest !== undefined ? { digest } : {}) };
      }),
      ...kept,
    ],
  };
  if (sameInventory(before, after)) return;
  await inventory.save(after);
  plan.inventories.set(ref.name, after);
}

/** An object that Kubernetes removed once it was done (see `removedWhenDone`), after the agent applied this very content. */
function doneAndRemoved(ctx: BundleStepContext, p: PreparedObject): boolean {
  return removedWhenDone(p.object) && ctx.plan.previous.get(p.id) === p.digest;
}

/**
 * Looks for drift on the objects this pass did not touch, and corrects it under
 * `driftPolicy: correct`. An object removed by Kubernetes when done (a finished Job
 * with a TTL) is not drift: applying it again would run it again.
 */
async function checkDrift(
  ctx: BundleStepContext,
  ref: BundleRef,
  objects: readonly PreparedObject[],
  applied: Applied,
): Promise<{ drift: DriftedObject[]; corrected: boolean }> {
  const { manager, plan, log } = ctx;
  const untouched = objects.filter((p) => applied.entries.get(p.id)?.action === 'unchanged');
  const reports = await manager.diffAll(untouched, {
    labelSelector: `${plan.bundleLabel}=${bundleKey(ref.name)}`,
  });
  const byId = new Map(untouched.map((p) => [p.id, p]));
  const drifted = reports.filter(
    (r) => r.drifted && !(r.missing && doneAndRemoved(ctx, byId.get(r.id) as PreparedObject)),
  );
  if (drifted.length === 0) return { drift: [], corrected: false };
  const drift = drifted.map((r) => ({
    object: r.id,
    fields: r.missing ? ['(object deleted)'] : [...r.fields],
  }));
  let corrected = false;
  if (ref.driftPolicy === 'correct') {
    const ids = new Set(drifted.map((r) => r.id));
    const fix = await manager.applyPrepared(
      objects.filter((p) => ids.has(p.id)),
      { knownToDiffer: true },
    );
    for (const e of fix.entries) applied.entries.set(e.id, e);
    applied.failures.push(...fix.failures);
    corrected = fix.failures.length === 0;
    applied.changes = addCounts(applied.changes, { ...summarize(fix), unchanged: 0 });
  }
  log.warn(corrected ? 'drift corrected' : 'drift found', {
    bundle: ref.name,
    driftPolicy: ref.driftPolicy,
    drift,
  });
  return { drift, corrected };
}

/** The bundle's custom health checks, as the health options take them. */
export function checksOf(plan: ReconcilePlan, ref: BundleRef): { healthChecks?: readonly HealthCheck[] } {
  const checks = plan.healthChecks.get(ref.name);
  return checks ? { healthChecks: checks } : {};
}

/** One look at readiness, from the objects the apply returned where it can, reading the rest. */
async function lookAtHealth(
  ctx: BundleStepContext,
  ref: BundleRef,
  objects: readonly PreparedObject[],
  applied: Applied,
): Promise<HealthReport[]> {
  const known = new Map<string, KubeJson | undefined>();
  for (const e of applied.entries.values()) if (e.live) known.set(e.id, e.live);
  const reports = await ctx.manager.health(
    objects.map((p) => p.ref),
    { known, labelSelector: `${ctx.plan.bundleLabel}=${bundleKey(ref.name)}`, ...checksOf(ctx.plan, ref) },
  );
  const byId = new Map(objects.map((p) => [p.id, p]));
  return reports.map((h) => {
    const p = byId.get(h.id);
    if (!h.ready && h.message === 'not found' && p && doneAndRemoved(ctx, p))
      return { ...h, ready: true, message: '' };
    return h;
  });
}

/**
 * Reconciles one bundle whose dependencies are Ready: apply, prune, inventory, drift,
 * one look at readiness. Returns its outcome; never waits for it to become ready.
 */
export async function reconcileBundle(ctx: BundleStepContext, ref: BundleRef): Promise<BundleStepResult> {
  const startedAt = ctx.now();
  const objects = ctx.plan.prepared.get(ref.name) ?? [];
  if (ref.tenant !== undefined) return reconcileTenantBundle(ctx, ref, ref.tenant, startedAt);

  const applied = await apply(ctx, ref, objects);
  return finish(ctx, ref, objects, applied, startedAt);
}

/**
 * A tenant's bundle: written as the tenant's service account, after binding it in the
 * bundle's namespaces that match the tenant's globs. A write the API server refuses fails
 * the bundle with the tenant and the object named.
 */
async function reconcileTenantBundle(
  base: BundleStepContext,
  ref: BundleRef,
  tenant: string,
  startedAt: number,
): Promise<BundleStepResult> {
  const ctx: BundleStepContext = { ...base, manager: base.tenants.manager(tenant) };
  const { plan } = ctx;
  const objects = plan.prepared.get(ref.name) ?? [];
  const globs = tenantNamespaces(plan.manifest.tenants, tenant);
  if (globs === undefined) {
    return {
      outcome: {
        name: ref.name,
        hash: ref.hash,
        generation: plan.manifest.generation,
        state: 'Failed',
        message: `tenant "${tenant}" is not in the desired state's tenants: its namespaces are unknown, so nothing of the bundle is applied`,
        changes: noChanges,
        startedAt,
        settledAt: ctx.now(),
      },
      pruned: 0,
      appliedAt: ctx.now(),
    };
  }
  const namespaces = [
    ...objects.map((p) => p.ref.namespace),
    ...(plan.inventories.get(ref.name)?.entries ?? []).map((e) => e.namespace),
  ].filter((ns) => ns !== '');
  const refused = await ctx.tenants.grant(tenant, globs, namespaces);
  const applied = await apply(ctx, ref, objects);
  applied.failures.unshift(...refused);
  const result = await finish(ctx, ref, objects, applied, startedAt);
  // A refusal may come from a RoleBinding someone removed: make sure of them again next time.
  if (result.outcome.state === 'Failed') ctx.tenants.forget(tenant);
  return result;
}

/** Everything after the apply: prune, inventory, drift, readiness, and the outcome. */
async function finish(
  ctx: BundleStepContext,
  ref: BundleRef,
  objects: readonly PreparedObject[],
  applied: Applied,
  startedAt: number,
): Promise<BundleStepResult> {
  const { plan, log, now } = ctx;
  const base = { name: ref.name, hash: ref.hash, generation: plan.manifest.generation };
  const pruned = await prune(ctx, ref, applied);
  await saveInventory(ctx, ref, objects, applied, pruned);
  const appliedAt = now();

  const { drift, corrected } =
    ctx.detectDrift && ref.driftPolicy !== 'ignore' && applied.failures.length === 0
      ? await checkDrift(ctx, ref, objects, applied)
      : { drift: [], corrected: false };
  const driftEvent: DriftEvent | undefined =
    drift.length > 0 && ref.driftPolicy !== 'ignore'
      ? { bundle: ref.name, policy: ref.driftPolicy, objects: drift.length, corrected }
      : undefined;
  const { changes } = applied;

  if (applied.failures.length > 0 || pruned.failures.length > 0) {
    const first = applied.failures.length > 0 ? applied.failures : pruned.failures;
    log.warn('bundle failed', {
      bundle: ref.name,
      failures: first.map((f) => ({ object: f.id, message: f.message })),
    });
    const outcome: BundleOutcome = {
      ...base,
      state: 'Failed',
      message: failureMessage(first, applied.failures.length > 0 ? 'applying' : 'pruning'),
      failedObject: (first[0] as ObjectFailure).id,
      changes,
      startedAt,
      settledAt: now(),
    };
    return { outcome, pruned: pruned.pruned, drift: driftEvent, appliedAt };
  }

  const notReady = (await lookAtHealth(ctx, ref, objects, applied)).filter((h) => !h.ready);
  const settledAt = now();
  if (changes.created + changes.configured + changes.deleted > 0) {
    log.info('bundle applied', { bundle: ref.name, changes, ready: notReady.length === 0 });
  }
  let outcome: BundleOutcome;
  if (drift.length > 0) {
    outcome = {
      ...base,
      state: 'Drifted',
      message: corrected
        ? `${plural(drift.length, 'object')} differed from the desired state; corrected`
        : `${plural(drift.length, 'object')} ${drift.length === 1 ? 'differs' : 'differ'} from the desired state; not corrected (driftPolicy ${ref.driftPolicy})`,
      drift,
      changes,
      startedAt,
      settledAt,
    };
  } else if (notReady.length > 0) {
    outcome = {
      ...base,
      state: 'NotReady',
      message: notReadyMessage(notReady),
      changes,
      startedAt,
      settledAt,
    };
  } else {
    outcome = { ...base, state: 'Ready', changes, startedAt, settledAt };
  }
  return { outcome, pruned: pruned.pruned, drift: driftEvent, appliedAt };
}
