import { createHash } from 'node:crypto';
import { isContentHash } from '../canonical.ts';
import { type ObjectRef, objectId, pruneOrder } from './objects.ts';

/** One object the agent applied for a bundle. */
export interface InventoryEntry extends ObjectRef {
  /**
   * Digest of the content last applied successfully; absent when the last apply of the
   * object failed or was interrupted, so that the next reconcile applies it again.
   */
  readonly digest?: string;
}

/**
 * What the agent owns for one bundle, kept in the spoke cluster so that a restarted agent
 * knows what to prune. Written before an apply (with the objects about to be created, so a
 * crash cannot orphan them) and after it (exactly what the bundle holds now).
 */
export interface Inventory {
  readonly bundle: string;
  /** Rendered-bundle hash last applied without errors, if any. */
  readonly hash?: string;
  /** Desired-state generation of that apply. */
  readonly generation?: number;
  readonly entries: readonly InventoryEntry[];
}

export class InventoryFormatError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'InventoryFormatError';
  }
}

const header = '# flotilla inventory v1';

/**
 * Encodes an inventory as text a person can read with `kubectl get configmap -o yaml`:
 * a header, then one JSON object per line, in apply order.
 *
 * @example
 * encodeInventory({ bundle: 'web', entries: [{ apiVersion: 'v1', kind: 'ConfigMap', namespace: 'web', name: 'cfg' }] });
 */
export function encodeInventory(inventory: Inventory): string {
  const meta: Record<string, unknown> = { bundle: inventory.bundle };
  if (inventory.hash !== undefined) meta.hash = inventory.hash;
  if (inventory.generation !== undefined) meta.generation = inventory.generation;
  const lines = [header, JSON.stringify(meta)];
  for (const e of inventory.entries) {
    lines.push(
      JSON.stringify(
        e.digest === undefined
          ? [e.apiVersion, e.kind, e.namespace, e.name]
          : [e.apiVersion, e.kind, e.namespace, e.name, e.digest],
      ),
    );
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Decodes what {@link encodeInventory} wrote.
 *
 * @throws {InventoryFormatError} when the text is not an inventory.
 */
export function decodeInventory(text: string): Inventory {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  if (lines[0] !== header) throw new InventoryFormatError(`inventory: expected "${header}" first`);
  let meta: unknown;
  try {
    meta = JSON.parse(lines[1] ?? '');
  } catch (e) {
    throw new InventoryFormatError('inventory: the second line is not JSON', { cause: e });
  }
  if (
    typeof meta !== 'object' ||
    meta === null ||
    typeof (meta as { bundle?: unknown }).bundle !== 'string'
  ) {
    throw new InventoryFormatError('inventory: the second line must name the bundle');
  }
  const m = meta as { bundle: string; hash?: unknown; generation?: unknown };
  const entries: InventoryEntry[] = [];
  for (let i = 2; i < lines.length; i++) {
    let row: unknown;
    try {
      row = JSON.parse(lines[i] as string);
    } catch (e) {
      throw new InventoryFormatError(`inventory line ${i + 1}: not JSON`, { cause: e });
    }
    if (!Array.isArray(row) || row.length < 4 || row.some((v) => typeof v !== 'string')) {
      throw new InventoryFormatError(`inventory line ${i + 1}: expected [apiVersion, kind, namespace, name]`);
    }
    const [apiVersion, kind, namespace, name, digest] = row as string[];
    entries.push({
      apiVersion: apiVersion as string,
      kind: kind as string,
      namespace: namespace as string,
      name: name as string,
      ...(digest !== undefined ? { digest } : {}),
    });
  }
  return {
    bundle: m.bundle,
    ...(isContentHash(m.hash) ? { hash: m.hash } : {}),
    ...(typeof m.generation === 'number' ? { generation: m.generation } : {}),
    entries,
  };
}

/**
 * Objects of an inventory that left the desired state: not in this bundle any more and not
 * wanted by any other bundle either (an object that moved to another bundle is adopted by
 * it, not deleted). In prune order: the reverse of apply order.
 *
 * @param wanted ids ({@link objectId}) of every object of every bundle in the desired state, paused ones included.
 */
export function staleEntries(
  inventory: Pick<Inventory, 'entries'> | undefined,
  wanted: ReadonlySet<string>,
): InventoryEntry[] {
  if (!inventory) return [];
  return pruneOrder(inventory.entries.filter((e) => !wanted.has(objectId(e))));
}

/**
 * The inventory to write before applying: the previous entries plus the objects about to be
 * applied (without digests, as they are not applied yet), so that nothing created by an
 * apply that is cut short is forgotten. Returns undefined when nothing new would be recorded.
 */
export function pendingInventory(
  previous: Inventory | undefined,
  bundle: string,
  upcoming: readonly ObjectRef[],
): Inventory | undefined {
  const known = new Set((previous?.entries ?? []).map(objectId));
  const added = upcoming.filter((r) => !known.has(objectId(r)));
  if (added.length === 0) return undefined;
  return {
    bundle,
    ...(previous?.hash !== undefined ? { hash: previous.hash } : {}),
    ...(previous?.generation !== undefined ? { generation: previous.generation } : {}),
    entries: [
      ...(previous?.entries ?? []),
      ...added.map((r) => ({ apiVersion: r.apiVersion, kind: r.kind, namespace: r.namespace, name: r.name })),
    ],
  };
}

/** Whether two inventories record the same thing (so an unchanged one is not written again). */
export function sameInventory(a: Inventory | undefined, b: Inventory): boolean {
  return a !== undefined && encodeInventory(a) === encodeInventory(b);
}

/**
 * The label value (and ConfigMap name part) that stands for a bundle in a spoke cluster.
 * A platform bundle's name is a label value as it is (`web`), so existing clusters keep
 * their labels; a source's bundle `team-a/web` becomes `team-a.web` (a `/` is not allowed
 * in a label value, and no plain name has a `.`), or, past a label value's 63 characters,
 * a prefix and a hash of the full name.
 *
 * @example
 * bundleKey('web'); // 'web'
 * bundleKey('team-a/web'); // 'team-a.web'
 */
export function bundleKey(bundle: string): string {
  if (!bundle.includes('/')) return bundle;
  const dotted = bundle.replace('/', '.');
  if (dotted.length <= 63) return dotted;
  return `${dotted.slice(0, 46)}-${createHash('sha256').update(bundle).digest('hex').slice(0, 16)}`;
}
