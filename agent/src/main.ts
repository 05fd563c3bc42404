/**
 * The agent's entry point: `node agent/src/main.ts`, configured by environment variables
 * (and a mounted Secret; see docs/agent.md). Runs until SIGTERM or SIGINT.
 */
import { hostname } from 'node:os';
import { AgentConfigError, loadConfig } from './config.ts';
import { errorFields, jsonLogger } from './log.ts';
import { createAgentRuntime } from './runtime.ts';
import { startProbeServer } from './server.ts';
import { AGENT_VERSION } from './version.ts';

async function main(): Promise<number> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(process.env, { host: { hostname: hostname(), pid: process.pid } });
  } catch (e) {
    if (e instanceof AgentConfigError) {
      process.stderr.write(`flotilla-agent: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const log = jsonLogger({ level: config.logLevel, base: { cluster: config.clusterId } });
  const runtime = await createAgentRuntime(config, log);
  const controller = new AbortController();
  const stop = (signal: string) => {
    if (controller.signal.aborted) return;
    log.info('stopping', { signal });
    controller.abort();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  const probes = config.http
    ? await startProbeServer({
        ...config.http,
        metrics: runtime.metrics,
        probe: () => runtime.agent.liveness,
        // A reconcile may wait for readiness as long as the health timeout.
        stuckAfterMs: config.healthTimeoutMs + 5 * 60_000,
      })
    : undefined;
  log.info('flotilla agent started', {
    version: AGENT_VERSION,
    hub: config.hubUrl,
    namespace: config.namespace,
    kubernetes: runtime.client.server,
    notifications: config.sqs ? 'sqs' : 'polling',
    ...(probes ? { http: probes.url } : {}),
  });
  try {
    await runtime.agent.run(controller.signal);
  } finally {
    // One last try to tell the hub where things stand.
    await runtime.agent.sendStatus(AbortSignal.timeout(3_000)).catch(() => false);
    await probes?.close();
    runtime.close();
  }
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(
      `${JSON.stringify({ level: 'error', message: 'flotilla agent crashed', ...errorFields(e) })}\n`,
    );
    process.exitCode = 1;
  },
);
