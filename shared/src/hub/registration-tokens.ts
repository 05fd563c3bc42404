/**
 * One-time registration tokens: an admin issues one (with a lifetime and, optionally,
 * labels the cluster will get), and an operator without admin rights registers one
 * cluster with it. The hub keeps only the token's SHA-256; using it is a conditional
 * write, so two registrations racing on one token cannot both win.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  type AdminPorts,
  type Registration,
  registerCluster,
  validateClusterId,
  validateLabels,
} from './clusters.ts';
import { ConflictError, type Labels, NotFoundError } from './ports.ts';
import { type FieldProblem, InvalidRequestError } from './status.ts';

/** What the hub stores of a registration token; never the token itself. */
export interface RegistrationTokenRecord {
  /** SHA-256 (hex) of the token: the key it is stored under. */
  readonly tokenHash: string;
  /** A short public handle for listing and revoking: the first 12 hex digits of the hash. */
  readonly id: string;
  /** Labels the registered cluster gets; the operator may add others but not change these. */
  readonly labels: Labels;
  readonly description?: string;
  /** Who issued it: an IAM ARN, or `admin-key`. */
  readonly createdBy?: string;
  readonly createdAt: string;
  readonly expiresAt: string;
  /** Set once the token is used; it never works again. */
  readonly usedAt?: string;
  readonly usedBy?: string;
}

/** Why a registration token was refused. */
export type TokenRefusal = 'unknown' | 'expired' | 'used';

export type ConsumeResult =
  | { readonly ok: true; readonly record: RegistrationTokenRecord }
  | { readonly ok: false; readonly reason: TokenRefusal; readonly record?: RegistrationTokenRecord };

export interface RegistrationTokenStore {
  /** @throws ConflictError when a token with this hash exists (never, for random tokens). */
  create(record: RegistrationTokenRecord): Promise<void>;
  get(tokenHash: string): Promise<RegistrationTokenRecord | undefined>;
  /** Every token, used and expired ones included, until they are cleaned up. */
  list(): Promise<RegistrationTokenRecord[]>;
  /**
   * Marks the token used by `clusterId`, only if it exists, is unused and has not expired at
   * `now` (one conditional write); otherwise says why not.
   */
  consume(tokenHash: string, clusterId: string, now: string): Promise<ConsumeResult>;
  /** Undoes a consume by `clusterId` whose registration then failed, so the token can be used again. */
  release(tokenHash: string, clusterId: string): Promise<void>;
  delete(tokenHash: string): Promise<void>;
}

export interface RegistrationTokenPorts {
  readonly registrationTokens: RegistrationTokenStore;
  readonly now: () => Date;
}

/** Lifetimes an admin may give a token: long enough to hand over, short enough to be harmless if lost. */
export const registrationTokenLimits = { minTtlSeconds: 60, maxTtlSeconds: 30 * 24 * 3600 } as const;

const tokenPrefix = 'frt_';

/** SHA-256 (hex) of a registration token. */
export function hashRegistrationToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Whether a bearer credential looks like a registration token (and not a cluster token or admin key). */
export function isRegistrationToken(token: string): boolean {
  return token.startsWith(tokenPrefix) && token.length > tokenPrefix.length + 20;
}

/** How a token stands at `now`. */
export function registrationTokenState(
  record: RegistrationTokenRecord,
  now: Date,
): 'active' | 'used' | 'expired' {
  if (record.usedAt) return 'used';
  return record.expiresAt <= now.toISOString() ? 'expired' : 'active';
}

/** A registration token as admins see it: never the hash it is stored under, only its short id. */
export interface RegistrationTokenView {
  readonly id: string;
  readonly state: 'active' | 'used' | 'expired';
  readonly labels: Labels;
  readonly description: string | null;
  readonly createdBy: string | null;
  readonly createdAt: string;
  readonly expiresAt: string;
  readonly usedAt: string | null;
  readonly usedBy: string | null;
}

