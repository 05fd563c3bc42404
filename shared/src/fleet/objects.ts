/**
 * Manifest documents: reading a bundle's YAML files into objects, and an object's
 * identity (apiVersion, kind, name, namespace) as the load, overlay and render steps see
 * it, with its display form for messages.
 */
import { type FleetError, fleetError, type SourcePos } from '../errors.ts';
import { apiGroup } from '../kinds.ts';
import { hasTemplateSyntax } from '../variables.ts';
import { describeNode, getEntry, parseYamlFile, type YMap, type YNode } from '../yaml-source.ts';
import type { ManifestDoc, RenderedObjectRef } from './model.ts';
import { checkSealedDocs, isSopsDocument, sealedFormat } from './sealed.ts';

/**
 * Reads YAML files into manifest documents (a mapping each), recording parse errors and,
 * for objects (not patches), header errors in `errors`.
 */
export function readManifests(
  paths: readonly string[],
  files: ReadonlyMap<string, string>,
  bundle: string,
  errors: FleetError[],
  patches: boolean,
): ManifestDoc[] {
  const out: ManifestDoc[] = [];
  for (const path of paths) {
    const start = out.length;
    const content = files.get(path) ?? '';
    const tooBig = fileSizeProblem(path, content, bundle);
    if (tooBig) {
      errors.push(tooBig);
      continue;
    }
    const parsed = parseYamlFile(path, content, bundle);
    errors.push(...parsed.errors);
    const sealed =
      !patches && parsed.documents.some((d) => isSopsDocument(d.node))
        ? { file: path, format: sealedFormat(path), content }
        : undefined;
    for (const doc of parsed.documents) {
      if (doc.node === null) continue;
      if (doc.node.kind !== 'map') {
        errors.push(
          fleetError(
            doc.pos,
            `expected a Kubernetes ${patches ? 'patch' : 'object'} (a mapping), got a ${doc.node.kind === 'seq' ? 'list' : 'scalar'}`,
            bundle,
          ),
        );
        continue;
      }
      if (patches && isSopsDocument(doc.node)) {
        errors.push(
          fleetError(
            doc.pos,
            'an overlay patch cannot be SOPS-encrypted (overlays cannot change encrypted values); put the encrypted object in the bundle as its own file',
            bundle,
          ),
        );
        continue;
      }
      if (sealed) out.push({ file: path, pos: doc.pos, node: doc.node, sealed });
      else {
        if (!patches) readObjectHeader(doc.node, errors, bundle);
        out.push({ file: path, pos: doc.pos, node: doc.node });
      }
    }
    // A SOPS file is checked as a whole: its identities in clear, nothing to fill in.
    if (sealed && checkSealedDocs(out.slice(start), bundle, errors))
      for (const doc of out.slice(start)) readObjectHeader(doc.node, errors, bundle);
  }
  return out;
}

/**
 * The API server refuses a request body over 3 MiB and etcd a value over 1.5 MiB, so no
 * file bigger than this can be applied whole; refusing it before parsing also bounds the
 * memory one file can take in the hub.
 */
export const MAX_MANIFEST_FILE_BYTES = 8 * 1024 * 1024;
/** etcd's default request limit (--max-request-bytes): an object bigger than this is never stored. */
export const MAX_OBJECT_BYTES = 1.5 * 1024 * 1024;
/** The API server's limit on a ConfigMap's or Secret's data. */
export const MAX_DATA_OBJECT_BYTES = 1024 * 1024;

/** A file too big to be Kubernetes objects, as an error at its first line; undefined when it is fine. */
export function fileSizeProblem(path: string, content: string, bundle: string): FleetError | undefined {
  // UTF-16 length is at most the UTF-8 byte count; the exact count only when it might matter.
  if (content.length <= MAX_MANIFEST_FILE_BYTES / 3) return undefined;
  const bytes = Buffer.byteLength(content, 'utf8');
  if (bytes <= MAX_MANIFEST_FILE_BYTES) return undefined;
  return fleetError(
    { file: path, line: 1, column: 1 },
    `${path} is ${mib(bytes)}; manifest files are limited to ${mib(MAX_MANIFEST_FILE_BYTES)} (the API server takes at most 1.5 MiB per object: split the file, or keep large data out of git)`,
    bundle,
  );
}

