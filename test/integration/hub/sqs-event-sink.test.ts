/**
 * The SQS event sink over the real SQS protocol (ElasticMQ): events go one per message,
 * ten per batch, as their JSON; a queue that is not there fails nothing and logs the
 * events' types and keys, never their payloads.
 */
import { CreateQueueCommand, DeleteQueueCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { FleetEvent } from '@flotilla/shared/notify';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { SqsEventSink } from '../../../functions/src/adapters/sqs-event-sink.ts';
import type { Logger } from '../../../functions/src/http/log.ts';
import { bedSqs } from '../../support/aws-clients.ts';

const bed = inject('bed');
const sqs = bedSqs(bed);
const queueName = `events-${process.pid}-${Date.now().toString(36)}`;

afterAll(() => {
  sqs.destroy();
});

/** A logger that keeps its lines, to check what a failure logged. */
function captureLog(): Logger & {
  lines: { level: string; message: string; fields: Record<string, unknown> }[];
} {
  const lines: { level: string; message: string; fields: Record<string, unknown> }[] = [];
  const push =
    (level: string) =>
    (message: string, fields: Record<string, unknown> = {}) => {
      lines.push({ level, message, fields });
    };
  return { lines, info: push('info'), warn: push('warn'), error: push('error') };
}

function event(i: number): FleetEvent {
  return {
    type: 'bundle.drifted',
    severity: 'warning',
    key: `bundle.drifted/edge-${i}/web/sha256:${'a'.repeat(64)}/2026-12-06T12:00:00.000Z`,
    at: '2026-12-06T12:00:00.000Z',
    message: `web drifted on edge-${i}: v1/ConfigMap/web/notes (data.text)`,
    cluster: { name: `edge-${i}`, labels: { env: 'prod' } },
    bundle: 'web',
    details: { drift: [{ object: 'v1/ConfigMap/web/notes', fields: ['data.text'] }] },
  };
}

describe('SqsEventSink (ElasticMQ)', () => {
  it('queues each event as one message of its JSON, past the ten a batch takes', async () => {
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: queueName }));
    const url = QueueUrl as string;
    try {
      const log = captureLog();
      const events = Array.from({ length: 23 }, (_, i) => event(i));
      await new SqsEventSink(sqs, url, log).publish(events);
      expect(log.lines).toEqual([]);
      const received: FleetEvent[] = [];
      for (let round = 0; round < 20 && received.length < events.length; round++) {
        const res = await sqs.send(
          new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
        );
        for (const m of res.Messages ?? []) received.push(JSON.parse(m.Body ?? 'null') as FleetEvent);
      }
      expect(received.map((e) => e.key).sort()).toEqual(events.map((e) => e.key).sort());
      expect(received.find((e) => e.cluster?.name === 'edge-7')).toEqual(event(7));
    } finally {
      await sqs.send(new DeleteQueueCommand({ QueueUrl: url }));
    }
  });

  it('never rejects when the queue is gone, and logs types and keys without payloads', async () => {
    const log = captureLog();
    const url = `${bed.sqs.endpoint}/000000000000/no-such-queue-${process.pid}`;
    await expect(new SqsEventSink(sqs, url, log).publish([event(1), event(2)])).resolves.toBeUndefined();
    expect(log.lines).toHaveLength(1);
    expect(log.lines[0]).toMatchObject({
      level: 'warn',
      message: 'fleet events dropped: the notifications queue could not be reached',
    });
    expect(log.lines[0]?.fields.events).toEqual([
      { type: 'bundle.drifted', key: event(1).key },
      { type: 'bundle.drifted', key: event(2).key },
    ]);
    expect(JSON.stringify(log.lines)).not.toContain('drifted on edge-1');
  });
});
