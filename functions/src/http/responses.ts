import type { ApiResult } from './request.ts';

const jsonType = 'application/json; charset=utf-8';

/** A JSON response. */
export function json(statusCode: number, value: unknown, headers: Record<string, string> = {}): ApiResult {
  return {
    statusCode,
    headers: { 'content-type': jsonType, ...headers },
    body: JSON.stringify(value),
  };
}

/** A response without a body (204, 304). */
export function empty(statusCode: number, headers: Record<string, string> = {}): ApiResult {
  return { statusCode, headers };
}

/** The body of every error response. */
export interface ErrorBody {
  readonly error: {
    readonly code: string;
    readonly message: string;
    readonly field?: string;
    readonly problems?: readonly { readonly field: string; readonly message: string }[];
    readonly requestId?: string;
  };
}

/** `"etag"` as HTTP wants it. */
export function quoteEtag(etag: string): string {
  return `"${etag}"`;
}

/** Whether an `If-None-Match` header names `etag` (weak or strong, or `*`). */
export function ifNoneMatchHits(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  return ifNoneMatch
    .split(',')
    .map((t) => t.trim().replace(/^W\//, ''))
    .some((t) => t === '*' || t === quoteEtag(etag) || t === etag);
}
