import { createPublicKey, type KeyObject, verify } from 'node:crypto';
import { GetPublicKeyCommand, type KMSClient, SignCommand } from '@aws-sdk/client-kms';
import { publicKeyFingerprint } from '@flotilla/shared';
import type { Signer } from '@flotilla/shared/hub';

/**
 * KMS signs at most 4096 bytes in `RAW` mode, and pure Ed25519 (`ED25519_SHA_512`, what
 * agents verify) cannot take a digest instead: `ED25519_PH_SHA_512` is HashEdDSA, a
 * different signature that `verifyDesiredState` rejects.
 */
export const kmsMaxMessageBytes = 4096;

export class KmsSigningError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'KmsSigningError';
  }
}

/**
 * Signs desired states with an Ed25519 key that never leaves KMS (key spec
 * `ECC_NIST_EDWARDS25519`, algorithm `ED25519_SHA_512`): the same pure Ed25519 signature
 * over the canonical bytes as {@link Ed25519Signer}, so agents verify it unchanged.
 * Manifests over {@link kmsMaxMessageBytes} cannot be signed this way (about 25 bundles
 * per cluster); use a Secrets Manager-held key for larger fleets.
 *
 * @example
 * const signer = await KmsSigner.open(new KMSClient({}), 'alias/flotilla-signing');
 * const signature = await signer.sign(canonicalJson(manifest));
 */
export class KmsSigner implements Signer {
  readonly keyId: string;
  readonly publicKeyPem: string;
  /** The KMS key (id, ARN or alias) that signs. */
  readonly kmsKeyId: string;
  readonly #kms: Pick<KMSClient, 'send'>;
  readonly #publicKey: KeyObject;

  private constructor(kms: Pick<KMSClient, 'send'>, kmsKeyId: string, publicKey: KeyObject) {
    this.#kms = kms;
    this.kmsKeyId = kmsKeyId;
    this.#publicKey = publicKey;
    this.publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    this.keyId = publicKeyFingerprint(publicKey);
  }

  /** Reads the key's public half (once, at cold start) and checks that it is an Ed25519 signing key. */
  static async open(kms: Pick<KMSClient, 'send'>, kmsKeyId: string): Promise<KmsSigner> {
    const res = await kms.send(new GetPublicKeyCommand({ KeyId: kmsKeyId }));
    if (res.KeySpec !== 'ECC_NIST_EDWARDS25519' || res.KeyUsage !== 'SIGN_VERIFY') {
      throw new KmsSigningError(
        `KMS key ${kmsKeyId} must be an ECC_NIST_EDWARDS25519 SIGN_VERIFY key, got ${res.KeySpec} ${res.KeyUsage}`,
      );
    }
    if (!res.SigningAlgorithms?.includes('ED25519_SHA_512')) {
      throw new KmsSigningError(`KMS key ${kmsKeyId} does not offer ED25519_SHA_512`);
    }
    if (!res.PublicKey) throw new KmsSigningError(`KMS returned no public key for ${kmsKeyId}`);
    const publicKey = createPublicKey({ key: Buffer.from(res.PublicKey), format: 'der', type: 'spki' });
    return new KmsSigner(kms, kmsKeyId, publicKey);
  }

  async sign(canonical: string): Promise<string> {
    const message = Buffer.from(canonical, 'utf8');
    if (message.length > kmsMaxMessageBytes) {
      throw new KmsSigningError(
        `desired state of ${message.length} bytes is over KMS's ${kmsMaxMessageBytes}-byte limit for pure Ed25519; ` +
          'sign with a Secrets Manager-held key instead (FlotillaHub signingKey mode "secret")',
      );
    }
    const res = await this.#kms.send(
      new SignCommand({
        KeyId: this.kmsKeyId,
        Message: message,
        MessageType: 'RAW',
        SigningAlgorithm: 'ED25519_SHA_512',
      }),
    );
    if (!res.Signature) throw new KmsSigningError(`KMS returned no signature (key ${this.kmsKeyId})`);
    const signature = Buffer.from(res.Signature);
    // Checked here rather than trusted: a signature agents would refuse must fail the sync, not the fleet.
    if (!verify(null, message, this.#publicKey, signature)) {
      throw new KmsSigningError(`KMS signature does not verify with the public key of ${this.kmsKeyId}`);
    }
    return signature.toString('base64');
  }
}
