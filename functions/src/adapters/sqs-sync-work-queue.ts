import {
  DeleteMessageCommand,
  ReceiveMessageCommand,
  type ReceiveMessageCommandOutput,
  SendMessageBatchCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type {
  RolloutWakeMessage,
  SyncWindowMessage,
  SyncWorkMessage,
  SyncWorkQueue,
} from '@flotilla/shared/hub';

/** The queue a dispatched sync's windows go through (SQS; ElasticMQ locally). */
export class SqsSyncWorkQueue implements SyncWorkQueue {
  readonly #sqs: SQSClient;
  readonly url: string;

  constructor(sqs: SQSClient, url: string) {
    this.#sqs = sqs;
    this.url = url;
  }

  /** Sends up to 10 messages in one batch; a batch with any message refused fails as a whole. */
  async send(messages: readonly SyncWindowMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const res = await this.#sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: this.url,
        Entries: messages.map((m, i) => ({ Id: String(i), MessageBody: JSON.stringify(m) })),
      }),
    );
    const failed = res.Failed ?? [];
    if (failed.length > 0) {
      const first = failed[0];
      throw new Error(
        `the sync work queue refused ${failed.length} of ${messages.length} windows: ${first?.Code ?? ''} ${first?.Message ?? ''}`.trim(),
      );
    }
  }

  /**
   * Receives and handles messages (windows and rollout wakes) until `signal` aborts: what
   * the SQS event source does in AWS, for the local hub. A message whose handler throws is
   * left on the queue and comes back after the visibility timeout.
   */
  async poll(
    handle: (message: SyncWorkMessage) => Promise<void>,
    signal: AbortSignal,
    onError: (err: unknown) => void,
  ): Promise<void> {
    while (!signal.aborted) {
      let received: ReceiveMessageCommandOutput;
      try {
        received = await this.#sqs.send(
          new ReceiveMessageCommand({ QueueUrl: this.url, MaxNumberOfMessages: 1, WaitTimeSeconds: 1 }),
          { abortSignal: signal },
        );
      } catch (err) {
        if (signal.aborted) return;
        onError(err);
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      for (const m of received.Messages ?? []) {
        try {
          await handle(parseSyncWorkMessage(m.Body ?? ''));
          await this.#sqs.send(
            new DeleteMessageCommand({ QueueUrl: this.url, ReceiptHandle: m.ReceiptHandle }),
          );
        } catch (err) {
          onError(err);
        }
      }
    }
  }
}

/**
 * Reads a work-queue message's body: a rollout wake (`kind: "rollout-wake"`) or a window.
 * @throws Error naming what is wrong with it.
 */
export function parseSyncWorkMessage(body: string): SyncWorkMessage {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch (err) {
    throw new Error('a sync work message is not JSON', { cause: err });
  }
  if (value !== null && typeof value === 'object' && 'kind' in value) {
    const m = value as Partial<RolloutWakeMessage>;
    if (m.kind !== 'rollout-wake')
      throw new Error(`unknown sync work message kind ${JSON.stringify(m.kind)}`);
    if (typeof m.bundle !== 'string' || typeof m.at !== 'string' || Number.isNaN(Date.parse(m.at)))
      throw new Error('a rollout wake message needs bundle and at (an ISO 8601 time)');
    return { kind: m.kind, bundle: m.bundle, at: m.at };
  }
  return windowMessage(value);
}

function windowMessage(value: unknown): SyncWindowMessage {
  const m = value as Partial<SyncWindowMessage> | null;
  if (
    m === null ||
    typeof m !== 'object' ||
    typeof m.jobId !== 'string' ||
    typeof m.commit !== 'string' ||
    typeof m.snapshotHash !== 'string' ||
    !Number.isInteger(m.window) ||
    !Array.isArray(m.clusterIds) ||
    !m.clusterIds.every((id) => typeof id === 'string')
  ) {
    throw new Error('a sync window message needs jobId, window, commit, snapshotHash and clusterIds');
  }
  return m as SyncWindowMessage;
}
