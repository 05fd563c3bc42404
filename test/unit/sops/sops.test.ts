import {
  ageRecipientOf,
  decryptSopsFile,
  decryptSopsFileToMaps,
  encryptSopsFile,
  generateAgeIdentity,
  isSopsFile,
  SopsDecryptError,
  type SopsDecryptReason,
  sopsFileRecipients,
} from '@flotilla/shared/sops';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const file = 'bundles/db/secret.yaml';
const password = 'hunter2-very-secret';

const secretYaml = `apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: prod
type: Opaque
stringData:
  password: ${password}
  "2": integer-like key
  "1": goes after it
data:
  token: c2VjcmV0LXRva2Vu
`;

let us: { identity: string; recipient: string };
let them: { identity: string; recipient: string };

beforeAll(async () => {
  us = await generateAgeIdentity();
  them = await generateAgeIdentity();
});

/** Runs `fn`, expects a SopsDecryptError, and checks no secret leaks into it. */
async function refusal(fn: () => Promise<unknown>, reason: SopsDecryptReason): Promise<SopsDecryptError> {
  const err = await fn().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SopsDecryptError);
  const e = err as SopsDecryptError;
  expect(e.reason).toBe(reason);
  expect(e.name).toBe('SopsDecryptError');
  expect(e.message).toContain(file);
  const seen = [e.message, e.stack ?? '', String(e.cause ?? ''), JSON.stringify(e)].join('\n');
  for (const secret of [password, 'c2VjcmV0LXRva2Vu', 'secret-token', us.identity, them.identity]) {
    expect(seen).not.toContain(secret);
  }
  return e;
}

describe('age keys', () => {
  it('generates an X25519 identity and derives its recipient', async () => {
    expect(us.identity).toMatch(/^AGE-SECRET-KEY-1[0-9A-Z]+$/);
    expect(us.recipient).toMatch(/^age1[0-9a-z]+$/);
    expect(await ageRecipientOf(us.identity)).toBe(us.recipient);
  });

  it('never repeats a bad identity in its error', async () => {
    const bad = 'AGE-SECRET-KEY-1NOTAKEYNOTAKEYNOTAKEY';
    await expect(ageRecipientOf(bad)).rejects.toThrow(/not a valid age identity/);
    await ageRecipientOf(bad).catch((e: Error) => expect(e.message).not.toContain(bad));
  });
});

