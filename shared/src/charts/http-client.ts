import { ChartFetchError, redactUrl } from './errors.ts';

/** Fetch with a time limit and errors that say which URL and why, never with credentials. */
export interface HttpGetOptions {
  readonly fetch: typeof fetch;
  readonly timeoutMs: number;
}

export async function httpGet(
  opts: HttpGetOptions,
  url: URL,
  headers: Record<string, string>,
): Promise<Response> {
  try {
    return await opts.fetch(url, {
      headers,
      redirect: 'follow',
      signal: AbortSignal.timeout(opts.timeoutMs),
    });
  } catch (err) {
    throw new ChartFetchError('unreachable', `cannot reach ${redactUrl(url)}: ${networkReason(err, opts)}`, {
      cause: err,
    });
  }
}

/** Reads the whole body under the same time limit as the request. */
export async function readBody(opts: HttpGetOptions, url: URL, res: Response): Promise<Uint8Array> {
  try {
    return new Uint8Array(await res.arrayBuffer());
  } catch (err) {
    throw new ChartFetchError(
      'unreachable',
      `reading ${redactUrl(url)} failed: ${networkReason(err, opts)}`,
      { cause: err },
    );
  }
}

/** Turns a non-2xx answer into the matching failure, releasing its connection. */
export async function statusError(url: URL, res: Response, authHint: string): Promise<ChartFetchError> {
  await res.body?.cancel().catch(() => {});
  const status = `${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
  if (res.status === 401 || res.status === 403)
    return new ChartFetchError('auth-refused', `${redactUrl(url)} refused access (${status}); ${authHint}`);
  if (res.status === 404) return new ChartFetchError('not-found', `${redactUrl(url)} not found (404)`);
  return new ChartFetchError('unreachable', `${redactUrl(url)} answered ${status}`);
}

function networkReason(err: unknown, opts: HttpGetOptions): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError') return `no answer within ${opts.timeoutMs / 1000}s`;
  if (e?.cause?.code) return `${e.cause.code}${e.cause.message ? ` (${e.cause.message})` : ''}`;
  return e?.message ?? String(err);
}
