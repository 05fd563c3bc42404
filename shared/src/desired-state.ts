import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import { FLOTILLA_API_VERSION } from './api-version.ts';
import type { DriftPolicy } from './bundle-spec.ts';
import { type ContentHash, canonicalJson, isContentHash, sha256Hash } from './canonical.ts';
import {
  DesiredStateSignatureError,
  InvalidDesiredStateError,
  RenderedBundleIntegrityError,
} from './errors.ts';
import type { ClusterPlan } from './fleet.ts';
import type { RenderedBundleDocument } from './render.ts';

/** One bundle in a cluster's desired state. `hash` addresses the stored {@link RenderedBundleDocument}. */
export interface BundleRef {
  readonly name: string;
  readonly hash: ContentHash;
  /** The bundle's default namespace (bundle.yaml `namespace`, "default" when unset). */
  readonly namespace: string;
  /** Bundles that must be applied and healthy first; always present in the same desired state, earlier in the list. */
  readonly dependsOn: readonly string[];
  readonly driftPolicy: DriftPolicy;
  /** When true the agent leaves the bundle's objects as they are: no apply, no prune, no drift correction. */
  readonly paused: boolean;
}

/**
 * The hub-to-agent contract: everything one cluster should run, as references to
 * content-addressed rendered bundles, in apply order (dependencies first).
 */
export interface DesiredState {
  readonly apiVersion: typeof FLOTILLA_API_VERSION;
  readonly kind: 'DesiredState';
  readonly cluster: string;
  /** Increases by one each time the cluster's desired state changes. */
  readonly generation: number;
  /** The fleet-repo commit this desired state was rendered from. */
  readonly commit: string;
  readonly bundles: readonly BundleRef[];
}

/** A desired state with the hub's Ed25519 signature over its canonical JSON. */
export interface SignedDesiredState {
  readonly manifest: DesiredState;
  /** Base64 Ed25519 signature of `canonicalJson(manifest)` as UTF-8. */
  readonly signature: string;
  /** {@link publicKeyFingerprint} of the key that signed, so agents can tell a key rotation from tampering. */
  readonly keyId: string;
}

/** What {@link buildDesiredState} needs from a cluster's plan. */
export interface DesiredStateInput {
  readonly plan: Pick<ClusterPlan, 'cluster' | 'status' | 'bundles' | 'held'>;
  readonly commit: string;
  readonly generation: number;
  /** The cluster's current desired state, if it has one. */
  readonly lastGood?: DesiredState | undefined;
}

/**
 * Builds a cluster's desired state from its plan and its last good state, applying the
 * error-isolation rule: bundles that rendered go in as rendered; held bundles (broken for
 * this cluster, or depending on one that is) keep the reference they had in `lastGood`,
 * and stay out if they never had one; bundles no longer targeted disappear. A plan whose
 * status is `held` (the cluster's own file in git is broken) keeps `lastGood`'s bundles.
 * The result is ordered dependencies first, then by name.
 *
 * @example
 * const next = buildDesiredState({ plan, commit, generation: (last?.generation ?? 0) + 1, lastGood: last });
 * if (!last || desiredContentHash(next) !== desiredContentHash(last)) { ...store and notify... }
 */
export function buildDesiredState(input: DesiredStateInput): DesiredState {
  const { plan, lastGood } = input;
  let bundles: readonly BundleRef[] = plan.bundles.map((b) => b.ref);
  if (plan.status === 'held') bundles = lastGood?.bundles ?? [];
  else if (plan.held.length > 0 && lastGood) {
    const keep = new Set(plan.held.map((h) => h.bundle));
    const kept = lastGood.bundles.filter((b) => keep.has(b.name));
    if (kept.length > 0) bundles = orderBundleRefs([...bundles, ...kept]);
  }
  return {
    apiVersion: FLOTILLA_API_VERSION,
    kind: 'DesiredState',
    cluster: plan.cluster,
    generation: input.generation,
    commit: input.commit,
    bundles,
  };
}

