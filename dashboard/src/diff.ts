/**
 * Two rendered bundles side by side, object by object, for the Bundle view: which objects
 * one side adds, removes or changes against the other, and a unified line diff of each
 * changed object's YAML. The sides are what `GET /v1/admin/bundles/{hash}` answers (the
 * whole RenderedBundleDocument), under a label each: "generation 7" / "generation 8", or
 * "prod-eu-1" / "prod-us-1".
 *
 * A dashboard must not show secret values, so this never puts one in its result: a core
 * Secret's `data` and `stringData` values are masked as `flotilla diff` masks them (shared
 * `redactPair`), with a changed/unchanged word per key; a SOPS-encrypted (sealed) object
 * appears as its identity and the SHA-256 of its file only, not even its ciphertext.
 *
 * Pure and synchronous, so unit tests cover it without a browser. The digest is SHA-256 in
 * JavaScript (@noble/hashes) rather than Web Crypto, which browsers offer only on secure
 * origins and only asynchronously; it equals the hub's `sha256Hash` of the same text.
 */
import {
  fieldChanges,
  isSecret,
  type KubeObject,
  objectId,
  type RenderedBundleDocument,
  redactPair,
  sealedStandIns,
  stableYaml,
  summarizeFields,
} from '@flotilla/shared/object-diff';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import { structuredPatch } from 'diff';

/** One side of the comparison; `bundle` is null when that side has no such bundle (every object is then added or removed). */
export interface DiffSide {
  readonly label: string;
  readonly bundle: Pick<
    RenderedBundleDocument,
    'bundle' | 'objects' | 'sealed' | 'ignoreDifferences' | 'healthChecks'
  > | null;
}

export const Change = {
  added: 'added',
  removed: 'removed',
  changed: 'changed',
  unchanged: 'unchanged',
} as const;
export type Change = (typeof Change)[keyof typeof Change];

/** One line of a hunk, without its `+`/`-`/space marker. */
export interface DiffLine {
  readonly type: 'context' | 'added' | 'removed';
  readonly text: string;
}

export interface DiffHunk {
  /** `@@ -3,7 +3,7 @@`, as in a unified diff. */
  readonly header: string;
  readonly lines: readonly DiffLine[];
}

/** A key of a core Secret: whether its value changed, never the value. */
export interface SecretKeyChange {
  readonly field: 'data' | 'stringData';
  readonly key: string;
  readonly change: Change;
}

export interface ObjectDiff {
  /** `group/Kind/namespace/name` (group and namespace empty when there are none), as the hub and the agent key objects. */
  readonly id: string;
  readonly group: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly change: Change;
  /** What changed in words (`image nginx 1.27.3 -> 1.27.4`, `key password changed`); empty when unchanged. Never a value of a Secret. */
  readonly summary: string;
  /** A SOPS-encrypted object: shown as its identity and file digest only. */
  readonly sealed: boolean;
  /** For a core Secret, each key of `data` and `stringData` and whether it changed; empty otherwise. */
  readonly secretKeys: readonly SecretKeyChange[];
  /** The unified diff of both sides' YAML (the whole object for added and removed ones); empty when unchanged. */
  readonly hunks: readonly DiffHunk[];
}

export interface BundleDiff {
  readonly before: { readonly label: string; readonly bundle: string | null };
  readonly after: { readonly label: string; readonly bundle: string | null };
  /** In the after side's apply order, then the removed objects in the before side's order. */
  readonly objects: readonly ObjectDiff[];
  /** What is not an object (`ignoreDifferences`, `healthChecks`): whether it changed, and how. */
  readonly settings: { readonly change: Change; readonly hunks: readonly DiffHunk[] };
  readonly counts: Readonly<Record<Change, number>>;
}

export interface DiffOptions {
  /** Unchanged lines around each change; default 3, as `diff -u` and `flotilla diff`. */
  readonly context?: number;
}

/** `sha256:<hex>` of a text, as the hub's `sha256Hash` writes it. */
export function sha256Digest(text: string): string {
  return `sha256:${bytesToHex(sha256(utf8ToBytes(text)))}`;
}

interface Side {
  readonly objects: Map<string, Located>;
  readonly order: readonly string[];
}

function sideOf(bundle: DiffSide['bundle']): Side {
  const objects = new Map<string, Located>();
  for (const object of bundle?.objects ?? []) objects.set(objectId(object), { object, sealed: false });
  for (const object of sealedStandIns(bundle?.sealed ?? [], sha256Digest)) {
    objects.set(objectId(object), { object, sealed: true });
  }
  return { objects, order: [...objects.keys()] };
}

/**
 * Compares two rendered bundles object by object.
 *
 * @example
 * const d = diffBundles({ label: 'generation 7', bundle: g7 }, { label: 'generation 8', bundle: g8 });
 * d.objects.filter((o) => o.change === 'changed'); // [{ id: 'apps/Deployment/web/storefront', summary: 'image nginx 1.27.3 -> 1.27.4', hunks: [...] }]
 */
export function diffBundles(before: DiffSide, after: DiffSide, opts: DiffOptions = {}): BundleDiff {
  const context = opts.context ?? 3;
  const b = sideOf(before.bundle);
  const a = sideOf(after.bundle);
  const ids = [...a.order, ...b.order.filter((id) => !a.objects.has(id))];
  const objects = ids.map((id) => objectDiff(id, b.objects.get(id), a.objects.get(id), context));
  const counts = { added: 0, removed: 0, changed: 0, unchanged: 0 };
  for (const o of objects) counts[o.change]++;
  return {
    before: { label: before.label, bundle: before.bundle?.bundle ?? null },
    after: { label: after.label, bundle: after.bundle?.bundle ?? null },
    objects,
    settings: settingsDiff(before.bundle, after.bundle, context),
    counts,
  };
}

