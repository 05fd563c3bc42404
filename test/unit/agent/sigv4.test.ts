import { createHash, createHmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { describe, expect, it } from 'vitest';
import { signatureV4Headers } from '../../../agent/src/queue/sigv4.ts';

type Data = string | ArrayBuffer | ArrayBufferView;
const bytes = (d: Data) =>
  typeof d === 'string'
    ? d
    : d instanceof ArrayBuffer
      ? new Uint8Array(d)
      : new Uint8Array(d.buffer, d.byteOffset, d.byteLength);

/** The SDK's SHA-256 shape, on node:crypto (as cli/src/hub/iam-signer.ts does). */
class Sha256 {
  readonly #hash;
  constructor(secret?: Data) {
    this.#hash = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: Data): void {
    this.#hash.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.#hash.digest());
  }
}

/** Signs with the AWS SDK's own signer: the reference the agent's few lines must agree with. */
async function sdkHeaders(
  url: URL,
  headers: Record<string, string>,
  body: string,
  opts: {
    credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
    region: string;
    now: Date;
  },
) {
  const signer = new SignatureV4({
    service: 'sqs',
    region: opts.region,
    credentials: opts.credentials,
    sha256: Sha256,
  });
  const query: Record<string, string | string[]> = {};
  for (const [k, v] of url.searchParams) {
    const prev = query[k];
    query[k] = prev === undefined ? v : [...(Array.isArray(prev) ? prev : [prev]), v];
  }
  const signed = await signer.sign(
    {
      method: 'POST',
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port ? { port: Number(url.port) } : {}),
      path: url.pathname,
      query,
      headers: { ...headers, host: url.host },
      body,
    },
    { signingDate: opts.now },
  );
  return Object.fromEntries(Object.entries(signed.headers).map(([k, v]) => [k.toLowerCase(), v]));
}

describe('SigV4 signing of SQS requests', () => {
  const now = new Date('2026-11-23T08:15:30.123Z');
  const cases = [
    {
      what: 'a long poll in AWS, with permanent credentials',
      url: new URL('https://sqs.eu-west-1.amazonaws.com/'),
      credentials: {
        accessKeyId: 'AKIDEXAMPLE',
        secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
      },
      region: 'eu-west-1',
      target: 'AmazonSQS.ReceiveMessage',
      body: JSON.stringify({
        QueueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/flotilla-edge-1',
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 20,
      }),
    },
    {
      what: 'a batch delete on another port with temporary credentials',
      url: new URL('http://127.0.0.1:9324/'),
      credentials: {
        accessKeyId: 'ASIAEXAMPLE',
        secretAccessKey: 'secret/with+chars',
        sessionToken: 'IQoJb3JpZ2luX2VjEXAMPLE//token==',
      },
      region: 'us-east-1',
      target: 'AmazonSQS.DeleteMessageBatch',
      body: JSON.stringify({ QueueUrl: 'q', Entries: [{ Id: '0', ReceiptHandle: 'a b+c/ü' }] }),
    },
    {
      what: 'an endpoint with a path and a query',
      url: new URL('https://sqs.example.internal/proxy/sqs api/?b=2&a=1&a=0'),
      credentials: { accessKeyId: 'AKID', secretAccessKey: 'k' },
      region: 'ap-southeast-2',
      target: 'AmazonSQS.ReceiveMessage',
      body: '{}',
    },
  ];
  for (const c of cases) {
    it(`agrees with the AWS SDK's signer: ${c.what}`, async () => {
      const headers = { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': c.target };
      const ours = signatureV4Headers(
        { method: 'POST', url: c.url, headers, body: c.body },
        { credentials: c.credentials, region: c.region, service: 'sqs', now },
      );
      const sdk = await sdkHeaders(c.url, headers, c.body, {
        credentials: c.credentials,
        region: c.region,
        now,
      });
      expect(ours.authorization).toBe(sdk.authorization);
      expect(ours['x-amz-date']).toBe(sdk['x-amz-date']);
      expect(ours['x-amz-security-token']).toBe(sdk['x-amz-security-token']);
      expect(ours['x-amz-content-sha256']).toBe(sdk['x-amz-content-sha256']);
    });
  }

  it("matches the worked example of AWS's documentation (IAM ListUsers)", () => {
    // "Signature Version 4 signing process" example: GET https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08
    const headers = signatureV4Headers(
      {
        method: 'GET',
        url: new URL('https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08'),
        headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
        body: '',
      },
      {
        credentials: {
          accessKeyId: 'AKIDEXAMPLE',
          secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
        },
        region: 'us-east-1',
        service: 'iam',
        now: new Date('2015-08-30T12:36:00Z'),
        contentSha256Header: false,
      },
    );
    expect(headers.authorization).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7',
    );
  });
});
