/**
 * SOPS files with age recipients: the format fleet admins keep secrets in, in Git.
 * The agent decrypts them just before apply; the CLI encrypts them and reads their
 * recipients. Files are ordinary SOPS files, so `sops` itself reads and writes them.
 *
 * The walk follows SOPS's file format: every value selected by the file's rule is
 * `ENC[AES256_GCM,…]` sealed with the data key and its path (`data:password:`) as
 * additional data; the MAC is a SHA-512 over the plaintext values in document
 * order (all values, or only encrypted ones with `mac_only_encrypted`), sealed with
 * `lastmodified` as additional data; the data key is age-encrypted per recipient.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ageRecipientOf, generateAgeIdentity, unwrapDataKey, wrapDataKey } from './age.ts';
import { AuthenticationError, looksEncrypted, openValue, parseEncryptedValue, sealValue } from './cipher.ts';
import { SopsDecryptError, SopsEncryptError } from './errors.ts';
import {
  defaultRule,
  type EncryptionRule,
  findMetadata,
  MetadataError,
  macAdditionalData,
  metadataNode,
  readMetadata,
  type SopsMetadata,
  sopsMetadataKey,
} from './metadata.ts';
import {
  emitTree,
  formatGoFloat,
  parseGoBool,
  parseGoFloat,
  parseGoInt,
  parseTree,
  type SopsFormat,
  str,
  type TreeMap,
  type TreeNode,
  type TreeScalar,
  TreeSyntaxError,
  toPlain,
} from './tree.ts';

export type { AgeKeyPair } from './age.ts';
export { SopsDecryptError, type SopsDecryptReason, SopsEncryptError, sopsDecryptReasons } from './errors.ts';
export { sopsFormatVersion } from './metadata.ts';
export type { SopsFormat };
export { ageRecipientOf, generateAgeIdentity };

// SOPS seeds the MAC with sha256("sops") when it covers encrypted values only, so
// the two kinds of MAC can never be confused.
const macOnlyEncryptedSeed = createHash('sha256').update('sops').digest();

/** True when the content parses and its (first) document has top-level `sops` metadata. */
export function isSopsFile(content: string, format: SopsFormat): boolean {
  try {
    return findMetadata(parseTree(content, format)[0])?.kind === 'map';
  } catch {
    return false;
  }
}

/** The age recipients a SOPS file's data key is encrypted for, in file order. */
export function sopsFileRecipients(
  content: string,
  format: SopsFormat,
  opts: { file?: string } = {},
): string[] {
  const file = opts.file ?? '(sops file)';
  return load(content, format, file).metadata.age.map((a) => a.recipient);
}

export interface DecryptOptions {
  /** Repo-relative path, used in error messages. */
  readonly file: string;
}

/**
 * Decrypts a SOPS file with the cluster's age identities and returns its documents
 * in plaintext (the `sops` key removed), values typed as SOPS types them. Refuses,
 * with a {@link SopsDecryptError}, a file not encrypted for these identities, a value
 * that fails authentication, a MAC that does not verify and a file it cannot read.
 *
 * @example
 * const [secret] = await decryptSopsFile(text, 'yaml', [identity], { file: 'bundles/db/secret.yaml' });
 */
export async function decryptSopsFile(
  content: string,
  format: SopsFormat,
  identities: readonly string[],
  opts: DecryptOptions,
): Promise<Record<string, unknown>[]> {
  const docs = await decryptTrees(content, format, identities, opts.file);
  return docs.map((d) => toPlain(d) as Record<string, unknown>);
}

/**
 * {@link decryptSopsFile} with every mapping as a `Map`, so that key order is the
 * file's even for integer-like keys (which plain objects move to the front).
 */
export async function decryptSopsFileToMaps(
  content: string,
  format: SopsFormat,
  identities: readonly string[],
  opts: DecryptOptions,
): Promise<Map<string, unknown>[]> {
  const docs = await decryptTrees(content, format, identities, opts.file);
  return docs.map((d) => toPlain(d, { maps: true }) as Map<string, unknown>);
}

