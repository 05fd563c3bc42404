/**
 * The AWS path on the bed's real services: the hub side's SqsEventSink puts events on an
 * ElasticMQ queue, and the notifier Lambda's handler (the module itself, built from its
 * environment as at a cold start) is invoked on the messages received, as the SQS event
 * source does: it reads notifications/ from the fleet repo on the bed's git server, claims
 * events in DynamoDB Local, signs webhooks, and reports failed records, which SQS
 * redelivers and finally moves to the dead-letter queue.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { hubTableNames } from '@flotilla/shared/hub';
import { type FleetEvent, verifyWebhook } from '@flotilla/shared/notify';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DynamoDbNotificationDedup } from '../../../functions/src/adapters/dynamodb-notification-dedup.ts';
import { HubDb } from '../../../functions/src/adapters/dynamodb-stores.ts';
import { ensureHubTables } from '../../../functions/src/adapters/dynamodb-tables.ts';
import { SqsEventSink } from '../../../functions/src/adapters/sqs-event-sink.ts';
import { openLocalNotifier } from '../../../functions/src/local/notifier.ts';
import { bedDynamoDb, bedSqs } from '../../support/aws-clients.ts';
import { FleetWorkingCopy } from '../../support/fleet-git.ts';
import { HttpReceiver } from '../../support/http-receiver.ts';

const bed = inject('bed');
const sqs = bedSqs(bed);
const dynamodb = bedDynamoDb(bed);
const prefix = `n${process.pid}-${Date.now().toString(36)}`;
const hmacKey = 'notifier-test-hmac-key-0123456789';
const receiver = new HttpReceiver();
const logLines: string[] = [];
let repo: FleetWorkingCopy;
let queueUrl = '';
let dlqUrl = '';
let handler: (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

beforeAll(async () => {
  await receiver.start();
  await ensureHubTables(dynamodb, hubTableNames(prefix));
  const dlq = await sqs.send(new CreateQueueCommand({ QueueName: `${prefix}-notifications-dlq` }));
  dlqUrl = dlq.QueueUrl ?? '';
  const dlqArn = (
    await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }))
  ).Attributes?.QueueArn;
  const queue = await sqs.send(
    new CreateQueueCommand({
      QueueName: `${prefix}-notifications`,
      Attributes: {
        // Short, so that failed records come back within the test; two receives, then the DLQ.
        VisibilityTimeout: '1',
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 2 }),
      },
    }),
  );
  queueUrl = queue.QueueUrl ?? '';

  repo = await FleetWorkingCopy.create(bed.git, `notify-${prefix}`);
  repo.write(
    'notifications/platform.yaml',
    `providers:
  - name: audit
    type: webhook
    secretRef: audit-hook
    rateLimit: {messages: 100, per: 1m}
  - name: chat
    type: slack
    secretRef: chat-url
alerts:
  - name: failures
    providers: [audit]
    eventTypes: ["bundle.*"]
    clusterSelector: env=prod
  - name: offline
    providers: [chat]
    eventTypes: [cluster.offline]
    severity: warning
`,
  );
  await repo.commitAsync('Notifications');

  const dir = mkdtempSync(join(tmpdir(), 'flotilla-notify-'));
  const secretsFile = join(dir, 'secrets.json');
  writeFileSync(
    secretsFile,
    JSON.stringify({
      'audit-hook': { address: `${receiver.url}/audit`, hmacKey },
      // This endpoint is gone (404): not retried in the invocation, redelivered by SQS, then parked.
      'chat-url': `${receiver.url}/services/T0/B0/SECRETPATH`,
    }),
  );
  receiver.script.set('/services/T0/B0/SECRETPATH', [{ status: 404 }, { status: 404 }, { status: 404 }]);
  Object.assign(process.env, {
    AWS_REGION: bed.region,
    AWS_ACCESS_KEY_ID: 'bed',
    AWS_SECRET_ACCESS_KEY: 'bed',
    FLOTILLA_PREFIX: prefix,
    FLOTILLA_DYNAMODB_ENDPOINT: bed.dynamodb.endpoint,
    FLOTILLA_SQS_ENDPOINT: bed.sqs.endpoint,
    FLOTILLA_FLEET_REPO_URL: repo.url,
    FLOTILLA_GIT_CACHE_DIR: join(dir, 'git'),
    FLOTILLA_NOTIFICATION_SECRETS_FILE: secretsFile,
  });
  // The handler logs JSON lines on stdout: kept to check that no secret is in them.
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
    logLines.push(String(chunk));
    return write(chunk, ...rest);
  }) as typeof process.stdout.write;
  ({ handler } = await import('../../../functions/src/notify.handler.ts'));
});

afterAll(async () => {
  repo?.dispose();
  await receiver.stop();
});

let seq = 0;
function event(type: FleetEvent['type'], cluster: string, env = 'prod'): FleetEvent {
  seq++;
  return {
    type,
    severity: type === 'cluster.offline' ? 'warning' : 'error',
    key: `${type}/${cluster}/web/${seq}`,
    at: new Date().toISOString(),
    message: `web ${type} on ${cluster}`,
    cluster: { name: cluster, labels: { env } },
    bundle: 'web',
  };
}

/** Receives and hands batches to the handler, deleting what it did not report failed, until `done`. */
async function work(done: () => Promise<boolean>, timeoutMs = 60_000): Promise<string[][]> {
  const failures: string[][] = [];
  const start = Date.now();
  while (!(await done())) {
    if (Date.now() - start > timeoutMs) throw new Error('the queue was not worked off in time');
    const res = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
        AttributeNames: ['All'],
      }),
    );
    const messages = res.Messages ?? [];
    if (messages.length === 0) continue;
    const records = messages.map((m) => ({
      messageId: m.MessageId ?? '',
      receiptHandle: m.ReceiptHandle ?? '',
      body: m.Body ?? '',
      attributes: {},
      messageAttributes: {},
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: '',
      awsRegion: bed.region,
    }));
    const context = { getRemainingTimeInMillis: () => 30_000, awsRequestId: 'test' } as unknown as Context;
    const response = await handler({ Records: records } as unknown as SQSEvent, context);
    const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
    failures.push([...failed]);
    const done = messages.filter((m) => !failed.has(m.MessageId ?? ''));
    if (done.length > 0) {
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
        }),
      );
    }
  }
  return failures;
}

