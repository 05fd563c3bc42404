import { generateKeyPairSync } from 'node:crypto';
import {
  type BundleRef,
  buildDesiredState,
  canonicalDesiredState,
  canonicalJson,
  type DesiredState,
  DesiredStateSignatureError,
  desiredContentHash,
  generateSigningKeyPair,
  InvalidDesiredStateError,
  loadFleet,
  manifestEtag,
  openSignedDesiredState,
  orderBundleRefs,
  parseDesiredState,
  parseRenderedBundle,
  publicKeyFingerprint,
  RenderedBundleIntegrityError,
  sha256Hash,
  signDesiredState,
  verifyDesiredState,
} from '@flotilla/shared';
import { describe, expect, it } from 'vitest';
import { examplePlainFiles, passThroughEngine } from './helpers.ts';

const fleet = loadFleet(examplePlainFiles());
// Overlays need the engine; what they do to the objects does not matter here.
await fleet.prepare([{ name: 'prod-eu-1' }], { engine: passThroughEngine });
const plan = fleet.planCluster({ name: 'prod-eu-1' });
const manifest = buildDesiredState({ plan, commit: '5f2c1e0', generation: 7 });

describe('desired state', () => {
  it('is versioned and lists bundles dependencies first', () => {
    expect(manifest.apiVersion).toBe('flotilla.dev/v1alpha1');
    expect(manifest.kind).toBe('DesiredState');
    expect(manifest.cluster).toBe('prod-eu-1');
    expect(manifest.bundles.map((b) => b.name)).toEqual([
      'backup-crds',
      'baseline',
      'log-shipper',
      'monitoring-agent',
      'web',
      'backups',
    ]);
    expect(manifest.bundles.find((b) => b.name === 'backups')).toMatchObject({
      namespace: 'web',
      dependsOn: ['backup-crds', 'web'],
      driftPolicy: 'correct',
      paused: false,
    });
    expect(manifest.bundles.find((b) => b.name === 'log-shipper')?.driftPolicy).toBe('warn');
  });

  it('serializes canonically and uses the hash of that as ETag', () => {
    const text = canonicalDesiredState(manifest);
    expect(text).toBe(canonicalJson(manifest));
    expect(manifestEtag(manifest)).toBe(sha256Hash(text));
    expect(manifestEtag({ ...manifest, generation: 8 })).not.toBe(manifestEtag(manifest));
  });

  it('has a content hash that ignores generation and commit', () => {
    const next = buildDesiredState({
      plan: fleet.planCluster({ name: 'prod-eu-1' }),
      commit: 'b0b0',
      generation: 8,
    });
    expect(desiredContentHash(next)).toBe(desiredContentHash(manifest));
    const other = buildDesiredState({
      plan: fleet.planCluster({ name: 'prod-us-1' }),
      commit: 'b0b0',
      generation: 8,
    });
    expect(desiredContentHash(other)).not.toBe(desiredContentHash(manifest));
  });

  it('round-trips through JSON and parseDesiredState', () => {
    expect(parseDesiredState(JSON.parse(JSON.stringify(manifest)))).toEqual(manifest);
  });

  it.each([
    [{ ...manifest, apiVersion: 'v2' }, 'desired state: apiVersion: expected "flotilla.dev/v1alpha1"'],
    [{ ...manifest, generation: -1 }, 'desired state: generation: expected a non-negative integer'],
    [{ ...manifest, extra: true }, 'desired state: extra: unknown field'],
    [
      { ...manifest, bundles: [{ ...manifest.bundles[0], hash: 'md5:x' }] },
      'desired state: bundles[0].hash: expected sha256:<64 hex digits>',
    ],
    [
      { ...manifest, bundles: [{ ...manifest.bundles[0], driftPolicy: 'fix' }] },
      'desired state: bundles[0].driftPolicy: expected correct, warn or ignore',
    ],
  ])('rejects malformed manifests (%#)', (value, message) => {
    expect(() => parseDesiredState(value)).toThrow(new InvalidDesiredStateError(message));
  });
});

