/**
 * Who owns which fields of a live object, from its `metadata.managedFields`: whether an
 * apply would change anything, and taking over what `kubectl` wrote client-side.
 */
import { canonicalJson } from '../canonical.ts';
import { appliedFields, type FieldsV1, ownedFieldDifferences } from './drift.ts';

/**
 * The managers through which `kubectl` writes without server-side apply: `kubectl apply`
 * (client-side, with the last-applied annotation), `kubectl create`, older kubectl's
 * `kubectl`, and `before-first-apply`, the name the API server gives to fields that
 * existed before an object's first server-side apply. Their entries are `Update`s, which
 * server-side apply never takes away: a field the agent also applies stays theirs too, so
 * removing it from git would leave it in place.
 */
export const CLIENT_SIDE_MANAGERS: readonly string[] = [
  'kubectl-client-side-apply',
  'kubectl-create',
  'kubectl',
  'before-first-apply',
];

export interface ManagedFieldsEntry {
  readonly manager?: string;
  readonly operation?: string;
  readonly apiVersion?: string;
  readonly time?: string;
  readonly fieldsType?: string;
  readonly fieldsV1?: FieldsV1;
  readonly subresource?: string;
}

function entriesOf(object: unknown): readonly ManagedFieldsEntry[] {
  return (
    (object as { metadata?: { managedFields?: readonly ManagedFieldsEntry[] } } | undefined)?.metadata
      ?.managedFields ?? []
  );
}

function isClientSide(e: ManagedFieldsEntry): boolean {
  return (
    e.operation === 'Update' &&
    (e.subresource ?? '') === '' &&
    e.manager !== undefined &&
    CLIENT_SIDE_MANAGERS.includes(e.manager)
  );
}

/** The union of field sets. */
export function mergeFieldSets(...sets: readonly (FieldsV1 | undefined)[]): FieldsV1 {
  const out: Record<string, FieldsV1> = {};
  for (const set of sets) {
    if (!set) continue;
    for (const [key, child] of Object.entries(set)) {
      out[key] = key in out ? mergeFieldSets(out[key], child) : mergeFieldSets(child);
    }
  }
  return out;
}

/**
 * The managedFields of `live` with every client-side `kubectl` entry folded into
 * `manager`'s Apply entry (created when there is none), as Flux's CSA migration does; or
 * undefined when there is nothing to take over. Written back to the object, the agent
 * alone owns those fields, so its next apply removes the ones git no longer has, the
 * `kubectl.kubernetes.io/last-applied-configuration` annotation among them.
 */
export function takeOverClientSideFields(
  live: unknown,
  manager: string,
  now: string,
): ManagedFieldsEntry[] | undefined {
  const entries = entriesOf(live);
  const taken = entries.filter(isClientSide);
  if (taken.length === 0) return undefined;
  const mine = entries.find(
    (e) => e.manager === manager && e.operation === 'Apply' && (e.subresource ?? '') === '',
  );
  const fieldsV1 = mergeFieldSets(mine?.fieldsV1, ...taken.map((e) => e.fieldsV1));
  const apiVersion = mine?.apiVersion ?? (live as { apiVersion?: string }).apiVersion ?? taken[0]?.apiVersion;
  const merged: ManagedFieldsEntry = {
    manager,
    operation: 'Apply',
    ...(apiVersion ? { apiVersion } : {}),
    time: mine?.time ?? now,
    fieldsType: 'FieldsV1',
    fieldsV1,
  };
  const out: ManagedFieldsEntry[] = [];
  for (const e of entries) {
    if (isClientSide(e)) continue;
    out.push(e === mine ? merged : e);
  }
  if (!mine) out.push(merged);
  return out;
}

/**
 * Whether applying would change the live object, judged from a server-side dry run of the
 * apply (`expected`): a field the manager owns there has another value live, or the set
 * of fields it owns would change (a field removed from git, or one it starts to share).
 * Time stamps play no part.
 */
export function applyWouldChange(expected: unknown, live: unknown, manager: string): boolean {
  const owned = appliedFields(expected, manager);
  if (!owned) return true;
  if (ownedFieldDifferences(expected, live, owned).length > 0) return true;
  const before = appliedFields(live, manager);
  return before === undefined || canonicalJson(owned) !== canonicalJson(before);
}
