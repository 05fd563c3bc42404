/**
 * Translation between plain HTTP and API Gateway HTTP API payload 2.0, as API Gateway
 * does it, so the local hub runs the Lambda handlers unchanged. Pure: no sockets here.
 */
import type { APIGatewayProxyResultV2 } from 'aws-lambda';
import type { ApiEvent } from '../http/request.ts';
import { matchRoute, routeKeyOf } from '../http/routes.ts';

export interface PlainRequest {
  readonly method: string;
  /** Path and query as sent: `/v1/admin/clusters?selector=env%3Dprod`. */
  readonly url: string;
  /** Node's `IncomingMessage.headers` shape: lower-case names, arrays for repeated headers. */
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  readonly body: Buffer;
  readonly sourceIp: string;
  readonly requestId: string;
  readonly now: Date;
}

/** Media types API Gateway passes as text; anything else arrives base64-encoded. */
const textType = /^(text\/|application\/([\w.+-]+\+)?(json|xml|javascript|x-www-form-urlencoded)\b)/i;

/**
 * The event API Gateway would send for this request: lower-cased headers (repeats joined
 * with commas), cookies apart, the query raw and parsed, the body as text or base64,
 * and `routeKey`/`pathParameters` from our routes (`$default` when none matches).
 */
export function toApiGatewayEvent(req: PlainRequest): ApiEvent {
  const headers: Record<string, string> = {};
  let cookies: string[] | undefined;
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    const key = name.toLowerCase();
    const values = typeof value === 'string' ? [value] : [...value];
    if (key === 'cookie') {
      cookies = values
        .flatMap((v) => v.split(';'))
        .map((c) => c.trim())
        .filter(Boolean);
      continue;
    }
    headers[key] = headers[key] === undefined ? values.join(',') : `${headers[key]},${values.join(',')}`;
  }
  const q = req.url.indexOf('?');
  const rawPath = q >= 0 ? req.url.slice(0, q) : req.url;
  const rawQueryString = q >= 0 ? req.url.slice(q + 1) : '';
  const query: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(rawQueryString))
    query[k] = query[k] === undefined ? v : `${query[k]},${v}`;
  const method = req.method.toUpperCase();
  const match = matchRoute(method, rawPath);
  const routeKey = match.kind === 'route' ? routeKeyOf(match.route) : '$default';
  const contentType = headers['content-type'] ?? '';
  const binary = req.body.length > 0 && !(contentType === '' ? isUtf8(req.body) : textType.test(contentType));
  const host = headers.host ?? 'localhost';
  const event: ApiEvent = {
    version: '2.0',
    routeKey,
    rawPath,
    rawQueryString,
    headers,
    requestContext: {
      accountId: 'local',
      apiId: 'local',
      domainName: host,
      domainPrefix: host.split('.')[0]?.split(':')[0] ?? host,
      http: {
        method,
        path: rawPath,
        protocol: 'HTTP/1.1',
        sourceIp: req.sourceIp,
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: req.requestId,
      routeKey,
      stage: '$default',
      time: apiGatewayTime(req.now),
      timeEpoch: req.now.getTime(),
    },
    isBase64Encoded: binary,
  };
  if (cookies && cookies.length > 0) event.cookies = cookies;
  if (Object.keys(query).length > 0) event.queryStringParameters = query;
  if (match.kind === 'route' && Object.keys(match.params).length > 0)
    event.pathParameters = { ...match.params };
  if (req.body.length > 0) event.body = req.body.toString(binary ? 'base64' : 'utf8');
  return event;
}

function isUtf8(bytes: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** API Gateway's `requestContext.time`: `12/Mar/2020:19:03:58 +0000`. */
function apiGatewayTime(d: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(d.getUTCDate())}/${months[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
}

export interface PlainResponse {
  readonly statusCode: number;
  readonly headers: readonly (readonly [string, string])[];
  readonly body: Buffer;
}

/**
 * The HTTP response API Gateway makes of a handler's result: a structured result as
 * given (base64 bodies decoded, cookies as Set-Cookie); anything else, as payload 2.0
 * does, becomes a 200 with the value as JSON.
 */
export function fromApiGatewayResult(result: APIGatewayProxyResultV2 | undefined | null): PlainResponse {
  if (result === undefined || result === null || typeof result !== 'object' || !('statusCode' in result)) {
    const body = typeof result === 'string' ? result : JSON.stringify(result ?? null);
    return {
      statusCode: 200,
      headers: [['content-type', 'application/json']],
      body: Buffer.from(body, 'utf8'),
    };
  }
  const headers: [string, string][] = Object.entries(result.headers ?? {}).map(([k, v]) => [
    k.toLowerCase(),
    String(v),
  ]);
  for (const cookie of result.cookies ?? []) headers.push(['set-cookie', cookie]);
  const body =
    result.body === undefined
      ? Buffer.alloc(0)
      : Buffer.from(result.body, result.isBase64Encoded ? 'base64' : 'utf8');
  return { statusCode: result.statusCode ?? 200, headers, body };
}
