import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteMessageCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { generateSigningKeyPair } from '@flotilla/shared';
import { ensureHubTables } from '../../functions/src/adapters/dynamodb-tables.ts';
import { loadConfig } from '../../functions/src/config.ts';
import { createHubContext, type HubContext } from '../../functions/src/hub-context.ts';
import type { BedState } from '../bed/src/bed.ts';

let counter = 0;

/** A hub of its own (tables and queues under a fresh prefix) on the bed's real services. */
export async function createTestHub(
  bed: BedState,
  fleetRepoUrl: string,
): Promise<HubContext & { publicKeyPem: string }> {
  const { privateKeyPem, publicKeyPem } = generateSigningKeyPair();
  const prefix = `t${process.pid}-${Date.now().toString(36)}-${counter++}`;
  const config = loadConfig({
    FLOTILLA_PREFIX: prefix,
    AWS_REGION: bed.region,
    FLOTILLA_DYNAMODB_ENDPOINT: bed.dynamodb.endpoint,
    FLOTILLA_SQS_ENDPOINT: bed.sqs.endpoint,
    FLOTILLA_FLEET_REPO_URL: fleetRepoUrl,
    FLOTILLA_SIGNING_KEY: privateKeyPem,
    FLOTILLA_GIT_CACHE_DIR: mkdtempSync(join(tmpdir(), 'flotilla-git-cache-')),
  });
  const hub = createHubContext(config, { credentials: { accessKeyId: 'bed', secretAccessKey: 'bed' } });
  await ensureHubTables(hub.dynamodb, config.tables);
  return Object.assign(hub, { publicKeyPem });
}

/** Drains a queue with short polls; returns the message bodies, parsed. */
export async function drainQueue(hub: HubContext, queueUrl: string): Promise<unknown[]> {
  const bodies: unknown[] = [];
  for (;;) {
    const res = await hub.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
    );
    const messages = res.Messages ?? [];
    if (messages.length === 0) return bodies;
    for (const m of messages) {
      bodies.push(JSON.parse(m.Body ?? 'null'));
      await hub.sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle }));
    }
  }
}