async function decryptTrees(
  content: string,
  format: SopsFormat,
  identities: readonly string[],
  file: string,
): Promise<TreeMap[]> {
  const { docs, metadata } = load(content, format, file);

  const unwrapped = await unwrapDataKey(metadata.age, identities);
  if (!unwrapped.ok) {
    if (unwrapped.why === 'no-identity') throw notForThisCluster(file, metadata);
    throw new SopsDecryptError(unwrapped.why, file, unwrapped.detail);
  }
  const dataKey = unwrapped.dataKey;
  if (dataKey.length !== 32) throw new SopsDecryptError('malformed', file, 'the data key is not 256 bits');

  const shouldEncrypt = encryptionPredicate(metadata.rule, (m) => new SopsDecryptError('malformed', file, m));
  const hash = createHash('sha512');
  if (metadata.macOnlyEncrypted) hash.update(macOnlyEncryptedSeed);

  const decryptLeaf = (leaf: TreeScalar, path: readonly string[], where: string): TreeScalar => {
    const encrypted = shouldEncrypt(path, leaf);
    let out = leaf;
    if (encrypted) {
      if (leaf.type !== 'str') {
        throw new SopsDecryptError(
          'malformed',
          file,
          `${where} is not encrypted, but the file's ${metadata.rule.kind} rule says it must be`,
          { path: where },
        );
      }
      if (leaf.text !== '') out = openLeaf(leaf.text, dataKey, path, where, file);
    }
    if (!metadata.macOnlyEncrypted || encrypted) hash.update(leafBytes(out));
    return out;
  };
  const plain = docs.map((doc, i) =>
    mapLeaves(doc, [], docs.length > 1 ? `document ${i + 1}: ` : '', decryptLeaf),
  ) as TreeMap[];

  verifyMac(metadata, dataKey, hash.digest('hex').toUpperCase(), file);
  return plain;
}

export interface EncryptOptions {
  /** Encrypt only values under keys matching this regex (e.g. `^(data|stringData)$`). */
  readonly encryptedRegex?: string;
  /** Leave values under keys matching this regex in plaintext. */
  readonly unencryptedRegex?: string;
  /** Encrypt only values under keys ending with this suffix. */
  readonly encryptedSuffix?: string;
  /** Leave values under keys ending with this suffix in plaintext (default `_unencrypted`). */
  readonly unencryptedSuffix?: string;
  /** Let the MAC cover encrypted values only, so plaintext values may change after encryption. */
  readonly macOnlyEncrypted?: boolean;
  /** The `lastmodified` time (default now). */
  readonly now?: Date;
}

/**
 * Encrypts a plaintext YAML stream or JSON document as a SOPS file for the age
 * recipients; `sops -d` decrypts it. Comments are not carried over (SOPS would
 * encrypt them; dropping them keeps nothing readable).
 */
export async function encryptSopsFile(
  plain: string,
  format: SopsFormat,
  recipients: readonly string[],
  opts: EncryptOptions = {},
): Promise<string> {
  if (recipients.length === 0) throw new SopsEncryptError('no age recipients to encrypt for');
  const rule = ruleFromOptions(opts);
  let docs: TreeMap[];
  try {
    docs = parseTree(plain, format);
  } catch (err) {
    throw new SopsEncryptError(`cannot read the plaintext: ${(err as Error).message}`);
  }
  if (docs.length === 0) docs = [{ kind: 'map', entries: [] }];
  if (docs.some((d) => d.entries.some((e) => e.key === sopsMetadataKey))) {
    throw new SopsEncryptError(
      `the plaintext already has a top-level "${sopsMetadataKey}" key (is it encrypted already?)`,
    );
  }
  const shouldEncrypt = encryptionPredicate(rule, (m) => new SopsEncryptError(m));
  const macOnlyEncrypted = opts.macOnlyEncrypted ?? false;
  const dataKey = randomBytes(32);
  const hash = createHash('sha512');
  if (macOnlyEncrypted) hash.update(macOnlyEncryptedSeed);

  const sealed = docs.map((doc) =>
    mapLeaves(doc, [], '', (leaf, path) => {
      const encrypted = shouldEncrypt(path, leaf);
      const bytes = leafBytes(leaf);
      if (!macOnlyEncrypted || encrypted) hash.update(bytes);
      if (!encrypted || bytes.length === 0) return leaf;
      return str(sealValue(bytes, leaf.type, dataKey, additionalData(path)));
    }),
  ) as TreeMap[];

  const lastModified = (opts.now ?? new Date()).toISOString().replace(/\.\d+Z$/, 'Z');
  const mac = sealValue(
    Buffer.from(hash.digest('hex').toUpperCase(), 'utf8'),
    'str',
    dataKey,
    macAdditionalData(lastModified),
  );
  const age = await Promise.all(recipients.map((r) => wrapDataKey(dataKey, r.trim())));
  const sops = metadataNode({ age, lastModified, mac, rule, macOnlyEncrypted });
  if (format === 'json' && sealed.length !== 1) throw new SopsEncryptError('a JSON file holds one document');
  return emitTree(
    sealed.map((d) => ({ kind: 'map', entries: [...d.entries, { key: sopsMetadataKey, value: sops }] })),
    format,
  );
}

