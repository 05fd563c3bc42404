import { ConflictError, InvalidRequestError, NotFoundError, ValidationError } from '@flotilla/shared/hub';
import type { Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { createApiHandler } from '../../../functions/src/http/api.ts';
import { errorResponse } from '../../../functions/src/http/error-handler.ts';
import {
  ForbiddenError,
  MalformedBodyError,
  MethodNotAllowedError,
  PayloadTooLargeError,
  RouteNotFoundError,
  UnauthenticatedError,
  UnsupportedMediaTypeError,
} from '../../../functions/src/http/errors.ts';
import type { ApiEvent } from '../../../functions/src/http/request.ts';
import { toApiGatewayEvent } from '../../../functions/src/local/event.ts';
import { addCluster, adminKey, fakeApiDeps } from './fakes.ts';

let counter = 0;

function event(
  method: string,
  url: string,
  opts: { token?: string; body?: string; headers?: Record<string, string> } = {},
): ApiEvent {
  return toApiGatewayEvent({
    method,
    url,
    headers: {
      ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
      ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...opts.headers,
    },
    body: Buffer.from(opts.body ?? ''),
    sourceIp: '127.0.0.1',
    requestId: `req-${++counter}`,
    now: new Date('2024-05-01T12:00:00Z'),
  });
}

const context = { awsRequestId: 'lambda-request' } as Context;

async function call(deps: ReturnType<typeof fakeApiDeps>, e: ApiEvent) {
  const result = await createApiHandler(deps)(e, context);
  const body = result.body
    ? (JSON.parse(result.body) as { error?: Record<string, unknown> } & Record<string, unknown>)
    : undefined;
  return { ...result, json: body };
}

describe('API error handling (middy onError, fakes for the ports)', () => {
  it('answers a failing store with a generic 500 that leaks nothing, and logs the real error', async () => {
    const deps = fakeApiDeps();
    deps.clusters.list = async () => {
      throw new Error('connect ECONNREFUSED 10.0.0.5:8000 (table flotilla-clusters)', {
        cause: new Error('socket hang up'),
      });
    };
    const res = await call(deps, event('GET', '/v1/admin/clusters', { token: adminKey }));
    expect(res.statusCode).toBe(500);
    expect(res.json?.error).toEqual({
      code: 'internal',
      message: expect.stringContaining(res.headers['x-request-id'] ?? 'missing'),
      requestId: res.headers['x-request-id'],
    });
    for (const secret of ['ECONNREFUSED', '10.0.0.5', 'flotilla-clusters', 'socket', 'at ', '.ts']) {
      expect(res.body).not.toContain(secret);
    }
    expect(res.headers['cache-control']).toBe('no-store');
    const logged = deps.log.lines.find((l) => l.level === 'error');
    expect(logged?.fields.requestId).toBe(res.headers['x-request-id']);
    expect(JSON.stringify(logged)).toContain('ECONNREFUSED');
    expect(JSON.stringify(logged)).toContain('socket hang up');
    expect(JSON.stringify(deps.log.lines)).not.toContain(adminKey);
  });

  it('answers a failure on an agent route the same way, without echoing the token', async () => {
    const deps = fakeApiDeps();
    const token = await addCluster(deps.clusters, 'edge-1');
    deps.desiredStates.current = async () => {
      throw new TypeError("Cannot read properties of undefined (reading 'manifest')");
    };
    const res = await call(deps, event('GET', '/v1/clusters/edge-1/desired-state', { token }));
    expect(res.statusCode).toBe(500);
    expect(res.body).not.toContain('manifest');
    expect(res.body).not.toContain(token);
    expect(JSON.stringify(deps.log.lines)).not.toContain(token);
  });

  it('answers something thrown that is not an Error with a 500 too', async () => {
    const deps = fakeApiDeps();
    deps.clusters.list = async () => {
      throw 'a string';
    };
    const res = await call(deps, event('GET', '/v1/admin/clusters', { token: adminKey }));
    expect(res.statusCode).toBe(500);
    expect(res.body).not.toContain('a string');
  });

  it('maps every known error to its status and code, with the message for 4xx only', () => {
    const cases: [unknown, number, string][] = [
      [new InvalidRequestError([{ field: 'a', message: 'bad' }]), 400, 'invalid_request'],
      [new ValidationError('name', 'bad name'), 400, 'invalid_request'],
      [new MalformedBodyError('the body is not valid JSON: x'), 400, 'malformed_json'],
      [new UnauthenticatedError('who are you'), 401, 'unauthenticated'],
      [new ForbiddenError('not yours'), 403, 'forbidden'],
      [new NotFoundError('no such cluster'), 404, 'not_found'],
      [new RouteNotFoundError('GET', '/x'), 404, 'route_not_found'],
      [new MethodNotAllowedError('PUT', '/x', ['GET']), 405, 'method_not_allowed'],
      [new ConflictError('taken'), 409, 'conflict'],
      [new PayloadTooLargeError('big'), 413, 'payload_too_large'],
      [new UnsupportedMediaTypeError('xml?'), 415, 'unsupported_media_type'],
      [new Error('internal detail'), 500, 'internal'],
      [new RangeError('internal detail'), 500, 'internal'],
    ];
    for (const [err, status, code] of cases) {
      const { result, internal } = errorResponse(err, 'rid');
      const body = JSON.parse(result.body ?? '{}') as { error: { code: string; message: string } };
      expect([result.statusCode, body.error.code], String(err)).toEqual([status, code]);
      expect(internal).toBe(status === 500);
      if (status < 500) expect(body.error.message).toBe((err as Error).message);
      else expect(body.error.message).not.toContain('internal detail');
    }
    const validation = JSON.parse(
      errorResponse(new ValidationError('labels.env', 'expected a string'), 'r').result.body ?? '',
    );
    expect(validation.error.field).toBe('labels.env');
    const allowed = errorResponse(new MethodNotAllowedError('PUT', '/x', ['GET', 'POST']), 'r').result;
    expect(allowed.headers.allow).toBe('GET, POST');
    expect(errorResponse(new UnauthenticatedError('x'), 'r').result.headers['www-authenticate']).toMatch(
      /^Bearer/,
    );
  });

  it('answers unknown routes with 404 and known paths with the wrong method with 405', async () => {
    const deps = fakeApiDeps();
    const unknown = await call(deps, event('GET', '/v2/clusters'));
    expect([unknown.statusCode, unknown.json?.error?.code]).toEqual([404, 'route_not_found']);
    const wrong = await call(deps, event('DELETE', '/v1/admin/status', { token: adminKey }));
    expect([wrong.statusCode, wrong.headers.allow]).toEqual([405, 'GET']);
  });

  it('names the problem in malformed JSON and refuses other media types', async () => {
    const deps = fakeApiDeps();
    const bad = await call(
      deps,
      event('POST', '/v1/admin/clusters', { token: adminKey, body: '{"name": }' }),
    );
    expect(bad.statusCode).toBe(400);
    expect(bad.json?.error?.code).toBe('malformed_json');
    expect(String(bad.json?.error?.message)).toMatch(/^the body is not valid JSON: .+/);
    const xml = await call(
      deps,
      event('POST', '/v1/admin/clusters', {
        token: adminKey,
        body: '<cluster/>',
        headers: { 'content-type': 'application/xml' },
      }),
    );
    expect(xml.statusCode).toBe(415);
  });

  it('maps conflicts to 409 and missing clusters to 404', async () => {
    const deps = fakeApiDeps();
    await addCluster(deps.clusters, 'edge-1');
    const again = await call(
      deps,
      event('POST', '/v1/admin/clusters', { token: adminKey, body: '{"name":"edge-1"}' }),
    );
    expect([again.statusCode, again.json?.error?.code]).toEqual([409, 'conflict']);
    const gone = await call(deps, event('DELETE', '/v1/admin/clusters/edge-9', { token: adminKey }));
    expect([gone.statusCode, gone.json?.error?.code]).toEqual([404, 'not_found']);
  });

  it("authenticates agents by their own token: 401 without or with a bad one, 403 on another cluster's route", async () => {
    const deps = fakeApiDeps();
    const a = await addCluster(deps.clusters, 'edge-a');
    await addCluster(deps.clusters, 'edge-b');
    expect((await call(deps, event('GET', '/v1/clusters/edge-a/desired-state'))).statusCode).toBe(401);
    const forged = await call(
      deps,
      event('GET', '/v1/clusters/edge-a/desired-state', { token: 'flt_edge-a.guess' }),
    );
    expect(forged.statusCode).toBe(401);
    const other = await call(deps, event('GET', '/v1/clusters/edge-b/desired-state', { token: a }));
    expect([other.statusCode, other.json?.error?.code]).toEqual([403, 'forbidden']);
    const own = await call(deps, event('GET', '/v1/clusters/edge-a/desired-state', { token: a }));
    expect(own.statusCode).toBe(404); // registered, never synced
    // A cluster token is no admin key, and the admin key no cluster token.
    expect((await call(deps, event('GET', '/v1/admin/clusters', { token: a }))).statusCode).toBe(401);
    expect(
      (await call(deps, event('GET', '/v1/clusters/edge-a/desired-state', { token: adminKey }))).statusCode,
    ).toBe(401);
  });

  it('trusts the IAM authorizer identity in iam mode, and nothing else', async () => {
    const deps = fakeApiDeps();
    const iam = fakeApiDeps({
      clusters: deps.clusters,
      config: { ...deps.config, adminAuth: 'iam', adminKeySha256: undefined },
    });
    const signed = event('GET', '/v1/admin/clusters');
    signed.requestContext.authorizer = {
      iam: {
        accessKey: 'AKIA',
        accountId: '123456789012',
        callerId: 'AIDA',
        cognitoIdentity: null,
        principalOrgId: '',
        userArn: 'arn:aws:iam::123456789012:user/admin',
        userId: 'AIDA',
      },
    };
    expect((await call(iam, signed)).statusCode).toBe(200);
    const unsigned = await call(iam, event('GET', '/v1/admin/clusters', { token: adminKey }));
    expect(unsigned.statusCode).toBe(401);
    expect(unsigned.headers['www-authenticate']).toBe('AWS4-HMAC-SHA256');
  });

  it('dispatches on the routeKey and pathParameters API Gateway sends', async () => {
    const deps = fakeApiDeps();
    await addCluster(deps.clusters, 'edge-1', { env: 'prod' });
    const e = event('GET', '/v1/admin/clusters/edge-1', { token: adminKey });
    // As API Gateway sends it from a named stage: the raw path carries the stage.
    const routed: ApiEvent = {
      ...e,
      rawPath: '/prod/v1/admin/clusters/edge-1',
      routeKey: 'GET /v1/admin/clusters/{id}',
      pathParameters: { id: 'edge-1' },
    };
    const res = await call(deps, routed);
    expect(res.statusCode).toBe(200);
    expect(res.json?.cluster).toMatchObject({ labels: { env: 'prod' } });
    expect(res.body).not.toContain('tokenHash');
  });

  it('turns webhooks away when no secret is configured', async () => {
    const deps = fakeApiDeps();
    const off = fakeApiDeps({
      clusters: deps.clusters,
      config: { ...deps.config, webhookSecret: undefined },
    });
    const res = await call(
      off,
      event('POST', '/v1/webhooks/git', { body: '{}', headers: { 'x-hub-signature-256': 'sha256=00' } }),
    );
    expect([res.statusCode, res.json?.error?.code]).toEqual([404, 'not_found']);
  });

  it('sets the request id and no-store on successful responses', async () => {
    const deps = fakeApiDeps();
    const res = await call(deps, event('GET', '/v1/admin/public-key', { token: adminKey }));
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-request-id']).toMatch(/^req-/);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
  });
});
