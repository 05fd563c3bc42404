import { createHash } from 'node:crypto';
import { type AgeRecipient, ageRecipientProblem, isoTime, recipientLimits } from '@flotilla/shared/agent';
import { KubeApiError, type KubeClient } from '../kube/client.ts';
import type { AgeKeysPort } from '../reconcile/ports.ts';

/** The label that marks a Secret of the agent's namespace as a group key an operator installed. */
export const GROUP_KEY_LABEL = 'flotilla.dev/age-key';
export const GROUP_KEY_LABEL_VALUE = 'group';
/** The key of a group-key Secret that holds its identity (age's key-file format, `age-keygen` output). */
export const GROUP_KEY_DATA = 'identity';
/** The key of the cluster-key Secret that holds its identities, newest first, one a line. */
export const CLUSTER_KEY_DATA = 'identities';
/** Annotation of the cluster-key Secret: the id of the last rotation the hub asked for that was done. */
export const ROTATION_ANNOTATION = 'flotilla.dev/key-rotation';
const ROTATED_AT_ANNOTATION = 'flotilla.dev/key-rotated-at';
/** Annotation of the cluster-key Secret: the current identity's recipient, `<fingerprint> <age1…>`. */
export const RECIPIENT_ANNOTATION = 'flotilla.dev/recipient';

/**
 * age-encryption, loaded on first use: its curve, post-quantum and hash modules add about
 * 4 MB of resident memory (3 MB of heap) to an agent that has loaded its other modules
 * (Node 24, the agent's node options, after a full GC), which an agent whose cluster has
 * no SOPS file and whose key's recipient is known never needs to pay.
 */
let ageModule: Promise<typeof import('age-encryption')> | undefined;
function age(): Promise<typeof import('age-encryption')> {
  ageModule ??= import('age-encryption');
  return ageModule;
}

/**
 * A fingerprint that ties a recorded recipient to the identity it was made from, so an
 * identity replaced by hand is never reported with its predecessor's recipient. A hash of
 * a 256-bit random key, with a purpose of its own, gives nothing of the key away.
 */
export function identityFingerprint(identity: string): string {
  return createHash('sha256').update('flotilla age recipient\n').update(identity).digest('hex').slice(0, 32);
}

/** A Secret as the store reads it. */
interface SecretObject {
  readonly metadata: {
    readonly name: string;
    readonly resourceVersion?: string;
    readonly labels?: Record<string, string>;
    readonly annotations?: Record<string, string>;
  };
  readonly data?: Record<string, string>;
}

export interface AgeKeyStoreOptions {
  readonly namespace: string;
  /** Name of the Secret with the cluster's own identities. Default `flotilla-age-key`. */
  readonly secretName?: string;
  /** Written as `app.kubernetes.io/managed-by`. */
  readonly managedBy: string;
  /**
   * Identities kept after a rotation, the new one included (default 3): files still
   * encrypted to a previous key keep decrypting until they are encrypted again.
   */
  readonly keep?: number;
  /** Makes a new identity; age's X25519 `generateIdentity` unless a test says otherwise. */
  readonly generate?: () => Promise<string>;
  /** Milliseconds since the epoch. */
  readonly now?: () => number;
}

/** A key that could not be used, and why, without the key itself: what the agent logs. */
export interface KeyProblem {
  readonly secret: string;
  readonly message: string;
}

/** What one rotation did. */
export interface RotationResult {
  /** The cluster's recipient now. */
  readonly recipient: string;
  /** False when the rotation of this id had already been done (by this replica before a restart, or another one). */
  readonly rotated: boolean;
  /** How many identities the Secret keeps, the new one included. */
  readonly kept: number;
}

/** The cluster key's Secret is missing something it must hold; never carries key material. */
export class AgeKeyStoreError extends Error {
  readonly secret: string;
  constructor(secret: string, message: string, options?: ErrorOptions) {
    super(`${secret}: ${message}`, options);
    this.name = 'AgeKeyStoreError';
    this.secret = secret;
  }
}

