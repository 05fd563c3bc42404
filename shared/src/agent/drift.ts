/**
 * Drift: whether the fields the agent owns on a live object still hold what it applied.
 * The comparison follows the server's own record of ownership, the `fieldsV1` set of the
 * agent's field manager in `metadata.managedFields`.
 */
import { canonicalJson } from '../canonical.ts';

/** A managed-fields set as the API server writes it (`f:`, `k:`, `v:`, `i:` keys, `.` for the node itself). */
export type FieldsV1 = { readonly [key: string]: FieldsV1 };

interface ManagedFieldsEntry {
  readonly manager?: string;
  readonly operation?: string;
  readonly fieldsType?: string;
  readonly fieldsV1?: FieldsV1;
  readonly subresource?: string;
}

/** The fields a manager owns through Apply on an object, from its `metadata.managedFields`. */
export function appliedFields(object: unknown, manager: string): FieldsV1 | undefined {
  const entries = (object as { metadata?: { managedFields?: readonly ManagedFieldsEntry[] } } | undefined)
    ?.metadata?.managedFields;
  const mine = entries?.find(
    (e) => e.manager === manager && e.operation === 'Apply' && (e.subresource ?? '') === '',
  );
  return mine?.fieldsV1;
}

const plainKey = /^[A-Za-z_][A-Za-z0-9_-]*$/;

function fieldPath(parent: string, key: string): string {
  if (plainKey.test(key)) return parent === '' ? key : `${parent}.${key}`;
  return `${parent}[${JSON.stringify(key)}]`;
}

function itemPath(parent: string, keys: Record<string, unknown>): string {
  const inner = Object.entries(keys)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(',');
  return `${parent}[${inner}]`;
}

function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  return canonicalJson(a) === canonicalJson(b);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function findItem(list: unknown, keys: Record<string, unknown>): unknown {
  if (!Array.isArray(list)) return undefined;
  return list.find((item) => isRecord(item) && Object.entries(keys).every(([k, v]) => same(item[k], v)));
}

/**
 * Dotted paths (`spec.replicas`, `spec.template.spec.containers[name=web].image`,
 * `metadata.labels["app.kubernetes.io/name"]`) of the fields in `owned` whose values differ
 * between `expected` (what the agent's apply yields, from a server-side dry run) and `live`.
 * A field present on one side only differs; a node that is missing on one side is reported
 * once, not field by field.
 */
export function ownedFieldDifferences(expected: unknown, live: unknown, owned: FieldsV1): string[] {
  const out: string[] = [];
  walk(owned, expected, live, '', out);
  return out;
}

function walk(node: FieldsV1, a: unknown, b: unknown, path: string, out: string[]): void {
  const children = Object.keys(node).filter((k) => k !== '.');
  if (children.length === 0) {
    if (!same(a, b)) out.push(path || '.');
    return;
  }
  if ((a === undefined) !== (b === undefined)) {
    out.push(path || '.');
    return;
  }
  for (const key of children) {
    const child = node[key] as FieldsV1;
    const kind = key.slice(0, 2);
    const rest = key.slice(2);
    if (kind === 'f:') {
      const av = isRecord(a) ? a[rest] : undefined;
      const bv = isRecord(b) ? b[rest] : undefined;
      walk(child, av, bv, fieldPath(path, rest), out);
    } else if (kind === 'k:') {
      let keys: Record<string, unknown>;
      try {
        keys = JSON.parse(rest) as Record<string, unknown>;
      } catch {
        continue;
      }
      walk(child, findItem(a, keys), findItem(b, keys), itemPath(path, keys), out);
    } else if (kind === 'v:') {
      let value: unknown;
      try {
        value = JSON.parse(rest);
      } catch {
        continue;
      }
      const inA = Array.isArray(a) && a.some((x) => same(x, value));
      const inB = Array.isArray(b) && b.some((x) => same(x, value));
      if (inA !== inB) out.push(`${path}[${typeof value === 'string' ? value : JSON.stringify(value)}]`);
    } else if (kind === 'i:') {
      const i = Number(rest);
      walk(
        child,
        Array.isArray(a) ? a[i] : undefined,
        Array.isArray(b) ? b[i] : undefined,
        `${path}[${i}]`,
        out,
      );
    }
  }
}

/**
 * Whether every field written in `desired` has the same value in `live` (lists match item
 * by item, extra items and fields in `live` are fine). A cheap first look: when it holds,
 * applying `desired` would change nothing, so no dry run is needed; when it does not, the
 * difference may still be one of form only (`0.5` against `500m`), which a dry run settles.
 * Only `metadata.labels` and `metadata.annotations` of the metadata are compared, and `status` not at all.
 */
export function coveredBy(desired: unknown, live: unknown): boolean {
  if (!isRecord(desired) || !isRecord(live)) return false;
  for (const [key, value] of Object.entries(desired)) {
    if (key === 'apiVersion' || key === 'kind' || key === 'status') continue;
    if (key === 'metadata') {
      const dm = isRecord(value) ? value : {};
      const lm = isRecord(live.metadata) ? live.metadata : {};
      if (!subset(dm.labels ?? {}, lm.labels ?? {}) || !subset(dm.annotations ?? {}, lm.annotations ?? {})) {
        return false;
      }
      continue;
    }
    if (!subset(value, live[key])) return false;
  }
  return true;
}

function subset(d: unknown, l: unknown): boolean {
  if (d === null || typeof d !== 'object') return d === l;
  if (Array.isArray(d)) {
    if (!Array.isArray(l)) return false;
    if (d.length === l.length) return d.every((item, i) => subset(item, l[i]));
    if (d.length > l.length) return false;
    return d.every((item) => l.some((candidate) => subset(item, candidate)));
  }
  if (!isRecord(l)) return false;
  for (const [k, v] of Object.entries(d)) if (!subset(v, l[k])) return false;
  return true;
}

/**
 * Whether Kubernetes itself removes this object once it has done its work, so that its
 * absence after a successful apply is the expected end of its life, not drift: a Job
 * with `spec.ttlSecondsAfterFinished` (the TTL-after-finished controller deletes it), and
 * a Pod that does not restart (the pod garbage collector may delete it once finished).
 * Applying it again would run it again: kubectl runs such a Job once, and so does the agent
 * until its content changes in git.
 *
 * @example
 * removedWhenDone({ apiVersion: 'batch/v1', kind: 'Job', spec: { ttlSecondsAfterFinished: 0 } }); // true
 */
export function removedWhenDone(object: unknown): boolean {
  if (!isRecord(object) || !isRecord(object.spec)) return false;
  const group = typeof object.apiVersion === 'string' ? object.apiVersion : '';
  if (object.kind === 'Job' && group.startsWith('batch/'))
    return typeof object.spec.ttlSecondsAfterFinished === 'number';
  if (object.kind === 'Pod' && group === 'v1')
    return object.spec.restartPolicy === 'Never' || object.spec.restartPolicy === 'OnFailure';
  return false;
}
