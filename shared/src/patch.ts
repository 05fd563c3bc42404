import type { SourcePos } from './errors.ts';
import { getEntry, type YEntry, type YMap, type YNode, type YScalar, type YSeq } from './yaml-source.ts';

/** The `$patch` directive at the top of an overlay document. */
export const PatchMode = {
  merge: 'merge',
  jsonMerge: 'json-merge',
  replace: 'replace',
  delete: 'delete',
} as const;
export type PatchMode = (typeof PatchMode)[keyof typeof PatchMode];
export const PATCH_MODES: readonly string[] = Object.values(PatchMode);

/** A problem found while applying a patch; the caller turns it into a positioned error. */
export class PatchError extends Error {
  readonly pos: SourcePos;
  constructor(pos: SourcePos, message: string) {
    super(message);
    this.name = 'PatchError';
    this.pos = pos;
  }
}

const DIRECTIVE = '$patch';

function isNull(node: YNode): boolean {
  return node.kind === 'scalar' && node.value === null && !node.quoted;
}

function directiveOf(map: YMap): { value: string; pos: SourcePos } | undefined {
  const entry = getEntry(map, DIRECTIVE);
  if (!entry) return undefined;
  const v = entry.value;
  if (v.kind !== 'scalar' || typeof v.value !== 'string') {
    throw new PatchError(v.pos, '$patch: expected a string');
  }
  return { value: v.value, pos: v.pos };
}

function withoutDirective(map: YMap): YMap {
  return { kind: 'map', pos: map.pos, entries: map.entries.filter((e) => e.key !== DIRECTIVE) };
}

function emptyMap(pos: SourcePos): YMap {
  return { kind: 'map', pos, entries: [] };
}

/**
 * Strategic-merge-like patch, as `kubectl patch --type strategic` does for the common
 * cases: mappings merge recursively, `null` deletes a key, lists whose items are all
 * mappings with a `name` merge item by item on `name` (containers, env, ports, volumes,
 * ...), other lists are replaced. Directives: `$patch: replace` on a mapping replaces it,
 * `$patch: delete` on a mapping (or a named list item) deletes it, and a list item
 * `{$patch: replace}` makes the list replace the base list.
 * Returns undefined when the node is deleted.
 */
export function strategicMerge(base: YNode | undefined, patch: YNode): YNode | undefined {
  if (patch.kind === 'map') {
    const directive = directiveOf(patch);
    if (directive) {
      if (directive.value === 'delete') return undefined;
      if (directive.value === 'replace') return strategicMerge(undefined, withoutDirective(patch));
      if (directive.value !== 'merge') {
        throw new PatchError(
          directive.pos,
          `$patch: unknown directive "${directive.value}" (expected merge, replace, delete)`,
        );
      }
    }
    const target = base?.kind === 'map' ? base : emptyMap(patch.pos);
    const entries: YEntry[] = [...target.entries];
    for (const pe of patch.entries) {
      if (pe.key === DIRECTIVE) continue;
      const at = entries.findIndex((e) => e.key === pe.key);
      if (isNull(pe.value)) {
        if (at >= 0) entries.splice(at, 1);
        continue;
      }
      const merged = strategicMerge(at >= 0 ? entries[at]?.value : undefined, pe.value);
      if (merged === undefined) {
        if (at >= 0) entries.splice(at, 1);
      } else if (at >= 0)
        entries[at] = { key: pe.key, keyPos: entries[at]?.keyPos ?? pe.keyPos, value: merged };
      else entries.push({ key: pe.key, keyPos: pe.keyPos, value: merged });
    }
    return { kind: 'map', pos: base?.kind === 'map' ? base.pos : patch.pos, entries };
  }
  if (patch.kind === 'seq') return mergeList(base, patch);
  return patch;
}

function nameOf(node: YNode): string | undefined {
  if (node.kind !== 'map') return undefined;
  const e = getEntry(node, 'name');
  return e && e.value.kind === 'scalar' && typeof e.value.value === 'string' ? e.value.value : undefined;
}

function isReplaceMarker(node: YNode): boolean {
  if (node.kind !== 'map' || node.entries.length !== 1) return false;
  const d = directiveOf(node);
  return d?.value === 'replace';
}

function mergeList(base: YNode | undefined, patch: YSeq): YNode {
  const replace = patch.items.some(isReplaceMarker);
  const items = patch.items.filter((i) => !isReplaceMarker(i));
  const fresh = (): YSeq => ({
    kind: 'seq',
    pos: patch.pos,
    items: items.flatMap((item) => {
      const merged = strategicMerge(undefined, item);
      return merged === undefined ? [] : [merged];
    }),
  });
  if (replace || base?.kind !== 'seq') return fresh();
  const byName =
    base.items.every((i) => nameOf(i) !== undefined) && items.every((i) => nameOf(i) !== undefined);
  if (!byName || items.length === 0) return fresh();
  const out: YNode[] = [...base.items];
  for (const item of items) {
    const name = nameOf(item);
    const at = out.findIndex((b) => nameOf(b) === name);
    const merged = strategicMerge(at >= 0 ? out[at] : undefined, item);
    if (merged === undefined) {
      if (at >= 0) out.splice(at, 1);
    } else if (at >= 0) out[at] = merged;
    else out.push(merged);
  }
  return { kind: 'seq', pos: base.pos, items: out };
}

/**
 * JSON merge patch (RFC 7386): mappings merge recursively, `null` deletes a key, and
 * everything else, lists included, replaces what was there.
 */
export function jsonMergePatch(base: YNode | undefined, patch: YNode): YNode {
  if (patch.kind !== 'map') return patch;
  const target = base?.kind === 'map' ? base : emptyMap(patch.pos);
  const entries: YEntry[] = [...target.entries];
  for (const pe of patch.entries) {
    if (pe.key === DIRECTIVE) {
      throw new PatchError(
        pe.keyPos,
        '$patch directives only work in merge patches, not in json-merge patches',
      );
    }
    const at = entries.findIndex((e) => e.key === pe.key);
    if (isNull(pe.value)) {
      if (at >= 0) entries.splice(at, 1);
      continue;
    }
    const merged = jsonMergePatch(at >= 0 ? entries[at]?.value : undefined, pe.value);
    if (at >= 0) entries[at] = { key: pe.key, keyPos: entries[at]?.keyPos ?? pe.keyPos, value: merged };
    else entries.push({ key: pe.key, keyPos: pe.keyPos, value: merged });
  }
  return { kind: 'map', pos: base?.kind === 'map' ? base.pos : patch.pos, entries };
}

/** A synthetic string scalar, for values the core adds (such as a defaulted namespace). */
export function scalar(pos: SourcePos, value: string): YScalar {
  return { kind: 'scalar', pos, value, quoted: true };
}
