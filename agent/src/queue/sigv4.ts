/**
 * AWS Signature Version 4 for one request, with node:crypto: the few lines the agent's SQS
 * calls need, instead of the SDK's signer and the client around it (some 25 MB of
 * resident memory). Follows "Create a signed AWS API request" in the IAM user guide; the
 * unit tests check it against the SDK's own signer (@smithy/signature-v4).
 */
import { createHash, createHmac } from 'node:crypto';
import { isoTime } from '@flotilla/shared/agent';

export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string | undefined;
}

export interface SignableRequest {
  readonly method: string;
  readonly url: URL;
  /** Headers to send, without the ones signing adds. Names in any case. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

const sha256Hex = (data: string) => createHash('sha256').update(data, 'utf8').digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();

/** RFC 3986 encoding, as SigV4 wants it (`encodeURIComponent` leaves `!'()*` alone). */
function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function canonicalQuery(url: URL): string {
  return [...url.searchParams]
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
    .sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

/** The path, normalized and encoded once more (all services but S3 sign the path encoded twice; a URL's is encoded once). */
function canonicalPath(url: URL): string {
  const path = url.pathname || '/';
  const segments: string[] = [];
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  const normalized = `/${segments.join('/')}${segments.length > 0 && path.endsWith('/') ? '/' : ''}`;
  return uriEncode(normalized).replace(/%2F/g, '/');
}

/**
 * The headers that sign `req` for `service` in `region` at `now`: `host`, `x-amz-date`,
 * `x-amz-content-sha256`, `x-amz-security-token` (with temporary credentials) and
 * `authorization`. Every header of the request is signed.
 */
export function signatureV4Headers(
  req: SignableRequest,
  opts: {
    readonly credentials: AwsCredentials;
    readonly region: string;
    readonly service: string;
    readonly now?: Date;
    /** Send (and sign) `x-amz-content-sha256`, as the SDK does for every service. Default true. */
    readonly contentSha256Header?: boolean;
  },
): Record<string, string> {
  const { credentials, region, service } = opts;
  const amzDate = isoTime((opts.now ?? new Date()).getTime()).replace(/[-:]|\.\d{3}/g, '');
  const day = amzDate.slice(0, 8);
  const payloadHash = sha256Hex(req.body);
  const added: Record<string, string> = { host: req.url.host, 'x-amz-date': amzDate };
  if (opts.contentSha256Header ?? true) added['x-amz-content-sha256'] = payloadHash;
  if (credentials.sessionToken) added['x-amz-security-token'] = credentials.sessionToken;
  const all = new Map<string, string>();
  for (const [k, v] of Object.entries({ ...req.headers, ...added }))
    all.set(k.toLowerCase(), v.trim().replace(/\s+/g, ' '));
  const names = [...all.keys()].sort();
  const signedHeaders = names.join(';');
  const canonicalRequest = [
    req.method.toUpperCase(),
    service === 's3' ? req.url.pathname : canonicalPath(req.url),
    canonicalQuery(req.url),
    ...names.map((n) => `${n}:${all.get(n)}`),
    '',
    signedHeaders,
    payloadHash,
  ].join('\n');
  const scope = `${day}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonicalRequest)].join('\n');
  const key = hmac(
    hmac(hmac(hmac(`AWS4${credentials.secretAccessKey}`, day), region), service),
    'aws4_request',
  );
  const signature = createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex');
  return {
    ...added,
    authorization: `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`,
  };
}
