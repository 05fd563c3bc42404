/**
 * The desired state as it travels from the hub to the agent: the signed manifest of bundle
 * references, its canonical form (what is hashed for the ETag and signed), and the checks
 * the agent runs on what it receives. The hub builds and signs (`../desired-state.ts`);
 * both sides share these definitions.
 */
import { createPublicKey, type KeyObject, verify } from 'node:crypto';
import { FLOTILLA_API_VERSION } from '../api-version.ts';
import { type ContentHash, isContentHash, sha256Hash } from '../canonical.ts';
import {
  DesiredStateSignatureError,
  InvalidDesiredStateError,
  RenderedBundleIntegrityError,
} from '../errors.ts';
import { namespaceGlobProblem } from '../tenants/glob.ts';
import { type IgnoreDifference, ignoreDifferencesProblem } from './ignore-differences.ts';

/** What the agent does about live objects that differ from the desired state. */
export const DriftPolicy = { correct: 'correct', warn: 'warn', ignore: 'ignore' } as const;
export type DriftPolicy = (typeof DriftPolicy)[keyof typeof DriftPolicy];

/** A Kubernetes object as rendered: plain JSON. */
export interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly [key: string]: unknown };
  readonly [key: string]: unknown;
}

/**
 * A custom health check from bundle.yaml `healthChecks`: CEL expressions over the live
 * object (`self`), for the objects of one kind (and API group, and name glob). The hub has
 * compiled every expression before it renders one; the agent evaluates them.
 */
export interface HealthCheck {
  /** Only the API group counts (`cert-manager.io/v1` matches every version of the group); absent: any group. */
  readonly apiVersion?: string;
  readonly kind: string;
  /** An exact name or a glob with `*` and `?`; absent: every object of the kind. */
  readonly name?: string;
  /** CEL, bool: true when the object is ready (kstatus Current). */
  readonly current: string;
  /** CEL, bool: true while it is still on its way, whatever `current` says. */
  readonly inProgress?: string;
  /** CEL, bool: true when it has failed and waiting will not help. */
  readonly failed?: string;
  /** CEL, string: why it is not ready, shown in the bundle's message. */
  readonly message?: string;
}

/** The fields of a {@link HealthCheck}, in canonical (sorted) order. */
export const HEALTH_CHECK_FIELDS = [
  'apiVersion',
  'current',
  'failed',
  'inProgress',
  'kind',
  'message',
  'name',
] as const;

/** The stored, content-addressed form of a rendered bundle (its canonical JSON is what gets hashed). */
export interface RenderedBundleDocument {
  readonly apiVersion: typeof FLOTILLA_API_VERSION;
  readonly kind: 'RenderedBundle';
  readonly bundle: string;
  /**
   * Fields the agent leaves to other managers (bundle.yaml `ignoreDifferences`). Absent
   * when there are none, so the canonical JSON, and the hash, of such a bundle stay what
   * they were before the field existed.
   */
  readonly ignoreDifferences?: readonly IgnoreDifference[];
  /**
   * Custom health checks, first match wins. Absent when the bundle has none, so that the
   * canonical JSON, and so the hash, of bundles without checks is what it always was.
   */
  readonly healthChecks?: readonly HealthCheck[];
  readonly objects: readonly KubeObject[];
  /**
   * SOPS-encrypted files, as committed, for the agent to decrypt just before apply. Absent
   * when the bundle has none (the hash of such a bundle is what it was before the field).
   */
  readonly sealed?: readonly SealedFile[];
}

/** A SOPS-encrypted file of a bundle, carried as ciphertext; only the cluster it is encrypted for can read it. */
export interface SealedFile {
  /** Where it is in the fleet repo, for messages. */
  readonly file: string;
  readonly format: 'yaml' | 'json';
  /** The file exactly as committed: its MAC covers the values as written. */
  readonly content: string;
  /** Each document's identity, in file order; `namespace` is defaulted for namespaced kinds, as the agent applies it. */
  readonly objects: readonly SealedObject[];
}

