/**
 * `ignoreDifferences`: fields of chosen objects that the agent neither applies nor counts
 * as drift, so that another manager (a HorizontalPodAutoscaler, a mutating webhook) owns
 * them. The hub validates the entries from bundle.yaml and carries them in the rendered
 * bundle; the agent removes the fields from what it applies. Paths are JSON pointers
 * (`/spec/replicas`) or dotted field paths with list items chosen by key
 * (`.spec.template.spec.containers[name=web].image`), both read here, by both sides.
 */

/** One entry: which objects (group, kind, optionally name and namespace) and which of their fields. */
export interface IgnoreDifference {
  /** API group, `""` for the core group. */
  readonly group: string;
  readonly kind: string;
  readonly name?: string;
  readonly namespace?: string;
  /** RFC 6901 pointers: `/spec/replicas`, `/metadata/annotations/example.com~1note`. */
  readonly jsonPointers?: readonly string[];
  /** Dotted paths: `.spec.replicas`, `.spec.template.spec.containers[name=web].image`, `.metadata.labels["a.b/c"]`. */
  readonly fieldPaths?: readonly string[];
}

export const IGNORE_DIFFERENCE_FIELDS = [
  'group',
  'kind',
  'name',
  'namespace',
  'jsonPointers',
  'fieldPaths',
] as const;

/**
 * One step of a path: a mapping key (a JSON pointer token also indexes a list when it is a
 * number and the node is a list), a list index, or the list item whose fields have the
 * given values.
 */
export type PathSegment =
  | { readonly key: string }
  | { readonly index: number }
  | { readonly match: Readonly<Record<string, string>> };

export type ParsedPath =
  | { readonly ok: true; readonly segments: readonly PathSegment[] }
  | { readonly ok: false; readonly problem: string };

function guard(segments: PathSegment[], text: string): ParsedPath {
  if (segments.length === 0) return { ok: false, problem: `"${text}" names the whole object` };
  const [first, second] = segments.map((s) => ('key' in s ? s.key : undefined));
  // Fields that name the object: without them the agent would apply something else.
  const identity =
    first === 'apiVersion' ||
    first === 'kind' ||
    (first === 'metadata' && (segments.length === 1 || second === 'name' || second === 'namespace'));
  if (identity) {
    return {
      ok: false,
      problem: `"${text}" is part of the object's identity (apiVersion, kind, metadata.name, metadata.namespace)`,
    };
  }
  return { ok: true, segments };
}

/** Reads an RFC 6901 JSON pointer (`/spec/replicas`; `~1` is `/` and `~0` is `~` in a token). */
export function parseJsonPointer(text: string): ParsedPath {
  if (!text.startsWith('/')) return { ok: false, problem: `"${text}" must start with "/"` };
  const segments: PathSegment[] = [];
  for (const raw of text.slice(1).split('/')) {
    if (/~(?![01])/.test(raw))
      return { ok: false, problem: `"${text}": "~" must be written ~0 (and "/" ~1)` };
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (key === '') return { ok: false, problem: `"${text}" has an empty token` };
    segments.push({ key });
  }
  return guard(segments, text);
}

const NAME = /[A-Za-z_$][A-Za-z0-9_$-]*/y;

/**
 * Reads a dotted field path: names joined by dots (a leading dot is optional), `[n]` for a
 * list index, `[key=value,...]` for the list item with those field values, `["any key"]`
 * for a key that is not a plain name (labels, annotations, ConfigMap keys).
 */
export function parseFieldPath(text: string): ParsedPath {
  const segments: PathSegment[] = [];
  let i = text.startsWith('.') ? 1 : 0;
  const fail = (why: string): ParsedPath => ({
    ok: false,
    problem: `"${text}": ${why} at character ${i + 1}`,
  });
  if (i >= text.length) return { ok: false, problem: `"${text}" names the whole object` };
  let expectName = true;
  while (i < text.length) {
    const c = text[i];
    if (c === '[') {
      const end = closing(text, i);
      if (end < 0) return fail('"[" without "]"');
      const inner = text.slice(i + 1, end);
      const seg = bracket(inner);
      if (typeof seg === 'string') return fail(seg);
      segments.push(seg);
      i = end + 1;
      expectName = false;
      continue;
    }
    if (c === '.') {
      if (expectName) return fail('expected a field name');
      i++;
      expectName = true;
      continue;
    }
    if (!expectName) return fail('expected ".", "[" or the end');
    NAME.lastIndex = i;
    const m = NAME.exec(text);
    if (!m) return fail('expected a field name (write ["..."] for other keys)');
    segments.push({ key: m[0] });
    i += m[0].length;
    expectName = false;
  }
  if (expectName) return fail('expected a field name');
  return guard(segments, text);
}

/** The index of the `]` closing the `[` at `start`, skipping quoted strings. */
function closing(text: string, start: number): number {
  let quoted = false;
  for (let j = start + 1; j < text.length; j++) {
    const c = text[j];
    if (quoted) {
      if (c === '\\') j++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === ']') return j;
  }
  return -1;
}

