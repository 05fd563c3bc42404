/**
 * How one message reaches one provider: the transport port, the outcome of one attempt as
 * a value, and the retry policy (exponential backoff with full jitter, Retry-After honoured,
 * no retry of a refusal that retrying cannot fix).
 */
import type { ProviderSpec, RateLimit } from './config.ts';
import type { OutboundMessage } from './message.ts';

/** The outcome of one attempt to send a message. */
export type SendResult =
  | { readonly ok: true }
  | {
      readonly ok: false;
      /** 5xx, 429 and network errors are worth retrying; other 4xx and bad configuration are not. */
      readonly retryable: boolean;
      /** What the receiver asked for (Retry-After), in milliseconds. */
      readonly retryAfterMs?: number;
      /** For logs: a status and reason, never a URL or a secret. */
      readonly error: string;
    };

/** Sends a message to one provider; never throws (a failure is a {@link SendResult}). */
export interface ProviderTransport {
  send(provider: ProviderSpec, message: OutboundMessage): Promise<SendResult>;
}

/** Time, behind a port so that tests run retries and rate limits on a fake clock. */
export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  readonly attempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** A Retry-After longer than this is not waited for: the attempt fails and the queue redelivers later. */
  readonly maxRetryAfterMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  attempts: 5,
  baseDelayMs: 1000,
  maxDelayMs: 30_000,
  maxRetryAfterMs: 120_000,
};

/** The wait before retry number `retry` (0 for the first retry): full jitter over an exponential ceiling. */
export function backoffMs(policy: RetryPolicy, retry: number, random: () => number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** retry);
  return Math.floor(random() * ceiling);
}

export interface DeliveryOutcome {
  readonly delivered: boolean;
  readonly attempts: number;
  readonly error?: string;
}

/** Sends with retries: the first success, or the last failure once retrying cannot help. */
export async function sendWithRetry(
  transport: ProviderTransport,
  provider: ProviderSpec,
  message: OutboundMessage,
  policy: RetryPolicy,
  clock: Clock,
  random: () => number,
): Promise<DeliveryOutcome> {
  let last: SendResult = { ok: false, retryable: false, error: 'not sent' };
  for (let attempt = 1; attempt <= policy.attempts; attempt++) {
    try {
      last = await transport.send(provider, message);
    } catch (err) {
      // A transport that throws broke its contract; treat it as a network error.
      last = { ok: false, retryable: true, error: (err as Error).message };
    }
    if (last.ok) return { delivered: true, attempts: attempt };
    if (!last.retryable || attempt === policy.attempts)
      return { delivered: false, attempts: attempt, error: last.error };
    let wait = backoffMs(policy, attempt - 1, random);
    if (last.retryAfterMs !== undefined) {
      if (last.retryAfterMs > policy.maxRetryAfterMs) {
        return {
          delivered: false,
          attempts: attempt,
          error: `${last.error} (Retry-After ${Math.ceil(last.retryAfterMs / 1000)}s)`,
        };
      }
      wait = Math.max(wait, last.retryAfterMs);
    }
    await clock.sleep(wait);
  }
  return {
    delivered: false,
    attempts: policy.attempts,
    error: last.ok ? undefined : last.error,
  } as DeliveryOutcome;
}

/** Parses Retry-After (seconds or an HTTP date) into milliseconds from `now`. */
export function parseRetryAfter(value: string | null | undefined, now: number): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** A token bucket: `messages` tokens, refilled evenly over `perMs`. Starts full. */
export class TokenBucket {
  readonly #capacity: number;
  readonly #refillPerMs: number;
  #tokens: number;
  #at: number;

  constructor(limit: RateLimit, now: number) {
    this.#capacity = limit.messages;
    this.#refillPerMs = limit.messages / limit.perMs;
    this.#tokens = limit.messages;
    this.#at = now;
  }

  /** Whether this bucket was made for `limit`. */
  hasLimit(limit: RateLimit): boolean {
    return this.#capacity === limit.messages && this.#refillPerMs === limit.messages / limit.perMs;
  }

  /** Whole tokens available at `now`. */
  available(now: number): number {
    this.#refill(now);
    return Math.floor(this.#tokens);
  }

  /** Takes one token if there is one. */
  take(now: number): boolean {
    this.#refill(now);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** When the next whole token is there (`now` if one already is). */
  nextTokenAt(now: number): number {
    this.#refill(now);
    return this.#tokens >= 1 ? now : now + Math.ceil((1 - this.#tokens) / this.#refillPerMs);
  }

  #refill(now: number): void {
    if (now > this.#at) {
      this.#tokens = Math.min(this.#capacity, this.#tokens + (now - this.#at) * this.#refillPerMs);
      this.#at = now;
    }
  }
}