const identityLine = /^AGE-SECRET-KEY-1[0-9A-Z]+$/;

/**
 * The identities of an age key file (as `age-keygen` writes it): one a line, `#` comments
 * and blank lines ignored. Lines that are not X25519 identities are counted, not returned,
 * and never quoted (they may be keys of another kind).
 */
export function parseIdentities(text: string): { identities: string[]; unreadable: number } {
  const identities: string[] = [];
  let unreadable = 0;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (identityLine.test(line)) identities.push(line);
    else unreadable++;
  }
  return { identities, unreadable };
}

/** The identities after a rotation: the new one first, then the newest `keep - 1` of the old ones. */
export function rotatedIdentities(current: readonly string[], fresh: string, keep: number): string[] {
  return [fresh, ...current.filter((i) => i !== fresh)].slice(0, Math.max(1, keep));
}

/** The recipient of an identity; the error never holds the identity. */
async function recipientOf(identity: string): Promise<string> {
  const { identityToRecipient } = await age();
  try {
    return await identityToRecipient(identity);
  } catch {
    // The library's message may quote its input: say only what is wrong.
    throw new Error('not a valid age X25519 identity (bad checksum or length)');
  }
}

/**
 * The cluster's age identities, kept in its own namespace: one Secret (`flotilla-age-key`)
 * with the cluster's key, made in the cluster at the first start and never sent anywhere,
 * plus the keys it had before the last rotations; and group keys that an operator
 * installed as Secrets labelled `flotilla.dev/age-key=group`. Only public recipients leave
 * through {@link recipients}.
 *
 * Two replicas starting at once make one key between them: the Secret is created only if
 * absent, and the one that loses the race reads the winner's. A rotation is a compare-and-
 * swap on the Secret's resourceVersion and is done once per request id.
 */
export class AgeKeyStore implements AgeKeysPort {
  readonly #client: KubeClient;
  readonly #namespace: string;
  readonly #name: string;
  readonly #managedBy: string;
  readonly #keep: number;
  readonly #generate: () => Promise<string>;
  readonly #now: () => number;
  readonly #collection: string;
  /** Recipients of identities seen before, so a heartbeat does not redo the curve arithmetic. */
  readonly #recipientCache = new Map<string, string>();
  /** Problems of the group keys at the last read, for the agent to log. */
  problems: KeyProblem[] = [];

  constructor(client: KubeClient, opts: AgeKeyStoreOptions) {
    this.#client = client;
    this.#namespace = opts.namespace;
    this.#name = opts.secretName ?? 'flotilla-age-key';
    this.#managedBy = opts.managedBy;
    this.#keep = Math.max(1, opts.keep ?? 3);
    this.#generate = opts.generate ?? (async () => (await age()).generateIdentity());
    this.#now = opts.now ?? Date.now;
    this.#collection = `/api/v1/namespaces/${encodeURIComponent(opts.namespace)}/secrets`;
  }

  /** `namespace/name` of the cluster key's Secret. */
  get secretRef(): string {
    return `${this.#namespace}/${this.#name}`;
  }

