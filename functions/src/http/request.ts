import type { ClusterRecord } from '@flotilla/shared/hub';
import type {
  APIGatewayEventRequestContextIAMAuthorizer,
  APIGatewayEventRequestContextV2,
  APIGatewayProxyEventV2WithRequestContext,
  APIGatewayProxyStructuredResultV2,
  Context,
} from 'aws-lambda';
import type { Caller } from './caller.ts';
import type { HubRoute } from './routes.ts';

/**
 * The API Gateway HTTP API (payload 2.0) event, with the IAM authorizer's identity when
 * the route has one.
 */
export type ApiEvent = APIGatewayProxyEventV2WithRequestContext<
  APIGatewayEventRequestContextV2 & { authorizer?: Partial<APIGatewayEventRequestContextIAMAuthorizer> }
>;

/** What a route returns: always the structured form, so status and headers are explicit. */
export type ApiResult = APIGatewayProxyStructuredResultV2 & {
  statusCode: number;
  headers: Record<string, string>;
};

/** What the middlewares found out about a request, for the route handler. */
export interface ApiRequestState {
  readonly route: HubRoute;
  readonly params: Readonly<Record<string, string>>;
  /** The cluster whose token authenticated an agent route. */
  cluster?: ClusterRecord;
  /** Who called an admin or tenant route: an IAM ARN, `admin-key`, or `tenant-key:<tenant>:<id>`. */
  admin?: string;
  /** Who called an admin or tenant route, and for which tenant. */
  caller?: Caller;
  /** The JSON body, parsed, for `json` routes (undefined when empty). */
  body?: unknown;
  /** The raw body bytes, for `raw` routes. */
  rawBody?: Buffer;
}

/** The Lambda context, carrying the request's state between middlewares and the handler. */
export interface ApiContext extends Context {
  api?: ApiRequestState;
}

/** The request as a route handler sees it. */
export interface ApiRequest extends ApiRequestState {
  readonly event: ApiEvent;
  readonly requestId: string;
  readonly query: URLSearchParams;
}

/** A header of the event; API Gateway lower-cases names in payload 2.0, but be lenient. */
export function header(event: ApiEvent, name: string): string | undefined {
  const headers = event.headers ?? {};
  const direct = headers[name];
  if (direct !== undefined) return direct;
  const lower = name.toLowerCase();
  for (const [key, value] of Object.entries(headers)) if (key.toLowerCase() === lower) return value;
  return undefined;
}

/** The body's bytes, whether API Gateway passed it as text or base64. */
export function bodyBytes(event: ApiEvent): Buffer {
  if (event.body === undefined || event.body === null) return Buffer.alloc(0);
  return Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8');
}

/** The token of an `Authorization: Bearer <token>` header. */
export function bearerToken(event: ApiEvent): string | undefined {
  const value = header(event, 'authorization');
  const m = value ? /^Bearer[ ]+(\S+)\s*$/i.exec(value) : null;
  return m ? m[1] : undefined;
}

/** The request id to quote in errors and logs: API Gateway's, else Lambda's. */
export function requestIdOf(event: ApiEvent | undefined, context: Context | undefined): string {
  return event?.requestContext?.requestId || context?.awsRequestId || 'unknown';
}