export interface SealedObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string;
}

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
  /**
   * The tenant the bundle belongs to (the tenant of its fleet source), which the agent
   * applies it as; absent for the platform's bundles and a trusted source's.
   */
  readonly tenant?: string;
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
  /**
   * The namespaces each tenant of this desired state's bundles may write into (its
   * Tenant's `namespaces` globs), signed with the rest, so the agent grants a tenant's
   * service account rights only in matching namespaces. Absent when no bundle has a
   * tenant, so a tenant-less desired state keeps the bytes (and hash) it always had.
   */
  readonly tenants?: readonly DesiredTenant[];
}

/** A tenant as the agent needs it: its name and its namespace globs (`*` and `?` within a name). */
export interface DesiredTenant {
  readonly name: string;
  readonly namespaces: readonly string[];
}

/** A desired state with the hub's Ed25519 signature over its canonical JSON. */
export interface SignedDesiredState {
  readonly manifest: DesiredState;
  /** Base64 Ed25519 signature of `canonicalJson(manifest)` as UTF-8. */
  readonly signature: string;
  /** {@link publicKeyFingerprint} of the key that signed, so agents can tell a key rotation from tampering. */
  readonly keyId: string;
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
    `"namespace":${JSON.stringify(ref.namespace)},"paused":${ref.paused ? 'true' : 'false'}` +
    // Absent when unset, so a tenant-less reference keeps the bytes (and hash) it always had.
    `${ref.tenant === undefined ? '' : `,"tenant":${JSON.stringify(ref.tenant)}`}}`
  );
}

export function canonicalRefs(refs: readonly BundleRef[]): string {
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
    `"generation":${manifest.generation},"kind":${JSON.stringify(manifest.kind)}` +
    // Absent when unset, so a desired state without tenants keeps the bytes (and hash) it always had.
    `${manifest.tenants === undefined ? '' : `,"tenants":${canonicalTenants(manifest.tenants)}`}}`
  );
}

function canonicalTenants(tenants: readonly DesiredTenant[]): string {
  const items = tenants.map(
    (t) => `{"name":${JSON.stringify(t.name)},"namespaces":${JSON.stringify([...t.namespaces])}}`,
  );
  return `[${items.join(',')}]`;
}

/** The manifest's ETag: the `sha256:` hash of its canonical JSON. */
export function manifestEtag(manifest: DesiredState): ContentHash {
  return sha256Hash(canonicalDesiredState(manifest));
}

export function toPublicKey(key: KeyObject | string): KeyObject {
  if (typeof key !== 'string') return key.type === 'private' ? createPublicKey(key) : key;
  return createPublicKey(key);
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
  onlyFields(
    value,
    ['apiVersion', 'kind', 'cluster', 'generation', 'commit', 'bundles', 'tenants'],
    '',
    fail,
  );
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
    onlyFields(
      b,
      ['name', 'hash', 'namespace', 'dependsOn', 'driftPolicy', 'paused', 'tenant'],
      `${p}.`,
      fail,
    );
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
    if (b.tenant !== undefined && (typeof b.tenant !== 'string' || b.tenant === ''))
      fail(`${p}.tenant: expected a non-empty string`);
    // The agent acts as `flotilla-tenant-<tenant>`: a name that could not be a tenant's is refused.
    if (typeof b.tenant === 'string' && b.tenant !== '' && !DNS_LABEL.test(b.tenant))
      fail(`${p}.tenant: expected a DNS-1123 label`);
    return {
      name: b.name as string,
      hash: b.hash as ContentHash,
      namespace: b.namespace as string,
      dependsOn: [...(b.dependsOn as string[])],
      driftPolicy: b.driftPolicy as DriftPolicy,
      paused: b.paused as boolean,
      ...(b.tenant === undefined ? {} : { tenant: b.tenant as string }),
    };
  });
  return {
    apiVersion: FLOTILLA_API_VERSION,
    kind: 'DesiredState',
    cluster: value.cluster as string,
    generation: value.generation as number,
    commit: value.commit as string,
    bundles,
    ...(value.tenants === undefined ? {} : { tenants: parseTenants(value.tenants, fail) }),
  };
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

