/**
 * The local hub: a Node HTTP server that hands every request, as an API Gateway
 * payload 2.0 event, to the same handler the Lambda runs, and writes its result back.
 * Pointed at DynamoDB Local and ElasticMQ (or LocalStack, or AWS) by configuration alone.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { applyRolloutSteps, stepRolloutsOnSchedule, watchFleetHealth } from '@flotilla/shared/hub';
import type { EventSink } from '@flotilla/shared/notify';
import type { Context } from 'aws-lambda';
import { ensureHubTables } from '../adapters/dynamodb-tables.ts';
import type { HubConfig } from '../config.ts';
import { type ApiHandler, createApiHandler } from '../http/api.ts';
import { jsonLogger, type Logger } from '../http/log.ts';
import type { ApiContext } from '../http/request.ts';
import { syncWork } from '../http/sync-work.ts';
import { type ClientOverrides, createHubContext, type HubContext } from '../hub-context.ts';
import { rendererBinary } from '../renderer.ts';
import { fromApiGatewayResult, toApiGatewayEvent } from './event.ts';

export interface LocalHubOptions {
  readonly config: HubConfig;
  /** 0 (the default) picks a free port. */
  readonly port?: number;
  readonly host?: string;
  /** Static credentials for local endpoints (DynamoDB Local and ElasticMQ take any). */
  readonly credentials?: ClientOverrides['credentials'];
  readonly log?: Logger;
  /** Where fleet events go (a notifier in memory, a test's recorder); by default nowhere. */
  readonly events?: EventSink;
}

export interface LocalHub {
  /** Base URL, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  /** The hub's adapters, as the handler uses them. */
  readonly hub: HubContext;
  stop(): Promise<void>;
}

/** API Gateway HTTP API's payload limit. */
const maxBodyBytes = 10 * 1024 * 1024;
/** What a Lambda behind API Gateway could take at most; locally only middy's early-timeout reads it. */
const invocationMs = 15 * 60_000;

/**
 * Starts the local hub. With a DynamoDB endpoint configured (DynamoDB Local, LocalStack)
 * it creates the hub's tables first, as the CDK app does in AWS.
 *
 * @example
 * const { url, stop } = await startLocalHub({ config: loadConfig(process.env), port: 8080 });
 */
export async function startLocalHub(opts: LocalHubOptions): Promise<LocalHub> {
  const log = opts.log ?? jsonLogger((line) => process.stderr.write(`${line}\n`));
  // Helm and Kustomize bundles need the render worker: built (once, cached) for this machine.
  const config = {
    ...opts.config,
    rendererBinary: await rendererBinary({ FLOTILLA_RENDERER: opts.config.rendererBinary }),
  };
  const hub = createHubContext(config, {
    ...(opts.credentials ? { credentials: opts.credentials } : {}),
    ...(opts.events ? { events: opts.events } : {}),
  });
  if (opts.config.dynamodbEndpoint) await ensureHubTables(hub.dynamodb, opts.config.tables);
  const handler = createApiHandler({ ...hub, log });
  // Rollout timers (bake ends, deadlines, offline graces, windows) step every second here,
  // as the sync's schedule does in AWS, so a wave opens when its bake ends even if no
  // agent happens to report then.
  const rolloutTicker = startRolloutTicker(hub, log);
  // The windows of a sync that fans out, and rollout wakes: worked here, as the sync
  // function's SQS event source does in AWS (wakes are redundant with the ticker here).
  const stopWorker = new AbortController();
  const worker = hub.fanout
    ? hub.fanout.queue.poll(
        async (message) => void (await syncWork(hub, message, log)),
        stopWorker.signal,
        (err) => log.error('sync work failed', { error: err instanceof Error ? err.message : String(err) }),
      )
    : Promise.resolve();
  const server = createServer((req, res) => {
    void serve(handler, req, res, log);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    hub,
    stop: async () => {
      await rolloutTicker.stop();
      server.closeIdleConnections();
      // A client holding a keep-alive connection (an agent's long poll) must not keep the hub up.
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
      stopWorker.abort();
      await worker;
      hub.dynamodb.destroy();
      hub.sqs.destroy();
      await hub.renderer?.close();
    },
  };
}

/** Steps rollouts whose timer ran out and watches the fleet's health, once a second, one pass at a time. */
function startRolloutTicker(hub: HubContext, log: Logger): { stop(): Promise<void> } {
  let running: Promise<void> = Promise.resolve();
  let busy = false;
  const tick = async () => {
    const steps = await stepRolloutsOnSchedule({
      rollouts: hub.rollouts,
      rolloutTimer: hub.rolloutTimer,
      events: hub.events,
      clusters: hub.clusters,
      statuses: hub.statuses,
      now: hub.now,
      offlineAfterMs: hub.config.offlineAfterSeconds * 1000,
    });
    if (steps.length > 0) await applyRolloutSteps(hub, steps);
    // Clusters that stopped reporting and bundles NotReady past their deadline, as the schedule checks in AWS.
    await watchFleetHealth(hub, {
      offlineAfterSeconds: hub.config.offlineAfterSeconds,
      notReadyAfterSeconds: hub.config.notReadyAfterSeconds,
    });
  };
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    running = tick()
      .catch((err: unknown) => log.warn('rollout timer step failed', { error: (err as Error).message }))
      .finally(() => {
        busy = false;
      });
  }, 1000);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await running;
    },
  };
}

async function serve(
  handler: ApiHandler,
  req: IncomingMessage,
  res: ServerResponse,
  log: Logger,
): Promise<void> {
  const requestId = randomUUID();
  try {
    const body = await readBody(req);
    if (body === undefined) {
      writeJson(res, 413, {
        error: { code: 'payload_too_large', message: `the body is larger than ${maxBodyBytes} bytes` },
      });
      return;
    }
    const event = toApiGatewayEvent({
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      headers: req.headers,
      body,
      sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
      requestId,
      now: new Date(),
    });
    const result = await handler(event, lambdaContext(requestId));
    const response = fromApiGatewayResult(result);
    res.statusCode = response.statusCode;
    for (const [name, value] of response.headers) res.appendHeader(name, value);
    if (!res.hasHeader('content-length')) res.setHeader('content-length', response.body.length);
    res.end(response.body);
  } catch (err) {
    // The handler maps its own errors; reaching here means the server itself failed.
    log.error('local server failed', { requestId, error: err instanceof Error ? err.stack : String(err) });
    if (!res.headersSent) {
      writeJson(res, 500, {
        error: { code: 'internal', message: `the local hub failed; request id ${requestId}`, requestId },
      });
    } else res.destroy();
  }
}

function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBodyBytes) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(tooLarge ? undefined : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function writeJson(res: ServerResponse, status: number, value: unknown): void {
  const body = Buffer.from(JSON.stringify(value));
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length });
  res.end(body);
}

function lambdaContext(requestId: string): ApiContext {
  const started = Date.now();
  const context: Context = {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'flotilla-api-local',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:local:000000000000:function:flotilla-api-local',
    memoryLimitInMB: '1024',
    awsRequestId: requestId,
    logGroupName: '/local/flotilla-api',
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, invocationMs - (Date.now() - started)),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
  return context;
}
