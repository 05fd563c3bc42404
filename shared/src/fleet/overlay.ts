/**
 * The overlay step: a customization's `overlay` directory of patches applied to the
 * bundle's objects. Each patch names its target by apiVersion, kind, name (and namespace
 * when ambiguous) and says how with `$patch`: `merge` (strategic merge, the default),
 * `json-merge`, `replace` or `delete`.
 */
import { type FleetError, fleetError, type SourcePos } from '../errors.ts';
import { jsonMergePatch, PATCH_MODES, PatchError, strategicMerge } from '../patch.ts';
import { describeNode, getEntry, type YMap } from '../yaml-source.ts';
import type { ManifestDoc } from './model.ts';
import { describeObject, type ObjectHeader, readObjectHeader } from './objects.ts';

/**
 * Applies an overlay's patches, in order, to the bundle's objects (`namespace` is the
 * bundle's default, for matching objects that do not set one). Returns the patched
 * objects, or undefined when a patch failed; the failures are recorded in `errors`.
 */
export function applyOverlay(
  base: readonly ManifestDoc[],
  patches: readonly ManifestDoc[],
  namespace: string,
  bundle: string,
  errors: FleetError[],
): ManifestDoc[] | undefined {
  const docs = [...base];
  const before = errors.length;
  const err = (pos: SourcePos, message: string) => errors.push(fleetError(pos, message, bundle));
  for (const patch of patches) {
    const read = readPatch(patch, bundle, errors);
    if (!read) continue;
    const { mode, body, what } = read;
    const at = findPatchTarget(docs, read, namespace, bundle, errors);
    if (at === undefined) continue;
    const target = docs[at] as ManifestDoc;
    try {
      if (mode === 'delete') {
        docs.splice(at, 1);
        continue;
      }
      const merged =
        mode === 'replace'
          ? body
          : mode === 'json-merge'
            ? jsonMergePatch(target.node, body)
            : strategicMerge(target.node, body);
      if (merged === undefined || merged.kind !== 'map') {
        err(patch.pos, `patch removes ${what} entirely; use "$patch: delete" for that`);
        continue;
      }
      docs[at] = { file: target.file, pos: target.pos, node: merged };
    } catch (e) {
      if (e instanceof PatchError) err(e.pos, e.message);
      else throw e;
    }
  }
  return errors.length === before ? docs : undefined;
}

/** A patch document as read: its top-level `$patch` mode, the rest of it, and the target it names. */
export interface ReadPatch {
  readonly patch: ManifestDoc;
  readonly mode: string;
  readonly body: YMap;
  readonly header: ObjectHeader;
  /** The target for messages: `Deployment.apps "web/frontend"`. */
  readonly what: string;
}

/** Reads a patch's `$patch` mode and target header, recording what is wrong in `errors`. */
export function readPatch(patch: ManifestDoc, bundle: string, errors: FleetError[]): ReadPatch | undefined {
  const modeEntry = getEntry(patch.node, '$patch');
  let mode = 'merge';
  if (modeEntry) {
    const v = modeEntry.value;
    if (v.kind !== 'scalar' || typeof v.value !== 'string' || !PATCH_MODES.includes(v.value)) {
      const got = v.kind === 'scalar' ? `"${String(v.value)}"` : describeNode(v);
      errors.push(
        fleetError(v.pos, `$patch: unknown value ${got} (expected ${PATCH_MODES.join(', ')})`, bundle),
      );
      return undefined;
    }
    mode = v.value;
  }
  const body: YMap = { ...patch.node, entries: patch.node.entries.filter((e) => e.key !== '$patch') };
  const headerErrors: FleetError[] = [];
  const header = readObjectHeader(body, headerErrors, bundle);
  if (!header) {
    errors.push(...headerErrors.map((e) => ({ ...e, message: `patch ${e.message}` })));
    return undefined;
  }
  const what = describeObject(header.group, header.kind, header.namespace, header.name);
  return { patch, mode, body, header, what };
}

/**
 * The index of the one object a patch targets: same API group, kind and name, and the
 * patch's namespace when it sets one (`namespace` is the default of objects without one).
 * Records "not found" or "ambiguous" in `errors` otherwise.
 */
export function findPatchTarget(
  docs: readonly ManifestDoc[],
  read: ReadPatch,
  namespace: string,
  bundle: string,
  errors: FleetError[],
): number | undefined {
  const { header, what, patch } = read;
  const matches: number[] = [];
  docs.forEach((doc, i) => {
    const h = readObjectHeader(doc.node, [], bundle);
    if (!h || h.group !== header.group || h.kind !== header.kind || h.name !== header.name) return;
    if (header.namespace !== undefined && (h.namespace ?? namespace) !== header.namespace) return;
    matches.push(i);
  });
  if (matches.length === 0) {
    errors.push(fleetError(patch.pos, `patch target ${what} not found in bundle "${bundle}"`, bundle));
    return undefined;
  }
  if (matches.length > 1) {
    errors.push(
      fleetError(
        patch.pos,
        `patch target ${what} is ambiguous (several namespaces); set metadata.namespace in the patch`,
        bundle,
      ),
    );
    return undefined;
  }
  return matches[0];
}
