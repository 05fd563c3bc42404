/**
 * Registration tokens at the hub: the pure use cases and the routes, through the API
 * handler with in-memory stores (the DynamoDB store is tested against DynamoDB Local in
 * test/integration/cli).
 */
import {
  type ConsumeResult,
  type RegistrationTokenRecord,
  type RegistrationTokenStore,
  registrationTokenState,
} from '@flotilla/shared/hub';
import type { Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { createApiHandler } from '../../../functions/src/http/api.ts';
import { toApiGatewayEvent } from '../../../functions/src/local/event.ts';
import { adminKey, fakeApiDeps } from '../hub/fakes.ts';

class MemoryRegistrationTokens implements RegistrationTokenStore {
  readonly items = new Map<string, RegistrationTokenRecord>();
  async create(record: RegistrationTokenRecord) {
    this.items.set(record.tokenHash, record);
  }
  async get(hash: string) {
    return this.items.get(hash);
  }
  async list() {
    return [...this.items.values()];
  }
  async consume(hash: string, clusterId: string, now: string): Promise<ConsumeResult> {
    const record = this.items.get(hash);
    if (!record) return { ok: false, reason: 'unknown' };
    const state = registrationTokenState(record, new Date(now));
    if (state !== 'active') return { ok: false, reason: state, record };
    const used = { ...record, usedAt: now, usedBy: clusterId };
    this.items.set(hash, used);
    return { ok: true, record: used };
  }
  async release(hash: string, clusterId: string) {
    const record = this.items.get(hash);
    if (record?.usedBy === clusterId) {
      const { usedAt: _a, usedBy: _b, ...rest } = record;
      this.items.set(hash, rest);
    }
  }
  async delete(hash: string) {
    this.items.delete(hash);
  }
}

function hub() {
  let clock = Date.parse('2024-05-01T12:00:00Z');
  const registrationTokens = new MemoryRegistrationTokens();
  const deps = { ...fakeApiDeps({ now: () => new Date(clock) }), registrationTokens };
  const handler = createApiHandler(deps);
  let n = 0;
  const call = async (method: string, url: string, opts: { token?: string; body?: unknown } = {}) => {
    const event = toApiGatewayEvent({
      method,
      url,
      headers: {
        ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
        ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: Buffer.from(opts.body === undefined ? '' : JSON.stringify(opts.body)),
      sourceIp: '127.0.0.1',
      requestId: `r${++n}`,
      now: new Date(clock),
    });
    const res = await handler(event, { awsRequestId: 'l' } as Context);
    return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : undefined };
  };
  return { deps, registrationTokens, call, advance: (ms: number) => (clock += ms) };
}

describe('registration tokens (API handler, in-memory stores)', () => {
  it('issues a token once, stores only its hash, and registers exactly one cluster with it', async () => {
    const h = hub();
    const created = await h.call('POST', '/v1/admin/registration-tokens', {
      token: adminKey,
      body: { ttlSeconds: 3600, labels: { site: 'berlin' }, description: 'store 3' },
    });
    expect(created.status).toBe(201);
    const token = created.body.token as string;
    expect(token).toMatch(/^frt_/);
    expect(created.body.registrationToken).toMatchObject({
      state: 'active',
      labels: { site: 'berlin' },
      createdBy: 'admin-key',
    });
    expect(JSON.stringify([...h.registrationTokens.items.values()])).not.toContain(token);

    const registered = await h.call('POST', '/v1/register', {
      token,
      body: { name: 'edge-1', labels: { env: 'edge' } },
    });
    expect(registered.status).toBe(201);
    expect(registered.body.token).toMatch(/^flt_edge-1\./);
    expect(registered.body.cluster.labels).toEqual({ env: 'edge', site: 'berlin' });
    expect(registered.body.publicKey.publicKeyPem).toMatch(/BEGIN PUBLIC KEY/);

    const again = await h.call('POST', '/v1/register', { token, body: { name: 'edge-2' } });
    expect(again.status).toBe(401);
    expect(again.body.error.message).toMatch(
      /already used at 2024-05-01T12:00:00.000Z; each token registers one cluster/,
    );
    expect(await h.deps.clusters.get('edge-2')).toBeUndefined();

    const list = await h.call('GET', '/v1/admin/registration-tokens', { token: adminKey });
    expect(list.body.registrationTokens).toEqual([
      expect.objectContaining({ state: 'used', usedBy: 'edge-1', description: 'store 3' }),
    ]);
    expect(JSON.stringify(list.body)).not.toMatch(/tokenHash|frt_/);
  });

  it('refuses an expired token, an unknown one, and a request without one', async () => {
    const h = hub();
    const { body } = await h.call('POST', '/v1/admin/registration-tokens', {
      token: adminKey,
      body: { ttlSeconds: 60 },
    });
    h.advance(61_000);
    const expired = await h.call('POST', '/v1/register', { token: body.token, body: { name: 'late' } });
    expect(expired.status).toBe(401);
    expect(expired.body.error.message).toMatch(/the registration token expired at 2024-05-01T12:01:00.000Z/);
    const unknown = await h.call('POST', '/v1/register', { token: 'frt_nope', body: { name: 'x' } });
    expect(unknown.status).toBe(401);
    expect(unknown.body.error.message).toMatch(/not valid \(unknown or revoked\)/);
    const none = await h.call('POST', '/v1/register', { body: { name: 'x' } });
    expect(none.status).toBe(401);
    expect(await h.deps.clusters.list()).toEqual([]);
  });

  it("does not burn a token on a taken name or a bad request, and keeps the token's labels", async () => {
    const h = hub();
    await h.call('POST', '/v1/admin/clusters', { token: adminKey, body: { name: 'taken' } });
    const { body } = await h.call('POST', '/v1/admin/registration-tokens', {
      token: adminKey,
      body: { ttlSeconds: 600, labels: { env: 'edge' } },
    });
    const taken = await h.call('POST', '/v1/register', { token: body.token, body: { name: 'taken' } });
    expect(taken.status).toBe(409);
    const bad = await h.call('POST', '/v1/register', { token: body.token, body: { name: 'Bad_Name' } });
    expect(bad.status).toBe(400);
    const contradicting = await h.call('POST', '/v1/register', {
      token: body.token,
      body: { name: 'ok', labels: { env: 'prod' } },
    });
    expect(contradicting.status).toBe(400);
    expect(contradicting.body.error.message).toMatch(/the registration token sets env=edge/);
    const ok = await h.call('POST', '/v1/register', { token: body.token, body: { name: 'ok' } });
    expect(ok.status).toBe(201);
  });

  it('validates token requests and revokes by id', async () => {
    const h = hub();
    const bad = await h.call('POST', '/v1/admin/registration-tokens', {
      token: adminKey,
      body: { ttlSeconds: 5, labels: { 'no pe': 'x' }, extra: 1 },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.problems.map((p: { field: string }) => p.field).sort()).toEqual([
      'extra',
      'labels',
      'ttlSeconds',
    ]);
    const noAdmin = await h.call('POST', '/v1/admin/registration-tokens', { body: { ttlSeconds: 600 } });
    expect(noAdmin.status).toBe(401);
    const { body } = await h.call('POST', '/v1/admin/registration-tokens', {
      token: adminKey,
      body: { ttlSeconds: 600 },
    });
    const revoked = await h.call('DELETE', `/v1/admin/registration-tokens/${body.registrationToken.id}`, {
      token: adminKey,
    });
    expect(revoked.status).toBe(204);
    const after = await h.call('POST', '/v1/register', { token: body.token, body: { name: 'x' } });
    expect(after.status).toBe(401);
    const missing = await h.call('DELETE', '/v1/admin/registration-tokens/000000000000', { token: adminKey });
    expect(missing.status).toBe(404);
  });

  it('lets a cluster read its own registration with its token, and only its own', async () => {
    const h = hub();
    const a = await h.call('POST', '/v1/admin/clusters', {
      token: adminKey,
      body: { name: 'a', labels: { env: 'x' } },
    });
    await h.call('POST', '/v1/admin/clusters', { token: adminKey, body: { name: 'b' } });
    const own = await h.call('GET', '/v1/clusters/a', { token: a.body.token });
    expect(own.status).toBe(200);
    expect(own.body.cluster).toMatchObject({ id: 'a', labels: { env: 'x' } });
    expect(own.body.publicKey.keyId).toBe(h.deps.signer.keyId);
    expect((await h.call('GET', '/v1/clusters/b', { token: a.body.token })).status).toBe(403);
    await h.call('POST', '/v1/admin/clusters/a/rotate-token', { token: adminKey });
    expect((await h.call('GET', '/v1/clusters/a', { token: a.body.token })).status).toBe(401);
  });
});
