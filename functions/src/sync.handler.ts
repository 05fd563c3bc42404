/**
 * Lambda entry of the sync: the scheduled sync (EventBridge), which syncs every cluster to
 * the tip of the fleet repo in case a webhook was missed, and, for a fleet big enough to
 * fan out, the worker of each dispatched window and of each rollout wake (the SQS work
 * queue's event source, batch size 1). Configuration is read once, at cold start.
 */

import type { RolloutWakeReport, SyncReportView, SyncWindowReport } from '@flotilla/shared/hub';
import middy from '@middy/core';
import type { Context, SQSEvent } from 'aws-lambda';
import { parseSyncWorkMessage } from './adapters/sqs-sync-work-queue.ts';
import { loadConfig } from './config.ts';
import { scheduledSync } from './http/scheduled-sync.ts';
import { syncWork } from './http/sync-work.ts';
import { openHubContext } from './hub-context.ts';

// Secrets (the signing key, git credentials) are read once here, at cold start.
const hub = await openHubContext(loadConfig(process.env));

export const handler = middy<
  unknown,
  SyncReportView | (SyncWindowReport | RolloutWakeReport)[],
  Error,
  Context
>().handler(async (event, context) => {
  if (!isSqsEvent(event)) return scheduledSync(hub, context.awsRequestId);
  const reports: (SyncWindowReport | RolloutWakeReport)[] = [];
  for (const record of event.Records) reports.push(await syncWork(hub, parseSyncWorkMessage(record.body)));
  return reports;
});

function isSqsEvent(event: unknown): event is SQSEvent {
  const records = (event as { Records?: { eventSource?: string }[] } | null)?.Records;
  return Array.isArray(records) && records.every((r) => r.eventSource === 'aws:sqs');
}
