import {
  CreateQueueCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  QueueDoesNotExist,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { ChangeNotification } from '@flotilla/shared';
import { type ClusterRecord, type Notifier, spokeQueueName } from '@flotilla/shared/hub';

/**
 * One SQS queue per spoke, named under a fixed prefix so IAM can scope to it, all
 * sharing one dead-letter queue.
 */
export class SqsSpokeQueues implements Notifier {
  readonly #sqs: SQSClient;
  readonly #prefix: string;
  readonly #concurrency: number;

  constructor(sqs: SQSClient, prefix: string, opts: { concurrency?: number } = {}) {
    this.#sqs = sqs;
    this.#prefix = prefix;
    this.#concurrency = opts.concurrency ?? 16;
  }

  /** Creates (or finds) the cluster's queue; idempotent. */
  async create(clusterId: string): Promise<string> {
    const dlq = await this.#sqs.send(
      new CreateQueueCommand({
        QueueName: `${this.#prefix}-spoke-dlq`,
        Attributes: { MessageRetentionPeriod: String(14 * 24 * 3600) },
      }),
    );
    const dlqArn = await this.#sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ['QueueArn'] }),
    );
    const res = await this.#sqs.send(
      new CreateQueueCommand({
        QueueName: spokeQueueName(this.#prefix, clusterId),
        Attributes: {
          // A notification only says "look again"; after a day the periodic resync has long covered it.
          MessageRetentionPeriod: String(24 * 3600),
          VisibilityTimeout: '120',
          ReceiveMessageWaitTimeSeconds: '20',
          RedrivePolicy: JSON.stringify({
            deadLetterTargetArn: dlqArn.Attributes?.QueueArn,
            maxReceiveCount: 10,
          }),
        },
      }),
    );
    if (!res.QueueUrl) throw new Error(`SQS returned no URL for the queue of "${clusterId}"`);
    return res.QueueUrl;
  }

  async delete(queueUrl: string): Promise<void> {
    try {
      await this.#sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl }));
    } catch (err) {
      if (!(err instanceof QueueDoesNotExist)) throw err;
    }
  }

  async notify(
    changes: readonly {
      readonly cluster: ClusterRecord;
      readonly generation: number;
      readonly etag: string;
    }[],
  ): Promise<{ sent: number; failed: { clusterId: string; error: string }[] }> {
    let sent = 0;
    const failed: { clusterId: string; error: string }[] = [];
    let next = 0;
    const worker = async () => {
      while (next < changes.length) {
        const change = changes[next++];
        if (!change) break;
        const { cluster } = change;
        if (!cluster.queueUrl) {
          failed.push({ clusterId: cluster.id, error: 'cluster has no queue' });
          continue;
        }
        const body: ChangeNotification = {
          kind: 'desired-state-changed',
          clusterId: cluster.id,
          generation: change.generation,
          etag: change.etag,
        };
        try {
          await this.#sqs.send(
            new SendMessageCommand({ QueueUrl: cluster.queueUrl, MessageBody: JSON.stringify(body) }),
          );
          sent++;
        } catch (err) {
          failed.push({ clusterId: cluster.id, error: err instanceof Error ? err.message : String(err) });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#concurrency, changes.length) }, worker));
    return { sent, failed };
  }
}
