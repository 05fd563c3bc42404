/**
 * One object before and after: Secret values redacted, a stable YAML form (keys sorted),
 * the unified diff of the two, and a one-line summary of what changed (an image, the
 * replicas, a Secret key, otherwise how many fields).
 *
 * Browser-safe (no Node built-ins): the dashboard imports it through
 * `@flotilla/shared/object-diff`, so it masks Secrets and sealed files exactly as `flotilla diff` does.
 */
import { createTwoFilesPatch } from 'diff';
import { stringify } from 'yaml';
import type { KubeObject, SealedFile } from '../protocol/desired-state.ts';

export type { KubeObject, RenderedBundleDocument, SealedFile } from '../protocol/desired-state.ts';

/** What a redacted value reads as. No digest either: a hash of a short secret can be guessed back. */
export const redactedText = {
  unchanged: '(redacted)',
  before: '(redacted: old value)',
  after: '(redacted: new value)',
} as const;

/** Annotations that copy an object whole (and so a Secret's values) into a string. */
const copyingAnnotations = ['kubectl.kubernetes.io/last-applied-configuration'];

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

/** An object's identity: `group/Kind/namespace/name`, as the render and the agent key objects. */
export function objectId(o: Pick<KubeObject, 'apiVersion' | 'kind' | 'metadata'>): string {
  return `${groupOf(o.apiVersion)}/${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
}

/**
 * SOPS-encrypted objects as a diff shows them: their identity and a digest of their file
 * (`digest` hashes the file's text), so that a re-encrypted or changed secret shows as
 * changed without a value, not even an encrypted one.
 */
export function sealedStandIns(
  files: readonly SealedFile[],
  digest: (content: string) => string,
): KubeObject[] {
  return files.flatMap((f) => {
    const fileDigest = digest(f.content);
    return f.objects.map(
      (o): KubeObject => ({
        apiVersion: o.apiVersion,
        kind: o.kind,
        metadata: { name: o.name, ...(o.namespace === undefined ? {} : { namespace: o.namespace }) },
        sopsFile: { path: f.file, digest: fileDigest },
      }),
    );
  });
}

/** A core Secret (`v1`, kind Secret), whose `data` and `stringData` are never shown. */
export function isSecret(o: Pick<KubeObject, 'apiVersion' | 'kind'> | undefined): boolean {
  return o !== undefined && o.kind === 'Secret' && groupOf(o.apiVersion) === '';
}

/**
 * Copies of the two sides with every Secret value replaced by a marker. A key present on
 * both sides with equal values reads `(redacted)` on both; with different values, the
 * markers differ, so the diff shows that the key changed and nothing of either value.
 * Annotations that copy the whole object (last-applied-configuration) are treated the same.
 */
export function redactPair(
  before: KubeObject | undefined,
  after: KubeObject | undefined,
): [KubeObject | undefined, KubeObject | undefined] {
  if (!isSecret(before) && !isSecret(after)) return [before, after];
  const b = before ? (structuredClone(before) as unknown as JsonObject) : undefined;
  const a = after ? (structuredClone(after) as unknown as JsonObject) : undefined;
  const redactMap = (bm: Json | undefined, am: Json | undefined, keys?: readonly string[]) => {
    const bObj = isObject(bm) ? bm : undefined;
    const aObj = isObject(am) ? am : undefined;
    const names = new Set([...Object.keys(bObj ?? {}), ...Object.keys(aObj ?? {})]);
    for (const k of names) {
      if (keys && !keys.includes(k)) continue;
      const inB = bObj !== undefined && Object.hasOwn(bObj, k);
      const inA = aObj !== undefined && Object.hasOwn(aObj, k);
      const same = inB && inA && JSON.stringify(bObj[k]) === JSON.stringify(aObj[k]);
      if (inB) bObj[k] = same || !inA ? redactedText.unchanged : redactedText.before;
      if (inA) aObj[k] = same || !inB ? redactedText.unchanged : redactedText.after;
    }
  };
  if (isSecret(before) || isSecret(after)) {
    for (const field of ['data', 'stringData']) {
      redactMap(b?.[field], a?.[field]);
      // A non-map value (malformed, or a string) is hidden whole.
      if (b && b[field] !== undefined && !isObject(b[field])) b[field] = redactedText.unchanged;
      if (a && a[field] !== undefined && !isObject(a[field])) a[field] = redactedText.unchanged;
    }
    const bMeta = b && isObject(b.metadata) ? b.metadata : undefined;
    const aMeta = a && isObject(a.metadata) ? a.metadata : undefined;
    redactMap(bMeta?.annotations, aMeta?.annotations, copyingAnnotations);
  }
  return [b as KubeObject | undefined, a as KubeObject | undefined];
}

function sortKeys(v: Json): Json {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (!isObject(v)) return v;
  const out: JsonObject = {};
  for (const k of Object.keys(v).sort()) out[k] = sortKeys(v[k] as Json);
  return out;
}

/** An object as YAML with keys sorted at every level, so that equal objects always read the same. */
export function stableYaml(o: KubeObject): string {
  return stringify(sortKeys(o as unknown as Json), { lineWidth: 0, aliasDuplicateObjects: false });
}

/**
 * The unified diff (3 lines of context) of two YAML texts; an empty side is `/dev/null`.
 * Without git's `===` banner, so it reads like `git diff`.
 */
export function unifiedDiff(label: string, before: string | undefined, after: string | undefined): string {
  const patch = createTwoFilesPatch(
    before === undefined ? '/dev/null' : `a/${label}`,
    after === undefined ? '/dev/null' : `b/${label}`,
    before ?? '',
    after ?? '',
    undefined,
    undefined,
    { context: 3 },
  );
  return patch.replace(/^=+\n/, '');
}

/** One leaf that differs: its path (`spec.template.spec.containers[web].image`) and both values. */
export interface FieldChange {
  readonly path: string;
  readonly before: Json | undefined;
  readonly after: Json | undefined;
}

/** Arrays of named objects (containers, ports, env) are matched by name, so a reorder is not a change. */
function namedItems(v: Json[]): Map<string, Json> | undefined {
  const map = new Map<string, Json>();
  for (const item of v) {
    if (!isObject(item) || typeof item.name !== 'string' || map.has(item.name)) return undefined;
    map.set(item.name, item);
  }
  return map;
}

/** Every leaf that differs between two JSON values, in a stable order. */
export function fieldChanges(before: unknown, after: unknown, path = ''): FieldChange[] {
  const b = before as Json | undefined;
  const a = after as Json | undefined;
  if (JSON.stringify(b) === JSON.stringify(a)) return [];
  if (isObject(b) && isObject(a)) {
    const keys = [...new Set([...Object.keys(b), ...Object.keys(a)])].sort();
    return keys.flatMap((k) => fieldChanges(b[k], a[k], path ? `${path}.${k}` : k));
  }
  if (Array.isArray(b) && Array.isArray(a)) {
    const bn = namedItems(b);
    const an = namedItems(a);
    if (bn && an) {
      const names = [...new Set([...bn.keys(), ...an.keys()])];
      return names.flatMap((n) => fieldChanges(bn.get(n), an.get(n), `${path}[${n}]`));
    }
    const len = Math.max(a.length, b.length);
    const out: FieldChange[] = [];
    for (let i = 0; i < len; i++) out.push(...fieldChanges(b[i], a[i], `${path}[${i}]`));
    return out;
  }
  return [{ path, before: b, after: a }];
}

const imagePath = /(?:^|\.)(?:initContainers|containers|ephemeralContainers)\[([^\]]+)\]\.image$/;

function splitImage(image: string): [string, string] {
  const at = image.indexOf('@');
  if (at >= 0) return [image.slice(0, at), image.slice(at + 1)];
  const colon = image.lastIndexOf(':');
  if (colon > image.lastIndexOf('/')) return [image.slice(0, colon), image.slice(colon + 1)];
  return [image, 'latest'];
}

/** `nginx 1.27.3 -> 1.27.4` when only the tag (or digest) moved; else both images whole. */
function imageChange(before: Json | undefined, after: Json | undefined): string {
  if (typeof before === 'string' && typeof after === 'string') {
    const [br, bt] = splitImage(before);
    const [ar, at] = splitImage(after);
    if (br === ar) return `image ${br} ${bt} -> ${at}`;
  }
  return `image ${show(before)} -> ${show(after)}`;
}

function show(v: Json | undefined): string {
  if (v === undefined) return '(none)';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/**
 * The changes of one object in words: images and replicas by value; a Secret's keys by
 * name only; anything else counted ("3 fields changed").
 */
export function summarizeFields(changes: readonly FieldChange[], secret: boolean): string {
  const parts: string[] = [];
  let other = 0;
  const secretKeys: string[] = [];
  for (const c of changes) {
    const image = imagePath.exec(c.path);
    const dataKey = /^(?:data|stringData)\.(.+)$/.exec(c.path);
    if (secret && dataKey) secretKeys.push(dataKey[1] as string);
    else if (image) parts.push(imageChange(c.before, c.after));
    else if (c.path === 'spec.replicas') parts.push(`replicas ${show(c.before)} -> ${show(c.after)}`);
    else other++;
  }
  if (secretKeys.length > 0) {
    const keys = [...new Set(secretKeys)];
    parts.push(`${keys.length === 1 ? 'key' : 'keys'} ${keys.join(', ')} changed`);
  }
  if (other > 0) {
    const noun = other === 1 ? 'field' : 'fields';
    parts.push(parts.length > 0 ? `${other} more ${noun} changed` : `${other} ${noun} changed`);
  }
  return parts.join(', ');
}
