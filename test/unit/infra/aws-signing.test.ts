/**
 * The hub's signing in AWS: the KMS signer and the signing key read from Secrets Manager
 * at cold start. Both must produce exactly what agents verify (pure Ed25519 over the
 * canonical manifest). KMS is played by a fake that signs with a local key, as KMS's
 * ED25519_SHA_512 does.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { GetPublicKeyCommand, SignCommand } from '@aws-sdk/client-kms';
import {
  canonicalDesiredState,
  type DesiredState,
  parseDesiredState,
  publicKeyFingerprint,
  verifyDesiredState,
} from '@flotilla/shared';
import { describe, expect, it } from 'vitest';
import {
  KmsSigner,
  KmsSigningError,
  kmsMaxMessageBytes,
} from '../../../functions/src/adapters/kms-signer.ts';
import { Ed25519Signer } from '../../../functions/src/adapters/local-signer.ts';
import { loadConfig } from '../../../functions/src/config.ts';
import {
  openHubContext,
  resolveHubSecrets,
  signingKeyFromSecret,
} from '../../../functions/src/hub-context.ts';

function manifest(bundles: number): DesiredState {
  return parseDesiredState({
    apiVersion: 'flotilla.dev/v1alpha1',
    kind: 'DesiredState',
    cluster: 'edge-eu-1',
    generation: 3,
    commit: 'a'.repeat(40),
    bundles: Array.from({ length: bundles }, (_, i) => ({
      name: `bundle-${i}`,
      hash: `sha256:${i.toString(16).padStart(64, '0')}`,
      namespace: `ns-${i}`,
      dependsOn: [],
      driftPolicy: 'correct',
      paused: false,
    })),
  });
}

/** KMS as seen through the SDK: GetPublicKey and Sign with ED25519_SHA_512 over RAW messages. */
class FakeKms {
  readonly calls: string[] = [];
  readonly #key: KeyObject;
  readonly #spec: string;
  /** The key Sign uses; another than the public key's simulates a broken or swapped key. */
  signingKey: KeyObject;

  constructor(key: KeyObject, spec = 'ECC_NIST_EDWARDS25519') {
    this.#key = key;
    this.#spec = spec;
    this.signingKey = key;
  }

