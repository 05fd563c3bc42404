/**
 * The notifier: matches events to alerts, drops duplicates, rate-limits per provider
 * (coalescing what the limit holds back into one summary), and delivers with retries.
 *
 * 1. Each event goes to the providers of the alerts it satisfies.
 * 2. Per provider, an event whose key was delivered within the window is dropped
 *    (a claim in the {@link DedupStore}, released again if delivery fails).
 * 3. A provider's new events are sent one message each while its token bucket allows;
 *    when it trips, the rest (and everything after, until a token is back) are held and
 *    sent as ONE summary with the next token.
 * 4. Messages are sent with retries ({@link sendWithRetry}); providers are served in parallel.
 *
 * Results are values: the report says which events were delivered, which failed (the
 * queue redelivers those) and which are still held for a summary.
 */

import { DEFAULT_RATE_LIMIT, type NotificationConfig, type ProviderSpec } from './config.ts';
import {
  type Clock,
  DEFAULT_RETRY_POLICY,
  type ProviderTransport,
  type RetryPolicy,
  sendWithRetry,
  TokenBucket,
} from './delivery.ts';
import type { FleetEvent } from './events.ts';
import { AlertMatcher } from './match.ts';
import { type OutboundMessage, summarize, summaryText } from './message.ts';

/**
 * Remembers which (provider, event key) pairs were delivered recently. In AWS a DynamoDB
 * item written with a conditional put; in the local hub a map.
 */
export interface DedupStore {
  /** Claims `key` until `now + windowMs`; false when a live claim already exists (a duplicate). */
  claim(key: string, now: number, windowMs: number): Promise<boolean>;
  /** Drops a claim whose delivery failed, so that the redelivered event is not taken for a duplicate. */
  release(key: string): Promise<void>;
}

/** Structured logs; fields name providers and event keys, never URLs or secrets. */
export interface NotifyLog {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

export interface NotifierPorts {
  readonly transport: ProviderTransport;
  readonly dedup: DedupStore;
  readonly clock: Clock;
  readonly log: NotifyLog;
  /** In [0, 1); Math.random by default, fixed in tests. */
  readonly random?: () => number;
}

export interface NotifierOptions {
  /** How long an event key counts as delivered (default 10 minutes). */
  readonly dedupWindowMs?: number;
  readonly retry?: RetryPolicy;
}

export const DEFAULT_DEDUP_WINDOW_MS = 10 * 60_000;

/** Dedup claims in flight at once. */
const CLAIMS_AT_ONCE = 16;

/** What one round of delivery did. Event keys are the events' own keys. */
export interface DeliveryReport {
  /** Messages sent, per provider: single events and summaries. */
  readonly messages: {
    readonly provider: string;
    readonly kind: 'event' | 'summary';
    readonly events: number;
  }[];
  readonly delivered: string[];
  readonly duplicates: string[];
  /** Events whose delivery failed for good; the caller should have them redelivered. */
  readonly failed: { readonly key: string; readonly provider: string; readonly error: string }[];
  /** Events held back by a rate limit, waiting for a summary. */
  readonly held: string[];
}

interface Held {
  readonly event: FleetEvent;
  readonly claim: string;
}

export class Notifier {
  readonly #ports: NotifierPorts;
  readonly #dedupWindowMs: number;
  readonly #retry: RetryPolicy;
  readonly #random: () => number;
  #config: NotificationConfig = { providers: [], alerts: [] };
  #matcher = new AlertMatcher(this.#config);
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #held = new Map<string, Held[]>();

  constructor(ports: NotifierPorts, options: NotifierOptions = {}) {
    this.#ports = ports;
    this.#dedupWindowMs = options.dedupWindowMs ?? DEFAULT_DEDUP_WINDOW_MS;
    this.#retry = options.retry ?? DEFAULT_RETRY_POLICY;
    this.#random = ports.random ?? Math.random;
  }