async function visible(url: string): Promise<number> {
  const res = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return (
    Number(res.Attributes?.ApproximateNumberOfMessages ?? 0) +
    Number(res.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0)
  );
}

describe('the notifier Lambda on SQS', () => {
  it('delivers each event once, signed, and parks what a provider refuses in the DLQ', async () => {
    const sinkLog = { info: () => {}, warn: (m: string) => logLines.push(m), error: () => {} };
    const sink = new SqsEventSink(sqs, queueUrl, sinkLog);
    const failed = Array.from({ length: 12 }, (_, i) => event('bundle.failed', `prod-${i}`));
    const staging = event('bundle.failed', 'staging-1', 'staging');
    const offline = event('cluster.offline', 'prod-3');
    // 14 events: two SendMessageBatch calls. Then the first event again (a re-emit), and a message that is no event.
    await sink.publish([...failed, staging, offline]);
    await sink.publish([failed[0] as FleetEvent]);
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: '{"not": "an event"}' }));

    const failures = await work(async () => (await visible(queueUrl)) === 0 && (await visible(dlqUrl)) === 1);

    // The webhook got each prod bundle.failed exactly once (the re-emit was a duplicate), signed.
    const audit = receiver.on('/audit');
    const keys = audit.map((r) => JSON.parse(r.body).event.key).sort();
    expect(keys).toEqual(failed.map((e) => e.key).sort());
    const now = Math.floor(Date.now() / 1000);
    for (const r of audit) {
      const headers = {
        signature: r.headers['x-flotilla-signature'] as string,
        timestamp: r.headers['x-flotilla-timestamp'] as string,
      };
      expect(verifyWebhook(hmacKey, headers, r.body, now)).toBe(true);
    }
    // The refused event was tried once per receive (a 404 is not retried in the invocation),
    // reported as a batch item failure each time, and is now in the DLQ.
    expect(receiver.on('/services/T0/B0/SECRETPATH')).toHaveLength(2);
    expect(failures.flat()).toHaveLength(2);
    const parked = await sqs.send(new ReceiveMessageCommand({ QueueUrl: dlqUrl, MaxNumberOfMessages: 10 }));
    expect(parked.Messages?.map((m) => JSON.parse(m.Body ?? '{}').key)).toEqual([offline.key]);

    // Logs name providers, never the URLs or the key.
    const logs = logLines.join('');
    expect(logs).toContain('"provider":"chat"');
    for (const secret of ['SECRETPATH', hmacKey, receiver.url]) expect(logs).not.toContain(secret);
  });

  it('keeps de-duplication claims in DynamoDB with a conditional put', async () => {
    const dedup = new DynamoDbNotificationDedup(new HubDb(dynamodb, hubTableNames(prefix)));
    const t = Date.now();
    expect(await dedup.claim('p/k', t, 1000)).toBe(true);
    expect(await dedup.claim('p/k', t + 500, 1000)).toBe(false);
    // Two notifiers racing on one event: exactly one wins.
    const race = await Promise.all([dedup.claim('p/race', t, 1000), dedup.claim('p/race', t, 1000)]);
    expect(race.filter(Boolean)).toHaveLength(1);
    // An expired claim is taken again; a released one at once.
    expect(await dedup.claim('p/k', t + 1000, 1000)).toBe(true);
    await dedup.release('p/k');
    expect(await dedup.claim('p/k', t + 1001, 1000)).toBe(true);
  });

  it('never throws from publish, even when the queue does not exist', async () => {
    const warnings: string[] = [];
    const sink = new SqsEventSink(sqs, `${queueUrl}-missing`, {
      info: () => {},
      warn: (m) => warnings.push(m),
      error: () => {},
    });
    await expect(sink.publish([event('bundle.failed', 'x')])).resolves.toBeUndefined();
    expect(warnings).toEqual(['fleet events dropped: the notifications queue could not be reached']);
  });

  it('the local hub notifier reads the same notifications/ and delivers in process', async () => {
    const local = await openLocalNotifier(process.env, {
      info: () => {},
      warn: () => {},
      error: () => {},
    });
    const e = event('bundle.drifted', 'prod-local');
    await local.publish([e]);
    await local.idle();
    expect(receiver.on('/audit').map((r) => JSON.parse(r.body).event.key)).toContain(e.key);
    await local.stop();
  });
});
