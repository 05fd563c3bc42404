/**
 * Exponential backoff with full jitter: a random delay between `minMs` and
 * `min(maxMs, minMs * 2^attempt)`, so that many agents that lost the hub at once do not
 * come back in step (AWS Architecture Blog, "Exponential Backoff And Jitter").
 *
 * @param attempt 0 for the first retry.
 * @param random a number in [0, 1), `Math.random` in production.
 */
export function backoffDelay(
  attempt: number,
  opts: { readonly minMs: number; readonly maxMs: number },
  random: () => number,
): number {
  const ceiling = Math.min(opts.maxMs, opts.minMs * 2 ** Math.min(attempt, 30));
  return Math.round(opts.minMs + random() * Math.max(0, ceiling - opts.minMs));
}

/** `ms` moved at random by up to `fraction` of itself either way, so periodic work spreads out. */
export function jittered(ms: number, fraction: number, random: () => number): number {
  return Math.max(0, Math.round(ms * (1 - fraction + 2 * fraction * random())));
}
