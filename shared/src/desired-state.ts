/**
 * The hub's side of the desired state: building a cluster's manifest from its plan,
 * ordering its bundles, the digest that tells a no-op commit, and the signing keys. The
 * wire form itself, shared with the agent, is `protocol/desired-state.ts`.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
} from 'node:crypto';
import { FLOTILLA_API_VERSION } from './api-version.ts';
import { type ContentHash, sha256Hash } from './canonical.ts';
import type { ClusterPlan } from './fleet/model.ts';
import {
  type BundleRef,
  canonicalDesiredState,
  type DesiredState,
  type DesiredTenant,
  type SignedDesiredState,
  toPublicKey,
} from './protocol/desired-state.ts';

export {
  type BundleRef,
  canonicalDesiredState,
  type DesiredState,
  type DesiredTenant,
  type HealthCheck,
  manifestEtag,
  openSignedDesiredState,
  parseDesiredState,
  parseRenderedBundle,
  type SignedDesiredState,
  verifyDesiredState,
} from './protocol/desired-state.ts';

/** What {@link buildDesiredState} needs from a cluster's plan. */
export interface DesiredStateInput {
  readonly plan: Pick<ClusterPlan, 'cluster' | 'status' | 'bundles' | 'held'>;
  readonly commit: string;
  readonly generation: number;
  /** The cluster's current desired state, if it has one. */
  readonly lastGood?: DesiredState | undefined;
  /**
   * Every declared tenant's namespace globs, by name. The desired state carries those of
   * the tenants its bundles belong to (a `tenants` section, signed with the rest), so the
   * agent knows where each tenant's service account may be granted rights.
   */
  readonly tenants?: ReadonlyMap<string, readonly string[]> | undefined;
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
    ...tenantsOf(bundles, input.tenants, lastGood),
  };
}

/**
 * The `tenants` section for these bundles: each tenant a bundle names, with its namespace
 * globs from the fleet (or, for a tenant no longer declared whose bundle is held, those of
 * the last good state); nothing when no bundle has a tenant.
 */
function tenantsOf(
  bundles: readonly BundleRef[],
  declared: ReadonlyMap<string, readonly string[]> | undefined,
  lastGood: DesiredState | undefined,
): { tenants?: DesiredTenant[] } {
  const names = [...new Set(bundles.flatMap((b) => (b.tenant === undefined ? [] : [b.tenant])))].sort();
  const previous = new Map((lastGood?.tenants ?? []).map((t) => [t.name, t.namespaces]));
  const tenants = names.flatMap((name) => {
    const namespaces = declared?.get(name) ?? previous.get(name);
    return namespaces ? [{ name, namespaces: [...namespaces] }] : [];
  });
  return tenants.length > 0 ? { tenants } : {};
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

// A compact line per reference for desiredContentHash: about half the bytes of its JSON to hash.
function refLine(ref: BundleRef): string {
  const tenant = ref.tenant === undefined ? '' : `\t${ref.tenant}`;
  return `${ref.name}\t${ref.hash}\t${ref.namespace}\t${ref.dependsOn.join(',')}\t${ref.driftPolicy}\t${ref.paused ? 1 : 0}${tenant}\n`;
}

/**
 * A digest of what the cluster should run (cluster and bundle references), leaving out
 * generation and commit: equal digests mean a new commit changes nothing for the cluster,
 * so nothing should be written or sent. (A stable digest, not the hash of canonical JSON.)
 */
export function desiredContentHash(
  manifest: Pick<DesiredState, 'cluster' | 'bundles' | 'tenants'>,
): ContentHash {
  let text = `${manifest.cluster}\n`;
  for (const ref of manifest.bundles) text += refLine(ref);
  // Only when present, so the digest of a desired state without tenants is what it always was.
  for (const t of manifest.tenants ?? []) text += `tenant\t${t.name}\t${t.namespaces.join(',')}\n`;
  return sha256Hash(text);
}

function toPrivateKey(key: KeyObject | string): KeyObject {
  return typeof key === 'string' ? createPrivateKey(key) : key;
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