/**
 * Orders bundle references so that each comes after the bundles it depends on, and
 * otherwise by name (Kahn's algorithm, smallest name first). References in a cycle, or
 * depending on bundles not in the list, keep name order among themselves.
 */
export function orderBundleRefs(refs: readonly BundleRef[]): BundleRef[] {
  const byName = new Map(refs.map((r) => [r.name, r]));
  const pending = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  for (const r of refs) {
    const deps = r.dependsOn.filter((d) => byName.has(d) && d !== r.name);
    pending.set(r.name, deps.length);
    for (const d of deps) {
      const list = dependents.get(d) ?? [];
      list.push(r.name);
      dependents.set(d, list);
    }
  }
  const ready = [...pending].filter(([, n]) => n === 0).map(([name]) => name);
  const out: BundleRef[] = [];
  const done = new Set<string>();
  while (ready.length > 0) {
    ready.sort();
    const name = ready.shift() as string;
    done.add(name);
    out.push(byName.get(name) as BundleRef);
    for (const dep of dependents.get(name) ?? []) {
      const left = (pending.get(dep) ?? 0) - 1;
      pending.set(dep, left);
      if (left === 0) ready.push(dep);
    }
  }
  const rest = [...byName.keys()].filter((n) => !done.has(n)).sort();
  for (const name of rest) out.push(byName.get(name) as BundleRef);
  return out;
}

// Plans share one reference object among all clusters that render a bundle identically, so this cache hits often.
const refJson = new WeakMap<BundleRef, string>();

/** Canonical JSON of one bundle reference; this runs for every bundle of every cluster. */
function canonicalRef(ref: BundleRef): string {
  let json = refJson.get(ref);
  if (json === undefined) {
    json = writeRef(ref);
    refJson.set(ref, json);
  }
  return json;
}

function writeRef(ref: BundleRef): string {
  return (
    `{"dependsOn":${JSON.stringify(ref.dependsOn)},"driftPolicy":${JSON.stringify(ref.driftPolicy)},` +
    `"hash":${JSON.stringify(ref.hash)},"name":${JSON.stringify(ref.name)},` +
    `"namespace":${JSON.stringify(ref.namespace)},"paused":${ref.paused ? 'true' : 'false'}}`
  );
}

function canonicalRefs(refs: readonly BundleRef[]): string {
  let out = '[';
  for (let i = 0; i < refs.length; i++) {
    if (i > 0) out += ',';
    out += canonicalRef(refs[i] as BundleRef);
  }
  return `${out}]`;
}

/**
 * The canonical JSON of a desired state (sorted keys, no whitespace; see {@link canonicalJson}):
 * the bytes that are hashed for the ETag and signed. Only the documented fields are included.
 */
export function canonicalDesiredState(manifest: DesiredState): string {
  if (!Number.isSafeInteger(manifest.generation)) throw new TypeError('generation must be a safe integer');
  return (
    `{"apiVersion":${JSON.stringify(manifest.apiVersion)},"bundles":${canonicalRefs(manifest.bundles)},` +
    `"cluster":${JSON.stringify(manifest.cluster)},"commit":${JSON.stringify(manifest.commit)},` +
    `"generation":${manifest.generation},"kind":${JSON.stringify(manifest.kind)}}`
  );
}

/** The manifest's ETag: the `sha256:` hash of its canonical JSON. */
export function manifestEtag(manifest: DesiredState): ContentHash {
  return sha256Hash(canonicalDesiredState(manifest));
}

// A compact line per reference for desiredContentHash: about half the bytes of its JSON to hash.
function refLine(ref: BundleRef): string {
  return `${ref.name}\t${ref.hash}\t${ref.namespace}\t${ref.dependsOn.join(',')}\t${ref.driftPolicy}\t${ref.paused ? 1 : 0}\n`;
}

