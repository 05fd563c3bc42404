/**
 * Lambda entry of the scheduled sync (EventBridge): syncs every cluster to the tip of
 * the fleet repo, in case a webhook was missed. Configuration is read once, at cold start.
 */
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { loadConfig } from './config.ts';
import type { syncReportView } from './http/admin-routes.ts';
import { scheduledSync } from './http/scheduled-sync.ts';
import { createHubContext } from './hub-context.ts';

const hub = createHubContext(loadConfig(process.env));

export const handler = middy<unknown, ReturnType<typeof syncReportView>, Error, Context>().handler(
  (_event, context) => scheduledSync(hub, context.awsRequestId),
);