export function registrationTokenView(record: RegistrationTokenRecord, now: Date): RegistrationTokenView {
  return {
    id: record.id,
    state: registrationTokenState(record, now),
    labels: record.labels,
    description: record.description ?? null,
    createdBy: record.createdBy ?? null,
    createdAt: record.createdAt,
    expiresAt: record.expiresAt,
    usedAt: record.usedAt ?? null,
    usedBy: record.usedBy ?? null,
  };
}

/** The body of `POST /v1/admin/registration-tokens`, validated. */
export interface RegistrationTokenRequest {
  readonly ttlSeconds: number;
  readonly labels: Labels;
  readonly description?: string;
}

/**
 * Validates `{ ttlSeconds, labels?, description? }`.
 * @throws {InvalidRequestError} naming every wrong field.
 */
export function parseRegistrationTokenRequest(value: unknown): RegistrationTokenRequest {
  if (value === undefined || value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidRequestError([
      { field: 'body', message: 'expected a JSON object with ttlSeconds, labels, description' },
    ]);
  }
  const body = value as Record<string, unknown>;
  const problems: FieldProblem[] = [];
  const allowed = ['ttlSeconds', 'labels', 'description'];
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key))
      problems.push({ field: key, message: `unknown field (allowed: ${allowed.join(', ')})` });
  }
  const { minTtlSeconds, maxTtlSeconds } = registrationTokenLimits;
  const ttl = body.ttlSeconds;
  if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < minTtlSeconds || ttl > maxTtlSeconds) {
    problems.push({
      field: 'ttlSeconds',
      message: `expected a whole number of seconds from ${minTtlSeconds} to ${maxTtlSeconds} (30 days), got ${JSON.stringify(ttl)}`,
    });
  }
  let labels: Labels = {};
  try {
    labels = validateLabels(body.labels, 'labels');
  } catch (err) {
    if (err instanceof Error && 'field' in err) {
      problems.push({ field: String(err.field), message: err.message.replace(/^[^:]+: /, '') });
    } else throw err;
  }
  const description = body.description;
  if (description !== undefined && (typeof description !== 'string' || description.length > 256)) {
    problems.push({ field: 'description', message: 'expected a string of at most 256 characters' });
  }
  if (problems.length > 0) throw new InvalidRequestError(problems);
  return {
    ttlSeconds: ttl as number,
    labels,
    ...(typeof description === 'string' && description !== '' ? { description } : {}),
  };
}

/**
 * Issues a registration token. The token is returned this once; the hub keeps its hash.
 *
 * @example
 * const { token, record } = await createRegistrationToken(ports, { ttlSeconds: 3600, labels: { env: 'edge' } });
 */
export async function createRegistrationToken(
  ports: RegistrationTokenPorts,
  request: RegistrationTokenRequest & { readonly createdBy?: string },
): Promise<{ token: string; record: RegistrationTokenRecord }> {
  const token = `${tokenPrefix}${randomBytes(32).toString('base64url')}`;
  const tokenHash = hashRegistrationToken(token);
  const now = ports.now();
  const record: RegistrationTokenRecord = {
    tokenHash,
    id: tokenHash.slice(0, 12),
    labels: request.labels,
    ...(request.description ? { description: request.description } : {}),
    ...(request.createdBy ? { createdBy: request.createdBy } : {}),
    createdAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + request.ttlSeconds * 1000).toISOString(),
  };
  await ports.registrationTokens.create(record);
  return { token, record };
}

/** Revokes a token by its short id (or a longer prefix of its hash). */
export async function revokeRegistrationToken(ports: RegistrationTokenPorts, id: string): Promise<void> {
  if (!/^[0-9a-f]{12,64}$/.test(id)) {
    throw new InvalidRequestError([
      { field: 'id', message: `expected the token id (12 hex digits), got "${id}"` },
    ]);
  }
  const matches = (await ports.registrationTokens.list()).filter((r) => r.tokenHash.startsWith(id));
  if (matches.length === 0) throw new NotFoundError(`registration token ${id} not found`);
  if (matches.length > 1)
    throw new ConflictError(`registration token id ${id} is ambiguous: give more digits`);
  await ports.registrationTokens.delete((matches[0] as RegistrationTokenRecord).tokenHash);
}