describe('signing', () => {
  const { privateKeyPem, publicKeyPem } = generateSigningKeyPair();

  it('round-trips: signed with the private key, verified with the public key (PEM or KeyObject)', () => {
    const signed = signDesiredState(manifest, privateKeyPem);
    expect(verifyDesiredState(signed, publicKeyPem)).toBe(true);
    expect(signed.keyId).toBe(publicKeyFingerprint(publicKeyPem));
    expect(signed.keyId).toBe(publicKeyFingerprint(privateKeyPem));
    const wire = JSON.parse(JSON.stringify(signed)) as unknown;
    expect(openSignedDesiredState(wire, publicKeyPem)).toEqual(manifest);
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    expect(verifyDesiredState(signDesiredState(manifest, privateKey), publicKey)).toBe(true);
  });

  it('detects tampering with any field', () => {
    const signed = signDesiredState(manifest, privateKeyPem);
    const first = manifest.bundles[0] as BundleRef;
    const tampered: DesiredState[] = [
      { ...manifest, generation: manifest.generation + 1 },
      { ...manifest, cluster: 'prod-us-1' },
      { ...manifest, bundles: manifest.bundles.slice(1) },
      { ...manifest, bundles: [{ ...first, hash: sha256Hash('evil') }, ...manifest.bundles.slice(1)] },
      { ...manifest, bundles: [{ ...first, paused: true }, ...manifest.bundles.slice(1)] },
    ];
    for (const m of tampered)
      expect(verifyDesiredState({ ...signed, manifest: m }, publicKeyPem)).toBe(false);
    const bytes = Buffer.from(signed.signature, 'base64');
    bytes[0] = (bytes[0] as number) ^ 0x01;
    expect(verifyDesiredState({ ...signed, signature: bytes.toString('base64') }, publicKeyPem)).toBe(false);
    expect(() =>
      openSignedDesiredState(
        JSON.parse(JSON.stringify({ ...signed, manifest: { ...manifest, commit: 'other' } })),
        publicKeyPem,
      ),
    ).toThrow(DesiredStateSignatureError);
  });

  it('refuses a manifest signed by another key', () => {
    const other = generateSigningKeyPair();
    const signed = signDesiredState(manifest, other.privateKeyPem);
    expect(verifyDesiredState(signed, publicKeyPem)).toBe(false);
    let error: unknown;
    try {
      openSignedDesiredState(signed, publicKeyPem);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DesiredStateSignatureError);
    expect((error as Error).name).toBe('DesiredStateSignatureError');
    expect((error as Error).message).toBe(
      'desired state of cluster "prod-eu-1" generation 7 does not verify with the pinned hub key',
    );
  });
});

describe('rendered bundle integrity', () => {
  const rendered = plan.bundles[0]?.rendered;

  it('parses bytes that match their hash', () => {
    if (!rendered) throw new Error('no bundle');
    const doc = parseRenderedBundle(rendered.canonical, rendered.hash);
    expect(doc.kind).toBe('RenderedBundle');
    expect(doc.bundle).toBe(rendered.bundle);
    expect(doc.objects.length).toBe(rendered.objects.length);
  });

  it('rejects bytes that do not', () => {
    if (!rendered) throw new Error('no bundle');
    expect(() => parseRenderedBundle(`${rendered.canonical} `, rendered.hash)).toThrow(
      RenderedBundleIntegrityError,
    );
  });
});

describe('orderBundleRefs', () => {
  const ref = (name: string, dependsOn: string[] = []): BundleRef => ({
    name,
    hash: sha256Hash(name),
    namespace: 'default',
    dependsOn,
    driftPolicy: 'correct',
    paused: false,
  });

  it('puts dependencies first, otherwise sorts by name', () => {
    expect(orderBundleRefs([ref('c'), ref('a', ['z']), ref('z'), ref('b')]).map((r) => r.name)).toEqual([
      'b',
      'c',
      'z',
      'a',
    ]);
  });
});

