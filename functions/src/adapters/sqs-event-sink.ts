import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { EventSink, FleetEvent } from '@flotilla/shared/notify';
import type { Logger } from '../http/log.ts';

/** SQS takes at most 10 messages per SendMessageBatch, of at most 256 KiB together. */
const BATCH = 10;
const BATCH_BYTES = 250_000;

/**
 * Where the hub's functions emit fleet events in AWS: the notifications queue, one
 * message per event (the notifier Lambda reads them in batches). Publishing never
 * throws: events SQS refuses, or that cannot be sent at all, are logged (type and key,
 * never the message text) and dropped, so emitting never fails a sync or a report.
 */
export class SqsEventSink implements EventSink {
  readonly #sqs: Pick<SQSClient, 'send'>;
  readonly #url: string;
  readonly #log: Logger;

  constructor(sqs: Pick<SQSClient, 'send'>, url: string, log: Logger) {
    this.#sqs = sqs;
    this.#url = url;
    this.#log = log;
  }

  async publish(events: readonly FleetEvent[]): Promise<void> {
    const batches: { event: FleetEvent; body: string }[][] = [];
    let current: { event: FleetEvent; body: string }[] = [];
    let bytes = 0;
    for (const event of events) {
      const body = JSON.stringify(event);
      const size = Buffer.byteLength(body);
      if (current.length === BATCH || (current.length > 0 && bytes + size > BATCH_BYTES)) {
        batches.push(current);
        current = [];
        bytes = 0;
      }
      current.push({ event, body });
      bytes += size;
    }
    if (current.length > 0) batches.push(current);
    await Promise.all(batches.map((batch) => this.#send(batch)));
  }

  async #send(entries: readonly { event: FleetEvent; body: string }[]): Promise<void> {
    const batch = entries.map((e) => e.event);
    try {
      const res = await this.#sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: this.#url,
          Entries: entries.map((e, i) => ({ Id: String(i), MessageBody: e.body })),
        }),
      );
      for (const failed of res.Failed ?? []) {
        const e = batch[Number(failed.Id)];
        this.#log.warn('fleet event dropped: the notifications queue refused it', {
          type: e?.type,
          key: e?.key,
          code: failed.Code,
        });
      }
    } catch (err) {
      this.#log.warn('fleet events dropped: the notifications queue could not be reached', {
        events: batch.map((e) => ({ type: e.type, key: e.key })),
        error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
      });
    }
  }
}