// ---------------------------------------------------------------------------

function load(
  content: string,
  format: SopsFormat,
  file: string,
): { docs: TreeMap[]; metadata: SopsMetadata } {
  let docs: TreeMap[];
  try {
    docs = parseTree(content, format);
  } catch (err) {
    if (err instanceof TreeSyntaxError) throw new SopsDecryptError('malformed', file, err.message);
    throw err;
  }
  const node = findMetadata(docs[0]);
  if (!node) {
    throw new SopsDecryptError(
      'malformed',
      file,
      `has no top-level "${sopsMetadataKey}" metadata (is it encrypted with SOPS?)`,
    );
  }
  let metadata: SopsMetadata;
  try {
    metadata = readMetadata(node);
    macAdditionalData(metadata.lastModified);
  } catch (err) {
    if (err instanceof MetadataError) throw new SopsDecryptError('malformed', file, err.message);
    throw err;
  }
  // As SOPS does: the metadata comes from the first document, and is removed from all.
  for (const d of docs) {
    const kept = d.entries.filter((e) => e.key !== sopsMetadataKey);
    d.entries.splice(0, d.entries.length, ...kept);
  }
  return { docs, metadata };
}

function notForThisCluster(file: string, metadata: SopsMetadata): SopsDecryptError {
  if (metadata.age.length === 0) {
    const others = metadata.otherKeyTypes.length > 0 ? ` (it uses ${metadata.otherKeyTypes.join(', ')})` : '';
    return new SopsDecryptError(
      'not-encrypted-for-this-cluster',
      file,
      `not encrypted for this cluster: the file has no age recipients${others}`,
    );
  }
  return new SopsDecryptError(
    'not-encrypted-for-this-cluster',
    file,
    `not encrypted for this cluster: no age identity of this cluster opens the data key; ` +
      `the file is encrypted for ${metadata.age.map((a) => a.recipient).join(', ')}`,
  );
}

/** SOPS's additional data for a value: its map keys (list indices left out) joined and ended by `:`. */
function additionalData(path: readonly string[]): string {
  return `${path.join(':')}:`;
}

function openLeaf(
  text: string,
  key: Uint8Array,
  path: readonly string[],
  where: string,
  file: string,
): TreeScalar {
  let value: ReturnType<typeof parseEncryptedValue>;
  try {
    value = parseEncryptedValue(text);
  } catch (err) {
    throw new SopsDecryptError('malformed', file, `${where} ${(err as Error).message}`, { path: where });
  }
  let bytes: Buffer;
  try {
    bytes = openValue(value, key, additionalData(path));
  } catch (err) {
    if (!(err instanceof AuthenticationError)) throw err;
    throw new SopsDecryptError(
      'tampered',
      file,
      `${where} fails authentication: its ciphertext was changed, moved from another key, or made with another data key`,
      { path: where, cause: err },
    );
  }
  const typed = typedLeaf(bytes, value.type);
  if (!typed) {
    throw new SopsDecryptError(
      'malformed',
      file,
      `${where} does not hold a value of its type "${value.type}"`,
      {
        path: where,
      },
    );
  }
  return typed;
}

/** A decrypted value with its SOPS type, normalised as SOPS re-encodes it for the MAC. */
function typedLeaf(bytes: Buffer, type: string): TreeScalar | undefined {
  const text = bytes.toString('utf8');
  switch (type) {
    case 'str':
    case 'time':
      return { kind: 'scalar', type, text };
    case 'int': {
      const n = parseGoInt(text);
      return n === undefined ? undefined : { kind: 'scalar', type, text: n.toString() };
    }
    case 'float': {
      const f = parseGoFloat(text);
      return f === undefined ? undefined : { kind: 'scalar', type, text: formatGoFloat(f) };
    }
    case 'bool': {
      const b = parseGoBool(text);
      return b === undefined ? undefined : { kind: 'scalar', type, text: b ? 'True' : 'False' };
    }
    case 'bytes':
      return { kind: 'scalar', type, text, raw: new Uint8Array(bytes) };
    default:
      return undefined;
  }
}

function leafBytes(leaf: TreeScalar): Uint8Array {
  return leaf.raw ?? Buffer.from(leaf.text, 'utf8');
}

