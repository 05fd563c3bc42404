import { str, type TreeMap, type TreeNode } from './tree.ts';

/** The key SOPS keeps its metadata under, at the top of every document. */
export const sopsMetadataKey = 'sops';

/**
 * The version written into files this library encrypts: the SOPS release whose file
 * format they follow (and which the differential tests decrypt them with).
 */
export const sopsFormatVersion = '3.13.3';

/** Which values a file encrypts; exactly one rule applies, as in SOPS. */
export type EncryptionRule =
  | { readonly kind: 'unencrypted_suffix'; readonly value: string }
  | { readonly kind: 'encrypted_suffix'; readonly value: string }
  | { readonly kind: 'unencrypted_regex'; readonly value: string }
  | { readonly kind: 'encrypted_regex'; readonly value: string }
  | { readonly kind: 'unencrypted_comment_regex'; readonly value: string }
  | { readonly kind: 'encrypted_comment_regex'; readonly value: string };

export const ruleKinds = [
  'unencrypted_suffix',
  'encrypted_suffix',
  'unencrypted_regex',
  'encrypted_regex',
  'unencrypted_comment_regex',
  'encrypted_comment_regex',
] as const;

/** SOPS's default when a file names no rule: everything but keys ending in `_unencrypted`. */
export const defaultRule: EncryptionRule = { kind: 'unencrypted_suffix', value: '_unencrypted' };

export interface AgeStanza {
  readonly recipient: string;
  /** The data key, age-encrypted to the recipient and ASCII-armored. */
  readonly enc: string;
}

export interface SopsMetadata {
  readonly age: readonly AgeStanza[];
  /** Other key types (KMS, PGP…) present in the file, by metadata field name. */
  readonly otherKeyTypes: readonly string[];
  readonly lastModified: string;
  readonly mac: string;
  readonly rule: EncryptionRule;
  readonly macOnlyEncrypted: boolean;
  readonly version: string;
}

/** A metadata problem, described without values. */
export class MetadataError extends Error {}

const otherKeyFields = ['kms', 'gcp_kms', 'hckms', 'azure_kv', 'hc_vault', 'pgp'] as const;

function field(map: TreeMap, key: string): TreeNode | undefined {
  return map.entries.find((e) => e.key === key)?.value;
}

function stringField(map: TreeMap, key: string, where: string): string | undefined {
  const v = field(map, key);
  if (v === undefined || v.kind === 'null') return undefined;
  if (v.kind !== 'scalar' || v.type !== 'str') throw new MetadataError(`${where}${key} is not a string`);
  return v.text;
}

function listField(map: TreeMap, key: string, where: string): TreeNode[] {
  const v = field(map, key);
  if (v === undefined || v.kind === 'null') return [];
  if (v.kind !== 'list') throw new MetadataError(`${where}${key} is not a list`);
  return v.items;
}

/** The `sops` map of the first document, or undefined when it has none. */
export function findMetadata(doc: TreeMap | undefined): TreeNode | undefined {
  return doc ? field(doc, sopsMetadataKey) : undefined;
}

export function readMetadata(node: TreeNode): SopsMetadata {
  if (node.kind !== 'map') throw new MetadataError('the sops metadata is not a mapping');
  const groups = listField(node, 'key_groups', 'sops.');
  let keySources: TreeMap[];
  if (groups.length > 0) {
    if (groups.length > 1) {
      throw new MetadataError(
        'the file splits its data key over several key groups (Shamir), which is not supported',
      );
    }
    const group = groups[0];
    if (group?.kind !== 'map') throw new MetadataError('sops.key_groups[0] is not a mapping');
    keySources = [group];
  } else {
    keySources = [node];
  }
  const age: AgeStanza[] = [];
  const otherKeyTypes = new Set<string>();
  for (const source of keySources) {
    for (const [i, item] of listField(source, 'age', 'sops.').entries()) {
      if (item.kind !== 'map') throw new MetadataError(`sops.age[${i}] is not a mapping`);
      const recipient = stringField(item, 'recipient', `sops.age[${i}].`);
      const enc = stringField(item, 'enc', `sops.age[${i}].`);
      if (!recipient || !enc) throw new MetadataError(`sops.age[${i}] lacks its recipient or enc`);
      age.push({ recipient, enc });
    }
    for (const f of otherKeyFields) if (listField(source, f, 'sops.').length > 0) otherKeyTypes.add(f);
  }

  const rules: EncryptionRule[] = [];
  for (const kind of ruleKinds) {
    const value = stringField(node, kind, 'sops.');
    if (value) rules.push({ kind, value });
  }
  if (rules.length > 1) {
    throw new MetadataError(
      `the file names more than one encryption rule (${rules.map((r) => r.kind).join(', ')})`,
    );
  }
  const macOnly = field(node, 'mac_only_encrypted');
  if (
    macOnly !== undefined &&
    macOnly.kind !== 'null' &&
    (macOnly.kind !== 'scalar' || macOnly.type !== 'bool')
  ) {
    throw new MetadataError('sops.mac_only_encrypted is not a boolean');
  }
  const lastModified = stringField(node, 'lastmodified', 'sops.');
  if (lastModified === undefined) throw new MetadataError('sops.lastmodified is missing');
  return {
    age,
    otherKeyTypes: [...otherKeyTypes],
    lastModified,
    mac: stringField(node, 'mac', 'sops.') ?? '',
    rule: rules[0] ?? defaultRule,
    macOnlyEncrypted: macOnly?.kind === 'scalar' && macOnly.text === 'True',
    version: stringField(node, 'version', 'sops.') ?? '',
  };
}

const rfc3339 = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * The MAC's additional data: `lastmodified` as SOPS re-formats it after parsing
 * (RFC 3339, whole seconds, `Z` for a zero offset).
 */
export function macAdditionalData(lastModified: string): string {
  const m = rfc3339.exec(lastModified);
  if (!m) throw new MetadataError('sops.lastmodified is not an RFC 3339 time');
  const offset = m[2] === '+00:00' || m[2] === '-00:00' ? 'Z' : m[2];
  return `${m[1]}${offset}`;
}

/** The `sops` map written into each document of a file this library encrypts. */
export function metadataNode(m: {
  age: readonly AgeStanza[];
  lastModified: string;
  mac: string;
  rule: EncryptionRule;
  macOnlyEncrypted: boolean;
}): TreeMap {
  const entries: TreeMap['entries'] = [
    {
      key: 'age',
      value: {
        kind: 'list',
        items: m.age.map((a) => ({
          kind: 'map',
          entries: [
            { key: 'recipient', value: str(a.recipient) },
            { key: 'enc', value: str(a.enc) },
          ],
        })),
      },
    },
    { key: 'lastmodified', value: str(m.lastModified) },
    { key: 'mac', value: str(m.mac) },
    { key: m.rule.kind, value: str(m.rule.value) },
  ];
  if (m.macOnlyEncrypted) {
    entries.push({ key: 'mac_only_encrypted', value: { kind: 'scalar', type: 'bool', text: 'True' } });
  }
  entries.push({ key: 'version', value: str(sopsFormatVersion) });
  return { kind: 'map', entries };
}
