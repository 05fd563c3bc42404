/** Why a chart could not be fetched; callers keep their last good render whatever it is. */
export const chartFetchFailures = [
  /** The repository or registry did not answer, answered 5xx, or timed out. */
  'unreachable',
  /** 404: no such repository, chart or tag. */
  'not-found',
  /** The constraint matches none of the versions the repository has. */
  'no-matching-version',
  /** The archive's sha256 is not the one the index or manifest names. */
  'digest-mismatch',
  /** 401/403, no credentials for a private repository, or an unknown secret. */
  'auth-refused',
  /** A malformed reference, index, manifest or answer. */
  'invalid',
] as const;

export type ChartFetchFailure = (typeof chartFetchFailures)[number];

/** Thrown inside the fetcher, returned to callers as `{ ok: false, reason, error }`. */
export class ChartFetchError extends Error {
  readonly reason: ChartFetchFailure;
  constructor(reason: ChartFetchFailure, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ChartFetchError';
    this.reason = reason;
  }
}

/** A URL as it may appear in a message: user info and query (tokens hide there) removed. */
export function redactUrl(url: string | URL): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    u.search = '';
    return u.toString();
  } catch {
    return '(invalid URL)';
  }
}
