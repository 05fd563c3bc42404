import type { AgentConfig } from './config.ts';
import { HubClient } from './hub/hub-client.ts';
import { KubeApiError, KubeClient } from './kube/client.ts';
import { type KubeConnection, loadKubeConnection } from './kube/connection.ts';
import { readServerVersion } from './kube/server-version.ts';
import { errorFields, type Logger } from './log.ts';
import { releaseMemoryAfterWork } from './memory.ts';
import { AgentMetrics } from './metrics.ts';
import { SqsQueue } from './queue/sqs-queue.ts';
import { Agent } from './reconcile/agent.ts';
import { ClusterReconciler } from './reconcile/cluster-reconciler.ts';
import { type Clock, type HubPort, type QueuePort, systemClock } from './reconcile/ports.ts';
import { TenantAccess } from './reconcile/tenant-access.ts';
import { AgeKeyStore } from './secrets/age-key-store.ts';
import { defaultOwner, ResourceManager } from './ssa/resource-manager.ts';
import { ClusterStore } from './stores/cluster-store.ts';
import { SecretDesiredStateCache } from './stores/desired-state-cache.ts';
import { ConfigMapGenerationStore } from './stores/generation-store.ts';
import { ConfigMapInventory } from './stores/inventory-store.ts';
import { AGENT_VERSION } from './version.ts';

/** The agent with its adapters wired, as `main.ts` runs it and integration tests start it in-process. */
export interface AgentRuntime {
  readonly agent: Agent;
  readonly manager: ResourceManager;
  readonly client: KubeClient;
  readonly metrics: AgentMetrics;
  readonly reconciler: ClusterReconciler;
  /** The cluster's age keys (its own, made at the first start, and group keys). */
  readonly secretKeys: AgeKeyStore;
  close(): void;
}

/** Replacements for tests: another hub port (a tampering proxy, say), clock or queue. */
export interface RuntimeOverrides {
  readonly hub?: HubPort;
  readonly queue?: QueuePort | null;
  readonly clock?: Clock;
  readonly connection?: KubeConnection;
  /** What the loop does when it goes to sleep after work ({@link releaseMemoryAfterWork}); null for nothing. */
  readonly settle?: (() => unknown) | null;
}

/**
 * Builds the agent from its configuration: the Kubernetes connection (kubeconfig or
 * in-cluster), the resource manager, inventories and desired-state cache in the agent's
 * namespace (created if missing), the hub client and, when configured, the SQS queue.
 */
export async function createAgentRuntime(
  config: AgentConfig,
  log: Logger,
  overrides: RuntimeOverrides = {},
): Promise<AgentRuntime> {
  const connection = overrides.connection ?? (await loadKubeConnection(config.kube));
  const client = new KubeClient(connection, {
    maxSockets: config.applyConcurrency,
    userAgent: `flotilla-agent/${AGENT_VERSION}`,
  });
  const owner = defaultOwner;
  const clock = overrides.clock ?? systemClock;
  const manager = new ResourceManager({ client, owner, concurrency: config.applyConcurrency, clock });
  await ensureNamespace(client, config.namespace, owner.field, log);
  const store = (kind: 'ConfigMap' | 'Secret', prefix: string) =>
    new ClusterStore(client, {
      namespace: config.namespace,
      kind,
      prefix,
      fieldManager: owner.field,
      labelGroup: owner.group,
    });
  const inventory = new ConfigMapInventory(store('ConfigMap', 'flotilla-inventory'));
  const cache = new SecretDesiredStateCache(store('Secret', 'flotilla-cache'));
  const generations = new ConfigMapGenerationStore(store('ConfigMap', 'flotilla-generation'));
  const hubClient = overrides.hub
    ? undefined
    : new HubClient({
        baseUrl: config.hubUrl,
        clusterId: config.clusterId,
        token: config.token,
        agentVersion: AGENT_VERSION,
        timeoutMs: config.hubTimeoutMs,
      });
  const queue =
    overrides.queue === null
      ? undefined
      : (overrides.queue ?? (config.sqs ? new SqsQueue({ ...config.sqs }) : undefined));
  const metrics = new AgentMetrics();
  const secretKeys = new AgeKeyStore(client, { namespace: config.namespace, managedBy: owner.field });
  const reconciler = new ClusterReconciler({
    now: () => clock.now(),
    manager,
    tenants: new TenantAccess({ manager, namespace: config.namespace, log }),
    inventory,
    secretKeys,
    log,
  });
  const agent = new Agent(
    {
      hub: overrides.hub ?? (hubClient as HubClient),
      queue,
      cache,
      generations,
      cluster: reconciler,
      kubeVersion: (signal) => readServerVersion(client, signal),
      secretKeys,
      clock,
      log,
      metrics,
      settle:
        overrides.settle === null
          ? undefined
          : (overrides.settle ??
            releaseMemoryAfterWork(hubClient ? [client, hubClient] : [client], (e) =>
              log.warn('could not release memory after work', errorFields(e)),
            )),
    },
    {
      clusterId: config.clusterId,
      hubPublicKey: config.hubPublicKey,
      agentVersion: AGENT_VERSION,
      intervals: config.intervals,
    },
  );
  return {
    agent,
    manager,
    client,
    metrics,
    reconciler,
    secretKeys,
    close() {
      queue?.close?.();
      hubClient?.close();
      client.close();
    },
  };
}

async function ensureNamespace(client: KubeClient, namespace: string, fieldManager: string, log: Logger) {
  try {
    if (await client.get(`/api/v1/namespaces/${namespace}`)) return;
    await client.request('PATCH', `/api/v1/namespaces/${namespace}?fieldManager=${fieldManager}`, {
      body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } },
      contentType: 'application/apply-patch+yaml',
    });
    log.info('created the agent namespace', { namespace });
  } catch (e) {
    // Without rights to read namespaces the agent may still own its own one; the stores will tell.
    if (!(e instanceof KubeApiError && e.status === 403))
      log.warn('cannot make sure the agent namespace exists', { namespace, ...errorFields(e) });
  }
}