function verifyMac(metadata: SopsMetadata, dataKey: Uint8Array, computed: string, file: string): void {
  if (metadata.mac === '') throw new SopsDecryptError('mac-mismatch', file, 'the file has no MAC');
  let stored: ReturnType<typeof parseEncryptedValue>;
  try {
    stored = parseEncryptedValue(metadata.mac);
  } catch (err) {
    throw new SopsDecryptError('malformed', file, `sops.mac ${(err as Error).message}`);
  }
  let mac: string;
  try {
    mac = openValue(stored, dataKey, macAdditionalData(metadata.lastModified)).toString('utf8');
  } catch (err) {
    if (!(err instanceof AuthenticationError)) throw err;
    throw new SopsDecryptError(
      'mac-mismatch',
      file,
      'MAC mismatch: the stored MAC fails authentication (the MAC or lastmodified was changed)',
      { cause: err },
    );
  }
  if (mac !== computed) {
    throw new SopsDecryptError(
      'mac-mismatch',
      file,
      'MAC mismatch: the values do not match the MAC (a value was changed, added, removed or reordered)',
    );
  }
}

/** Rebuilds a document with each scalar leaf replaced; nulls are left alone, as SOPS leaves them. */
function mapLeaves(
  node: TreeNode,
  path: readonly string[],
  where: string,
  fn: (leaf: TreeScalar, path: readonly string[], where: string) => TreeScalar,
): TreeNode {
  switch (node.kind) {
    case 'map':
      return {
        kind: 'map',
        entries: node.entries.map((e) => ({
          key: e.key,
          value: mapLeaves(
            e.value,
            [...path, e.key],
            where === '' || where.endsWith(': ') ? `${where}${e.key}` : `${where}.${e.key}`,
            fn,
          ),
        })),
      };
    case 'list':
      return {
        kind: 'list',
        items: node.items.map((item, i) => mapLeaves(item, path, `${where}[${i}]`, fn)),
      };
    case 'null':
      return node;
    default:
      return fn(node, path, where);
  }
}

function ruleFromOptions(opts: EncryptOptions): EncryptionRule {
  const rules: EncryptionRule[] = [];
  if (opts.unencryptedSuffix) rules.push({ kind: 'unencrypted_suffix', value: opts.unencryptedSuffix });
  if (opts.encryptedSuffix) rules.push({ kind: 'encrypted_suffix', value: opts.encryptedSuffix });
  if (opts.unencryptedRegex) rules.push({ kind: 'unencrypted_regex', value: opts.unencryptedRegex });
  if (opts.encryptedRegex) rules.push({ kind: 'encrypted_regex', value: opts.encryptedRegex });
  if (rules.length > 1) {
    throw new SopsEncryptError(
      `use at most one of encryptedRegex, unencryptedRegex, encryptedSuffix, unencryptedSuffix (got ${rules.length})`,
    );
  }
  return rules[0] ?? defaultRule;
}

/**
 * Whether SOPS encrypts a value, from the keys on its path. For the comment rules,
 * whose outcome depends on where YAML comments attach, the value's own form decides
 * (an ENC[] string is encrypted): the MAC still covers which values those are.
 */
function encryptionPredicate(
  rule: EncryptionRule,
  fail: (message: string) => Error,
): (path: readonly string[], leaf: TreeScalar) => boolean {
  switch (rule.kind) {
    case 'unencrypted_suffix':
      return (path) => !path.some((k) => k.endsWith(rule.value));
    case 'encrypted_suffix':
      return (path) => path.some((k) => k.endsWith(rule.value));
    case 'unencrypted_regex': {
      const re = goRegExp(rule.value, rule.kind, fail);
      return (path) => !path.some((k) => re.test(k));
    }
    case 'encrypted_regex': {
      const re = goRegExp(rule.value, rule.kind, fail);
      return (path) => path.some((k) => re.test(k));
    }
    default:
      // encryptSopsFile offers no comment rules, so this is only reached when decrypting.
      return (_path, leaf) => leaf.type === 'str' && looksEncrypted(leaf.text);
  }
}

/** A Go (RE2) pattern as a JS RegExp: leading `(?flags)` become JS flags. */
function goRegExp(pattern: string, kind: string, fail: (message: string) => Error): RegExp {
  const m = /^\(\?([imsU]+)\)/.exec(pattern);
  const flags = m?.[1] ? [...new Set(m[1].replace('U', ''))].join('') : '';
  try {
    return new RegExp(m ? pattern.slice(m[0].length) : pattern, flags);
  } catch {
    throw fail(`${kind} ${JSON.stringify(pattern)} is not a valid regular expression`);
  }
}
