import type { DriftedObject } from '@flotilla/shared/agent';
import {
  type BundleRef,
  describeRef,
  type HealthCheck,
  type Inventory,
  isClusterFoundation,
  type KubeJson,
  objectId,
  pendingInventory,
  sameInventory,
  staleEntries,
} from '@flotilla/shared/agent';
import { errorFields, type Logger } from '../log.ts';
import {
  type ChangeSet,
  type ChangeSetEntry,
  type HealthReport,
  InvalidObjectError,
  type ObjectFailure,
  type PreparedObject,
  type ResourceManager,
  summarize,
} from '../ssa/resource-manager.ts';
import type { InventoryPort } from '../stores/inventory-store.ts';
import type { BundleOutcome, ClusterPort, ReconcileOutcome, VerifiedDesiredState } from './ports.ts';

export interface ClusterReconcilerOptions {
  readonly manager: ResourceManager;
  readonly inventory: InventoryPort;
  readonly log: Logger;
  /** How long a bundle that was just changed may take to become ready before it counts as NotReady. */
  readonly healthTimeoutMs: number;
  readonly healthIntervalMs?: number;
  readonly crdTimeoutMs?: number;
  readonly now?: () => number;
}

type DriftEvent = ReconcileOutcome['driftEvents'][number];

const noChanges = { created: 0, configured: 0, unchanged: 0, deleted: 0, skipped: 0, failed: 0 };