function bracket(inner: string): PathSegment | string {
  if (/^\d+$/.test(inner)) return { index: Number(inner) };
  if (inner.startsWith('"')) {
    try {
      const key = JSON.parse(inner) as unknown;
      if (typeof key === 'string' && key !== '') return { key };
    } catch {
      // reported below
    }
    return `${inner} is not a quoted key`;
  }
  const match: Record<string, string> = {};
  for (const pair of inner.split(',')) {
    const eq = pair.indexOf('=');
    const k = pair.slice(0, eq).trim();
    let v = pair.slice(eq + 1).trim();
    if (eq < 1 || k === '') return `"[${inner}]" must be [n], [key=value,...] or ["key"]`;
    if (v.startsWith('"')) {
      try {
        v = JSON.parse(v) as string;
      } catch {
        return `${v} is not a quoted value`;
      }
    }
    Object.defineProperty(match, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return { match };
}

/** Both path forms of an entry, read; the first unreadable one throws. */
export function entryPaths(entry: IgnoreDifference): PathSegment[][] {
  const out: PathSegment[][] = [];
  for (const [list, parse] of [
    [entry.jsonPointers, parseJsonPointer],
    [entry.fieldPaths, parseFieldPath],
  ] as const) {
    for (const text of list ?? []) {
      const parsed = parse(text);
      if (!parsed.ok) throw new TypeError(parsed.problem);
      out.push([...parsed.segments]);
    }
  }
  return out;
}

/** Whether an entry selects the object with this API group, kind, namespace (`""` when cluster-scoped) and name. */
export function selects(
  entry: IgnoreDifference,
  obj: { readonly group: string; readonly kind: string; readonly namespace: string; readonly name: string },
): boolean {
  return (
    entry.group === obj.group &&
    entry.kind === obj.kind &&
    (entry.name === undefined || entry.name === obj.name) &&
    (entry.namespace === undefined || entry.namespace === obj.namespace)
  );
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function matches(item: unknown, match: Readonly<Record<string, string>>): boolean {
  if (!isRecord(item)) return false;
  return Object.entries(match).every(([k, v]) => {
    const have = item[k];
    return typeof have === 'string' ? have === v : have !== undefined && String(have) === v;
  });
}

/**
 * A copy of `object` without the fields at `paths` (the input is not changed; only the
 * nodes along a removed path are copied). A path that leads nowhere removes nothing; a
 * path ending on a list item removes the item.
 */
export function withoutFields<T>(object: T, paths: readonly (readonly PathSegment[])[]): T {
  let out: unknown = object;
  for (const path of paths) out = remove(out, path, 0);
  return out as T;
}

function remove(node: unknown, path: readonly PathSegment[], at: number): unknown {
  const seg = path[at] as PathSegment;
  const last = at === path.length - 1;
  if (Array.isArray(node)) {
    let i = -1;
    if ('index' in seg) i = seg.index;
    else if ('key' in seg && /^(0|[1-9]\d*)$/.test(seg.key)) i = Number(seg.key);
    else if ('match' in seg) i = node.findIndex((item) => matches(item, seg.match));
    if (i < 0 || i >= node.length) return node;
    const copy = [...node];
    if (last) copy.splice(i, 1);
    else {
      const next = remove(node[i], path, at + 1);
      if (next === node[i]) return node;
      copy[i] = next;
    }
    return copy;
  }
  if (!isRecord(node) || !('key' in seg) || !Object.hasOwn(node, seg.key)) return node;
  const copy: Record<string, unknown> = { ...node };
  if (last) delete copy[seg.key];
  else {
    const next = remove(node[seg.key], path, at + 1);
    if (next === node[seg.key]) return node;
    copy[seg.key] = next;
  }
  return copy;
}

/**
 * Validates an untrusted `ignoreDifferences` list (from a rendered bundle) strictly: known
 * fields only, strings where strings belong, every path readable.
 *
 * @returns the problem, or undefined when the list is good.
 */
export function ignoreDifferencesProblem(value: unknown): string | undefined {
  if (!Array.isArray(value) || value.length === 0) return 'ignoreDifferences: expected a non-empty list';
  for (const [i, e] of value.entries()) {
    const p = `ignoreDifferences[${i}]`;
    if (!isRecord(e)) return `${p}: expected an object`;
    for (const k of Object.keys(e))
      if (!(IGNORE_DIFFERENCE_FIELDS as readonly string[]).includes(k)) return `${p}.${k}: unknown field`;
    if (typeof e.group !== 'string') return `${p}.group: expected a string`;
    if (typeof e.kind !== 'string' || e.kind === '') return `${p}.kind: expected a non-empty string`;
    for (const k of ['name', 'namespace'] as const)
      if (e[k] !== undefined && typeof e[k] !== 'string') return `${p}.${k}: expected a string`;
    let paths = 0;
    for (const [k, parse] of [
      ['jsonPointers', parseJsonPointer],
      ['fieldPaths', parseFieldPath],
    ] as const) {
      const list = e[k];
      if (list === undefined) continue;
      if (!Array.isArray(list)) return `${p}.${k}: expected a list of strings`;
      for (const [j, text] of list.entries()) {
        if (typeof text !== 'string') return `${p}.${k}[${j}]: expected a string`;
        const parsed = parse(text);
        if (!parsed.ok) return `${p}.${k}[${j}]: ${parsed.problem}`;
        paths++;
      }
    }
    if (paths === 0) return `${p}: no jsonPointers or fieldPaths`;
  }
  return undefined;
}