  /** Uses a new notification config (a new commit); rate-limit state and held events of kept providers stay. */
  configure(config: NotificationConfig): void {
    this.#config = config;
    this.#matcher = new AlertMatcher(config);
    const limits = new Map(config.providers.map((p) => [p.name, p.rateLimit]));
    for (const [name, bucket] of [...this.#buckets]) {
      const limit = limits.get(name);
      // A provider that is gone, or whose limit changed, starts a new bucket.
      if (!limit || !bucket.hasLimit(limit)) this.#buckets.delete(name);
    }
    for (const [name, held] of [...this.#held]) {
      if (limits.has(name)) continue;
      // Held events of a provider that is gone are released: nothing can deliver them now.
      this.#held.delete(name);
      for (const h of held) void this.#ports.dedup.release(h.claim).catch(() => {});
    }
  }

  /** Delivers a batch of events (see the module comment for the steps). */
  async handle(events: readonly FleetEvent[]): Promise<DeliveryReport> {
    const report = emptyReport();
    const perProvider = new Map<string, { provider: ProviderSpec; events: Held[] }>();
    const now = this.#ports.clock.now();
    const pairs = events.flatMap((event) =>
      this.#matcher
        .providersFor(event)
        .map((provider) => ({ event, provider, claim: `${provider.name}/${event.key}` })),
    );
    // Claims go to the store a few at a time (a DynamoDB round trip each), in the events' order:
    // of two events with one key in a batch, the first is the one delivered.
    const claimed: boolean[] = [];
    for (let i = 0; i < pairs.length; i += CLAIMS_AT_ONCE) {
      const chunk = pairs.slice(i, i + CLAIMS_AT_ONCE);
      const seen = new Set<string>();
      claimed.push(
        ...(await Promise.all(
          chunk.map((p) => {
            if (seen.has(p.claim)) return false;
            seen.add(p.claim);
            return this.#ports.dedup.claim(p.claim, now, this.#dedupWindowMs);
          }),
        )),
      );
    }
    pairs.forEach(({ event, provider, claim }, i) => {
      if (!claimed[i]) {
        report.duplicates.push(event.key);
        return;
      }
      let entry = perProvider.get(provider.name);
      if (!entry) {
        entry = { provider, events: [] };
        perProvider.set(provider.name, entry);
      }
      entry.events.push({ event, claim });
    });
    await Promise.all(
      [...perProvider.values()].map(({ provider, events }) => this.#serve(provider, events, report)),
    );
    return report;
  }

  /** Sends the summaries of held events whose provider has a token again. */
  async flush(): Promise<DeliveryReport> {
    const report = emptyReport();
    await Promise.all(
      this.#config.providers.map((p) =>
        this.#held.get(p.name)?.length ? this.#serve(p, [], report) : undefined,
      ),
    );
    return report;
  }

  /** When the next held summary can go out, or undefined when nothing is held. */
  nextFlushAt(): number | undefined {
    const now = this.#ports.clock.now();
    let next: number | undefined;
    for (const [name, held] of this.#held) {
      if (held.length === 0) continue;
      const at = this.#bucket(name).nextTokenAt(now);
      next = next === undefined ? at : Math.min(next, at);
    }
    return next;
  }

  /** Keys of the events held for a summary. */
  heldKeys(): string[] {
    return [...this.#held.values()].flatMap((h) => h.map((x) => x.event.key));
  }

  /**
   * Gives up on everything held (a Lambda about to time out): releases their claims and
   * returns their keys, so the queue redelivers them.
   */
  async abandonHeld(): Promise<string[]> {
    const keys: string[] = [];
    for (const held of this.#held.values()) {
      for (const h of held) {
        await this.#ports.dedup.release(h.claim);
        keys.push(h.event.key);
      }
    }
    this.#held.clear();
    return keys;
  }

  async #serve(provider: ProviderSpec, fresh: Held[], report: DeliveryReport): Promise<void> {
    const bucket = this.#bucket(provider.name);
    const held = this.#held.get(provider.name) ?? [];
    const now = this.#ports.clock.now();
    const tokens = bucket.available(now);
    const singles: Held[] = [];
    if (held.length === 0 && fresh.length <= tokens) singles.push(...fresh);
    else if (held.length === 0 && tokens >= 1) {
      // The limit trips inside this batch: all but one token for single events, the last for the summary.
      singles.push(...fresh.slice(0, tokens - 1));
      held.push(...fresh.slice(tokens - 1));
    } else held.push(...fresh);
    for (const h of singles) {
      bucket.take(now);
      await this.#send(provider, { kind: 'event', event: h.event }, [h], report);
    }
    if (held.length > 0 && bucket.take(now)) {
      this.#held.delete(provider.name);
      const summary = summarize(held.map((h) => h.event));
      this.#ports.log.warn('notification rate limit reached: sending a summary', {
        provider: provider.name,
        events: held.length,
      });
      await this.#send(provider, { kind: 'summary', summary, text: summaryText(summary) }, held, report);
    } else if (held.length > 0) {
      this.#held.set(provider.name, held);
      report.held.push(...fresh.filter((h) => held.includes(h)).map((h) => h.event.key));
    }
  }

  async #send(provider: ProviderSpec, message: OutboundMessage, events: Held[], report: DeliveryReport) {
    const outcome = await sendWithRetry(
      this.#ports.transport,
      provider,
      message,
      this.#retry,
      this.#ports.clock,
      this.#random,
    );
    report.messages.push({ provider: provider.name, kind: message.kind, events: events.length });
    if (outcome.delivered) {
      report.delivered.push(...events.map((h) => h.event.key));
      return;
    }
    const error = outcome.error ?? 'not delivered';
    this.#ports.log.warn('notification not delivered', {
      provider: provider.name,
      type: provider.type,
      kind: message.kind,
      events: events.length,
      attempts: outcome.attempts,
      error,
    });
    for (const h of events) {
      await this.#ports.dedup.release(h.claim);
      report.failed.push({ key: h.event.key, provider: provider.name, error });
    }
  }

  #bucket(name: string): TokenBucket {
    let bucket = this.#buckets.get(name);
    if (!bucket) {
      const limit = this.#config.providers.find((p) => p.name === name)?.rateLimit ?? DEFAULT_RATE_LIMIT;
      bucket = new TokenBucket(limit, this.#ports.clock.now());
      this.#buckets.set(name, bucket);
    }
    return bucket;
  }
}

function emptyReport(): DeliveryReport {
  return { messages: [], delivered: [], duplicates: [], failed: [], held: [] };
}

/** Dedup claims in memory: the local hub, tests. Expired claims are swept as new ones come. */
export class MemoryDedupStore implements DedupStore {
  readonly #until = new Map<string, number>();

  async claim(key: string, now: number, windowMs: number): Promise<boolean> {
    const until = this.#until.get(key);
    if (until !== undefined && until > now) return false;
    if (this.#until.size > 10_000) for (const [k, u] of this.#until) if (u <= now) this.#until.delete(k);
    this.#until.set(key, now + windowMs);
    return true;
  }

  async release(key: string): Promise<void> {
    this.#until.delete(key);
  }
}
