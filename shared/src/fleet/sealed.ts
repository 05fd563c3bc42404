/**
 * SOPS-encrypted files in a bundle ("sealed" files). The hub never decrypts them: a sealed
 * file travels in the rendered bundle exactly as committed, because its MAC covers the file's
 * values as written (the plain ones too, unless the file says `mac_only_encrypted`). So no
 * variable is filled and no overlay merged into it, and the hub does not default its
 * namespace in the file: it records each document's identity (apiVersion, kind, name, and
 * namespace, defaulted) beside the file, and the agent applies the namespace and its labels
 * after decrypting. The identity must be in clear: the hub places, checks and prunes objects
 * by it.
 */
import { canonicalJson } from '../canonical.ts';
import { type FleetError, fleetError, type SourcePos } from '../errors.ts';
import { apiGroup } from '../kinds.ts';
import type { SealedFile, SealedObject } from '../protocol/desired-state.ts';
import { hasTemplateSyntax } from '../variables.ts';
import { getEntry, type YMap, type YNode } from '../yaml-source.ts';
import type { ManifestDoc, RenderedObjectRef } from './model.ts';
import { describeObject, readObjectHeader } from './objects.ts';

/** Whether a document is SOPS-encrypted: it has a top-level `sops` mapping. */
export function isSopsDocument(node: YNode | null): boolean {
  if (node?.kind !== 'map') return false;
  return getEntry(node, 'sops')?.value.kind === 'map';
}

/** SOPS's form of an encrypted value: `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`. */
const ENCRYPTED = /^ENC\[/;

/** The format of a sealed file, by its extension (SOPS picks the store the same way). */
export function sealedFormat(path: string): SealedFile['format'] {
  return /\.json$/i.test(path) ? 'json' : 'yaml';
}

/**
 * Checks a sealed file's documents: each is SOPS-encrypted, with its identity in clear and
 * no `${...}` (nothing may change the file). Records problems with file and line.
 */
export function checkSealedDocs(docs: readonly ManifestDoc[], bundle: string, errors: FleetError[]): boolean {
  const before = errors.length;
  const err = (pos: SourcePos, message: string) => errors.push(fleetError(pos, message, bundle));
  for (const doc of docs) {
    if (!isSopsDocument(doc.node)) {
      err(
        doc.pos,
        `${doc.file} mixes SOPS-encrypted and plain documents; encrypt every document of the file, or move the plain ones to another file`,
      );
      continue;
    }
    const identity: [YNode | undefined, string][] = [
      [getEntry(doc.node, 'apiVersion')?.value, 'apiVersion'],
      [getEntry(doc.node, 'kind')?.value, 'kind'],
    ];
    const meta = getEntry(doc.node, 'metadata')?.value;
    if (meta?.kind === 'map') {
      identity.push([getEntry(meta, 'name')?.value, 'metadata.name']);
      identity.push([getEntry(meta, 'namespace')?.value, 'metadata.namespace']);
    } else if (meta?.kind === 'scalar' && typeof meta.value === 'string' && ENCRYPTED.test(meta.value)) {
      identity.push([meta, 'metadata']);
    }
    for (const [node, path] of identity) {
      if (node?.kind === 'scalar' && typeof node.value === 'string' && ENCRYPTED.test(node.value)) {
        err(
          node.pos,
          `${path} is encrypted: the hub places and prunes objects by apiVersion, kind and metadata, so keep them in clear (encrypt only the values: sops --encrypted-regex '^(data|stringData)$')`,
        );
      }
    }
    const variable = findTemplate(doc.node);
    if (variable) {
      err(
        variable.pos,
        `${variable.value}: variables are not filled in a SOPS-encrypted file (its MAC covers the file as committed); write the value in the file`,
      );
    }
  }
  return errors.length === before;
}

function findTemplate(node: YNode): { pos: SourcePos; value: string } | undefined {
  if (node.kind === 'scalar') {
    return typeof node.value === 'string' && hasTemplateSyntax(node.value)
      ? { pos: node.pos, value: node.value }
      : undefined;
  }
  if (node.kind === 'seq') {
    for (const item of node.items) {
      const found = findTemplate(item);
      if (found) return found;
    }
    return undefined;
  }
  for (const e of node.entries) {
    if (e.key === 'sops') continue;
    const found = findTemplate(e.value);
    if (found) return found;
  }
  return undefined;
}

/** A variant's sealed files: their identities (for duplicates, conflicts and pruning) and their canonical JSON. */
export interface CompiledSealed {
  readonly refs: RenderedObjectRef[];
  /** `,"sealed":[...]` ready to splice into the canonical JSON, or empty when the variant has none. */
  readonly json: string;
}

/**
 * Compiles the sealed documents of a variant: one entry per file, in file order, with
 * each document's identity (namespace defaulted as for a plain object).
 */
export function compileSealed(
  docs: readonly ManifestDoc[],
  namespace: string,
  isClusterScoped: (group: string, kind: string) => boolean,
  bundle: string,
  errors: FleetError[],
): CompiledSealed {
  const byFile = new Map<
    string,
    { file: SealedFile['file']; source: ManifestDoc['sealed']; docs: ManifestDoc[] }
  >();
  for (const doc of docs) {
    const source = doc.sealed;
    if (!source) continue;
    let entry = byFile.get(source.file);
    if (!entry) {
      entry = { file: source.file, source, docs: [] };
      byFile.set(source.file, entry);
    }
    entry.docs.push(doc);
  }
  if (byFile.size === 0) return { refs: [], json: '' };
  const refs: RenderedObjectRef[] = [];
  const files: SealedFile[] = [];
  for (const file of [...byFile.keys()].sort()) {
    const entry = byFile.get(file) as { source: NonNullable<ManifestDoc['sealed']>; docs: ManifestDoc[] };
    const objects: SealedObject[] = [];
    for (const doc of entry.docs) {
      const header = readObjectHeader(doc.node, errors, bundle);
      if (!header) continue;
      const clusterScoped = isClusterScoped(header.group, header.kind);
      if (clusterScoped && header.namespace !== undefined) {
        errors.push(
          fleetError(
            doc.pos,
            `metadata.namespace: ${describeObject(header.group, header.kind, undefined, header.name)} is cluster-scoped and cannot have a namespace`,
            bundle,
          ),
        );
        continue;
      }
      const ns = clusterScoped ? undefined : (header.namespace ?? namespace);
      const object: SealedObject =
        ns === undefined
          ? { apiVersion: header.apiVersion, kind: header.kind, name: header.name }
          : { apiVersion: header.apiVersion, kind: header.kind, name: header.name, namespace: ns };
      objects.push(object);
      const id = `${apiGroup(header.apiVersion)}/${header.kind}/${ns ?? ''}/${header.name}`;
      refs.push({ ...object, id, file: doc.file, line: doc.pos.line });
    }
    files.push({ file, format: entry.source.format, content: entry.source.content, objects });
  }
  return { refs, json: `,"sealed":${canonicalJson(files)}` };
}

/** Whether any document of a YAML mapping list is SOPS-encrypted (a values file, an engine's output). */
export function sopsDocumentIn(nodes: readonly (YMap | YNode | null)[]): boolean {
  return nodes.some((n) => isSopsDocument(n));
}
