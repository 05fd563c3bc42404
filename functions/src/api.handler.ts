/**
 * Lambda entry of the hub's HTTP API (API Gateway HTTP API, payload 2.0): every route of
 * `http/routes.ts`, plus `$default` so unknown paths get JSON 404/405. Configuration is
 * read once here, at cold start; clients are built once and reused by warm invocations.
 */
import { loadConfig } from './config.ts';
import { createApiHandler } from './http/api.ts';
import { openHubContext } from './hub-context.ts';

export const handler = createApiHandler(await openHubContext(loadConfig(process.env)));
