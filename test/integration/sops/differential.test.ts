import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  decryptSopsFileToMaps,
  encryptSopsFile,
  generateAgeIdentity,
  SopsDecryptError,
  sopsFileRecipients,
} from '@flotilla/shared/sops';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { ensureSops } from '../../bed/src/sops-build.ts';

// Differential tests: files the real `sops` CLI encrypts decrypt in Flotilla's SOPS
// library to exactly what `sops -d` prints (values, types and key order), and files
// the library encrypts decrypt with `sops -d` to the plaintext that went in.

const run = promisify(execFile);
type Format = 'yaml' | 'json';
type KeyPair = { identity: string; recipient: string };

let sops: string;
let dir: string;
let keys: [KeyPair, KeyPair, KeyPair];
let counter = 0;

beforeAll(async () => {
  sops = (await ensureSops()).path;
  dir = mkdtempSync(join(tmpdir(), 'flotilla-sops-'));
  keys = await Promise.all([generateAgeIdentity(), generateAgeIdentity(), generateAgeIdentity()]);
}, 900_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function write(content: string, format: Format): string {
  const path = join(dir, `file-${++counter}.${format}`);
  writeFileSync(path, content);
  return path;
}

/** The environment sops gets: its age identities only, no config from this machine. */
function sopsEnv(identities: readonly string[], viaFile = false): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: dir,
    XDG_CONFIG_HOME: join(dir, 'config'),
    SOPS_DISABLE_VERSION_CHECK: '1',
  };
  if (viaFile) env.SOPS_AGE_KEY_FILE = write(`${identities.join('\n')}\n`, 'yaml');
  else env.SOPS_AGE_KEY = identities.join('\n');
  return env;
}

/**
 * Encrypts with the real sops. Settings without a flag (mac_only_encrypted,
 * encrypted_comment_regex) go into a creation rule of a config file instead.
 */
async function sopsEncrypt(
  plain: string,
  format: Format,
  recipients: readonly string[],
  flags: string[] = [],
  creationRule?: Record<string, unknown>,
) {
  const path = write(plain, format);
  const age = recipients.join(',');
  const args = creationRule
    ? ['--config', write(JSON.stringify({ creation_rules: [{ age, ...creationRule }] }), 'yaml'), 'encrypt']
    : ['encrypt', '--age', age, ...flags];
  const { stdout } = await run(sops, [...args, '--input-type', format, '--output-type', format, path], {
    env: sopsEnv([]),
    cwd: dir,
  });
  return stdout;
}

async function sopsDecrypt(
  encrypted: string,
  format: Format,
  identities: readonly string[],
  viaFile = false,
) {
  const path = write(encrypted, format);
  const { stdout } = await run(sops, ['decrypt', '--input-type', format, '--output-type', format, path], {
    env: sopsEnv(identities, viaFile),
    cwd: dir,
  });
  return stdout;
}

/** Maps become lists of [key, value] pairs, so that comparing compares key order too. */
function ordered(value: unknown): unknown {
  if (value instanceof Map) return [...value.entries()].map(([k, v]) => [k, ordered(v)]);
  if (Array.isArray(value)) return value.map(ordered);
  return value;
}

/** Parses YAML or JSON documents as they are written, mappings as Maps in file order. */
function documents(text: string): unknown[] {
  return parseAllDocuments(text).map((d) => {
    expect(d.errors).toEqual([]);
    return ordered(d.toJS({ mapAsMap: true }));
  });
}

async function expectSameAsSops(encrypted: string, format: Format, identity: string): Promise<unknown[]> {
  const reference = documents(await sopsDecrypt(encrypted, format, [identity]));
  const ours = (await decryptSopsFileToMaps(encrypted, format, [identity], { file: 'f' })).map(ordered);
  expect(ours).toEqual(reference);
  return ours;
}

const secret = `apiVersion: v1
kind: Secret
metadata:
  name: db-credentials
  namespace: prod
  labels:
    app: db
  annotations:
    note: "rotated 2026-12-01"
type: Opaque
stringData:
  username: admin
  password: "s3cr3t: with colon & unicode ✓"
  "10": integer-like key, after
  "2": another
data:
  tls.key: LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0t
`;