/** A byte count for messages: `20.0 MiB`, `512 KiB`. */
export function mib(bytes: number): string {
  return bytes >= 1024 * 1024
    ? `${(bytes / (1024 * 1024)).toFixed(1)} MiB`
    : `${Math.ceil(bytes / 1024)} KiB`;
}

/** What a manifest document is, as needed to match patches and default namespaces. */
export interface ObjectHeader {
  readonly apiVersion: string;
  readonly kind: string;
  readonly group: string;
  readonly name: string;
  readonly namespace: string | undefined;
  readonly metadata: YMap;
}

/** Reads and checks apiVersion, kind and metadata.name/namespace of a manifest document. */
export function readObjectHeader(
  node: YNode,
  errors: FleetError[],
  bundle: string,
): ObjectHeader | undefined {
  const err = (pos: SourcePos, message: string) => errors.push(fleetError(pos, message, bundle));
  if (node.kind !== 'map') {
    err(node.pos, `expected a Kubernetes object (a mapping), got ${describeNode(node)}`);
    return undefined;
  }
  const before = errors.length;
  const str = (n: YNode | undefined, path: string, at: SourcePos, allowVars: boolean): string | undefined => {
    if (n === undefined) {
      err(at, `${path}: required`);
      return undefined;
    }
    if (n.kind !== 'scalar' || typeof n.value !== 'string') {
      err(n.pos, `${path}: expected a string, got ${describeNode(n)}`);
      return undefined;
    }
    if (!allowVars && hasTemplateSyntax(n.value)) {
      err(n.pos, `${path}: variables are not allowed in ${path}`);
      return undefined;
    }
    if (n.value === '') {
      err(n.pos, `${path}: must not be empty`);
      return undefined;
    }
    return n.value;
  };
  const apiVersion = str(getEntry(node, 'apiVersion')?.value, 'apiVersion', node.pos, false);
  const kind = str(getEntry(node, 'kind')?.value, 'kind', node.pos, false);
  if (kind !== undefined && /List$/.test(kind) && getEntry(node, 'items')) {
    err(
      getEntry(node, 'kind')?.value.pos ?? node.pos,
      `kind: ${kind} is not supported; write the items as separate YAML documents`,
    );
  }
  const metaNode = getEntry(node, 'metadata')?.value;
  let metadata: YMap | undefined;
  let name: string | undefined;
  let namespace: string | undefined;
  if (metaNode === undefined) err(node.pos, 'metadata.name: required');
  else if (metaNode.kind !== 'map')
    err(metaNode.pos, `metadata: expected a mapping, got ${describeNode(metaNode)}`);
  else {
    metadata = metaNode;
    const nameNode = getEntry(metaNode, 'name')?.value;
    if (nameNode === undefined && getEntry(metaNode, 'generateName')) {
      err(metaNode.pos, 'metadata.name: required (generateName cannot be used with server-side apply)');
    } else name = str(nameNode, 'metadata.name', metaNode.pos, true);
    const nsNode = getEntry(metaNode, 'namespace')?.value;
    if (nsNode !== undefined) namespace = str(nsNode, 'metadata.namespace', metaNode.pos, true);
  }
  if (
    errors.length !== before ||
    apiVersion === undefined ||
    kind === undefined ||
    !metadata ||
    name === undefined
  ) {
    return undefined;
  }
  return { apiVersion, kind, group: apiGroup(apiVersion), name, namespace, metadata };
}

/** Display form of an object identity, like kubectl: `Deployment.apps "web/frontend"`. */
export function describeObject(
  group: string,
  kind: string,
  namespace: string | undefined,
  name: string,
): string {
  const gk = group === '' ? kind : `${kind}.${group}`;
  return `${gk} "${namespace ? `${namespace}/` : ''}${name}"`;
}

export function describeRef(ref: RenderedObjectRef): string {
  return describeObject(apiGroup(ref.apiVersion), ref.kind, ref.namespace, ref.name);
}
