/**
 * Lambda entry of the notifier: the notifications queue's event source. Each batch of
 * fleet events is matched against `notifications/` of the fleet repo and delivered;
 * records whose delivery failed are reported back (partial batch failure) so SQS
 * redelivers them, and after a few receives moves them to the dead-letter queue.
 * The event source runs at most two instances: the per-provider rate limits live in
 * each instance's memory.
 */
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { jsonLogger } from './http/log.ts';
import { deliverRecords } from './notify/deliver-records.ts';
import { openNotifier } from './notify/runtime.ts';
import { loadNotifierConfig } from './notify-config.ts';

const log = jsonLogger();
const runtime = await openNotifier(loadNotifierConfig(process.env), log);

/** Left for the batch response and for SQS after the last wait for a summary. */
const MARGIN_MS = 5000;

export const handler = middy<SQSEvent, SQSBatchResponse, Error, Context>().handler(async (event, context) => {
  const deadline = runtime.clock.now() + context.getRemainingTimeInMillis() - MARGIN_MS;
  const result = await deliverRecords(
    runtime,
    event.Records.map((r) => ({ id: r.messageId, body: r.body })),
    deadline,
  );
  return { batchItemFailures: result.retry.map((itemIdentifier) => ({ itemIdentifier })) };
});