const nested = `# a comment sops encrypts
name: app
replicas: 3
ratio: 0.25
big: 1e3
negative: -7
enabled: true
disabled: false
nothing: null
empty: ""
multiline: |
  line one
  line two
owner_plain: team-a
config:
  db:
    host: db.internal
    port: 5432
    hosts_plain: [a, b]
  flags: [true, 1, 2.5, "x", null, {deep: {deeper: "yes"}}]
  list_of_maps:
    - name: first
      value: 1
    - name: second
      value: "2"
"2": integer-like
"1": keys
anchors:
  base: &base {cpu: 100m, memory: 64Mi}
  copy: *base
odd:
  when: 2026-12-01
  answer: yes
  mode: 0644
  hex: 0x1F
  inf: .inf
  tilde: ~
  unicode_ключ: значение
`;

const multi = `kind: ConfigMap
metadata:
  name: one
data:
  a: "1"
---
kind: Secret
metadata:
  name: two
stringData:
  password: p@ss
---
apiVersion: v1
kind: Secret
metadata:
  name: three
data:
  x: eA==
`;

function json(yamlText: string): string {
  return JSON.stringify(parseAllDocuments(yamlText)[0]?.toJS(), null, 2);
}

describe('files encrypted by sops decrypt to what sops -d prints', () => {
  const cases: {
    name: string;
    plain: () => string;
    format: Format;
    flags: string[];
    rule?: Record<string, unknown>;
  }[] = [
    {
      name: 'a Kubernetes Secret, encrypted_regex',
      plain: () => secret,
      format: 'yaml',
      flags: ['--encrypted-regex', '^(data|stringData)$'],
    },
    { name: 'a Kubernetes Secret, everything', plain: () => secret, format: 'yaml', flags: [] },
    {
      name: 'nested YAML, unencrypted_suffix',
      plain: () => nested,
      format: 'yaml',
      flags: ['--unencrypted-suffix', '_plain'],
    },
    {
      name: 'nested YAML, default rule',
      plain: () => nested.replaceAll('_plain', '_unencrypted'),
      format: 'yaml',
      flags: [],
    },
    {
      name: 'nested YAML, encrypted_suffix',
      plain: () => nested,
      format: 'yaml',
      flags: ['--encrypted-suffix', 'host'],
    },
    {
      name: 'nested YAML, unencrypted_regex',
      plain: () => nested,
      format: 'yaml',
      flags: ['--unencrypted-regex', '^(name|db)$'],
    },
    {
      name: 'nested YAML, mac_only_encrypted',
      plain: () => nested,
      format: 'yaml',
      flags: [],
      rule: { encrypted_regex: '^config$', mac_only_encrypted: true },
    },
    {
      name: 'multi-document YAML',
      plain: () => multi,
      format: 'yaml',
      flags: ['--encrypted-regex', '^(data|stringData)$'],
    },
    {
      name: 'YAML, encrypted_comment_regex',
      plain: () => 'public: a\n# sops:enc\nprivate: b\nnested:\n  # sops:enc\n  key: c\n  open: d\n',
      format: 'yaml',
      flags: [],
      rule: { encrypted_comment_regex: 'sops:enc' },
    },
    { name: 'JSON, nested', plain: () => json(nested), format: 'json', flags: [] },
    {
      name: 'JSON, a Secret with encrypted_regex',
      plain: () => json(secret),
      format: 'json',
      flags: ['--encrypted-regex', '^(data|stringData)$'],
    },
    {
      name: 'JSON, unencrypted_suffix',
      plain: () => json(nested),
      format: 'json',
      flags: ['--unencrypted-suffix', '_plain'],
    },
  ];

  for (const c of cases) {
    it(`${c.name}: one recipient`, async () => {
      const encrypted = await sopsEncrypt(c.plain(), c.format, [keys[0].recipient], c.flags, c.rule);
      await expectSameAsSops(encrypted, c.format, keys[0].identity);
    });
  }

  it('several recipients: each identity decrypts, the recipients are listed', async () => {
    const recipients = keys.map((k) => k.recipient);
    const encrypted = await sopsEncrypt(secret, 'yaml', recipients, [
      '--encrypted-regex',
      '^(data|stringData)$',
    ]);
    expect(sopsFileRecipients(encrypted, 'yaml')).toEqual(recipients);
    const results = [];
    for (const k of keys) results.push(await expectSameAsSops(encrypted, 'yaml', k.identity));
    expect(results[1]).toEqual(results[0]);
    // And with the identities in a key file, as a cluster holding several keys would.
    const viaFile = documents(
      await sopsDecrypt(encrypted, 'yaml', [keys[2].identity, keys[1].identity], true),
    );
    expect(viaFile).toEqual(results[0]);
  });

  it('the decrypted Secret holds the plaintext values', async () => {
    const encrypted = await sopsEncrypt(
      secret,
      'yaml',
      [keys[0].recipient],
      ['--encrypted-regex', '^(data|stringData)$'],
    );
    expect(encrypted).not.toContain('s3cr3t');
    const [doc] = (await decryptSopsFileToMaps(encrypted, 'yaml', [keys[0].identity], { file: 'f' })) as [
      Map<string, unknown>,
    ];
    const stringData = doc.get('stringData') as Map<string, unknown>;
    expect([...stringData.keys()]).toEqual(['username', 'password', '10', '2']);
    expect(stringData.get('password')).toBe('s3cr3t: with colon & unicode ✓');
  });

  it('a value changed after sops encrypted the file is refused by both', async () => {
    const encrypted = await sopsEncrypt(
      secret,
      'yaml',
      [keys[0].recipient],
      ['--encrypted-regex', '^(data|stringData)$'],
    );
    const changed = encrypted.replace('namespace: prod', 'namespace: kube-system');
    expect(changed).not.toBe(encrypted);
    await expect(sopsDecrypt(changed, 'yaml', [keys[0].identity])).rejects.toThrow(/MAC mismatch/);
    const err = await decryptSopsFileToMaps(changed, 'yaml', [keys[0].identity], { file: 'f' }).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(SopsDecryptError);
    expect((err as SopsDecryptError).reason).toBe('mac-mismatch');
  });

  it("another cluster's identity is refused by both", async () => {
    const encrypted = await sopsEncrypt(secret, 'yaml', [keys[0].recipient]);
    await expect(sopsDecrypt(encrypted, 'yaml', [keys[1].identity])).rejects.toThrow();
    const err = await decryptSopsFileToMaps(encrypted, 'yaml', [keys[1].identity], { file: 'f' }).catch(
      (e) => e,
    );
    expect((err as SopsDecryptError).reason).toBe('not-encrypted-for-this-cluster');
  });
});

