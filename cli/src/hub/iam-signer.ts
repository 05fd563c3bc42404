/**
 * Admin requests to a hub in AWS are authorised by API Gateway's IAM authorizer: each is
 * signed with SigV4 (service `execute-api`) using the caller's AWS credentials from the
 * usual chain (environment, profile, SSO, instance role). The SDK parts load on first use
 * only, so the admin-key path never pays for them.
 */
import { createHash, createHmac } from 'node:crypto';
import type { RequestSigner } from './hub-client.ts';

/** SHA-256 or HMAC-SHA256 in the shape the SigV4 signer wants. */
class NodeSha256 {
  readonly #hash: ReturnType<typeof createHash> | ReturnType<typeof createHmac>;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.#hash = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.#hash.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.#hash.digest());
  }
}

function bytes(data: string | ArrayBuffer | ArrayBufferView): string | Uint8Array {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

export interface IamSignerOptions {
  readonly region: string;
  /** Credentials instead of the default chain (tests). */
  readonly credentials?: {
    readonly accessKeyId: string;
    readonly secretAccessKey: string;
    readonly sessionToken?: string;
  };
  readonly now?: () => Date;
}

export function iamSigner(opts: IamSignerOptions): RequestSigner {
  let signer: Promise<import('@smithy/signature-v4').SignatureV4> | undefined;
  const load = async () => {
    const { SignatureV4 } = await import('@smithy/signature-v4');
    const credentials =
      opts.credentials ?? (await import('@aws-sdk/credential-provider-node')).defaultProvider();
    return new SignatureV4({ service: 'execute-api', region: opts.region, credentials, sha256: NodeSha256 });
  };
  return async ({ method, url, headers, body }) => {
    signer ??= load();
    const query: Record<string, string | string[]> = {};
    for (const [k, v] of url.searchParams) {
      const prev = query[k];
      query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
    }
    const signed = await (await signer).sign(
      {
        method,
        protocol: url.protocol,
        hostname: url.hostname,
        ...(url.port ? { port: Number(url.port) } : {}),
        path: url.pathname,
        query,
        headers: { ...headers, host: url.host },
        ...(body !== undefined ? { body } : {}),
      },
      opts.now ? { signingDate: opts.now() } : {},
    );
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(signed.headers)) {
      if (k.toLowerCase() !== 'host' && headers[k] === undefined) out[k] = v;
    }
    return out;
  };
}
