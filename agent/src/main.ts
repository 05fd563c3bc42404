/**
 * The agent's entry point: `node agent/src/main.ts`, configured by environment variables
 * (and a mounted Secret; see docs/agent.md). Runs until SIGTERM or SIGINT.
 */
import { hostname } from 'node:os';
import { AgentConfigError, loadConfig } from './config.ts';
import { LeaderElector } from './leader/leader-elector.ts';
import { LeaseLock } from './leader/lease-lock.ts';
import { errorFields, jsonLogger } from './log.ts';
import { systemClock } from './reconcile/ports.ts';
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
  // With leader election, the agent loop runs only while this replica holds the Lease; a
  // standby keeps campaigning, and answers its probes.
  const elector = config.leaderElection
    ? new LeaderElector({
        lock: new LeaseLock(runtime.client, config.namespace, config.leaderElection.leaseName),
        identity: config.leaderElection.identity,
        clock: systemClock,
        log,
        onLeadingChange: (leading) => runtime.metrics.leader.set(leading ? 1 : 0),
      })
    : undefined;
  if (elector) runtime.metrics.leader.set(0);
  let leadingSince = 0;
  const probes = config.http
    ? await startProbeServer({
        ...config.http,
        metrics: runtime.metrics,
        probe: () => {
          if (!elector) return runtime.agent.liveness;
          if (!elector.leading) {
            const standby = elector.liveness;
            return { lastTickAt: standby.lastAttemptAt, ready: standby.lockAnswered, role: 'standby' };
          }
          const agent = runtime.agent.liveness;
          return { ...agent, lastTickAt: Math.max(agent.lastTickAt, leadingSince), role: 'leader' };
        },
        // No step waits for readiness or for the hub: one that runs this long is stuck.
        stuckAfterMs: 10 * 60_000,
      })
    : undefined;
  log.info('flotilla agent started', {
    version: AGENT_VERSION,
    hub: config.hubUrl,
    namespace: config.namespace,
    kubernetes: runtime.client.server,
    notifications: config.sqs ? 'sqs' : 'polling',
    ...(config.leaderElection ? { leaderElection: config.leaderElection } : {}),
    ...(probes ? { http: probes.url } : {}),
  });
  const runAgent = async (signal: AbortSignal) => {
    leadingSince = Date.now();
    await runtime.agent.run(signal);
    // Stopping, not losing the lease: one last try to tell the hub where things stand. A
    // replica that lost the lease says nothing; the new leader reports.
    if (controller.signal.aborted)
      await runtime.agent.sendStatus(AbortSignal.timeout(3_000)).catch(() => false);
  };
  try {
    if (elector) await elector.run(controller.signal, runAgent);
    else await runAgent(controller.signal);
  } finally {
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