/**
 * A digest of what the cluster should run (cluster and bundle references), leaving out
 * generation and commit: equal digests mean a new commit changes nothing for the cluster,
 * so nothing should be written or sent. (A stable digest, not the hash of canonical JSON.)
 */
export function desiredContentHash(manifest: Pick<DesiredState, 'cluster' | 'bundles'>): ContentHash {
  let text = `${manifest.cluster}\n`;
  for (const ref of manifest.bundles) text += refLine(ref);
  return sha256Hash(text);
}

function toPrivateKey(key: KeyObject | string): KeyObject {
  return typeof key === 'string' ? createPrivateKey(key) : key;
}

function toPublicKey(key: KeyObject | string): KeyObject {
  if (typeof key !== 'string') return key.type === 'private' ? createPublicKey(key) : key;
  return createPublicKey(key);
}

/** `sha256:<hex>` of the key's DER-encoded SubjectPublicKeyInfo; accepts a public or private key (KeyObject or PEM). */
export function publicKeyFingerprint(key: KeyObject | string): string {
  const pub =
    typeof key === 'string' && key.includes('PRIVATE')
      ? createPublicKey(createPrivateKey(key))
      : toPublicKey(key);
  return `sha256:${createHash('sha256')
    .update(pub.export({ type: 'spki', format: 'der' }))
    .digest('hex')}`;
}