describe('files encrypted by encryptSopsFile decrypt with sops -d', () => {
  const cases: {
    name: string;
    plain: () => string;
    format: Format;
    opts: Parameters<typeof encryptSopsFile>[3];
    /** The plaintext has no values sops normalises, so what comes back is the input itself. */
    exact?: boolean;
  }[] = [
    {
      name: 'a Kubernetes Secret, encryptedRegex',
      plain: () => secret,
      format: 'yaml',
      opts: { encryptedRegex: '^(data|stringData)$' },
      exact: true,
    },
    { name: 'nested YAML, default rule', plain: () => nested, format: 'yaml', opts: {} },
    {
      name: 'nested YAML, unencryptedSuffix',
      plain: () => nested,
      format: 'yaml',
      opts: { unencryptedSuffix: '_plain' },
    },
    {
      name: 'nested YAML, encryptedSuffix',
      plain: () => nested,
      format: 'yaml',
      opts: { encryptedSuffix: 'host' },
    },
    {
      name: 'nested YAML, unencryptedRegex + macOnlyEncrypted',
      plain: () => nested,
      format: 'yaml',
      opts: { unencryptedRegex: '^name$', macOnlyEncrypted: true },
    },
    {
      name: 'multi-document YAML',
      plain: () => multi,
      format: 'yaml',
      opts: { encryptedRegex: '^(data|stringData)$' },
      exact: true,
    },
    { name: 'JSON, nested', plain: () => json(nested), format: 'json', opts: {}, exact: true },
    {
      name: 'JSON, a Secret',
      plain: () => json(secret),
      format: 'json',
      opts: { encryptedRegex: '^(data|stringData)$' },
      exact: true,
    },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      const plain = c.plain();
      const encrypted = await encryptSopsFile(
        plain,
        c.format,
        [keys[0].recipient, keys[1].recipient],
        c.opts,
      );
      // What sops itself gives back for this plaintext: the input, with values normalised
      // the way its YAML reader reads them (dates become times, 0644 becomes 420).
      const reference = documents(
        await sopsDecrypt(await sopsEncrypt(plain, c.format, [keys[0].recipient]), c.format, [
          keys[0].identity,
        ]),
      );
      if (c.exact) expect(reference).toEqual(documents(plain));
      for (const k of [keys[0], keys[1]]) {
        expect(documents(await sopsDecrypt(encrypted, c.format, [k.identity]))).toEqual(reference);
      }
      // sops can take it over: re-encrypting (rotating the data key) keeps the content.
      const path = write(encrypted, c.format);
      await run(sops, ['rotate', '--in-place', '--input-type', c.format, '--output-type', c.format, path], {
        env: sopsEnv([keys[0].identity]),
        cwd: dir,
      });
    });
  }
});
