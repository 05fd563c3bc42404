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
import { describeObject, readObjectHeader } from './objects.ts';

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
    const modeEntry = getEntry(patch.node, '$patch');
    let mode = 'merge';
    if (modeEntry) {
      const v = modeEntry.value;
      if (v.kind !== 'scalar' || typeof v.value !== 'string' || !PATCH_MODES.includes(v.value)) {
        const got = v.kind === 'scalar' ? `"${String(v.value)}"` : describeNode(v);
        err(v.pos, `$patch: unknown value ${got} (expected ${PATCH_MODES.join(', ')})`);
        continue;
      }
      mode = v.value;
    }
    const body: YMap = { ...patch.node, entries: patch.node.entries.filter((e) => e.key !== '$patch') };
    const headerErrors: FleetError[] = [];
    const header = readObjectHeader(body, headerErrors, bundle);
    if (!header) {
      errors.push(...headerErrors.map((e) => ({ ...e, message: `patch ${e.message}` })));
      continue;
    }
    const matches: number[] = [];
    docs.forEach((doc, i) => {
      const h = readObjectHeader(doc.node, [], bundle);
      if (!h || h.group !== header.group || h.kind !== header.kind || h.name !== header.name) return;
      if (header.namespace !== undefined && (h.namespace ?? namespace) !== header.namespace) return;
      matches.push(i);
    });
    const what = describeObject(header.group, header.kind, header.namespace, header.name);
    if (matches.length === 0) {
      err(patch.pos, `patch target ${what} not found in bundle "${bundle}"`);
      continue;
    }
    if (matches.length > 1) {
      err(
        patch.pos,
        `patch target ${what} is ambiguous (several namespaces); set metadata.namespace in the patch`,
      );
      continue;
    }
    const at = matches[0] as number;
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
