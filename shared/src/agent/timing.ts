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

const dayMs = 86_400_000;
const pad = (n: number, width: number) => String(n).padStart(width, '0');

/**
 * `ms` since the epoch as an ISO 8601 UTC timestamp, as `Date.prototype.toISOString` gives
 * it for the years 0 to 9999, computed without reading a Date's fields: the first such read
 * makes V8 set up its time-zone cache (ICU's zone data, about 0.8 MB resident), which the
 * agent, writing only UTC times, would carry for nothing.
 *
 * The date is the proleptic Gregorian calendar's day count turned into year, month and day
 * by the usual era arithmetic (400-year eras of 146,097 days, years counted from March, so
 * that the leap day ends the year).
 */
export function isoTime(ms: number): string {
  const t = Math.floor(ms);
  const days = Math.floor(t / dayMs);
  const inDay = t - days * dayMs;
  const z = days + 719_468; // days from 0000-03-01 to 1970-01-01
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor(
    (dayOfEra -
      Math.floor(dayOfEra / 1_460) +
      Math.floor(dayOfEra / 36_524) -
      Math.floor(dayOfEra / 146_096)) /
      365,
  );
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const monthFromMarch = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * monthFromMarch + 2) / 5) + 1;
  const month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  return (
    `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}T` +
    `${pad(Math.floor(inDay / 3_600_000), 2)}:${pad(Math.floor(inDay / 60_000) % 60, 2)}:` +
    `${pad(Math.floor(inDay / 1000) % 60, 2)}.${pad(inDay % 1000, 3)}Z`
  );
}
