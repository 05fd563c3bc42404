import { bundleKey, decodeInventory, encodeInventory, type Inventory } from '@flotilla/shared/agent';
import type { ClusterStore } from './cluster-store.ts';

/** Where the reconciler keeps each bundle's inventory. */
export interface InventoryPort {
  /** Every bundle's inventory, by bundle name. */
  loadAll(): Promise<Map<string, Inventory>>;
  save(inventory: Inventory): Promise<void>;
  remove(bundle: string): Promise<void>;
  /** Inventories the last {@link loadAll} could not read, as `<bundle>: <why>`; those bundles are not pruned. */
  readonly problems?: readonly string[];
}

/**
 * Inventories in ConfigMaps of the agent's namespace, one per bundle
 * (`flotilla-inventory-<bundle>`, the bundle as {@link bundleKey} writes it), readable with
 * kubectl: they name objects, never content.
 */
export class ConfigMapInventory implements InventoryPort {
  readonly #store: ClusterStore;
  /** Inventories the last {@link loadAll} could not read (they are left alone, not pruned from). */
  problems: string[] = [];

  constructor(store: ClusterStore) {
    this.#store = store;
  }

  async loadAll(): Promise<Map<string, Inventory>> {
    const values = await this.#store.readAll();
    const out = new Map<string, Inventory>();
    this.problems = [...this.#store.problems];
    for (const [key, text] of values) {
      try {
        const inventory = decodeInventory(text);
        // Keyed by the full name it records (a source's `team-a/web` is stored as `team-a.web`).
        out.set(inventory.bundle, inventory);
      } catch (e) {
        this.problems.push(`${key}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    return out;
  }

  save(inventory: Inventory): Promise<void> {
    return this.#store.write(bundleKey(inventory.bundle), encodeInventory(inventory));
  }

  remove(bundle: string): Promise<void> {
    return this.#store.remove(bundleKey(bundle));
  }
}
