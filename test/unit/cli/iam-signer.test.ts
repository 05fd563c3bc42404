import { describe, expect, it } from 'vitest';
import { HubClient } from '../../../cli/src/hub/hub-client.ts';
import { iamSigner } from '../../../cli/src/hub/iam-signer.ts';
import { fakeFetch } from './fakes.ts';

describe('admin requests to a hub in AWS (IAM)', () => {
  it('are SigV4-signed for execute-api in the hub region, with the session token and a body hash', async () => {
    const seen: { url: string; method: string; headers: Headers; body: string | undefined }[] = [];
    const fetch = fakeFetch(
      { 'PATCH /v1/admin/clusters/c1/labels': () => ({ status: 200, body: { cluster: {}, sync: {} } }) },
      seen,
    );
    const hub = new HubClient({
      baseUrl: 'https://abc123.execute-api.eu-west-1.amazonaws.com',
      admin: {
        kind: 'signer',
        sign: iamSigner({
          region: 'eu-west-1',
          credentials: {
            accessKeyId: 'AKIDEXAMPLE',
            secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
            sessionToken: 'session-1',
          },
          now: () => new Date('2024-05-01T12:00:00Z'),
        }),
      },
      fetch,
    });
    await hub.relabelCluster('c1', { set: { tier: 'gold' } });
    const h = seen[0]?.headers;
    expect(h?.get('authorization')).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/20240501\/eu-west-1\/execute-api\/aws4_request, SignedHeaders=[a-z0-9;-]*content-type;host;[a-z0-9;-]*x-amz-date[a-z0-9;-]*, Signature=[0-9a-f]{64}$/,
    );
    expect(h?.get('x-amz-date')).toBe('20240501T120000Z');
    expect(h?.get('x-amz-security-token')).toBe('session-1');
    // No admin key travels in IAM mode.
    expect(h?.get('authorization')).not.toMatch(/^Bearer/);
  });

  it('gives the same signature for the same request and time, and another for another body', async () => {
    const sign = iamSigner({
      region: 'eu-west-1',
      credentials: { accessKeyId: 'AKID', secretAccessKey: 'secret' },
      now: () => new Date('2024-05-01T12:00:00Z'),
    });
    const url = new URL('https://h.example.com/v1/admin/sync?x=1');
    const one = await sign({
      method: 'POST',
      url,
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    const two = await sign({
      method: 'POST',
      url,
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    const three = await sign({
      method: 'POST',
      url,
      headers: { 'content-type': 'application/json' },
      body: '{"a":1}',
    });
    expect(one.authorization).toBe(two.authorization);
    expect(three.authorization).not.toBe(one.authorization);
  });
});
