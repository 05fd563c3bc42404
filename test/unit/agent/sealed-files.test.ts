/**
 * The agent's decryption step, with real SOPS files (made by the library the CLI uses,
 * which the differential tests hold to `sops -d`) and a plain fake of its key port.
 */
import type { SealedFile } from '@flotilla/shared/agent';
import { encryptSopsFile, generateAgeIdentity } from '@flotilla/shared/sops';
import { describe, expect, it } from 'vitest';
import type { SecretKeysPort } from '../../../agent/src/reconcile/ports.ts';
import { openSealedFiles, SealedFileError } from '../../../agent/src/reconcile/sealed-files.ts';

const PLAIN = `apiVersion: v1
kind: Secret
metadata:
  name: db-credentials
type: Opaque
stringData:
  password: correct-horse-battery-staple
`;

const keys = (...identities: string[]): SecretKeysPort => ({ identities: async () => identities });

async function sealed(
  recipient: string,
  objects: SealedFile['objects'] = [
    { apiVersion: 'v1', kind: 'Secret', name: 'db-credentials', namespace: 'web' },
  ],
): Promise<SealedFile> {
  const content = await encryptSopsFile(PLAIN, 'yaml', [recipient], {
    encryptedRegex: '^(data|stringData)$',
  });
  return { file: 'bundles/db/secret.enc.yaml', format: 'yaml', content, objects };
}

async function refusal(p: Promise<unknown>): Promise<SealedFileError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SealedFileError);
  const e = err as SealedFileError;
  expect(`${e.message} ${JSON.stringify(e)} ${e.stack}`).not.toContain('correct-horse');
  return e;
}

describe('opening a bundle SOPS files in the agent', () => {
  it('gives the plaintext objects, with the namespace the hub recorded', async () => {
    const mine = await generateAgeIdentity();
    const other = await generateAgeIdentity();
    const objects = await openSealedFiles(
      [await sealed(mine.recipient)],
      keys(other.identity, mine.identity),
    );
    expect(objects).toEqual([
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'db-credentials', namespace: 'web' },
        type: 'Opaque',
        stringData: { password: 'correct-horse-battery-staple' },
      },
    ]);
  });

  it('refuses a file encrypted for another cluster, saying so', async () => {
    const mine = await generateAgeIdentity();
    const other = await generateAgeIdentity();
    const e = await refusal(openSealedFiles([await sealed(other.recipient)], keys(mine.identity)));
    expect(e.reason).toBe('not-encrypted-for-this-cluster');
    expect(e.file).toBe('bundles/db/secret.enc.yaml');
    expect(e.message).toContain('bundles/db/secret.enc.yaml');
  });

  it('refuses a tampered value, naming its path', async () => {
    const mine = await generateAgeIdentity();
    const file = await sealed(mine.recipient);
    const content = file.content.replace(
      /(password: ENC\[AES256_GCM,data:)(.)/,
      (_, head: string, c: string) => `${head}${c === 'A' ? 'B' : 'A'}`,
    );
    expect(content).not.toBe(file.content);
    const e = await refusal(openSealedFiles([{ ...file, content }], keys(mine.identity)));
    expect(e.reason).toBe('tampered');
    expect(e.message).toContain('stringData.password');
  });

  it('refuses a file whose objects are not those the hub recorded', async () => {
    const mine = await generateAgeIdentity();
    const file = await sealed(mine.recipient, [
      { apiVersion: 'v1', kind: 'Secret', name: 'other', namespace: 'web' },
    ]);
    const e = await refusal(openSealedFiles([file], keys(mine.identity)));
    expect(e.reason).toBe('identity-mismatch');
    expect(e.message).toBe(
      'bundles/db/secret.enc.yaml: document 1 is not the Secret "other" the hub recorded',
    );
  });

  it('fails without a key, and does nothing for bundles without SOPS files', async () => {
    const mine = await generateAgeIdentity();
    expect(await openSealedFiles([], undefined)).toEqual([]);
    const e = await refusal(openSealedFiles([await sealed(mine.recipient)], undefined));
    expect(e.reason).toBe('no-key');
    expect((await refusal(openSealedFiles([await sealed(mine.recipient)], keys()))).reason).toBe('no-key');
  });
});
