/**
 * The overlay step with kustomize's own strategic merge: a customization's patches applied
 * to the bundle's objects by the render engine (`renderer/`, kustomize's
 * `Resource.ApplySmPatch`), so merge keys come from the Kubernetes schema
 * (`volumeMounts` by `mountPath`, `ports` by `containerPort`, ...), custom resources have
 * their lists replaced, and `$patch` / `$setElementOrder` directives act as in
 * `kustomize build`. Which object a patch targets, and every message about that, stays
 * Flotilla's (`readPatch`, `findPatchTarget`); `$patch: json-merge`, which kustomize does
 * not have, is applied here as RFC 7386 says.
 */
import { Document, Pair, Scalar, YAMLMap, YAMLSeq } from 'yaml';
import { type FleetError, fleetError, type SourcePos } from '../errors.ts';
import { jsonMergePatch } from '../patch.ts';
import { parseYamlFile, type YEntry, type YMap, type YNode } from '../yaml-source.ts';
import type { EnginePatchFile, RenderEngine } from './engine.ts';
import type { ManifestDoc } from './model.ts';
import { findPatchTarget, type ReadPatch, readPatch } from './overlay.ts';

/**
 * Applies an overlay's patches, in order, to the bundle's objects (`namespace` is the
 * bundle's default, for matching objects that do not set one) with the render engine.
 * Returns the patched objects, each with the file and position of the object it came from
 * and, inside, the positions of the base or patch lines that gave each value; or undefined
 * when a patch failed, the failures recorded in `errors` with file and line.
 *
 * 1. Read every patch's `$patch` mode and target, and find the target (deletes count).
 * 2. Send each run of strategic-merge patches (`merge`, `replace`, `delete`) to the
 *    engine in one request; apply `json-merge` patches between runs here.
 * 3. Map the engine's objects back to their sources' files and lines.
 */
export async function applyOverlayWithEngine(
  base: readonly ManifestDoc[],
  patches: readonly ManifestDoc[],
  namespace: string,
  bundle: string,
  engine: RenderEngine,
  errors: FleetError[],
): Promise<ManifestDoc[] | undefined> {
  const reads = checkOverlay(base, patches, namespace, bundle, errors);
  if (!reads) return undefined;

  // SOPS files pass by untouched (checkOverlay refused any patch of one).
  const sealed = base.filter((d) => d.sealed);
  let docs: ManifestDoc[] = base.filter((d) => !d.sealed);
  // Per object, the patch bodies merged into it so far: where its values may have come from.
  let origins: YNode[][] = docs.map(() => []);
  let run: ReadPatch[] = [];
  const flush = async (): Promise<boolean> => {
    if (run.length === 0) return true;
    const result = await applyRun(docs, origins, run, namespace, bundle, engine, errors);
    run = [];
    if (!result) return false;
    docs = result.docs;
    origins = result.origins;
    return true;
  };
  for (const read of reads) {
    if (read.mode !== 'json-merge' && read.mode !== 'replace') {
      run.push(read);
      continue;
    }
    if (!(await flush())) return undefined;
    const at = findPatchTarget(docs, read, namespace, bundle, errors) as number;
    const target = docs[at] as ManifestDoc;
    // A whole-object replace is no merge at all (kustomize leaves a top-level `$patch: replace` alone).
    docs[at] = {
      ...target,
      node: read.mode === 'replace' ? read.body : (jsonMergePatch(target.node, read.body) as YMap),
    };
    if (read.mode === 'replace') origins[at] = [read.body];
  }
  if (!(await flush())) return undefined;
  return [...docs, ...sealed];
}

/**
 * Step 1 alone, without the engine: every patch's mode and target read and found (a
 * target deleted by an earlier patch is gone for the later ones). Undefined when any
 * patch is wrong, the problems recorded in `errors` with file and line. Pure, so the load
 * step reports bad patches without the engine.
 */
