import {
  type BundleRef,
  bundleKey,
  type DesiredState,
  type HealthCheck,
  type Inventory,
  type KubeJson,
  objectId,
  pendingInventory,
} from '@flotilla/shared/agent';
import type { Logger } from '../log.ts';
import { InvalidObjectError, type PreparedObject, type ResourceManager } from '../ssa/resource-manager.ts';
import type { InventoryPort } from '../stores/inventory-store.ts';
import type { SecretKeysPort, VerifiedDesiredState } from './ports.ts';
import { openSealedFiles, SealedFileError } from './sealed-files.ts';

/** What a reconcile works from, settled before anything is applied. */
export interface ReconcilePlan {
  readonly manifest: DesiredState;
  /** The label that says which bundle owns an object, e.g. `flotilla.dev/bundle`. */
  readonly bundleLabel: string;
  /** Every bundle's inventory as read, updated as the reconcile saves new ones. */
  readonly inventories: Map<string, Inventory>;
  /** Bundles whose inventory could not be read: never pruned. */
  readonly unreadable: ReadonlySet<string>;
  /** Each bundle's objects, ready to apply. */
  readonly prepared: ReadonlyMap<string, readonly PreparedObject[]>;
  /** Bundles that cannot be applied at all (a missing render, an object without a name), with why. */
  readonly invalid: ReadonlyMap<string, string>;
  /** Everything any bundle of this desired state wants, or may still hold (paused, invalid): never pruned. */
  readonly wanted: ReadonlySet<string>;
  /** Digests of what was last applied, by object id: unchanged digests are not applied again. */
  readonly previous: ReadonlyMap<string, string>;
  /** Bundles to apply: not paused, and prepared. */
  readonly active: readonly BundleRef[];
  /** Each bundle's custom health checks (bundle.yaml `healthChecks`), from its rendered document. */
  readonly healthChecks: ReadonlyMap<string, readonly HealthCheck[]>;
}

/**
 * Reads every bundle's inventory and prepares every bundle's objects (namespace, owner
 * label, digest). Touches nothing in the cluster.
 */
export async function planReconcile(
  state: VerifiedDesiredState,
  deps: {
    readonly manager: ResourceManager;
    readonly inventory: InventoryPort;
    readonly log: Logger;
    readonly secretKeys?: SecretKeysPort | undefined;
    readonly signal?: AbortSignal | undefined;
  },
): Promise<ReconcilePlan> {
  const { manager, inventory, log } = deps;
  const { manifest } = state;
  const bundleLabel = manager.label('bundle');
  const bundleNameAnnotation = manager.label('bundle-name');
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
  const healthChecks = new Map<string, readonly HealthCheck[]>();
  manifest.bundles.forEach((ref, i) => {
    const checks = documents[i]?.healthChecks;
    if (checks?.length) healthChecks.set(ref.name, checks);
  });
  await Promise.all(
    manifest.bundles.map(async (ref, i) => {
      const doc = documents[i];
      if (!doc) {
        invalid.set(ref.name, `rendered bundle ${ref.hash} is missing`);
        return;
      }
      try {
        let plain = doc.objects as unknown as KubeJson[];
        // Decrypted here, just before apply; only the prepared objects hold the plaintext.
        if (doc.sealed)
          plain = [...plain, ...(await openSealedFiles(doc.sealed, deps.secretKeys, deps.signal))];
        const objects = await manager.prepare(plain, {
          namespace: ref.namespace,
          labels: { [bundleLabel]: bundleKey(ref.name) },
          // A source's bundle (`team-a/web`) is labelled `team-a.web`: its full name is written beside it.
          ...(ref.name.includes('/') ? { annotations: { [bundleNameAnnotation]: ref.name } } : {}),
          definitions,
          ...(doc.ignoreDifferences ? { ignoreDifferences: doc.ignoreDifferences } : {}),
        });
        prepared.set(ref.name, objects);
      } catch (e) {
        if (!(e instanceof InvalidObjectError) && !(e instanceof SealedFileError)) throw e;
        invalid.set(ref.name, e.message);
      }
    }),
  );

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
  return {
    manifest,
    bundleLabel,
    inventories,
    unreadable,
    prepared,
    invalid,
    wanted,
    previous,
    active,
    healthChecks,
  };
}

/**
 * Records the objects about to be created in their bundles' inventories before anything is
 * applied, so that an agent stopped mid-apply still knows what it may have created.
 */
export async function recordPending(plan: ReconcilePlan, inventory: InventoryPort): Promise<void> {
  await Promise.all(
    plan.active.map(async (ref) => {
      const upcoming = (plan.prepared.get(ref.name) ?? []).filter(
        (p) => plan.previous.get(p.id) !== p.digest,
      );
      const pending = pendingInventory(
        plan.inventories.get(ref.name),
        ref.name,
        upcoming.map((p) => p.ref),
      );
      if (!pending) return;
      await inventory.save(pending);
      plan.inventories.set(ref.name, pending);
    }),
  );
}
