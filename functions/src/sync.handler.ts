/**
 * Lambda entry of the scheduled sync (EventBridge): syncs every cluster to the tip of
 * the fleet repo, in case a webhook was missed. Configuration is read once, at cold start.
 */

import type { SyncReportView } from '@flotilla/shared/hub';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { loadConfig } from './config.ts';
import { scheduledSync } from './http/scheduled-sync.ts';
import { openHubContext } from './hub-context.ts';

// Secrets (the signing key, git credentials) are read once here, at cold start.
const hub = await openHubContext(loadConfig(process.env));

export const handler = middy<unknown, SyncReportView, Error, Context>().handler((_event, context) =>
  scheduledSync(hub, context.awsRequestId),
);
