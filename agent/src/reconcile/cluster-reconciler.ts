import {
  type BundleRef,
  bundleKey,
  isClusterFoundation,
  objectId,
  staleEntries,
} from '@flotilla/shared/agent';
import { errorFields, type Logger } from '../log.ts';
import type {
  ChangeSetEntry,
  ObjectFailure,
  PreparedObject,
  ResourceManager,
} from '../ssa/resource-manager.ts';
import type { InventoryPort } from '../stores/inventory-store.ts';
import {
  type BundleStepContext,
  type BundleStepResult,
  checksOf,
  reconcileBundle,
} from './bundle-reconcile.ts';
import { type DriftEvent, isSettled, noChanges, notReadyMessage } from './outcomes.ts';
import type {
  BundleOutcome,
  ClusterPort,
  ReconcileOptions,
  ReconcileOutcome,
  SecretKeysPort,
  VerifiedDesiredState,
} from './ports.ts';
import { planReconcile, type ReconcilePlan, recordPending } from './reconcile-plan.ts';
import type { TenantAccess } from './tenant-access.ts';

export interface ClusterReconcilerOptions {
  readonly manager: ResourceManager;
  /** How a tenant's bundles are written: as the tenant's service account (see tenant-access.ts). */
  readonly tenants: TenantAccess;
  readonly inventory: InventoryPort;
  readonly log: Logger;
  readonly crdTimeoutMs?: number;
  readonly now?: () => number;
  /** Decrypts the bundles' SOPS files; without it a bundle that has one fails with that reason. */
  readonly secretKeys?: SecretKeysPort | undefined;
}

/**
 * Reconciles the spoke cluster with one verified desired state, through a
 * {@link ResourceManager} and the bundles' inventories, as Flux's kustomize-controller
 * does for one Kustomization, bundle by bundle:
 *
 * 1. Plan: read every bundle's inventory; prepare every bundle's objects (namespace, labels, digest).
 * 2. Record the objects about to be created in the inventories, before anything is applied.
 * 3. Apply the Namespaces and CRDs of all bundles first, and wait for the CRDs to be Established.
 * 4. Per bundle, once its dependencies are Ready (bundles without a dependency between
 *    them run side by side): apply what changed, prune what left it, save the inventory,
 *    look for drift (correct or report it, per policy), take one look at readiness
 *    ({@link reconcileBundle}). A bundle that is not ready yet is NotReady, and its
 *    dependants Pending, until a later reconcile finds it ready: nothing waits here.
 * 5. Prune the bundles that left the desired state, then drop their inventories.
 *
 * Paused bundles are only looked at: no apply, prune or correction. Pruning happens only
 * for a bundle whose apply had no error, and never touches an object another bundle of the
 * desired state still wants.
 */
export class ClusterReconciler implements ClusterPort {
  readonly #opts: ClusterReconcilerOptions;
  readonly #now: () => number;

  constructor(opts: ClusterReconcilerOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
  }

