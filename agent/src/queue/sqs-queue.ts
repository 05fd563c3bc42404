import type { SQSClient } from '@aws-sdk/client-sqs';
import type { ChangeNotification, QueueMessage, QueuePort } from '../reconcile/ports.ts';

export interface SqsQueueOptions {
  readonly queueUrl: string;
  readonly region: string;
  readonly endpoint?: string | undefined;
  /** Static credentials; without them the SDK's default chain (web identity, instance role) is used. */
  readonly credentials?:
    | {
        readonly accessKeyId: string;
        readonly secretAccessKey: string;
        readonly sessionToken?: string | undefined;
      }
    | undefined;
  /** Long-poll wait, at most 20 s (SQS's limit). */
  readonly waitSeconds?: number;
}

function parseNotification(body: string | undefined): ChangeNotification | undefined {
  try {
    const v = JSON.parse(body ?? '') as Partial<ChangeNotification>;
    if (
      v.kind === 'desired-state-changed' &&
      typeof v.etag === 'string' &&
      typeof v.generation === 'number'
    ) {
      return v as ChangeNotification;
    }
  } catch {
    // Any message still means "look again".
  }
  return undefined;
}

/**
 * The cluster's own SQS queue, long-polled. The SDK is loaded on first use only, so an
 * agent that polls the hub over HTTPS does not carry it in memory.
 */
export class SqsQueue implements QueuePort {
  readonly #opts: SqsQueueOptions;
  #client: Promise<{ sqs: SQSClient; sdk: typeof import('@aws-sdk/client-sqs') }> | undefined;

  constructor(opts: SqsQueueOptions) {
    this.#opts = opts;
  }

  #sdk() {
    this.#client ??= import('@aws-sdk/client-sqs').then((sdk) => ({
      sdk,
      sqs: new sdk.SQSClient({
        region: this.#opts.region,
        ...(this.#opts.endpoint ? { endpoint: this.#opts.endpoint } : {}),
        ...(this.#opts.credentials ? { credentials: this.#opts.credentials } : {}),
        maxAttempts: 2,
      }),
    }));
    return this.#client;
  }

  async receive(signal: AbortSignal): Promise<QueueMessage[]> {
    const { sqs, sdk } = await this.#sdk();
    const res = await sqs.send(
      new sdk.ReceiveMessageCommand({
        QueueUrl: this.#opts.queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: Math.min(20, this.#opts.waitSeconds ?? 20),
      }),
      { abortSignal: signal },
    );
    return (res.Messages ?? []).flatMap((m) =>
      m.ReceiptHandle
        ? [
            {
              id: m.MessageId ?? m.ReceiptHandle,
              receiptHandle: m.ReceiptHandle,
              notification: parseNotification(m.Body),
            },
          ]
        : [],
    );
  }

  async delete(messages: readonly QueueMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const { sqs, sdk } = await this.#sdk();
    for (let i = 0; i < messages.length; i += 10) {
      const batch = messages.slice(i, i + 10);
      await sqs.send(
        new sdk.DeleteMessageBatchCommand({
          QueueUrl: this.#opts.queueUrl,
          Entries: batch.map((m, j) => ({ Id: String(j), ReceiptHandle: m.receiptHandle })),
        }),
      );
    }
  }

  close(): void {
    void this.#client?.then(({ sqs }) => sqs.destroy());
  }
}