/** Creates an Ed25519 key pair as PEM (PKCS#8 private, SPKI public). */
export function generateSigningKeyPair(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/**
 * Signs a desired state with the hub's Ed25519 private key (KeyObject or PEM).
 *
 * @example
 * const { privateKeyPem, publicKeyPem } = generateSigningKeyPair();
 * const signed = signDesiredState(manifest, privateKeyPem);
 * verifyDesiredState(signed, publicKeyPem); // true
 */
export function signDesiredState(manifest: DesiredState, privateKey: KeyObject | string): SignedDesiredState {
  const key = toPrivateKey(privateKey);
  const signature = sign(null, Buffer.from(canonicalDesiredState(manifest), 'utf8'), key).toString('base64');
  return { manifest, signature, keyId: publicKeyFingerprint(createPublicKey(key)) };
}

/** Whether a signed desired state verifies with the given public key (KeyObject or PEM). Never throws on bad signatures. */
export function verifyDesiredState(signed: SignedDesiredState, publicKey: KeyObject | string): boolean {
  try {
    const bytes = Buffer.from(canonicalDesiredState(signed.manifest), 'utf8');
    return verify(null, bytes, toPublicKey(publicKey), Buffer.from(signed.signature, 'base64'));
  } catch {
    return false;
  }
}

/**
 * What the agent calls on every response: checks the shape of an untrusted signed desired
 * state and its signature against the pinned key, and returns the manifest.
 *
 * @throws {InvalidDesiredStateError} when the document does not have the documented shape.
 * @throws {DesiredStateSignatureError} when the signature does not verify.
 */
export function openSignedDesiredState(value: unknown, publicKey: KeyObject | string): DesiredState {
  if (!isRecord(value)) throw new InvalidDesiredStateError('signed desired state: expected an object');
  if (typeof value.signature !== 'string')
    throw new InvalidDesiredStateError('signature: expected a base64 string');
  const manifest = parseDesiredState(value.manifest);
  const keyId = typeof value.keyId === 'string' ? value.keyId : '';
  if (!verifyDesiredState({ manifest, signature: value.signature, keyId }, publicKey)) {
    throw new DesiredStateSignatureError(
      `desired state of cluster "${manifest.cluster}" generation ${manifest.generation} does not verify with the pinned hub key`,
    );
  }
  return manifest;
}

/**
 * Validates an untrusted value as a {@link DesiredState} (unknown fields are errors, as
 * the signature covers only known ones).
 *
 * @throws {InvalidDesiredStateError}
 */
export function parseDesiredState(value: unknown): DesiredState {
  const fail = (message: string): never => {
    throw new InvalidDesiredStateError(`desired state: ${message}`);
  };
  if (!isRecord(value)) return fail('expected an object');
  onlyFields(value, ['apiVersion', 'kind', 'cluster', 'generation', 'commit', 'bundles'], '', fail);
  if (value.apiVersion !== FLOTILLA_API_VERSION) fail(`apiVersion: expected "${FLOTILLA_API_VERSION}"`);
  if (value.kind !== 'DesiredState') fail('kind: expected "DesiredState"');
  if (typeof value.cluster !== 'string' || value.cluster === '') fail('cluster: expected a non-empty string');
  if (!Number.isSafeInteger(value.generation) || (value.generation as number) < 0) {
    fail('generation: expected a non-negative integer');
  }
  if (typeof value.commit !== 'string') fail('commit: expected a string');
  if (!Array.isArray(value.bundles)) return fail('bundles: expected a list');
  const bundles = value.bundles.map((b: unknown, i: number): BundleRef => {
    const p = `bundles[${i}]`;
    if (!isRecord(b)) return fail(`${p}: expected an object`);
    onlyFields(b, ['name', 'hash', 'namespace', 'dependsOn', 'driftPolicy', 'paused'], `${p}.`, fail);
    if (typeof b.name !== 'string' || b.name === '') fail(`${p}.name: expected a non-empty string`);
    if (!isContentHash(b.hash)) fail(`${p}.hash: expected sha256:<64 hex digits>`);
    if (typeof b.namespace !== 'string') fail(`${p}.namespace: expected a string`);
    if (!Array.isArray(b.dependsOn) || b.dependsOn.some((d) => typeof d !== 'string')) {
      fail(`${p}.dependsOn: expected a list of strings`);
    }
    if (b.driftPolicy !== 'correct' && b.driftPolicy !== 'warn' && b.driftPolicy !== 'ignore') {
      fail(`${p}.driftPolicy: expected correct, warn or ignore`);
    }
    if (typeof b.paused !== 'boolean') fail(`${p}.paused: expected a boolean`);
    return {
      name: b.name as string,
      hash: b.hash as ContentHash,
      namespace: b.namespace as string,
      dependsOn: [...(b.dependsOn as string[])],
      driftPolicy: b.driftPolicy as DriftPolicy,
      paused: b.paused as boolean,
    };
  });
  return {
    apiVersion: FLOTILLA_API_VERSION,
    kind: 'DesiredState',
    cluster: value.cluster as string,
    generation: value.generation as number,
    commit: value.commit as string,
    bundles,
  };
}

/**
 * Parses stored rendered-bundle bytes, checking them against the hash they were fetched
 * by (which the signed manifest vouches for).
 *
 * @throws {RenderedBundleIntegrityError} when the hash differs or the document is malformed.
 */
export function parseRenderedBundle(canonical: string, expectedHash: ContentHash): RenderedBundleDocument {
  const actual = sha256Hash(canonical);
  if (actual !== expectedHash) {
    throw new RenderedBundleIntegrityError(
      `rendered bundle hash mismatch: expected ${expectedHash}, got ${actual}`,
    );
  }
  let doc: unknown;
  try {
    doc = JSON.parse(canonical);
  } catch (e) {
    throw new RenderedBundleIntegrityError('rendered bundle is not valid JSON', { cause: e });
  }
  if (
    !isRecord(doc) ||
    doc.apiVersion !== FLOTILLA_API_VERSION ||
    doc.kind !== 'RenderedBundle' ||
    typeof doc.bundle !== 'string' ||
    !Array.isArray(doc.objects)
  ) {
    throw new RenderedBundleIntegrityError('rendered bundle does not have the RenderedBundle shape');
  }
  return doc as unknown as RenderedBundleDocument;
}

function onlyFields(
  value: Record<string, unknown>,
  allowed: readonly string[],
  path: string,
  fail: (message: string) => never,
): void {
  for (const k of Object.keys(value)) if (!allowed.includes(k)) fail(`${path}${k}: unknown field`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
