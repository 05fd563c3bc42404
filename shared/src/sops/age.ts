import { armor, Decrypter, Encrypter, generateX25519Identity, identityToRecipient } from 'age-encryption';
import type { AgeStanza } from './metadata.ts';

/** An age key pair: the identity stays in the cluster, the recipient is public. */
export interface AgeKeyPair {
  /** `AGE-SECRET-KEY-1…`: secret, never logged. */
  readonly identity: string;
  /** `age1…`: what files are encrypted to. */
  readonly recipient: string;
}

/** Generates an X25519 age identity (the kind `age-keygen` makes and SOPS reads). */
export async function generateAgeIdentity(): Promise<AgeKeyPair> {
  const identity = await generateX25519Identity();
  return { identity, recipient: await identityToRecipient(identity) };
}

/** The public recipient of an age identity. The error never repeats the identity. */
export async function ageRecipientOf(identity: string): Promise<string> {
  try {
    return await identityToRecipient(identity.trim());
  } catch {
    throw new Error('not a valid age identity (expected AGE-SECRET-KEY-1…)');
  }
}

/** The data key wrapped for one recipient, armored as SOPS stores it. */
export async function wrapDataKey(dataKey: Uint8Array, recipient: string): Promise<AgeStanza> {
  const encrypter = new Encrypter();
  try {
    encrypter.addRecipient(recipient);
  } catch (cause) {
    throw new Error(`${JSON.stringify(recipient)} is not a valid age recipient (expected age1…)`, { cause });
  }
  return { recipient, enc: armor.encode(await encrypter.encrypt(dataKey)) };
}

export type UnwrapResult =
  | { readonly ok: true; readonly dataKey: Uint8Array }
  | { readonly ok: false; readonly why: 'no-identity' | 'tampered' | 'malformed'; readonly detail: string };

/**
 * Opens the first stanza any identity can open. Fails with `no-identity` only when
 * every stanza was readable and none was for these identities, so a damaged stanza
 * is never reported as "not for this cluster".
 */
export async function unwrapDataKey(
  stanzas: readonly AgeStanza[],
  identities: readonly string[],
): Promise<UnwrapResult> {
  const decrypter = new Decrypter();
  for (const [i, identity] of identities.entries()) {
    try {
      decrypter.addIdentity(identity.trim());
    } catch {
      // The library's message may quote the key: say only which one.
      throw new Error(`age identity #${i + 1} is not a valid age identity (expected AGE-SECRET-KEY-1…)`);
    }
  }
  let damaged: UnwrapResult | undefined;
  for (const stanza of stanzas) {
    let file: Uint8Array;
    try {
      file = armor.decode(stanza.enc);
    } catch {
      damaged ??= {
        ok: false,
        why: 'malformed',
        detail: `the data key for ${stanza.recipient} is not armored age data`,
      };
      continue;
    }
    try {
      return { ok: true, dataKey: await decrypter.decrypt(file) };
    } catch (err) {
      const message = err instanceof Error ? err.message : '';
      if (message.startsWith('no identity matched')) continue;
      damaged ??= /invalid (stanza|header$|version)/.test(message)
        ? {
            ok: false,
            why: 'malformed',
            detail: `the data key for ${stanza.recipient} is not a valid age file`,
          }
        : {
            ok: false,
            why: 'tampered',
            detail: `the data key for ${stanza.recipient} fails age authentication`,
          };
    }
  }
  return damaged ?? { ok: false, why: 'no-identity', detail: '' };
}
