import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { hubRoutes, matchRoute, routeKeyOf } from '../../../functions/src/http/routes.ts';
import { fromApiGatewayResult, toApiGatewayEvent } from '../../../functions/src/local/event.ts';

const base = {
  sourceIp: '10.1.2.3',
  requestId: 'req-1',
  now: new Date('2024-03-12T19:03:58.123Z'),
};

describe('local server: HTTP request to API Gateway v2 event', () => {
  it('fills in the route key, path parameters and request context as API Gateway does', () => {
    const e = toApiGatewayEvent({
      ...base,
      method: 'get',
      url: '/v1/clusters/edge-1/desired-state',
      headers: { host: 'hub.local:8080', 'user-agent': 'flotilla-agent/0.1.0' },
      body: Buffer.alloc(0),
    });
    expect(e.version).toBe('2.0');
    expect(e.routeKey).toBe('GET /v1/clusters/{id}/desired-state');
    expect(e.pathParameters).toEqual({ id: 'edge-1' });
    expect(e.rawPath).toBe('/v1/clusters/edge-1/desired-state');
    expect(e.rawQueryString).toBe('');
    expect(e.queryStringParameters).toBeUndefined();
    expect(e.body).toBeUndefined();
    expect(e.isBase64Encoded).toBe(false);
    expect(e.requestContext).toMatchObject({
      http: {
        method: 'GET',
        path: '/v1/clusters/edge-1/desired-state',
        protocol: 'HTTP/1.1',
        sourceIp: '10.1.2.3',
        userAgent: 'flotilla-agent/0.1.0',
      },
      requestId: 'req-1',
      routeKey: 'GET /v1/clusters/{id}/desired-state',
      stage: '$default',
      domainName: 'hub.local:8080',
      domainPrefix: 'hub',
      time: '12/Mar/2024:19:03:58 +0000',
      timeEpoch: base.now.getTime(),
    });
  });

  it('lower-cases headers, joins repeated ones with commas and moves cookies out', () => {
    const e = toApiGatewayEvent({
      ...base,
      method: 'GET',
      url: '/v1/admin/status',
      headers: { 'X-Custom': ['a', 'b'], Accept: 'application/json', cookie: 'a=1; b=2' },
      body: Buffer.alloc(0),
    });
    expect(e.headers).toEqual({ 'x-custom': 'a,b', accept: 'application/json' });
    expect(e.cookies).toEqual(['a=1', 'b=2']);
  });

  it('keeps the raw query string and parses it, joining repeated keys with commas', () => {
    const e = toApiGatewayEvent({
      ...base,
      method: 'GET',
      url: '/v1/admin/clusters?selector=env%3Dprod%2Cregion+in+(eu)&x=1&x=2',
      headers: {},
      body: Buffer.alloc(0),
    });
    expect(e.rawPath).toBe('/v1/admin/clusters');
    expect(e.rawQueryString).toBe('selector=env%3Dprod%2Cregion+in+(eu)&x=1&x=2');
    expect(e.queryStringParameters).toEqual({ selector: 'env=prod,region in (eu)', x: '1,2' });
  });

  it('passes text bodies as text and anything else base64-encoded', () => {
    const json = toApiGatewayEvent({
      ...base,
      method: 'POST',
      url: '/v1/admin/clusters',
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: Buffer.from('{"name":"é"}'),
    });
    expect([json.isBase64Encoded, json.body]).toEqual([false, '{"name":"é"}']);
    const gz = gzipSync('hello');
    const binary = toApiGatewayEvent({
      ...base,
      method: 'POST',
      url: '/v1/webhooks/git',
      headers: { 'content-type': 'application/octet-stream' },
      body: gz,
    });
    expect(binary.isBase64Encoded).toBe(true);
    expect(Buffer.from(binary.body ?? '', 'base64')).toEqual(gz);
    const untyped = toApiGatewayEvent({ ...base, method: 'POST', url: '/x', headers: {}, body: gz });
    expect(untyped.isBase64Encoded).toBe(true);
  });

  it('uses $default, without path parameters, for a request no route matches', () => {
    const e = toApiGatewayEvent({
      ...base,
      method: 'PUT',
      url: '/v1/admin/clusters',
      headers: {},
      body: Buffer.alloc(0),
    });
    expect(e.routeKey).toBe('$default');
    expect(e.pathParameters).toBeUndefined();
  });

  it('percent-decodes path parameters', () => {
    const e = toApiGatewayEvent({
      ...base,
      method: 'GET',
      url: `/v1/bundles/sha256%3A${'a'.repeat(64)}`,
      headers: {},
      body: Buffer.alloc(0),
    });
    expect(e.pathParameters).toEqual({ hash: `sha256:${'a'.repeat(64)}` });
  });
});

describe('local server: handler result to HTTP response', () => {
  it('writes a structured result, decoding base64 bodies and sending cookies as Set-Cookie', () => {
    const r = fromApiGatewayResult({
      statusCode: 201,
      headers: { 'Content-Type': 'application/json', 'X-Count': 3 },
      body: Buffer.from('{"ok":true}').toString('base64'),
      isBase64Encoded: true,
      cookies: ['a=1; HttpOnly'],
    });
    expect(r.statusCode).toBe(201);
    expect(r.headers).toEqual([
      ['content-type', 'application/json'],
      ['x-count', '3'],
      ['set-cookie', 'a=1; HttpOnly'],
    ]);
    expect(r.body.toString()).toBe('{"ok":true}');
  });

  it('turns a bare value into a 200 JSON response, as payload 2.0 does', () => {
    const r = fromApiGatewayResult({ hello: 'world' } as never);
    expect([r.statusCode, r.body.toString()]).toEqual([200, '{"hello":"world"}']);
    expect(r.headers).toContainEqual(['content-type', 'application/json']);
    expect(fromApiGatewayResult({ statusCode: 204 }).body.length).toBe(0);
  });
});

describe('route table', () => {
  it('matches each route by its own key, and tells 405 from 404', () => {
    for (const route of hubRoutes) {
      const path = route.path.replace(/\{(\w+)\}/g, 'x-1');
      const m = matchRoute(route.method, path);
      expect(m.kind === 'route' && routeKeyOf(m.route), route.id).toBe(routeKeyOf(route));
    }
    expect(matchRoute('PUT', '/v1/admin/clusters')).toEqual({
      kind: 'method-not-allowed',
      allowed: ['GET', 'POST'],
    });
    expect(matchRoute('GET', '/v1/admin/clusters/')).toEqual({ kind: 'not-found' });
    expect(matchRoute('GET', '/v1/clusters/a/b/desired-state')).toEqual({ kind: 'not-found' });
    expect(matchRoute('GET', '/v1/bundles/%E0%A4%A')).toEqual({ kind: 'not-found' });
  });
});
