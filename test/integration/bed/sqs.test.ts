import {
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { describe, expect, inject, it } from 'vitest';
import { bedSqs } from '../../support/aws-clients.ts';

const bed = inject('bed');
const client = bedSqs(bed);

describe('ElasticMQ (smoke)', () => {
  it('answers as the configured region and account', async () => {
    const { QueueUrl } = await client.send(
      new CreateQueueCommand({ QueueName: `smoke-attrs-${Date.now()}` }),
    );
    const attrs = await client.send(
      new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }),
    );
    expect(attrs.Attributes?.QueueArn).toMatch(
      new RegExp(`^arn:aws:sqs:${bed.region}:${bed.accountId}:smoke-attrs-`),
    );
  });

  it('delivers a message sent while a long poll is waiting', async () => {
    const { QueueUrl } = await client.send(new CreateQueueCommand({ QueueName: `smoke-${Date.now()}` }));
    const started = Date.now();
    const receiving = client.send(
      new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 10, MaxNumberOfMessages: 1 }),
    );
    await new Promise((r) => setTimeout(r, 1_000));
    await client.send(
      new SendMessageCommand({ QueueUrl, MessageBody: '{"cluster":"spoke-a","generation":7}' }),
    );
    const received = await receiving;
    const elapsed = Date.now() - started;

    expect(received.Messages).toHaveLength(1);
    expect(received.Messages?.[0]?.Body).toBe('{"cluster":"spoke-a","generation":7}');
    // It was the waiting poll that got it: after the send, well before the 10 s wait ran out.
    expect(elapsed).toBeGreaterThanOrEqual(1_000);
    expect(elapsed).toBeLessThan(8_000);
    await client.send(
      new DeleteMessageCommand({ QueueUrl, ReceiptHandle: received.Messages?.[0]?.ReceiptHandle }),
    );
    const empty = await client.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 1 }));
    expect(empty.Messages ?? []).toHaveLength(0);
  });
});
