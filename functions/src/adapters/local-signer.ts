import { createPrivateKey, createPublicKey, type KeyObject, sign } from 'node:crypto';
import { publicKeyFingerprint } from '@flotilla/shared';
import type { Signer } from '@flotilla/shared/hub';

/** Signs with an Ed25519 private key held in memory (local hub, tests, or a key from Secrets Manager). */
export class Ed25519Signer implements Signer {
  readonly keyId: string;
  readonly publicKeyPem: string;
  readonly #key: KeyObject;

  constructor(privateKeyPem: string) {
    this.#key = createPrivateKey(privateKeyPem);
    if (this.#key.asymmetricKeyType !== 'ed25519') {
      throw new TypeError(`signing key must be Ed25519, got ${this.#key.asymmetricKeyType}`);
    }
    const publicKey = createPublicKey(this.#key);
    this.publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    this.keyId = publicKeyFingerprint(publicKey);
  }

  async sign(canonical: string): Promise<string> {
    return sign(null, Buffer.from(canonical, 'utf8'), this.#key).toString('base64');
  }
}