function addCounts(a: BundleOutcome['changes'], b: BundleOutcome['changes']): BundleOutcome['changes'] {
  return {
    created: a.created + b.created,
    configured: a.configured + b.configured,
    unchanged: a.unchanged + b.unchanged,
    deleted: a.deleted + b.deleted,
    skipped: a.skipped + b.skipped,
    failed: a.failed + b.failed,
  };
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function failureMessage(failures: readonly ObjectFailure[], verb: string): string {
  const first = failures[0] as ObjectFailure;
  const more = failures.length > 1 ? ` (and ${plural(failures.length - 1, 'other object')} failed)` : '';
  return `${verb} ${describeRef(first.ref)}: ${first.message}${more}`;
}

function notReadyMessage(reports: readonly HealthReport[]): string {
  const shown = reports.slice(0, 3).map((h) => `${describeRef(h.ref)}: ${h.message}`);
  const more = reports.length > 3 ? `; and ${reports.length - 3} more` : '';
  return `not ready: ${shown.join('; ')}${more}`;
}

/**
 * Reconciles the spoke cluster with one verified desired state, through a
 * {@link ResourceManager} and the bundles' inventories.
 *
 * 1. Read every bundle's inventory; prepare every bundle's objects (namespace, labels, digest).
 * 2. Record the objects about to be created in the inventories, before anything is applied.
 * 3. Apply the Namespaces and CRDs of all bundles first, and wait for the CRDs to be Established.
 * 4. Per bundle, once its dependencies are Ready (bundles without a dependency between
 *    them run side by side): apply what changed since the inventory's digests, prune what
 *    left it, save the inventory, look for drift (correct or report it, per policy), and
 *    wait for readiness.
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

  async reconcile(
    state: VerifiedDesiredState,
    opts: { readonly detectDrift: boolean; readonly signal?: AbortSignal },
  ): Promise<ReconcileOutcome> {
    const { manager, inventory, log } = this.#opts;
    const started = this.#now();
    const { manifest } = state;
    const bundleLabel = manager.label('bundle');
    const inventories = await inventory.loadAll();
    const unreadable = new Set(inventory.problems?.map((p) => p.split(':')[0] as string) ?? []);
    if (unreadable.size > 0)
      log.warn('some inventories cannot be read; their bundles are not pruned', {
        problems: inventory.problems,
      });

    const documents = manifest.bundles.map((ref) => state.bundles.get(ref.hash)?.parse());
    const definitions = documents.flatMap((d) =>
      (d?.objects ?? []).filter((o) => o.kind === 'CustomResourceDefinition'),
    ) as unknown as KubeJson[];
    const prepared = new Map<string, PreparedObject[]>();
    const invalid = new Map<string, string>();
    await Promise.all(
      manifest.bundles.map(async (ref, i) => {
        const doc = documents[i];
        if (!doc) {
          invalid.set(ref.name, `rendered bundle ${ref.hash} is missing`);
          return;
        }
        try {
          const objects = await manager.prepare(doc.objects as unknown as KubeJson[], {
            namespace: ref.namespace,
            labels: { [bundleLabel]: ref.name },
            definitions,
          });
          prepared.set(ref.name, objects);
        } catch (e) {
          if (!(e instanceof InvalidObjectError)) throw e;
          invalid.set(ref.name, e.message);
        }
      }),
    );

    // Everything any bundle of this desired state wants, or may still hold (paused, unreadable): never pruned.
    const wanted = new Set<string>();
    for (const objects of prepared.values()) for (const p of objects) wanted.add(p.id);
    for (const ref of manifest.bundles) {
      if (ref.paused || invalid.has(ref.name)) {
        for (const e of inventories.get(ref.name)?.entries ?? []) wanted.add(objectId(e));
      }
    }

    const active = manifest.bundles.filter((b) => !b.paused && prepared.has(b.name));
    const previous = new Map<string, string>();
    for (const ref of active) {
      for (const e of inventories.get(ref.name)?.entries ?? [])
        if (e.digest) previous.set(objectId(e), e.digest);
    }
    await Promise.all(
      active.map(async (ref) => {
        const upcoming = (prepared.get(ref.name) ?? []).filter((p) => previous.get(p.id) !== p.digest);
        const pending = pendingInventory(
          inventories.get(ref.name),
          ref.name,
          upcoming.map((p) => p.ref),
        );
        if (!pending) return;
        await inventory.save(pending);
        inventories.set(ref.name, pending);
      }),
    );

    let applyEnded = started;
    const foundation = active.flatMap((ref) =>
      (prepared.get(ref.name) ?? []).filter((p) => isClusterFoundation(p.ref)),
    );
    const foundationChanges = await manager.applyPrepared(foundation, {
      previous,
      ...(this.#opts.crdTimeoutMs !== undefined ? { crdTimeoutMs: this.#opts.crdTimeoutMs } : {}),
    });
    const foundationEntries = new Map(foundationChanges.entries.map((e) => [e.id, e]));
    const foundationFailures = new Map(foundationChanges.failures.map((f) => [f.id, f]));
    applyEnded = this.#now();

    const driftEvents: DriftEvent[] = [];
    let pruned = 0;
    const byName = new Map(manifest.bundles.map((b) => [b.name, b]));
    const dependents = new Set(manifest.bundles.flatMap((b) => b.dependsOn));
    const outcomes = new Map<string, Promise<BundleOutcome>>();

    const base = (ref: BundleRef) => ({ name: ref.name, hash: ref.hash, generation: manifest.generation });
    // The bundle's custom CEL checks travel in its rendered document.
    const healthChecksOf = (ref: BundleRef) => {
      const checks = documents[manifest.bundles.indexOf(ref)]?.healthChecks;
      return checks ? { healthChecks: checks } : {};
    };

    const runBundle = async (ref: BundleRef): Promise<BundleOutcome> => {
      const invalidMessage = invalid.get(ref.name);
      if (invalidMessage !== undefined) {
        return { ...base(ref), state: 'Failed', message: invalidMessage, changes: noChanges };
      }
      if (ref.paused) {
        return this.#paused(
          ref,
          inventories.get(ref.name),
          manifest.generation,
          bundleLabel,
          healthChecksOf(ref),
        );
      }
      const deps = ref.dependsOn.filter((d) => d !== ref.name && byName.has(d));
      const depOutcomes = await Promise.all(deps.map((d) => outcomes.get(d)));
      const blocking = deps.filter((_, i) => {
        const o = depOutcomes[i];
        return !o || !(o.state === 'Ready' || o.state === 'Drifted');
      });
      if (blocking.length > 0) {
        const why = blocking.map((d) => {
          const o = depOutcomes[deps.indexOf(d)];
          return o ? `${d} (${o.state})` : `${d} (not earlier in the desired state)`;
        });
        return {
          ...base(ref),
          state: 'Pending',
          message: `waiting for ${why.join(', ')} to be Ready`,
          changes: noChanges,
        };
      }

      const startedAt = this.#now();
      const objects = prepared.get(ref.name) ?? [];
      const selector = `${bundleLabel}=${ref.name}`;
      const rest = await manager.applyPrepared(
        objects.filter((p) => !isClusterFoundation(p.ref)),
        { previous },
      );
      const entries = new Map<string, ChangeSetEntry>();
      const failures: ObjectFailure[] = [];
      for (const p of objects) {
        const e = foundationEntries.get(p.id);
        if (e) entries.set(p.id, e);
        const f = foundationFailures.get(p.id);
        if (f) failures.push(f);
      }
      for (const e of rest.entries) entries.set(e.id, e);
      failures.push(...rest.failures);
      let changes = summarize({ entries: [...entries.values()], failures });

      // Prune only after a clean apply: a failed one may have left objects half-moved.
      const before = inventories.get(ref.name);
      const stale = failures.length === 0 && !unreadable.has(ref.name) ? staleEntries(before, wanted) : [];
      let pruneFailures: readonly ObjectFailure[] = [];
      if (stale.length > 0) {
        const removed = await manager.deleteAll(stale, { ownedBy: { [bundleLabel]: ref.name } });
        pruneFailures = removed.failures;
        pruned += removed.entries.filter((e) => e.action === 'deleted').length;
        changes = addCounts(changes, summarize(removed));
        log.info('pruned objects that left the bundle', {
          bundle: ref.name,
          deleted: removed.entries.filter((e) => e.action === 'deleted').map((e) => e.id),
          skipped: removed.entries.filter((e) => e.action === 'skipped').map((e) => `${e.id}: ${e.reason}`),
        });
      }
      const ids = new Set(objects.map((p) => p.id));
      const pruneFailed = new Set(pruneFailures.map((f) => f.id));
      const kept =
        failures.length > 0
          ? (before?.entries ?? []).filter((e) => !ids.has(objectId(e)))
          : stale.filter((e) => pruneFailed.has(objectId(e)));
      const clean = failures.length === 0 && pruneFailures.length === 0;
      const after: Inventory = {
        bundle: ref.name,
        ...(clean ? { hash: ref.hash, generation: manifest.generation } : {}),
        ...(!clean && before?.hash !== undefined ? { hash: before.hash } : {}),
        ...(!clean && before?.generation !== undefined ? { generation: before.generation } : {}),
        entries: [
          ...objects.map((p) => {
            const digest = entries.get(p.id)?.digest;
            return { ...p.ref, ...(digest !== undefined ? { digest } : {}) };
          }),
          ...kept,
        ],
      };
      if (!sameInventory(before, after)) {
        await inventory.save(after);
        inventories.set(ref.name, after);
      }
      applyEnded = Math.max(applyEnded, this.#now());

      let drift: DriftedObject[] = [];
      let corrected = false;
      if (opts.detectDrift && ref.driftPolicy !== 'ignore' && failures.length === 0) {
        const untouched = objects.filter((p) => entries.get(p.id)?.action === 'unchanged');
        const reports = await manager.diffAll(untouched, { labelSelector: selector });
        const drifted = reports.filter((r) => r.drifted);
        if (drifted.length > 0) {
          drift = drifted.map((r) => ({
            object: r.id,
            fields: r.missing ? ['(object deleted)'] : [...r.fields],
          }));
          if (ref.driftPolicy === 'correct') {
            const ids = new Set(drifted.map((r) => r.id));
            const fix: ChangeSet = await manager.applyPrepared(objects.filter((p) => ids.has(p.id)));
            for (const e of fix.entries) entries.set(e.id, e);
            failures.push(...fix.failures);
            corrected = fix.failures.length === 0;
            changes = addCounts(changes, { ...summarize(fix), unchanged: 0 });
          }
          driftEvents.push({
            bundle: ref.name,
            policy: ref.driftPolicy,
            objects: drifted.length,
            corrected,
          });
          log.warn(corrected ? 'drift corrected' : 'drift found', {
            bundle: ref.name,
            driftPolicy: ref.driftPolicy,
            drift,
          });
        }
      }

      if (failures.length > 0 || pruneFailures.length > 0) {
        const first = failures.length > 0 ? failures : pruneFailures;
        log.warn('bundle failed', {
          bundle: ref.name,
          failures: first.map((f) => ({ object: f.id, message: f.message })),
        });
        return {
          ...base(ref),
          state: 'Failed',
          message: failureMessage(first, failures.length > 0 ? 'applying' : 'pruning'),
          failedObject: (first[0] as ObjectFailure).id,
          changes,
          startedAt,
          settledAt: this.#now(),
        };
      }

      // Wait for readiness only after a change, or when other bundles wait on this one;
      // otherwise look once, and let the requeue look again.
      const changed = changes.created + changes.configured > 0;
      const known = new Map<string, KubeJson | undefined>();
      for (const e of entries.values()) if (e.live) known.set(e.id, e.live);
      const health = await manager.waitForReady(
        objects.map((p) => p.ref),
        {
          timeoutMs: changed || dependents.has(ref.name) ? this.#opts.healthTimeoutMs : 0,
          intervalMs: this.#opts.healthIntervalMs ?? 1_000,
          known,
          labelSelector: selector,
          ...healthChecksOf(ref),
          ...(opts.signal ? { signal: opts.signal } : {}),
        },
      );
      const notReady = health.filter((h) => !h.ready);
      const settledAt = this.#now();
      if (changes.created + changes.configured + changes.deleted > 0) {
        log.info('bundle applied', { bundle: ref.name, changes, ready: notReady.length === 0 });
      }
      if (drift.length > 0) {
        return {
          ...base(ref),
          state: 'Drifted',
          message: corrected
            ? `${plural(drift.length, 'object')} differed from the desired state; corrected`
            : `${plural(drift.length, 'object')} ${drift.length === 1 ? 'differs' : 'differ'} from the desired state; not corrected (driftPolicy ${ref.driftPolicy})`,
          drift,
          changes,
          startedAt,
          settledAt,
        };
      }
      if (notReady.length > 0) {
        return {
          ...base(ref),
          state: 'NotReady',
          message: notReadyMessage(notReady),
          changes,
          startedAt,
          settledAt,
        };
      }
      return { ...base(ref), state: 'Ready', changes, startedAt, settledAt };
    };

    for (const ref of manifest.bundles) {
      const run = runBundle(ref).catch((e: unknown): BundleOutcome => {
        log.error('bundle reconcile failed', { bundle: ref.name, ...errorFields(e) });
        return {
          ...base(ref),
          state: 'Failed',
          message: e instanceof Error ? e.message : String(e),
          changes: noChanges,
        };
      });
      outcomes.set(ref.name, run);
    }
    const bundles = await Promise.all(
      manifest.bundles.map((ref) => outcomes.get(ref.name) as Promise<BundleOutcome>),
    );

    // Bundles that left the desired state: everything they applied goes, in reverse order.
    for (const [name, inv] of inventories) {
      if (byName.has(name) || unreadable.has(name)) continue;
      const stale = staleEntries(inv, wanted);
      const removed = await manager.deleteAll(stale, { ownedBy: { [bundleLabel]: name } });
      pruned += removed.entries.filter((e) => e.action === 'deleted').length;
      log.info('pruned a bundle that left the desired state', {
        bundle: name,
        deleted: removed.entries.filter((e) => e.action === 'deleted').length,
        failed: removed.failures.map((f) => ({ object: f.id, message: f.message })),
      });
      if (removed.failures.length === 0) await inventory.remove(name);
      else {
        const failed = new Set(removed.failures.map((f) => f.id));
        await inventory.save({ bundle: name, entries: stale.filter((e) => failed.has(objectId(e))) });
      }
    }

    const settled = (b: BundleOutcome) =>
      b.state === 'Ready' || b.state === 'NotReady' || b.state === 'Drifted';
    const ended = this.#now();
    return {
      generation: manifest.generation,
      bundles,
      complete: manifest.bundles.every((ref, i) => ref.paused || settled(bundles[i] as BundleOutcome)),
      requeue: bundles.some(
        (b, i) => !manifest.bundles[i]?.paused && (b.state === 'NotReady' || b.state === 'Pending'),
      ),
      pruned,
      driftEvents,
      applySeconds: (applyEnded - started) / 1000,
      durationSeconds: (ended - started) / 1000,
    };
  }

  async #paused(
    ref: BundleRef,
    inv: Inventory | undefined,
    generation: number,
    bundleLabel: string,
    checks: { healthChecks?: readonly HealthCheck[] },
  ): Promise<BundleOutcome> {
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
      labelSelector: `${bundleLabel}=${ref.name}`,
      ...checks,
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
