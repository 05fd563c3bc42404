import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { EventSink, FleetEvent } from '@flotilla/shared/notify';
import { errorFields, type Logger } from '../http/log.ts';

/** SQS takes at most ten messages per batch. */
const batchSize = 10;

/**
 * Fleet events onto the notifier's SQS queue, one event per message (its JSON), ten per
 * batch. Never rejects: an event SQS did not take is logged (its type and key, never its
 * payload) and dropped, so a sync or a status report is never failed by a notification.
 */
export class SqsEventSink implements EventSink {
  readonly #sqs: SQSClient;
  readonly #url: string;
  readonly #log: Logger;

  constructor(sqs: SQSClient, url: string, opts: { readonly log: Logger }) {
    this.#sqs = sqs;
    this.#url = url;
    this.#log = opts.log;
  }

  async publish(events: readonly FleetEvent[]): Promise<void> {
    for (let i = 0; i < events.length; i += batchSize) {
      const batch = events.slice(i, i + batchSize);
      try {
        const res = await this.#sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: this.#url,
            Entries: batch.map((event, j) => ({ Id: String(j), MessageBody: JSON.stringify(event) })),
          }),
        );
        for (const failed of res.Failed ?? []) {
          const event = batch[Number(failed.Id)];
          this.#log.warn('fleet event not queued', {
            type: event?.type,
            key: event?.key,
            code: failed.Code,
            senderFault: failed.SenderFault,
          });
        }
      } catch (err) {
        this.#log.warn('fleet events not queued', {
          events: batch.map((e) => ({ type: e.type, key: e.key })),
          ...errorFields(err),
        });
      }
    }
  }
}