  async reconcile(state: VerifiedDesiredState, opts: ReconcileOptions): Promise<ReconcileOutcome> {
    const { manager, inventory, log } = this.#opts;
    const started = this.#now();
    const plan = await planReconcile(state, {
      manager,
      inventory,
      log,
      secretKeys: this.#opts.secretKeys,
      signal: opts.signal,
    });
    await recordPending(plan, inventory);
    const foundation = await this.#applyFoundation(plan);
    let appliedAt = this.#now();

    const ctx: BundleStepContext = {
      manager,
      tenants: this.#opts.tenants,
      inventory,
      log,
      now: this.#now,
      plan,
      foundation,
      detectDrift: opts.detectDrift,
    };
    const results = await this.#runBundles(ctx, opts);
    const driftEvents: DriftEvent[] = [];
    let pruned = 0;
    for (const r of results) {
      pruned += r.pruned;
      if (r.drift) driftEvents.push(r.drift);
      appliedAt = Math.max(appliedAt, r.appliedAt);
    }
    pruned += await this.#pruneRemovedBundles(plan);
    appliedAt = Math.max(appliedAt, this.#now());

    const { manifest } = plan;
    const bundles = results.map((r) => r.outcome);
    const ended = this.#now();
    return {
      generation: manifest.generation,
      bundles,
      complete: manifest.bundles.every((ref, i) => ref.paused || isSettled(bundles[i] as BundleOutcome)),
      requeue: bundles.some(
        (b, i) => !manifest.bundles[i]?.paused && (b.state === 'NotReady' || b.state === 'Pending'),
      ),
      pruned,
      driftEvents,
      applySeconds: (appliedAt - started) / 1000,
      durationSeconds: (ended - started) / 1000,
    };
  }

  /**
   * Step 3: the Namespaces and CRDs of every bundle to apply, first: the platform's as the
   * agent, each tenant's as the tenant's service account.
   */
  async #applyFoundation(plan: ReconcilePlan): Promise<BundleStepContext['foundation']> {
    const byTenant = new Map<string | undefined, PreparedObject[]>();
    for (const ref of plan.active) {
      const list = byTenant.get(ref.tenant) ?? [];
      list.push(...(plan.prepared.get(ref.name) ?? []).filter((p) => isClusterFoundation(p.ref)));
      byTenant.set(ref.tenant, list);
    }
    const entries = new Map<string, ChangeSetEntry>();
    const failures = new Map<string, ObjectFailure>();
    await Promise.all(
      [...byTenant].map(async ([tenant, foundation]) => {
        if (foundation.length === 0) return;
        const manager = tenant === undefined ? this.#opts.manager : this.#opts.tenants.manager(tenant);
        const changes = await manager.applyPrepared(foundation, {
          previous: plan.previous,
          ...(this.#opts.crdTimeoutMs !== undefined ? { crdTimeoutMs: this.#opts.crdTimeoutMs } : {}),
        });
        for (const e of changes.entries) entries.set(e.id, e);
        for (const f of changes.failures) failures.set(f.id, f);
      }),
    );
    return { entries, failures };
  }

  /** Step 4: every bundle, each once the bundles it depends on have had their turn; outcomes in manifest order. */
  async #runBundles(ctx: BundleStepContext, opts: ReconcileOptions): Promise<BundleStepResult[]> {
    const { plan, log } = ctx;
    const { manifest } = plan;
    const byName = new Map(manifest.bundles.map((b) => [b.name, b]));
    const runs = new Map<string, Promise<BundleStepResult>>();
    const base = (ref: BundleRef) => ({ name: ref.name, hash: ref.hash, generation: manifest.generation });
    const only = (outcome: BundleOutcome): BundleStepResult => ({
      outcome,
      pruned: 0,
      appliedAt: this.#now(),
    });

    const run = async (ref: BundleRef): Promise<BundleStepResult> => {
      const invalid = plan.invalid.get(ref.name);
      if (invalid !== undefined)
        return only({ ...base(ref), state: 'Failed', message: invalid, changes: noChanges });
      if (ref.paused) return only(await this.#paused(ref, plan));
      const deps = ref.dependsOn.filter((d) => d !== ref.name && byName.has(d));
      const depOutcomes = (await Promise.all(deps.map((d) => runs.get(d)))).map((r) => r?.outcome);
      const blocking = deps.flatMap((d, i) => {
        const o = depOutcomes[i];
        if (o && (o.state === 'Ready' || o.state === 'Drifted')) return [];
        return [o ? `${d} (${o.state})` : `${d} (not earlier in the desired state)`];
      });
      if (blocking.length > 0) {
        return only({
          ...base(ref),
          state: 'Pending',
          message: `waiting for ${blocking.join(', ')} to be Ready`,
          changes: noChanges,
        });
      }
      return reconcileBundle(ctx, ref);
    };

    for (const ref of manifest.bundles) {
      const result = run(ref)
        .catch((e: unknown): BundleStepResult => {
          log.error('bundle reconcile failed', { bundle: ref.name, ...errorFields(e) });
          return only({
            ...base(ref),
            state: 'Failed',
            message: e instanceof Error ? e.message : String(e),
            changes: noChanges,
          });
        })
        .then((r) => {
          opts.onBundle?.(r.outcome);
          return r;
        });
      runs.set(ref.name, result);
    }
    return Promise.all(manifest.bundles.map((ref) => runs.get(ref.name) as Promise<BundleStepResult>));
  }

  /** Step 5: bundles that left the desired state: everything they applied goes, in reverse order. */
  async #pruneRemovedBundles(plan: ReconcilePlan): Promise<number> {
    const { manager, inventory, log } = this.#opts;
    const names = new Set(plan.manifest.bundles.map((b) => b.name));
    let pruned = 0;
    for (const [name, inv] of plan.inventories) {
      if (names.has(name) || plan.unreadable.has(name)) continue;
      const stale = staleEntries(inv, plan.wanted);
      const removed = await manager.deleteAll(stale, { ownedBy: { [plan.bundleLabel]: bundleKey(name) } });
      pruned += removed.entries.filter((e) => e.action === 'deleted').length;
      log.info('pruned a bundle that left the desired state', {
        bundle: name,
        deleted: removed.entries.filter((e) => e.action === 'deleted').length,
        failed: removed.failures.map((f) => ({ object: f.id, message: f.message })),
      });
      if (removed.failures.length === 0) await inventory.remove(name);
      else {
        const failed = new Set(removed.failures.map((f) => f.id));
        await inventory.save({
          bundle: name,
          entries: stale.filter((e) => failed.has(objectId(e))),
        });
      }
    }
    return pruned;
  }

  async #paused(ref: BundleRef, plan: ReconcilePlan): Promise<BundleOutcome> {
    const inv = plan.inventories.get(ref.name);
    const generation = plan.manifest.generation;
    const note = 'paused: its objects are left as they are (no apply, prune or drift correction)';
    if (!inv || inv.entries.length === 0) {
      return {
        name: ref.name,
        hash: ref.hash,
        generation,
        state: 'Pending',
        message: 'paused before it was applied',
        changes: noChanges,
      };
    }
    const health = await this.#opts.manager.health(inv.entries, {
      labelSelector: `${plan.bundleLabel}=${bundleKey(ref.name)}`,
      ...checksOf(plan, ref),
    });
    const notReady = health.filter((h) => !h.ready);
    return {
      name: ref.name,
      // The render in force is the one last applied; the hub shows the bundle behind when that is not the desired one.
      hash: inv.hash ?? ref.hash,
      generation: inv.generation ?? generation,
      state: notReady.length > 0 ? 'NotReady' : 'Ready',
      message: notReady.length > 0 ? `${note}; ${notReadyMessage(notReady)}` : note,
      changes: noChanges,
    };
  }
}