type Located = { readonly object: KubeObject; readonly sealed: boolean };

function objectDiff(
  id: string,
  before: Located | undefined,
  after: Located | undefined,
  context: number,
): ObjectDiff {
  const shown = (after ?? before) as Located;
  const [b, a] = redactPair(before?.object, after?.object);
  const bYaml = b ? stableYaml(b) : undefined;
  const aYaml = a ? stableYaml(a) : undefined;
  const change: Change = !before ? 'added' : !after ? 'removed' : bYaml === aYaml ? 'unchanged' : 'changed';
  // A sealed side has no keys to show; the other side's keys then read added or removed.
  const plain = (side: Located | undefined) =>
    side && !side.sealed && isSecret(side.object) ? side.object : undefined;
  const secret = plain(before) !== undefined || plain(after) !== undefined;
  return {
    id,
    group: groupOf(shown.object.apiVersion),
    kind: shown.object.kind,
    namespace: shown.object.metadata.namespace ?? '',
    name: shown.object.metadata.name,
    change,
    summary: summaryOf(change, before, after, b, a),
    sealed: shown.sealed,
    secretKeys: secret ? secretKeyChanges(plain(before), plain(after)) : [],
    hunks: change === 'unchanged' ? [] : hunksOf(bYaml ?? '', aYaml ?? '', context),
  };
}

function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

function summaryOf(
  change: Change,
  before: Located | undefined,
  after: Located | undefined,
  b: KubeObject | undefined,
  a: KubeObject | undefined,
): string {
  if (change === 'unchanged') return '';
  const shown = (after ?? before) as Located;
  if (change !== 'changed') return shown.sealed ? `${change} (SOPS-encrypted)` : change;
  if (before?.sealed !== after?.sealed)
    return after?.sealed ? 'now SOPS-encrypted' : 'no longer SOPS-encrypted';
  if (shown.sealed) return 'SOPS-encrypted file changed (values not shown)';
  return summarizeFields(fieldChanges(b, a), isSecret(b) || isSecret(a)) || 'changed';
}

/** Each value as comparable text, by key; nothing for a field that is not a map. */
function valuesByKey(value: unknown): Map<string, string> {
  const out = new Map<string, string>();
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return out;
  for (const [k, v] of Object.entries(value)) out.set(k, JSON.stringify(v));
  return out;
}

function secretKeyChanges(before: KubeObject | undefined, after: KubeObject | undefined): SecretKeyChange[] {
  const out: SecretKeyChange[] = [];
  for (const field of ['data', 'stringData'] as const) {
    const bv = valuesByKey(before?.[field]);
    const av = valuesByKey(after?.[field]);
    for (const key of [...new Set([...bv.keys(), ...av.keys()])].sort()) {
      const change: Change = !bv.has(key)
        ? 'added'
        : !av.has(key)
          ? 'removed'
          : bv.get(key) === av.get(key)
            ? 'unchanged'
            : 'changed';
      out.push({ field, key, change });
    }
  }
  return out;
}

function settingsOf(bundle: DiffSide['bundle']): string | undefined {
  if (!bundle) return undefined;
  const settings = {
    ...(bundle.ignoreDifferences ? { ignoreDifferences: bundle.ignoreDifferences } : {}),
    ...(bundle.healthChecks ? { healthChecks: bundle.healthChecks } : {}),
  };
  return Object.keys(settings).length > 0 ? stableYaml(settings as unknown as KubeObject) : undefined;
}

function settingsDiff(
  before: DiffSide['bundle'],
  after: DiffSide['bundle'],
  context: number,
): BundleDiff['settings'] {
  const b = settingsOf(before);
  const a = settingsOf(after);
  if (b === a) return { change: 'unchanged', hunks: [] };
  const change: Change = b === undefined ? 'added' : a === undefined ? 'removed' : 'changed';
  return { change, hunks: hunksOf(b ?? '', a ?? '', context) };
}

const marker: Record<string, DiffLine['type']> = { ' ': 'context', '+': 'added', '-': 'removed' };

function hunksOf(before: string, after: string, context: number): DiffHunk[] {
  const patch = structuredPatch('before', 'after', before, after, undefined, undefined, { context });
  return patch.hunks.map((h) => ({
    // An empty range starts one line earlier in unified diffs (`@@ -0,0 +1,12 @@`).
    header: `@@ -${h.oldLines === 0 ? h.oldStart - 1 : h.oldStart},${h.oldLines} +${h.newLines === 0 ? h.newStart - 1 : h.newStart},${h.newLines} @@`,
    lines: h.lines.flatMap((line): DiffLine[] => {
      const type = marker[line[0] ?? ''];
      // `\ No newline at end of file` cannot occur (YAML ends in a newline) and says nothing here.
      return type ? [{ type, text: line.slice(1) }] : [];
    }),
  }));
}

/** A hunk as text: its header, then each line with its `+`, `-` or space. */
export function formatHunk(h: DiffHunk): string {
  const sign = { context: ' ', added: '+', removed: '-' } as const;
  return [h.header, ...h.lines.map((l) => `${sign[l.type]}${l.text}`)].join('\n');
}