describe("the desired state's tenants", () => {
  const ref = manifest.bundles[0] as BundleRef;
  const tenantRef: BundleRef = { ...ref, name: 'team-a/web', tenant: 'team-a' };

  it('are absent without tenant bundles, so the bytes and hashes of existing desired states stay', () => {
    expect(manifest.tenants).toBeUndefined();
    expect(canonicalDesiredState(manifest)).not.toContain('tenant');
    const withMap = buildDesiredState({
      plan,
      commit: '5f2c1e0',
      generation: 7,
      tenants: new Map([['team-a', ['team-a-*']]]),
    });
    expect(withMap.tenants).toBeUndefined();
    expect(manifestEtag(withMap)).toBe(manifestEtag(manifest));
    expect(desiredContentHash(withMap)).toBe(desiredContentHash(manifest));
  });

  it('carry the namespaces of the tenants the bundles name, signed with the rest', () => {
    const plan2 = {
      ...plan,
      bundles: [...plan.bundles, { ...plan.bundles[0], ref: tenantRef }],
    } as typeof plan;
    const built = buildDesiredState({
      plan: plan2,
      commit: 'c',
      generation: 1,
      tenants: new Map([
        ['team-a', ['team-a', 'team-a-*']],
        ['team-b', ['team-b-*']],
      ]),
    });
    expect(built.tenants).toEqual([{ name: 'team-a', namespaces: ['team-a', 'team-a-*'] }]);
    expect(canonicalDesiredState(built)).toMatch(
      /"kind":"DesiredState","tenants":\[\{"name":"team-a","namespaces":\["team-a","team-a-\*"\]\}\]\}$/,
    );
    const { privateKeyPem, publicKeyPem } = generateSigningKeyPair();
    const signed = JSON.parse(JSON.stringify(signDesiredState(built, privateKeyPem)));
    expect(openSignedDesiredState(signed, publicKeyPem)).toEqual(built);
    // A widened list does not verify.
    signed.manifest.tenants[0].namespaces.push('*');
    expect(() => openSignedDesiredState(signed, publicKeyPem)).toThrow(DesiredStateSignatureError);
    // A changed tenant list is a change for the cluster.
    const narrower = { ...built, tenants: [{ name: 'team-a', namespaces: ['team-a'] }] };
    expect(desiredContentHash(narrower)).not.toBe(desiredContentHash(built));
  });

  it('keep the last good namespaces of a tenant whose held bundle stays', () => {
    const lastGood: DesiredState = {
      ...manifest,
      bundles: [...manifest.bundles, tenantRef],
      tenants: [{ name: 'team-a', namespaces: ['team-a-*'] }],
    };
    const held = { ...plan, status: 'held' } as typeof plan;
    const built = buildDesiredState({ plan: held, commit: 'c', generation: 8, lastGood });
    expect(built.tenants).toEqual([{ name: 'team-a', namespaces: ['team-a-*'] }]);
  });

  it('are checked when parsed', () => {
    const base = JSON.parse(JSON.stringify(manifest));
    const parse = (tenants: unknown) => () => parseDesiredState({ ...base, tenants });
    expect(parse([{ name: 'team-a', namespaces: ['team-a-*'] }])).not.toThrow();
    expect(parse({})).toThrow(/tenants: expected a list/);
    const badRef = { ...base, bundles: [{ ...base.bundles[0], tenant: 'a:b' }] };
    expect(() => parseDesiredState(badRef)).toThrow(/bundles\[0\]\.tenant: expected a DNS-1123 label/);
    expect(parse([{ name: 'Team_A', namespaces: [] }])).toThrow(
      /tenants\[0\]\.name: expected a DNS-1123 label/,
    );
    expect(parse([{ name: 'a', namespaces: ['kube/system'] }])).toThrow(
      /tenants\[0\]\.namespaces\[0\]: "kube\/system" is not a namespace name or glob/,
    );
    expect(parse([{ name: 'a', namespaces: [], extra: 1 }])).toThrow(InvalidDesiredStateError);
    expect(
      parse([
        { name: 'a', namespaces: [] },
        { name: 'a', namespaces: [] },
      ]),
    ).toThrow(/"a" appears twice/);
  });
});