describe('encryptSopsFile / decryptSopsFile', () => {
  it('round-trips YAML with key order, types and the sops key removed', async () => {
    const plain = `${secretYaml}replicas: 3\nratio: 1.5\nenabled: true\nnothing: null\nlist:\n  - a\n  - 2\n  - nested: {x: false}\nempty: ""\n`;
    const encrypted = await encryptSopsFile(plain, 'yaml', [us.recipient, them.recipient]);
    expect(encrypted).not.toContain(password);
    expect(isSopsFile(encrypted, 'yaml')).toBe(true);
    expect(isSopsFile(plain, 'yaml')).toBe(false);
    expect(sopsFileRecipients(encrypted, 'yaml')).toEqual([us.recipient, them.recipient]);

    for (const identity of [us.identity, them.identity]) {
      const [doc] = await decryptSopsFile(encrypted, 'yaml', [identity], { file });
      expect(doc).toEqual(parse(plain));
      expect(Object.keys(doc as object)).toEqual(Object.keys(parse(plain)));
      expect(Object.keys((doc as { stringData: object }).stringData)).toEqual(['1', '2', 'password']);
    }
  });

  it('round-trips JSON, keeping ints and floats apart', async () => {
    const plain = JSON.stringify({
      data: { password, n: 42, f: 2.5, big: 12345678901234, t: true },
      z: [1, 'two'],
    });
    const encrypted = await encryptSopsFile(plain, 'json', [us.recipient]);
    expect(encrypted).not.toContain(password);
    expect(encrypted).toContain('type:int');
    expect(encrypted).toContain('type:float');
    expect(await decryptSopsFile(encrypted, 'json', [us.identity], { file })).toEqual([JSON.parse(plain)]);
  });

  it('round-trips multi-document YAML', async () => {
    const plain = 'a: 1\n---\nb: two\n---\nc: [3]\n';
    const encrypted = await encryptSopsFile(plain, 'yaml', [us.recipient]);
    expect(await decryptSopsFile(encrypted, 'yaml', [us.identity], { file })).toEqual([
      { a: 1 },
      { b: 'two' },
      { c: [3] },
    ]);
  });

  it('encrypts only what the rule selects', async () => {
    const encrypted = await encryptSopsFile(secretYaml, 'yaml', [us.recipient], {
      encryptedRegex: '^(data|stringData)$',
    });
    const doc = parse(encrypted);
    expect(doc.metadata.name).toBe('db');
    expect(doc.stringData.password).toMatch(/^ENC\[AES256_GCM,/);
    expect(doc.sops.encrypted_regex).toBe('^(data|stringData)$');
    expect(await decryptSopsFile(encrypted, 'yaml', [us.identity], { file })).toEqual([parse(secretYaml)]);

    const suffixed = await encryptSopsFile('user_plain: admin\npass: x\n', 'yaml', [us.recipient], {
      unencryptedSuffix: '_plain',
    });
    expect(parse(suffixed).user_plain).toBe('admin');
    expect(parse(suffixed).pass).toMatch(/^ENC\[/);
  });

  it('refuses plaintext that already has sops metadata, and conflicting rules', async () => {
    const encrypted = await encryptSopsFile(secretYaml, 'yaml', [us.recipient]);
    await expect(encryptSopsFile(encrypted, 'yaml', [us.recipient])).rejects.toThrow(/already/);
    await expect(
      encryptSopsFile(secretYaml, 'yaml', [us.recipient], { encryptedRegex: 'a', unencryptedSuffix: 'b' }),
    ).rejects.toThrow(/at most one/);
  });
});

describe('semantics', () => {
  it('keeps JSON key order, integer-like keys included, with decryptSopsFileToMaps', async () => {
    const encrypted = await encryptSopsFile('{"b": 1, "2": "x", "1": {"z": 1, "10": 2, "a": 3}}', 'json', [
      us.recipient,
    ]);
    const [doc] = (await decryptSopsFileToMaps(encrypted, 'json', [us.identity], { file })) as [
      Map<string, unknown>,
    ];
    expect([...doc.keys()]).toEqual(['b', '2', '1']);
    expect([...(doc.get('1') as Map<string, unknown>).keys()]).toEqual(['z', '10', 'a']);
  });

  it('opens the file with whichever of several identities it is encrypted for', async () => {
    const encrypted = await encryptSopsFile(secretYaml, 'yaml', [us.recipient]);
    const [doc] = await decryptSopsFile(encrypted, 'yaml', [them.identity, us.identity], { file });
    expect((doc as { stringData: { password: string } }).stringData.password).toBe(password);
  });

  it('with macOnlyEncrypted, plaintext values may change but encrypted ones may not', async () => {
    const encrypted = await encryptSopsFile(secretYaml, 'yaml', [us.recipient], {
      encryptedRegex: '^(data|stringData)$',
      macOnlyEncrypted: true,
    });
    expect(encrypted).toContain('mac_only_encrypted: true');
    const relabelled = encrypted.replace('namespace: prod', 'namespace: staging');
    const [doc] = await decryptSopsFile(relabelled, 'yaml', [us.identity], { file });
    expect((doc as { metadata: { namespace: string } }).metadata.namespace).toBe('staging');

    // Dropping an encrypted value is caught by the MAC.
    const token = parse(encrypted).data.token as string;
    const dropped = encrypted.replace(token, '""');
    await refusal(() => decryptSopsFile(dropped, 'yaml', [us.identity], { file }), 'mac-mismatch');
  });
});

describe('refusals', () => {
  let encrypted: string;
  beforeAll(async () => {
    encrypted = await encryptSopsFile(secretYaml, 'yaml', [us.recipient], {
      encryptedRegex: '^(data|stringData)$',
    });
  });

  it('a flipped ciphertext byte is tampered, naming the value', async () => {
    const doc = parse(encrypted);
    const enc: string = doc.stringData.password;
    const data = /data:([^,]+),/.exec(enc)?.[1] ?? '';
    const bytes = Buffer.from(data, 'base64');
    bytes[0] = (bytes[0] ?? 0) ^ 1;
    const flipped = encrypted.replace(data, bytes.toString('base64'));
    const e = await refusal(() => decryptSopsFile(flipped, 'yaml', [us.identity], { file }), 'tampered');
    expect(e.message).toContain('stringData.password');
    expect(e.path).toBe('stringData.password');
  });

  it('a value moved to another key is tampered (the path is authenticated)', async () => {
    const doc = parse(encrypted);
    const moved = encrypted.replace(doc.data.token, doc.stringData.password);
    const e = await refusal(() => decryptSopsFile(moved, 'yaml', [us.identity], { file }), 'tampered');
    expect(e.message).toContain('data.token');
  });

  it('a changed MAC is a MAC mismatch', async () => {
    const mac: string = parse(encrypted).sops.mac;
    const other = parse(await encryptSopsFile(secretYaml, 'yaml', [us.recipient])).sops.mac as string;
    const e = await refusal(
      () => decryptSopsFile(encrypted.replace(mac, other), 'yaml', [us.identity], { file }),
      'mac-mismatch',
    );
    expect(e.message).toMatch(/MAC/);
  });

  it('a changed plaintext value is a MAC mismatch', async () => {
    const changed = encrypted.replace('namespace: prod', 'namespace: kube-system');
    expect(changed).not.toBe(encrypted);
    await refusal(() => decryptSopsFile(changed, 'yaml', [us.identity], { file }), 'mac-mismatch');
  });

  it("another cluster's key is not-encrypted-for-this-cluster, listing the recipients", async () => {
    const e = await refusal(
      () => decryptSopsFile(encrypted, 'yaml', [them.identity], { file }),
      'not-encrypted-for-this-cluster',
    );
    expect(e.message).toContain(us.recipient);
  });

  it('a truncated file is malformed', async () => {
    for (const cut of [
      encrypted.slice(0, encrypted.indexOf('sops:')),
      encrypted.slice(0, encrypted.length - 40),
    ]) {
      await refusal(() => decryptSopsFile(cut, 'yaml', [us.identity], { file }), 'malformed');
    }
    await refusal(
      () => decryptSopsFile('{"data": {"a": "ENC[', 'json', [us.identity], { file }),
      'malformed',
    );
  });

  it('bad ENC[] syntax and plaintext where ciphertext belongs are malformed', async () => {
    const doc = parse(encrypted);
    const enc: string = doc.stringData.password;
    const e = await refusal(
      () =>
        decryptSopsFile(encrypted.replace(enc, 'ENC[AES256_GCM,data:!!]'), 'yaml', [us.identity], { file }),
      'malformed',
    );
    expect(e.message).toContain('stringData.password');
    await refusal(
      () => decryptSopsFile(encrypted.replace(enc, password), 'yaml', [us.identity], { file }),
      'malformed',
    );
  });

  it("a damaged data-key stanza is not mistaken for another cluster's file", async () => {
    const enc: string = parse(encrypted).sops.age[0].enc;
    const lines = enc.split('\n');
    lines[2] = `${lines[2]?.slice(0, -4)}AAAA`;
    const damaged = encrypted.replace(enc.split('\n')[2] ?? '', lines[2] ?? '');
    expect(damaged).not.toBe(encrypted);
    const e = await refusal(() => decryptSopsFile(damaged, 'yaml', [us.identity], { file }), 'tampered');
    expect(e.message).toContain(us.recipient);
  });

  it('syntax errors name the position, not the text around it', async () => {
    const broken = `stringData:\n  password: ${password}\n  other: [unclosed\nsops: {}\n`;
    const e = await refusal(() => decryptSopsFile(broken, 'yaml', [us.identity], { file }), 'malformed');
    expect(e.message).toMatch(/line \d+/);
    const json = `{"password": "${password}", "x": tru}`;
    const j = await refusal(() => decryptSopsFile(json, 'json', [us.identity], { file }), 'malformed');
    expect(j.message).toMatch(/line 1, column \d+/);
  });

  it('a file without sops metadata is malformed', async () => {
    const e = await refusal(() => decryptSopsFile(secretYaml, 'yaml', [us.identity], { file }), 'malformed');
    expect(e.message).toMatch(/sops/);
  });
});