  async send(command: unknown): Promise<Record<string, unknown>> {
    if (command instanceof GetPublicKeyCommand) {
      this.calls.push('GetPublicKey');
      return {
        KeySpec: this.#spec,
        KeyUsage: 'SIGN_VERIFY',
        SigningAlgorithms: ['ED25519_SHA_512', 'ED25519_PH_SHA_512'],
        PublicKey: createPublicKey(this.#key).export({ type: 'spki', format: 'der' }),
      };
    }
    if (command instanceof SignCommand) {
      this.calls.push('Sign');
      const { Message, MessageType, SigningAlgorithm } = command.input;
      if (
        MessageType !== 'RAW' ||
        SigningAlgorithm !== 'ED25519_SHA_512' ||
        !Message ||
        Message.length > 4096
      ) {
        throw new Error('ValidationException');
      }
      return { Signature: sign(null, Message, this.signingKey) };
    }
    throw new Error(`unexpected command ${String(command)}`);
  }
}

const { privateKey } = generateKeyPairSync('ed25519');

describe('KmsSigner', () => {
  it('signs exactly as the in-memory signer does, and agents verify it', async () => {
    const kms = new FakeKms(privateKey);
    const signer = await KmsSigner.open(kms as never, 'alias/flotilla-signing');
    const local = new Ed25519Signer(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    expect(signer.keyId).toBe(local.keyId);
    expect(signer.publicKeyPem).toBe(local.publicKeyPem);
    const m = manifest(3);
    const signature = await signer.sign(canonicalDesiredState(m));
    // Ed25519 is deterministic: the same key over the same bytes gives the same signature.
    expect(signature).toBe(await local.sign(canonicalDesiredState(m)));
    expect(verifyDesiredState({ manifest: m, signature, keyId: signer.keyId }, signer.publicKeyPem)).toBe(
      true,
    );
    expect(kms.calls).toEqual(['GetPublicKey', 'Sign']);
  });

  it(`refuses manifests over KMS's ${kmsMaxMessageBytes}-byte limit without calling KMS`, async () => {
    const kms = new FakeKms(privateKey);
    const signer = await KmsSigner.open(kms as never, 'k');
    const small = canonicalDesiredState(manifest(20));
    const large = canonicalDesiredState(manifest(50));
    expect(Buffer.byteLength(small)).toBeLessThanOrEqual(kmsMaxMessageBytes);
    expect(Buffer.byteLength(large)).toBeGreaterThan(kmsMaxMessageBytes);
    await expect(signer.sign(small)).resolves.toMatch(/^[A-Za-z0-9+/]+=*$/);
    await expect(signer.sign(large)).rejects.toThrow(/over KMS's 4096-byte limit/);
    expect(kms.calls.filter((c) => c === 'Sign')).toHaveLength(1);
  });

  it('refuses a key that is not an Ed25519 signing key', async () => {
    await expect(KmsSigner.open(new FakeKms(privateKey, 'ECC_NIST_P256') as never, 'k')).rejects.toThrow(
      KmsSigningError,
    );
  });

  it('refuses a signature that does not verify', async () => {
    const other = generateKeyPairSync('ed25519').privateKey;
    const kms = new FakeKms(privateKey);
    const signer = await KmsSigner.open(kms as never, 'k');
    kms.signingKey = other;
    await expect(signer.sign('{}')).rejects.toThrow(/does not verify/);
  });
});

describe('secrets read at cold start', () => {
  const base = { AWS_REGION: 'eu-west-1', FLOTILLA_FLEET_REPO_URL: 'https://git.acme.test/fleet.git' };

  it('derives the same Ed25519 key from a generated seed every time, and accepts a PEM as is', () => {
    const seed = JSON.stringify({ ed25519Seed: 'q'.repeat(64) });
    const pem = signingKeyFromSecret(seed);
    expect(createPrivateKey(pem).asymmetricKeyType).toBe('ed25519');
    expect(signingKeyFromSecret(seed)).toBe(pem);
    expect(
      publicKeyFingerprint(signingKeyFromSecret(JSON.stringify({ ed25519Seed: 'r'.repeat(64) }))),
    ).not.toBe(publicKeyFingerprint(pem));
    const own = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expect(signingKeyFromSecret(own)).toBe(own);
    expect(() => signingKeyFromSecret('{"ed25519Seed":"short"}')).toThrow(/at least 32/);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({
      type: 'pkcs8',
      format: 'pem',
    });
    expect(() => signingKeyFromSecret(rsa.toString())).toThrow(/must be Ed25519/);
  });

  it('fills in the signing key, webhook secret and repo credentials from their secrets', async () => {
    const config = loadConfig({
      ...base,
      FLOTILLA_SIGNING_KEY_SECRET_ID: 'sk',
      FLOTILLA_WEBHOOK_SECRET_ID: 'wh',
      FLOTILLA_FLEET_REPO_CREDENTIALS_SECRET_ID: 'cr',
    });
    expect(config.signingKeyPem).toBe('');
    const secrets: Record<string, string> = {
      sk: JSON.stringify({ ed25519Seed: 's'.repeat(64) }),
      wh: 'w'.repeat(48),
      cr: JSON.stringify({ username: 'bot', password: 'p4ss' }),
    };
    const read: string[] = [];
    const resolved = await resolveHubSecrets(config, async (id) => {
      read.push(id);
      return secrets[id] as string;
    });
    expect(read.sort()).toEqual(['cr', 'sk', 'wh']);
    expect(resolved.signingKeyPem).toContain('PRIVATE KEY');
    expect(resolved.webhookSecret).toBe('w'.repeat(48));
    expect(resolved.fleetRepo.auth).toEqual({ username: 'bot', password: 'p4ss' });
  });

  it('reports every bad secret at once', async () => {
    const config = loadConfig({
      ...base,
      FLOTILLA_SIGNING_KEY_SECRET_ID: 'sk',
      FLOTILLA_WEBHOOK_SECRET_ID: 'wh',
      FLOTILLA_FLEET_REPO_CREDENTIALS_SECRET_ID: 'cr',
    });
    const bad: Record<string, string> = { sk: 'nope', wh: 'short', cr: '{"user":"x"}' };
    const err = await resolveHubSecrets(config, async (id) => bad[id] as string).catch((e: Error) => e);
    expect(String(err)).toMatch(/secret sk: .*\n.*secret wh: .*\n.*secret cr: /);
  });

  it('builds the hub context with a KMS signer, leaving a PEM-configured hub as it was', async () => {
    const kms = new FakeKms(privateKey);
    const hub = await openHubContext(loadConfig({ ...base, FLOTILLA_SIGNING_KMS_KEY_ID: 'alias/x' }), {
      kms: kms as never,
      readSecret: async () => {
        throw new Error('no secret to read');
      },
    });
    expect(hub.signer).toBeInstanceOf(KmsSigner);
    expect(hub.signer.keyId).toBe(publicKeyFingerprint(createPublicKey(privateKey)));

    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const local = await openHubContext(loadConfig({ ...base, FLOTILLA_SIGNING_KEY: pem }));
    expect(local.signer).toBeInstanceOf(Ed25519Signer);
  });

  it('refuses more than one source of the signing key', () => {
    expect(() =>
      loadConfig({ ...base, FLOTILLA_SIGNING_KEY_SECRET_ID: 'sk', FLOTILLA_SIGNING_KMS_KEY_ID: 'k' }),
    ).toThrow(
      /only one of FLOTILLA_SIGNING_KEY, FLOTILLA_SIGNING_KEY_SECRET_ID and FLOTILLA_SIGNING_KMS_KEY_ID/,
    );
    expect(() => loadConfig(base)).toThrow(/FLOTILLA_SIGNING_KEY is required/);
  });
});