/** A registration token the hub refused, with the reason in words an operator can act on. */
export class RegistrationTokenRefusedError extends Error {
  readonly reason: TokenRefusal;
  constructor(reason: TokenRefusal, message: string) {
    super(message);
    this.name = 'RegistrationTokenRefusedError';
    this.reason = reason;
  }
}

function refusal(
  reason: TokenRefusal,
  record: RegistrationTokenRecord | undefined,
): RegistrationTokenRefusedError {
  switch (reason) {
    case 'unknown':
      return new RegistrationTokenRefusedError(
        reason,
        'the registration token is not valid (unknown or revoked): ask an admin for a new one (flotilla token create)',
      );
    case 'expired':
      return new RegistrationTokenRefusedError(
        reason,
        `the registration token expired at ${record?.expiresAt ?? 'an earlier time'}: ask an admin for a new one (flotilla token create)`,
      );
    case 'used':
      return new RegistrationTokenRefusedError(
        reason,
        `the registration token was already used${record?.usedAt ? ` at ${record.usedAt}` : ''}; each token registers one cluster: ask an admin for a new one`,
      );
  }
}

/**
 * Registers a cluster with a one-time registration token instead of admin credentials.
 *
 * 1. Validate the name and labels; the token's labels are imposed, and a label the
 *    operator gives may add to them but not contradict them.
 * 2. Refuse a name that is taken before touching the token, so a typo does not burn it.
 * 3. Consume the token (one conditional write: it must exist, be unused and unexpired).
 * 4. Register as an admin would; if that fails (a racing registration took the name), give
 *    the token back.
 *
 * @throws {RegistrationTokenRefusedError} unknown, expired or used token.
 * @throws {InvalidRequestError} a bad name or labels. @throws {ConflictError} the name is taken.
 */
export async function registerWithToken(
  ports: AdminPorts & RegistrationTokenPorts,
  input: { token: string; name: unknown; labels: unknown },
): Promise<Registration & { tokenRecord: RegistrationTokenRecord }> {
  const problems: FieldProblem[] = [];
  const check = <T>(fn: () => T): T | undefined => {
    try {
      return fn();
    } catch (err) {
      if (err instanceof Error && 'field' in err) {
        problems.push({ field: String(err.field), message: err.message.replace(/^[^:]+: /, '') });
        return undefined;
      }
      throw err;
    }
  };
  const name = check(() => validateClusterId(input.name, 'name'));
  const given = check(() => validateLabels(input.labels, 'labels'));
  if (problems.length > 0 || name === undefined || given === undefined)
    throw new InvalidRequestError(problems);

  const tokenHash = hashRegistrationToken(input.token);
  const record = await ports.registrationTokens.get(tokenHash);
  const now = ports.now();
  if (!record) throw refusal('unknown', undefined);
  const state = registrationTokenState(record, now);
  if (state !== 'active') throw refusal(state, record);

  const contradicting = Object.keys(given).filter(
    (k) => record.labels[k] !== undefined && record.labels[k] !== given[k],
  );
  if (contradicting.length > 0) {
    throw new InvalidRequestError(
      contradicting.map((k) => ({
        field: `labels.${k}`,
        message: `the registration token sets ${k}=${record.labels[k]}; it cannot be changed to "${given[k]}"`,
      })),
    );
  }
  if (await ports.clusters.get(name)) {
    throw new ConflictError(`cluster "${name}" is already registered (the registration token was not used)`);
  }

  const consumed = await ports.registrationTokens.consume(tokenHash, name, now.toISOString());
  if (!consumed.ok) throw refusal(consumed.reason, consumed.record ?? record);
  try {
    const registration = await registerCluster(ports, { name, labels: { ...given, ...record.labels } });
    return { ...registration, tokenRecord: consumed.record };
  } catch (err) {
    if (err instanceof ConflictError) await ports.registrationTokens.release(tokenHash, name);
    throw err;
  }
}
