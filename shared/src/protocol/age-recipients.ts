/**
 * The age recipients an agent reports for its cluster: the public halves of the keys that
 * SOPS files for this cluster are encrypted to. The private identities never leave the
 * spoke; only these do, and the hub checks them before it keeps them.
 */
import { bech32 } from '@scure/base';

/** One public key of a cluster, with the name of the key it belongs to. */
export interface AgeRecipient {
  /**
   * `cluster` for the key the agent made in its cluster; `group/<secret-name>` for a group
   * key an operator installed there as a Secret of that name.
   */
  readonly name: string;
  /** The X25519 recipient in age's bech32 form, `age1…`. */
  readonly recipient: string;
}

/** The name of the cluster's own key among its recipients. */
export const CLUSTER_KEY_NAME = 'cluster';
/** The prefix of group keys' names, before the name of the Secret that holds the key. */
export const GROUP_KEY_PREFIX = 'group/';

export const recipientLimits = {
  /** The cluster's key and up to seven group keys. */
  recipients: 8,
  /** `group/` and a Secret name (a DNS subdomain, at most 253 characters). */
  nameChars: 259,
  /** An X25519 recipient is 62 characters; a little room for nothing else. */
  recipientChars: 90,
} as const;

const groupName = /^group\/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** Why `name` is not a recipient name the hub takes, or undefined. */
export function recipientNameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string') return 'expected a string such as "cluster" or "group/<secret-name>"';
  if (name.length > recipientLimits.nameChars)
    return `at most ${recipientLimits.nameChars} characters (got ${name.length})`;
  if (name !== CLUSTER_KEY_NAME && !groupName.test(name))
    return `expected "cluster" or "group/<secret-name>" (a lowercase DNS name), got ${JSON.stringify(name.slice(0, 60))}`;
  return undefined;
}

/**
 * Why `value` is not an age X25519 recipient, or undefined: the bech32 checksum is
 * checked, the prefix must be `age` and the key 32 bytes, so a mistyped or truncated
 * recipient never reaches anyone who would encrypt to it.
 */
export function ageRecipientProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return 'expected a string "age1…"';
  if (value.length > recipientLimits.recipientChars)
    return `at most ${recipientLimits.recipientChars} characters (got ${value.length})`;
  if (!value.startsWith('age1')) return 'expected an age X25519 recipient "age1…"';
  if (value !== value.toLowerCase()) return 'expected lowercase bech32';
  let decoded: { prefix: string; words: number[] };
  try {
    decoded = bech32.decode(value as `${string}1${string}`, recipientLimits.recipientChars);
  } catch {
    return 'not valid bech32 (a character mistyped or missing?)';
  }
  if (decoded.prefix !== 'age') return `expected the prefix "age", got "${decoded.prefix}"`;
  let bytes: Uint8Array;
  try {
    bytes = bech32.fromWords(decoded.words);
  } catch {
    return 'not valid bech32 data';
  }
  if (bytes.length !== 32) return `expected a 32-byte X25519 key, got ${bytes.length} bytes`;
  return undefined;
}

/**
 * Every problem of a list of recipients, each with its field (`recipients[1].recipient`):
 * too many, a bad name or key, a name twice.
 */
export function recipientsProblems(
  value: unknown,
  field = 'recipients',
): { readonly field: string; readonly message: string }[] {
  const problems: { field: string; message: string }[] = [];
  if (!Array.isArray(value)) return [{ field, message: 'expected an array of {name, recipient}' }];
  if (value.length > recipientLimits.recipients)
    problems.push({
      field,
      message: `at most ${recipientLimits.recipients} recipients (got ${value.length})`,
    });
  const names = new Set<string>();
  value.slice(0, recipientLimits.recipients).forEach((r: unknown, i: number) => {
    const at = `${field}[${i}]`;
    if (typeof r !== 'object' || r === null || Array.isArray(r)) {
      problems.push({ field: at, message: 'expected an object {name, recipient}' });
      return;
    }
    const entry = r as Record<string, unknown>;
    for (const key of Object.keys(entry))
      if (key !== 'name' && key !== 'recipient')
        problems.push({ field: `${at}.${key}`, message: 'unknown field (allowed: name, recipient)' });
    const nameProblem = recipientNameProblem(entry.name);
    if (nameProblem) problems.push({ field: `${at}.name`, message: nameProblem });
    else if (names.has(entry.name as string))
      problems.push({ field: `${at}.name`, message: `"${entry.name as string}" is listed twice` });
    names.add(entry.name as string);
    const keyProblem = ageRecipientProblem(entry.recipient);
    if (keyProblem) problems.push({ field: `${at}.recipient`, message: keyProblem });
  });
  return problems;
}

/** Whether two lists hold the same recipients under the same names, in any order. */
export function sameRecipients(
  a: readonly AgeRecipient[] | undefined,
  b: readonly AgeRecipient[] | undefined,
): boolean {
  const key = (list: readonly AgeRecipient[] | undefined) =>
    (list ?? [])
      .map((r) => `${r.name}\n${r.recipient}`)
      .sort()
      .join('\n\n');
  return key(a) === key(b);
}

/** Recipients in the order they are shown: the cluster's key first, then group keys by name. */
export function sortRecipients(list: readonly AgeRecipient[]): AgeRecipient[] {
  return [...list].sort((x, y) =>
    x.name === y.name
      ? 0
      : x.name === CLUSTER_KEY_NAME
        ? -1
        : y.name === CLUSTER_KEY_NAME
          ? 1
          : x.name < y.name
            ? -1
            : 1,
  );
}