  /**
   * Makes sure the cluster has its key: reads the Secret, and creates it with a new identity
   * when absent. Returns the Secret as stored.
   */
  async ensure(
    signal?: AbortSignal,
  ): Promise<{ identities: string[]; secret: SecretObject; created: boolean }> {
    const existing = await this.#read(signal);
    if (existing) return { ...existing, created: false };
    const identity = await this.#generate();
    const body = this.#secret([identity], {
      [RECIPIENT_ANNOTATION]: await this.#recipientRecord(identity),
    });
    try {
      const res = await this.#client.request<SecretObject>('POST', this.#collection, { body, signal });
      return { identities: [identity], secret: res.body, created: true };
    } catch (e) {
      // Another replica created it first: theirs is the cluster's key.
      if (!(e instanceof KubeApiError && e.status === 409)) throw e;
      const theirs = await this.#read(signal);
      if (!theirs) throw new AgeKeyStoreError(this.secretRef, 'was created and is gone again', { cause: e });
      return { ...theirs, created: false };
    }
  }

  async #read(signal?: AbortSignal): Promise<{ identities: string[]; secret: SecretObject } | undefined> {
    let secret: SecretObject;
    try {
      secret = (
        await this.#client.request<SecretObject>(
          'GET',
          `${this.#collection}/${encodeURIComponent(this.#name)}`,
          {
            signal,
          },
        )
      ).body;
    } catch (e) {
      if (e instanceof KubeApiError && e.status === 404) return undefined;
      throw e;
    }
    const encoded = secret.data?.[CLUSTER_KEY_DATA];
    if (encoded === undefined) throw new AgeKeyStoreError(this.secretRef, `has no "${CLUSTER_KEY_DATA}" key`);
    const { identities, unreadable } = parseIdentities(Buffer.from(encoded, 'base64').toString('utf8'));
    if (identities.length === 0)
      throw new AgeKeyStoreError(
        this.secretRef,
        `"${CLUSTER_KEY_DATA}" holds no age identity${unreadable ? ` (${unreadable} unreadable lines)` : ''}`,
      );
    return { identities, secret };
  }

  #secret(
    identities: readonly string[],
    annotations: Record<string, string>,
    previous?: SecretObject['metadata'],
  ) {
    const resourceVersion = previous?.resourceVersion;
    return {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'Opaque',
      metadata: {
        name: this.#name,
        namespace: this.#namespace,
        labels: { ...(previous?.labels ?? {}), 'app.kubernetes.io/managed-by': this.#managedBy },
        ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
        ...(resourceVersion ? { resourceVersion } : {}),
      },
      data: { [CLUSTER_KEY_DATA]: Buffer.from(`${identities.join('\n')}\n`, 'utf8').toString('base64') },
    };
  }

  /** The annotation that records an identity's recipient, with the identity's fingerprint. */
  async #recipientRecord(identity: string): Promise<string> {
    return `${identityFingerprint(identity)} ${await this.#recipient(identity, this.#name)}`;
  }

  /** The current identity's recipient: as the Secret records it when it is that identity's, derived otherwise. */
  async #clusterRecipient(identity: string, secret: SecretObject): Promise<string> {
    const [fingerprint, recorded] = (secret.metadata.annotations?.[RECIPIENT_ANNOTATION] ?? '').split(' ');
    if (recorded && fingerprint === identityFingerprint(identity) && !ageRecipientProblem(recorded))
      return recorded;
    return this.#recipient(identity, this.#name);
  }

  /** The group keys an operator installed, by Secret name; unusable ones land in {@link problems}. */
  async #groups(signal?: AbortSignal): Promise<{ name: string; identities: string[] }[]> {
    const q = new URLSearchParams({ labelSelector: `${GROUP_KEY_LABEL}=${GROUP_KEY_LABEL_VALUE}` });
    const list = await this.#client.request<{ items: SecretObject[] }>('GET', `${this.#collection}?${q}`, {
      signal,
    });
    const problems: KeyProblem[] = [];
    const groups: { name: string; identities: string[] }[] = [];
    for (const item of [...list.body.items].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1))) {
      const name = item.metadata.name;
      if (name === this.#name) continue;
      const encoded = item.data?.[GROUP_KEY_DATA];
      if (encoded === undefined) {
        problems.push({ secret: name, message: `has no "${GROUP_KEY_DATA}" key` });
        continue;
      }
      const { identities, unreadable } = parseIdentities(Buffer.from(encoded, 'base64').toString('utf8'));
      if (identities.length === 0) {
        problems.push({
          secret: name,
          message: `"${GROUP_KEY_DATA}" holds no age X25519 identity${unreadable ? ` (${unreadable} unreadable lines)` : ''}`,
        });
        continue;
      }
      groups.push({ name, identities });
    }
    this.problems = problems;
    return groups;
  }

  /** Private identities, newest first: the cluster's current key, its previous ones, then group keys. */
  async identities(signal?: AbortSignal): Promise<readonly string[]> {
    const own = await this.ensure(signal);
    const groups = await this.#groups(signal);
    return [...own.identities, ...groups.flatMap((g) => g.identities)];
  }

  /**
   * The public recipients files for this cluster should be encrypted to: `cluster` (its
   * current key) and `group/<secret-name>` for each group key (its first identity).
   */
  async recipients(signal?: AbortSignal): Promise<AgeRecipient[]> {
    const own = await this.ensure(signal);
    const groups = await this.#groups(signal);
    const out: AgeRecipient[] = [];
    const current = own.identities[0] as string;
    out.push({ name: 'cluster', recipient: await this.#clusterRecipient(current, own.secret) });
    // The hub takes eight recipients: the cluster's and seven group keys, by Secret name.
    const reported = groups.slice(0, recipientLimits.recipients - 1);
    for (const g of groups.slice(reported.length))
      this.problems.push({
        secret: g.name,
        message: `not reported: at most ${recipientLimits.recipients - 1} group keys are (it still decrypts)`,
      });
    for (const g of reported) {
      try {
        out.push({
          name: `group/${g.name}`,
          recipient: await this.#recipient(g.identities[0] as string, g.name),
        });
      } catch (e) {
        this.problems.push({ secret: g.name, message: (e as Error).message });
      }
    }
    return out;
  }

  async #recipient(identity: string, secret: string): Promise<string> {
    const known = this.#recipientCache.get(identity);
    if (known) return known;
    let recipient: string;
    try {
      recipient = await recipientOf(identity);
    } catch (e) {
      throw new AgeKeyStoreError(secret, (e as Error).message);
    }
    if (this.#recipientCache.size > 64) this.#recipientCache.clear();
    this.#recipientCache.set(identity, recipient);
    return recipient;
  }

  /** The id of the last rotation request done, as the Secret records it. */
  async lastRotation(signal?: AbortSignal): Promise<string | undefined> {
    return (await this.ensure(signal)).secret.metadata.annotations?.[ROTATION_ANNOTATION];
  }

  /**
   * Makes a new cluster key and keeps the previous ones (up to `keep` in all). With a
   * `requestId`, does it once: when the Secret already records that id, nothing changes.
   * A concurrent write (another replica) is read back and tried again.
   */
  async rotate(requestId?: string, signal?: AbortSignal): Promise<RotationResult> {
    for (let attempt = 1; ; attempt++) {
      const { identities, secret } = await this.ensure(signal);
      const annotations = { ...(secret.metadata.annotations ?? {}) };
      if (requestId !== undefined && annotations[ROTATION_ANNOTATION] === requestId) {
        return {
          recipient: await this.#clusterRecipient(identities[0] as string, secret),
          rotated: false,
          kept: identities.length,
        };
      }
      const next = rotatedIdentities(identities, await this.#generate(), this.#keep);
      if (requestId !== undefined) annotations[ROTATION_ANNOTATION] = requestId;
      else delete annotations[ROTATION_ANNOTATION];
      // isoTime, not a Date's methods: see docs/agent.md, "Memory".
      annotations[ROTATED_AT_ANNOTATION] = isoTime(this.#now());
      annotations[RECIPIENT_ANNOTATION] = await this.#recipientRecord(next[0] as string);
      try {
        await this.#client.request('PUT', `${this.#collection}/${encodeURIComponent(this.#name)}`, {
          body: this.#secret(next, annotations, secret.metadata),
          signal,
        });
      } catch (e) {
        if (e instanceof KubeApiError && e.status === 409 && attempt < 5) continue;
        throw e;
      }
      return {
        recipient: await this.#recipient(next[0] as string, this.#name),
        rotated: true,
        kept: next.length,
      };
    }
  }
}
