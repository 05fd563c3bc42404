/**
 * The local hub's notifier: an in-process {@link EventSink} whose events are delivered
 * by the same engine as the notifier Lambda, from a loop in the same process. Publishing
 * only queues (it never waits for delivery); failed deliveries are queued again a few
 * times, with a pause, as SQS redelivers them in AWS.
 */
import { type EventSink, type FleetEvent, MemoryDedupStore } from '@flotilla/shared/notify';
import type { Logger } from '../http/log.ts';
import type { NotificationConfigSource } from '../notify/config-source.ts';
import { deliverRecords } from '../notify/deliver-records.ts';
import { type NotifierRuntime, openNotifier } from '../notify/runtime.ts';
import { loadNotifierConfig } from '../notify-config.ts';

export interface LocalNotifierOptions {
  /** Rounds an event is tried before it is dropped (logged); default 5, like the queue's maxReceiveCount. */
  readonly maxRounds?: number;
  /** Pause before failed events are tried again (default 30 s). */
  readonly redeliverAfterMs?: number;
}

export class LocalNotifier implements EventSink {
  readonly #runtime: NotifierRuntime;
  readonly #maxRounds: number;
  readonly #redeliverAfterMs: number;
  #queue: { event: FleetEvent; round: number }[] = [];
  #running: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(runtime: NotifierRuntime, opts: LocalNotifierOptions = {}) {
    this.#runtime = runtime;
    this.#maxRounds = opts.maxRounds ?? 5;
    this.#redeliverAfterMs = opts.redeliverAfterMs ?? 30_000;
  }

  get config(): NotificationConfigSource {
    return this.#runtime.config;
  }

  async publish(events: readonly FleetEvent[]): Promise<void> {
    if (this.#stopped) return;
    for (const event of events) this.#queue.push({ event, round: 1 });
    this.#kick();
  }

  /** Resolves once everything queued so far has been handled (tests). */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.idle();
  }

  #kick(): void {
    if (this.#running || this.#stopped) return;
    this.#running = this.#loop().finally(() => {
      this.#running = undefined;
      if (this.#queue.length > 0) this.#kick();
    });
  }

  async #loop(): Promise<void> {
    while (this.#queue.length > 0 && !this.#stopped) {
      const batch = this.#queue;
      this.#queue = [];
      const byId = new Map(batch.map((item, i) => [String(i), item]));
      try {
        const result = await deliverRecords(
          { ...this.#runtime },
          batch.map((item, i) => ({ id: String(i), body: JSON.stringify(item.event) })),
          // Summaries held by a rate limit are waited for up to a minute, as the Lambda would within its timeout.
          this.#runtime.clock.now() + 60_000,
        );
        this.#redeliver(result.retry.flatMap((id) => byId.get(id) ?? []));
      } catch (err) {
        this.#runtime.log.warn('notifications failed: will try again', {
          error: err instanceof Error ? err.message : String(err),
        });
        this.#redeliver(batch);
      }
    }
  }

  #redeliver(items: { event: FleetEvent; round: number }[]): void {
    const again = items.filter((item) => {
      if (item.round < this.#maxRounds) return true;
      this.#runtime.log.warn('notification dropped after repeated failures', {
        type: item.event.type,
        key: item.event.key,
      });
      return false;
    });
    if (again.length === 0 || this.#stopped) return;
    const timer = setTimeout(() => {
      this.#queue.push(...again.map((item) => ({ event: item.event, round: item.round + 1 })));
      this.#kick();
    }, this.#redeliverAfterMs);
    timer.unref();
    this.#timer = timer;
  }
}

/**
 * The local hub's notifier from the hub's environment (docs/notifications.md): the same
 * variables as the notifier Lambda, de-duplication in memory, provider secrets from
 * FLOTILLA_NOTIFICATION_SECRETS_FILE (or Secrets Manager when that is unset and AWS is
 * at hand).
 */
export async function openLocalNotifier(
  env: Readonly<Record<string, string | undefined>>,
  log: Logger,
  opts: LocalNotifierOptions & { credentials?: { accessKeyId: string; secretAccessKey: string } } = {},
): Promise<LocalNotifier> {
  const runtime = await openNotifier(loadNotifierConfig(env), log, {
    dedup: new MemoryDedupStore(),
    ...(opts.credentials ? { credentials: opts.credentials } : {}),
  });
  return new LocalNotifier(runtime, opts);
}