export function checkOverlay(
  base: readonly ManifestDoc[],
  patches: readonly ManifestDoc[],
  namespace: string,
  bundle: string,
  errors: FleetError[],
): ReadPatch[] | undefined {
  const before = errors.length;
  const reads: ReadPatch[] = [];
  const shadow = [...base];
  for (const patch of patches) {
    const read = readPatch(patch, bundle, errors);
    if (!read) continue;
    const at = findPatchTarget(shadow, read, namespace, bundle, errors);
    if (at === undefined) continue;
    const target = shadow[at] as ManifestDoc;
    if (target.sealed) {
      errors.push(
        fleetError(
          patch.pos,
          `this patch targets an object of ${target.sealed.file}, which is SOPS-encrypted: overlays cannot change an encrypted file (its MAC covers it as committed); keep secrets that differ per target in bundles of their own`,
          bundle,
        ),
      );
      continue;
    }
    if (read.mode === 'delete') shadow.splice(at, 1);
    reads.push(read);
  }
  return errors.length === before ? reads : undefined;
}

/** One engine request for a run of strategic-merge patches. */
async function applyRun(
  docs: readonly ManifestDoc[],
  origins: readonly YNode[][],
  run: readonly ReadPatch[],
  namespace: string,
  bundle: string,
  engine: RenderEngine,
  errors: FleetError[],
): Promise<{ docs: ManifestDoc[]; origins: YNode[][] } | undefined> {
  // Patches go as they were read, file by file; where each document starts lets an
  // engine error (file and line in what was sent) point back at the patch's own line.
  const files: EnginePatchFile[] = [];
  const starts: { file: string; line: number; patch: ManifestDoc }[] = [];
  let current: { file: string; texts: string[]; line: number } | undefined;
  const close = () => {
    if (current) files.push({ file: current.file, content: current.texts.join('---\n') });
  };
  for (const read of run) {
    if (current?.file !== read.patch.file) {
      close();
      current = { file: read.patch.file, texts: [], line: 1 };
    }
    const text = toYamlText(read.patch.node);
    starts.push({ file: current.file, line: current.line, patch: read.patch });
    current.texts.push(text);
    current.line += lineCount(text) + 1;
  }
  close();
  const texts = docs.map((d) => toYamlText(d.node));
  const result = await engine.render({
    kind: 'patch',
    resources: texts.join('---\n'),
    patches: files,
    namespace,
  });
  if (!result.ok) {
    const { file, line, message } = result.error;
    let pos: SourcePos | undefined;
    if (file === undefined && line !== undefined) {
      // A line without a file is one of the resources: the object that starts there or before.
      let start = 1;
      texts.forEach((text, i) => {
        if (start <= line) pos = docs[i]?.pos;
        start += lineCount(text) + 1;
      });
    } else {
      const inFile = starts.filter((s) => s.file === file);
      pos = (inFile.filter((s) => line !== undefined && s.line <= line).pop() ?? inFile[0] ?? starts[0])
        ?.patch.pos;
    }
    errors.push(fleetError((pos ?? starts[0]?.patch.pos) as SourcePos, message, bundle));
    return undefined;
  }
  const parsed = parseYamlFile('(render engine output)', result.manifests);
  const nodes = parsed.documents.flatMap((d) => (d.node === null ? [] : [d.node]));
  const sources = result.sources ?? [];
  if (parsed.errors.length > 0 || nodes.length !== sources.length) {
    throw new Error(
      `render engine answered a patch request with ${nodes.length} objects for ${sources.length} sources${parsed.errors.length > 0 ? ` and unreadable YAML: ${parsed.errors[0]?.message}` : ''}`,
    );
  }
  // Which patches went into which object: the ones whose target this run found there.
  const added: YNode[][] = docs.map(() => []);
  const shadow = docs.map((d, i) => ({ d, i }));
  for (const read of run) {
    const at = findPatchTarget(
      shadow.map((s) => s.d),
      read,
      namespace,
      bundle,
      [],
    ) as number;
    const entry = shadow[at] as { d: ManifestDoc; i: number };
    added[entry.i]?.push(read.body);
    if (read.mode === 'delete') shadow.splice(at, 1);
  }
  const outDocs: ManifestDoc[] = [];
  const outOrigins: YNode[][] = [];
  nodes.forEach((node, k) => {
    const src = sources[k] as number;
    const from = docs[src] as ManifestDoc;
    const candidates = [from.node, ...(origins[src] ?? []), ...(added[src] ?? [])];
    const relocated = relocate(node, candidates, from.pos);
    if (relocated.kind !== 'map') throw new Error('render engine answered a patch request with a non-object');
    outDocs.push({ file: from.file, pos: from.pos, node: relocated });
    outOrigins.push([...(origins[src] ?? []), ...(added[src] ?? [])]);
  });
  return { docs: outDocs, origins: outOrigins };
}