function parseTenants(value: unknown, fail: (message: string) => never): DesiredTenant[] {
  if (!Array.isArray(value)) return fail('tenants: expected a list');
  const seen = new Set<string>();
  return value.map((t: unknown, i: number): DesiredTenant => {
    const p = `tenants[${i}]`;
    if (!isRecord(t)) return fail(`${p}: expected an object`);
    onlyFields(t, ['name', 'namespaces'], `${p}.`, fail);
    if (typeof t.name !== 'string' || t.name === '') fail(`${p}.name: expected a non-empty string`);
    if (seen.has(t.name as string)) fail(`${p}.name: "${t.name}" appears twice`);
    seen.add(t.name as string);
    if (typeof t.name === 'string' && !DNS_LABEL.test(t.name)) fail(`${p}.name: expected a DNS-1123 label`);
    if (!Array.isArray(t.namespaces) || t.namespaces.some((n) => typeof n !== 'string')) {
      fail(`${p}.namespaces: expected a list of strings`);
    }
    (t.namespaces as string[]).forEach((n, j) => {
      const problem = namespaceGlobProblem(n);
      if (problem) fail(`${p}.namespaces[${j}]: ${problem}`);
    });
    return { name: t.name as string, namespaces: [...(t.namespaces as string[])] };
  });
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
  const fail = (message: string): never => {
    throw new RenderedBundleIntegrityError(`rendered bundle ${doc.bundle}: ${message}`);
  };
  onlyFields(
    doc,
    ['apiVersion', 'kind', 'bundle', 'healthChecks', 'ignoreDifferences', 'objects', 'sealed'],
    '',
    fail,
  );
  if (doc.sealed !== undefined) parseSealedFiles(doc.sealed, fail);
  if (doc.healthChecks !== undefined) parseHealthChecks(doc.healthChecks, fail);
  if (doc.ignoreDifferences !== undefined) {
    const problem = ignoreDifferencesProblem(doc.ignoreDifferences);
    if (problem) fail(problem);
  }
  return doc as unknown as RenderedBundleDocument;
}

function parseSealedFiles(value: unknown, fail: (message: string) => never): void {
  if (!Array.isArray(value) || value.length === 0) fail('sealed: expected a non-empty list');
  for (const [i, f] of (value as unknown[]).entries()) {
    const p = `sealed[${i}]`;
    if (!isRecord(f)) fail(`${p}: expected an object`);
    const file = f as Record<string, unknown>;
    onlyFields(file, ['file', 'format', 'content', 'objects'], `${p}.`, fail);
    if (typeof file.file !== 'string') fail(`${p}.file: expected a string`);
    if (file.format !== 'yaml' && file.format !== 'json') fail(`${p}.format: expected yaml or json`);
    if (typeof file.content !== 'string') fail(`${p}.content: expected a string`);
    if (!Array.isArray(file.objects) || file.objects.length === 0)
      fail(`${p}.objects: expected a non-empty list`);
    for (const [j, o] of (file.objects as unknown[]).entries()) {
      const q = `${p}.objects[${j}]`;
      if (!isRecord(o)) fail(`${q}: expected an object`);
      const obj = o as Record<string, unknown>;
      onlyFields(obj, ['apiVersion', 'kind', 'name', 'namespace'], `${q}.`, fail);
      for (const k of ['apiVersion', 'kind', 'name'] as const)
        if (typeof obj[k] !== 'string' || obj[k] === '') fail(`${q}.${k}: expected a string`);
      if (obj.namespace !== undefined && typeof obj.namespace !== 'string')
        fail(`${q}.namespace: expected a string`);
    }
  }
}

function parseHealthChecks(value: unknown, fail: (message: string) => never): void {
  // An empty list would hash differently from an absent one for the same meaning; the hub never writes it.
  if (!Array.isArray(value) || value.length === 0) fail('healthChecks: expected a non-empty list');
  for (const [i, c] of (value as unknown[]).entries()) {
    const p = `healthChecks[${i}]`;
    if (!isRecord(c)) fail(`${p}: expected an object`);
    const check = c as Record<string, unknown>;
    onlyFields(check, HEALTH_CHECK_FIELDS, `${p}.`, fail);
    for (const k of HEALTH_CHECK_FIELDS) {
      if (check[k] !== undefined && typeof check[k] !== 'string') fail(`${p}.${k}: expected a string`);
    }
    if (typeof check.kind !== 'string' || check.kind === '') fail(`${p}.kind: expected a non-empty string`);
    if (typeof check.current !== 'string' || check.current === '') {
      fail(`${p}.current: expected a non-empty string`);
    }
  }
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
