import { ConflictError, InvalidRequestError, NotFoundError, ValidationError } from '@flotilla/shared/hub';
import type { MiddlewareObj, Request } from '@middy/core';
import {
  ForbiddenError,
  MalformedBodyError,
  MethodNotAllowedError,
  PayloadTooLargeError,
  RouteNotFoundError,
  UnauthenticatedError,
  UnsupportedMediaTypeError,
} from './errors.ts';
import { errorFields, jsonLogger, type Logger } from './log.ts';
import { type ApiContext, type ApiEvent, type ApiResult, requestIdOf } from './request.ts';
import { type ErrorBody, json } from './responses.ts';

export interface HttpErrorHandlerOptions {
  readonly log?: Logger;
}

/** How an error becomes an HTTP response: status, code and the headers that go with it. */
export function errorResponse(err: unknown, requestId: string): { result: ApiResult; internal: boolean } {
  const reply = (
    statusCode: number,
    code: string,
    message: string,
    extra: Partial<ErrorBody['error']> = {},
    headers: Record<string, string> = {},
  ) => ({
    result: json(statusCode, { error: { code, message, ...extra } } satisfies ErrorBody, headers),
    internal: false,
  });

  if (err instanceof InvalidRequestError) {
    return reply(400, 'invalid_request', err.message, { field: err.field, problems: err.problems });
  }
  if (err instanceof ValidationError) return reply(400, 'invalid_request', err.message, { field: err.field });
  if (err instanceof MalformedBodyError) return reply(400, 'malformed_json', err.message);
  if (err instanceof UnauthenticatedError) {
    return reply(401, 'unauthenticated', err.message, {}, { 'www-authenticate': err.challenge });
  }
  if (err instanceof ForbiddenError) return reply(403, 'forbidden', err.message);
  if (err instanceof NotFoundError) return reply(404, 'not_found', err.message);
  if (err instanceof RouteNotFoundError) return reply(404, 'route_not_found', err.message);
  if (err instanceof MethodNotAllowedError) {
    return reply(405, 'method_not_allowed', err.message, {}, { allow: err.allowed.join(', ') });
  }
  if (err instanceof ConflictError) return reply(409, 'conflict', err.message);
  if (err instanceof PayloadTooLargeError) return reply(413, 'payload_too_large', err.message);
  if (err instanceof UnsupportedMediaTypeError) return reply(415, 'unsupported_media_type', err.message);
  // Anything else is the hub's fault: say so, and give the id that finds the log line.
  return {
    result: json(500, {
      error: {
        code: 'internal',
        message: `the hub failed to handle this request; quote request id ${requestId} to its operator`,
        requestId,
      },
    } satisfies ErrorBody),
    internal: true,
  };
}

/**
 * The one place errors become responses (middy `onError`): domain and HTTP errors map
 * to 4xx with their message; anything else is logged in full and answered with a
 * generic 500 that carries only the request id.
 */
export function httpErrorHandler(
  opts: HttpErrorHandlerOptions = {},
): MiddlewareObj<ApiEvent, ApiResult, Error, ApiContext> {
  const log = opts.log ?? jsonLogger();
  return {
    onError: (request: Request<ApiEvent, ApiResult, Error, ApiContext>) => {
      if (request.response !== undefined && request.response !== null) return;
      const requestId = requestIdOf(request.event, request.context);
      const { result, internal } = errorResponse(request.error, requestId);
      const route = request.context?.api?.route.id;
      if (internal) {
        log.error('request failed', {
          requestId,
          method: request.event?.requestContext?.http?.method,
          path: request.event?.rawPath,
          ...(route ? { route } : {}),
          ...errorFields(request.error),
        });
      } else {
        log.info('request refused', {
          requestId,
          method: request.event?.requestContext?.http?.method,
          path: request.event?.rawPath,
          status: result.statusCode,
        });
      }
      result.headers['cache-control'] = 'no-store';
      result.headers['x-request-id'] = requestId;
      request.response = result;
    },
  };
}