/**
 * Gives an engine output node the positions of the sources it came from: a mapping the
 * base object's position, an entry the key of the last source that wrote it, a scalar the
 * last source holding that value at that place; list items are matched to source items by
 * the scalar fields they share (their merge keys among them). Where nothing matches, the
 * enclosing node's position stands in.
 */
function relocate(node: YNode, candidates: readonly YNode[], fallback: SourcePos): YNode {
  if (node.kind === 'scalar') {
    const same = candidates.filter(
      (c) => c.kind === 'scalar' && c.value === node.value && typeof c.value === typeof node.value,
    );
    return { ...node, pos: same.at(-1)?.pos ?? fallback };
  }
  if (node.kind === 'map') {
    const maps = candidates.filter((c): c is YMap => c.kind === 'map');
    const pos = maps[0]?.pos ?? fallback;
    const entries: YEntry[] = node.entries.map((e) => {
      const from = maps.flatMap((m) => m.entries.filter((x) => x.key === e.key));
      const keyPos = from.at(-1)?.keyPos ?? pos;
      return {
        key: e.key,
        keyPos,
        value: relocate(
          e.value,
          from.map((x) => x.value),
          keyPos,
        ),
      };
    });
    return { kind: 'map', pos, entries };
  }
  const seqs = candidates.filter((c) => c.kind === 'seq');
  const pos = seqs[0]?.pos ?? fallback;
  const pool = seqs.flatMap((s) => s.items);
  const items = node.items.map((item) => {
    const like = pool.filter((c) => sameItem(item, c));
    const itemPos = like[0]?.pos ?? pos;
    return relocate(item, like, itemPos);
  });
  return { kind: 'seq', pos, items };
}

/**
 * Fields that say which item of a list an item is, most specific first: the merge keys of
 * the Kubernetes lists that have one (two mounts of one volume differ by `mountPath`).
 * Only used to find where a value was written, so a guess that misses costs precision, not
 * correctness.
 */
const ITEM_KEYS = ['mountPath', 'devicePath', 'containerPort', 'port', 'ip', 'topologyKey', 'name', 'key'];

/** Whether a source list item is the same item as an output one. */
function sameItem(out: YNode, src: YNode): boolean {
  if (out.kind === 'scalar') return src.kind === 'scalar' && src.value === out.value;
  if (out.kind !== 'map' || src.kind !== 'map') return false;
  const scalars = (m: YMap) =>
    new Map(m.entries.flatMap((e) => (e.value.kind === 'scalar' ? [[e.key, e.value.value] as const] : [])));
  const a = scalars(out);
  const b = scalars(src);
  for (const key of ITEM_KEYS) {
    if (!a.has(key) || !b.has(key)) continue;
    if (a.get(key) !== b.get(key)) return false;
    // Ports are told apart by protocol too (53/UDP and 53/TCP), TCP when unset.
    const protocol = (m: Map<string, unknown>) => m.get('protocol') ?? 'TCP';
    return (key !== 'containerPort' && key !== 'port') || protocol(a) === protocol(b);
  }
  // No identifying field: the same item if every scalar the source sets is in the output.
  if (b.size === 0) return a.size === 0;
  for (const [k, v] of b) if (a.get(k) !== v) return false;
  return true;
}

/**
 * YAML text of a node that any YAML reader gives back as the same data, plain scalars
 * written plain (a plain `${values.replicas}` must stay plain: the render step reads it
 * as typed) and quoted ones quoted.
 */
function toYamlText(node: YNode): string {
  const doc = new Document();
  doc.contents = toLibNode(node) as never;
  return doc.toString({ lineWidth: 0 });
}

function toLibNode(node: YNode): Scalar | YAMLMap | YAMLSeq {
  if (node.kind === 'scalar') {
    const s = new Scalar(node.value);
    if (typeof node.value === 'string') s.type = node.quoted ? 'QUOTE_DOUBLE' : 'PLAIN';
    return s;
  }
  if (node.kind === 'seq') {
    const seq = new YAMLSeq();
    for (const item of node.items) seq.items.push(toLibNode(item));
    return seq;
  }
  const map = new YAMLMap();
  for (const e of node.entries) map.items.push(new Pair(new Scalar(e.key), toLibNode(e.value)));
  return map;
}

function lineCount(text: string): number {
  let n = 0;
  for (const ch of text) if (ch === '\n') n++;
  return n;
}
