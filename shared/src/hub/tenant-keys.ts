/**
 * Tenant admin keys (hubs with key authentication): the platform admin issues a key for a
 * tenant, and its holder may call that tenant's routes (`/v1/tenants/<tenant>/...`) and
 * nothing else. A key reads `flt_t_<tenant>.<secret>`; the hub keeps only its SHA-256,
 * lists keys by a short id and revokes them at once.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ConflictError, NotFoundError } from './ports.ts';
import { type FieldProblem, InvalidRequestError } from './status.ts';

/** What the hub stores of a tenant key; never the key itself. */
export interface TenantKeyRecord {
  /** SHA-256 (hex) of the key: the key it is stored under. */
  readonly keyHash: string;
  /** A short public handle for listing and revoking: the first 12 hex digits of the hash. */
  readonly id: string;
  readonly tenant: string;
  readonly description?: string;
  /** Who issued it: an IAM ARN, or `admin-key`. */
  readonly createdBy?: string;
  readonly createdAt: string;
}

export interface TenantKeyStore {
  /** @throws ConflictError when a key with this hash exists (never, for random keys). */
  create(record: TenantKeyRecord): Promise<void>;
  /** A consistent read: a revoked key is gone at once. */
  get(keyHash: string): Promise<TenantKeyRecord | undefined>;
  /** Every key, of every tenant. */
  list(): Promise<TenantKeyRecord[]>;
  delete(keyHash: string): Promise<void>;
}

export interface TenantKeyPorts {
  readonly tenantKeys: TenantKeyStore;
  readonly now: () => Date;
}

/** Every tenant key starts with this; a cluster token (`flt_<cluster>.`) never does, as cluster names have no `_`. */
export const tenantKeyPrefix = 'flt_t_';
const tenantName = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** SHA-256 (hex) of a tenant key. */
export function hashTenantKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** The tenant a bearer credential names when it has the form of a tenant key, else undefined. */
export function tenantOfKey(key: string): string | undefined {
  if (!key.startsWith(tenantKeyPrefix)) return undefined;
  const rest = key.slice(tenantKeyPrefix.length);
  const dot = rest.indexOf('.');
  if (dot < 1 || rest.length - dot - 1 < 20) return undefined;
  const tenant = rest.slice(0, dot);
  return tenantName.test(tenant) ? tenant : undefined;
}

/**
 * Checks a tenant key: the record stored under its hash, for the tenant the key names.
 * The stored hash is compared in constant time, as the admin key is.
 */
export async function authenticateTenantKey(
  store: Pick<TenantKeyStore, 'get'>,
  key: string,
): Promise<TenantKeyRecord | undefined> {
  const tenant = tenantOfKey(key);
  if (tenant === undefined) return undefined;
  const keyHash = hashTenantKey(key);
  const record = await store.get(keyHash);
  if (!record || record.tenant !== tenant) return undefined;
  const a = Buffer.from(record.keyHash, 'hex');
  const b = Buffer.from(keyHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b) ? record : undefined;
}

/** A tenant key as the platform admin sees it: its short id, never the key or its hash. */
export interface TenantKeyView {
  readonly id: string;
  readonly tenant: string;
  readonly description: string | null;
  readonly createdBy: string | null;
  readonly createdAt: string;
}

export function tenantKeyView(record: TenantKeyRecord): TenantKeyView {
  return {
    id: record.id,
    tenant: record.tenant,
    description: record.description ?? null,
    createdBy: record.createdBy ?? null,
    createdAt: record.createdAt,
  };
}

/**
 * Validates a tenant name from a path.
 * @throws {InvalidRequestError} naming `tenant`.
 */
export function validateTenantName(value: string | undefined): string {
  if (value === undefined || !tenantName.test(value)) {
    throw new InvalidRequestError([
      {
        field: 'tenant',
        message: `expected a tenant name (a DNS-1123 label), got ${JSON.stringify(value ?? '')}`,
      },
    ]);
  }
  return value;
}

/**
 * Validates the body of `POST /v1/admin/tenants/{tenant}/keys`: `{ description? }` or nothing.
 * @throws {InvalidRequestError} naming every wrong field.
 */
export function parseTenantKeyRequest(value: unknown): { readonly description?: string } {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidRequestError([{ field: 'body', message: 'expected a JSON object with description' }]);
  }
  const body = value as Record<string, unknown>;
  const problems: FieldProblem[] = [];
  for (const key of Object.keys(body))
    if (key !== 'description') problems.push({ field: key, message: 'unknown field (allowed: description)' });
  const description = body.description;
  if (description !== undefined && (typeof description !== 'string' || description.length > 256))
    problems.push({ field: 'description', message: 'expected a string of at most 256 characters' });
  if (problems.length > 0) throw new InvalidRequestError(problems);
  return typeof description === 'string' && description !== '' ? { description } : {};
}

/**
 * Issues a key for a tenant. The key is returned this once; the hub keeps its hash.
 *
 * @example
 * const { key } = await createTenantKey(ports, { tenant: 'team-a' }); // flt_t_team-a.…
 */
export async function createTenantKey(
  ports: TenantKeyPorts,
  request: { readonly tenant: string; readonly description?: string; readonly createdBy?: string },
): Promise<{ key: string; record: TenantKeyRecord }> {
  const key = `${tenantKeyPrefix}${request.tenant}.${randomBytes(32).toString('base64url')}`;
  const keyHash = hashTenantKey(key);
  const record: TenantKeyRecord = {
    keyHash,
    id: keyHash.slice(0, 12),
    tenant: request.tenant,
    ...(request.description ? { description: request.description } : {}),
    ...(request.createdBy ? { createdBy: request.createdBy } : {}),
    createdAt: ports.now().toISOString(),
  };
  await ports.tenantKeys.create(record);
  return { key, record };
}

/** A tenant's keys, oldest first. */
export async function listTenantKeys(ports: TenantKeyPorts, tenant: string): Promise<TenantKeyRecord[]> {
  return (await ports.tenantKeys.list())
    .filter((r) => r.tenant === tenant)
    .sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0));
}

/** Revokes one of a tenant's keys by its short id (or a longer prefix of its hash); it stops working at once. */
export async function revokeTenantKey(ports: TenantKeyPorts, tenant: string, id: string): Promise<void> {
  if (!/^[0-9a-f]{12,64}$/.test(id)) {
    throw new InvalidRequestError([
      { field: 'id', message: `expected the key id (12 hex digits), got "${id}"` },
    ]);
  }
  const matches = (await listTenantKeys(ports, tenant)).filter((r) => r.keyHash.startsWith(id));
  if (matches.length === 0) throw new NotFoundError(`tenant "${tenant}" has no key ${id}`);
  if (matches.length > 1) throw new ConflictError(`key id ${id} is ambiguous: give more digits`);
  await ports.tenantKeys.delete((matches[0] as TenantKeyRecord).keyHash);
}
