import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteMessageCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { ensureRenderer } from '@flotilla/renderer/build.ts';
import { generateSigningKeyPair } from '@flotilla/shared';
import { ensureHubTables } from '../../functions/src/adapters/dynamodb-tables.ts';
import { loadConfig } from '../../functions/src/config.ts';
import { createHubContext, type HubContext } from '../../functions/src/hub-context.ts';
import type { BedState } from '../bed/src/bed.ts';

let counter = 0;

/**
 * The hub's configuration (as `loadConfig` reads it) for the bed's DynamoDB Local,
 * ElasticMQ and git server: what every hub the tests, `npm start` and the benchmarks run
 * has in common.
 */
export function bedHubEnv(
  bed: Pick<BedState, 'region' | 'dynamodb' | 'sqs'>,
  opts: {
    readonly prefix: string;
    readonly fleetRepoUrl: string;
    readonly signingKeyPem: string;
    readonly gitCacheDir: string;
    /** Admin routes take this key (its SHA-256 is what the hub keeps). */
    readonly adminKey?: string;
    readonly webhookSecret?: string;
  },
): Record<string, string> {
  return {
    FLOTILLA_PREFIX: opts.prefix,
    AWS_REGION: bed.region,
    FLOTILLA_DYNAMODB_ENDPOINT: bed.dynamodb.endpoint,
    FLOTILLA_SQS_ENDPOINT: bed.sqs.endpoint,
    FLOTILLA_FLEET_REPO_URL: opts.fleetRepoUrl,
    FLOTILLA_SIGNING_KEY: opts.signingKeyPem,
    FLOTILLA_GIT_CACHE_DIR: opts.gitCacheDir,
    ...(opts.adminKey
      ? { FLOTILLA_ADMIN_KEY_SHA256: createHash('sha256').update(opts.adminKey).digest('hex') }
      : {}),
    ...(opts.webhookSecret ? { FLOTILLA_WEBHOOK_SECRET: opts.webhookSecret } : {}),
  };
}

/** A hub of its own (tables and queues under a fresh prefix) on the bed's real services. */
export async function createTestHub(
  bed: BedState,
  fleetRepoUrl: string,
): Promise<HubContext & { publicKeyPem: string }> {
  const { privateKeyPem, publicKeyPem } = generateSigningKeyPair();
  const prefix = `t${process.pid}-${Date.now().toString(36)}-${counter++}`;
  const config = loadConfig({
    ...bedHubEnv(bed, {
      prefix,
      fleetRepoUrl,
      signingKeyPem: privateKeyPem,
      gitCacheDir: mkdtempSync(join(tmpdir(), 'flotilla-git-cache-')),
    }),
    // Overlays, Helm and Kustomize render in the worker, as in the hub's Lambda.
    FLOTILLA_RENDERER: await ensureRenderer(),
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
