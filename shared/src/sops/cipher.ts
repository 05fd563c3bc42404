import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { SopsScalarType } from './tree.ts';

/** One `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]` value, decoded. */
export interface EncryptedValue {
  readonly data: Buffer;
  readonly iv: Buffer;
  readonly tag: Buffer;
  readonly type: string;
}

// As SOPS matches it: anchored at the start only, greedy fields.
const encPattern = /^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]/;
const base64Pattern = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const gcmTagBytes = 16;
// SOPS uses 256-bit nonces for AES-GCM (GHASH derives the counter from them).
const nonceBytes = 32;

export function looksEncrypted(text: string): boolean {
  return text.startsWith('ENC[');
}

/** Decodes an ENC[] value; the error names which part is wrong, never the value. */
export function parseEncryptedValue(text: string): EncryptedValue {
  const m = encPattern.exec(text);
  if (!m) throw new Error('is not an ENC[AES256_GCM,data:…,iv:…,tag:…,type:…] value');
  const [, data = '', iv = '', tag = '', type = ''] = m;
  const decode = (field: string, b64: string): Buffer => {
    if (!base64Pattern.test(b64)) throw new Error(`has invalid base64 in its ${field}`);
    return Buffer.from(b64, 'base64');
  };
  return { data: decode('data', data), iv: decode('iv', iv), tag: decode('tag', tag), type };
}

/** Thrown when AES-GCM authentication fails: wrong key, changed ciphertext or a moved value. */
export class AuthenticationError extends Error {
  constructor() {
    super('AES-GCM authentication failed');
    this.name = 'AuthenticationError';
  }
}

/** Opens an ENC[] value with the data key and its additional data (the value's path). */
export function openValue(value: EncryptedValue, key: Uint8Array, additionalData: string): Buffer {
  // SOPS hands data||tag to Go's GCM, which takes the last 16 bytes as the tag.
  const sealed = Buffer.concat([value.data, value.tag]);
  if (sealed.length < gcmTagBytes || value.iv.length === 0) throw new AuthenticationError();
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, value.iv, { authTagLength: gcmTagBytes });
    decipher.setAAD(Buffer.from(additionalData, 'utf8'));
    decipher.setAuthTag(sealed.subarray(sealed.length - gcmTagBytes));
    return Buffer.concat([
      decipher.update(sealed.subarray(0, sealed.length - gcmTagBytes)),
      decipher.final(),
    ]);
  } catch {
    throw new AuthenticationError();
  }
}

/** Seals bytes as an ENC[] value of the given SOPS type, with a fresh 256-bit nonce. */
export function sealValue(
  plaintext: Uint8Array,
  type: SopsScalarType | 'comment',
  key: Uint8Array,
  additionalData: string,
): string {
  const iv = randomBytes(nonceBytes);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: gcmTagBytes });
  cipher.setAAD(Buffer.from(additionalData, 'utf8'));
  const data = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const tag = cipher.getAuthTag();
  return `ENC[AES256_GCM,data:${data.toString('base64')},iv:${iv.toString('base64')},tag:${tag.toString('base64')},type:${type}]`;
}
