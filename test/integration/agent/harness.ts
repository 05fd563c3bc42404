import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigningKeyPair } from '@flotilla/shared';
import { type AgentConfig, loadConfig } from '../../../agent/src/config.ts';
import { KubeClient } from '../../../agent/src/kube/client.ts';
import { loadKubeConnection } from '../../../agent/src/kube/connection.ts';
import { type Logger, silentLogger } from '../../../agent/src/log.ts';
import type { Agent, SyncResult } from '../../../agent/src/reconcile/agent.ts';
import { type AgentRuntime, createAgentRuntime, type RuntimeOverrides } from '../../../agent/src/runtime.ts';
import { loadConfig as loadHubConfig } from '../../../functions/src/config.ts';
import type { Logger as HubLogger } from '../../../functions/src/http/log.ts';
import { type LocalHub, startLocalHub } from '../../../functions/src/local/server.ts';
import type { BedState } from '../../bed/src/bed.ts';
import { FleetWorkingCopy } from '../../support/fleet-git.ts';
import { until } from '../../support/until.ts';

let counter = 0;

/** A name unique to this test run: `<prefix>-<pid><n>`, lowercase, short enough for clusters and namespaces. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${(process.pid % 1000).toString(36)}${Date.now().toString(36).slice(-4)}${(counter++).toString(36)}`;
}

/** A cluster in the hub's fleet status (GET /v1/admin/status). */
export interface ClusterView {
  readonly id: string;
  readonly connection: string;
  readonly lastHeartbeatAt: string | null;
  readonly agentVersion: string | null;
  readonly kubeVersion: string | null;
  readonly appliedGeneration: number | null;
  readonly desired: { readonly generation: number } | null;
  readonly bundles: readonly {
    readonly name: string;
    readonly state: string;
    readonly upToDate: boolean;
    readonly reportedState: string | null;
    readonly message?: string;
    readonly failedObject?: string;
    readonly drift?: readonly { object: string; fields: string[] }[];
  }[];
}

/** One bundle as a fleet admin writes it: bundle.yaml fields and the manifests. */
export interface BundleFiles {
  readonly cluster: string;
  readonly namespace?: string;
  readonly dependsOn?: readonly string[];
  readonly driftPolicy?: 'correct' | 'warn' | 'ignore';
  readonly paused?: boolean;
  /** More of bundle.yaml, as YAML text (e.g. an `ignoreDifferences` list). */
  readonly extraSpec?: string;
  /** Plain Kubernetes YAML (multi-document allowed). */
  readonly manifests: string;
}

const quietHub: HubLogger = { info() {}, warn() {}, error() {} };

/**
 * A local hub over real HTTP on the bed (DynamoDB Local, ElasticMQ, git server) with a fleet
 * repo of its own, and the means to register clusters, push bundles and run agents on the
 * bed's control planes. The hub can be stopped and brought back on the same address with
 * its data, as a hub that was unreachable for a while.
 */
export class AgentHarness {
  readonly bed: BedState;
  readonly repo: FleetWorkingCopy;
  readonly publicKeyPem: string;
  readonly #adminKey: string;
  readonly #hub: LocalHub;
  readonly #link: NetworkLink;
  /** Where agents reach the hub: through a link that tests can cut, as a flaky edge network. */
  readonly url: string;
  readonly #runtimes: AgentRuntime[] = [];

  private constructor(
    bed: BedState,
    repo: FleetWorkingCopy,
    adminKey: string,
    hub: LocalHub,
    link: NetworkLink,
    publicKeyPem: string,
  ) {
    this.bed = bed;
    this.repo = repo;
    this.#adminKey = adminKey;
    this.#hub = hub;
    this.#link = link;
    this.url = link.url;
    this.publicKeyPem = publicKeyPem;
  }

  static async start(bed: BedState, name: string): Promise<AgentHarness> {
    const seed = mkdtempSync(join(tmpdir(), 'flotilla-agent-fleet-'));
    writeFileSync(join(seed, 'README.md'), 'Fleet repo of the agent tests\n');
    const repo = await FleetWorkingCopy.create(bed.git, uniqueName(name), seed);
    const { privateKeyPem, publicKeyPem } = generateSigningKeyPair();
    const adminKey = `adm_${randomBytes(24).toString('base64url')}`;
    const config = loadHubConfig({
      FLOTILLA_PREFIX: uniqueName('ag').slice(0, 20),
      AWS_REGION: bed.region,
      FLOTILLA_DYNAMODB_ENDPOINT: bed.dynamodb.endpoint,
      FLOTILLA_SQS_ENDPOINT: bed.sqs.endpoint,
      FLOTILLA_FLEET_REPO_URL: repo.url,
      FLOTILLA_SIGNING_KEY: privateKeyPem,
      FLOTILLA_GIT_CACHE_DIR: mkdtempSync(join(tmpdir(), 'flotilla-agent-git-')),
      FLOTILLA_ADMIN_KEY_SHA256: createHash('sha256').update(adminKey).digest('hex'),
    });
    const hub = await startLocalHub({
      config,
      credentials: { accessKeyId: 'bed', secretAccessKey: 'bed' },
      log: quietHub,
    });
    const link = await NetworkLink.open(new URL(hub.url));
    return new AgentHarness(bed, repo, adminKey, hub, link, publicKeyPem);
  }

  /** The admin key of the hub, for the CLI (`runFlotilla`). */
  get adminKey(): string {
    return this.#adminKey;
  }

  /** The hub becomes unreachable for agents: their connections are cut and new ones refused. */
  async stopHub(): Promise<void> {
    await this.#link.cut();
  }

  /** The hub is reachable again, at the same address. */
  async restartHub(): Promise<void> {
    await this.#link.restore();
  }

  /** The hub hangs: it accepts connections and never answers, until {@link unhangHub}. */
  hangHub(): void {
    this.#link.stall(true);
  }

  unhangHub(): void {
    this.#link.stall(false);
  }

  /** A call to the admin API with the admin key. */
  admin(path: string, init: { method?: string; json?: unknown } = {}): Promise<Response> {
    return fetch(`${this.#hub.url}${path}`, {
      method: init.method ?? 'GET',
      headers: {
        authorization: `Bearer ${this.#adminKey}`,
        ...(init.json !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(init.json !== undefined ? { body: JSON.stringify(init.json) } : {}),
    });
  }

  /** The hub's fleet-status view of one cluster. */
  async clusterStatus(cluster: string): Promise<ClusterView | undefined> {
    const res = await this.admin('/v1/admin/status');
    if (res.status !== 200) throw new Error(`status: HTTP ${res.status}`);
    const body = (await res.json()) as { clusters: ClusterView[] };
    return body.clusters.find((c) => c.id === cluster);
  }

  /** Registers a cluster through the admin API; returns its token and queue URL. */
  async register(
    cluster: string,
    labels: Record<string, string> = {},
  ): Promise<{ token: string; queueUrl: string }> {
    const res = await this.admin('/v1/admin/clusters', { method: 'POST', json: { name: cluster, labels } });
    if (res.status !== 201) throw new Error(`register ${cluster}: HTTP ${res.status} ${await res.text()}`);
    const body = (await res.json()) as { token: string; queueUrl: string };
    return { token: body.token, queueUrl: body.queueUrl };
  }

  /** Writes (or, with null, removes) bundles, commits, pushes and has the hub sync. */
  async push(bundles: Record<string, BundleFiles | null>, message = 'Update bundles'): Promise<string> {
    for (const [name, b] of Object.entries(bundles)) {
      if (b === null) {
        this.repo.remove(`bundles/${name}`);
        continue;
      }
      const spec = [
        `targets:\n  - clusterName: ${b.cluster}`,
        b.namespace ? `namespace: ${b.namespace}` : '',
        b.dependsOn?.length ? `dependsOn: [${b.dependsOn.join(', ')}]` : '',
        b.driftPolicy ? `driftPolicy: ${b.driftPolicy}` : '',
        b.paused ? 'paused: true' : '',
        b.extraSpec?.trimEnd() ?? '',
      ]
        .filter(Boolean)
        .join('\n');
      this.repo.remove(`bundles/${name}`);
      this.repo.write(`bundles/${name}/bundle.yaml`, `${spec}\n`);
      this.repo.write(`bundles/${name}/manifests.yaml`, b.manifests);
    }
    // Pushed asynchronously: the bed's git server may run in this very process (bench:agent).
    const commit = await this.repo.commitAsync(message);
    const res = await this.admin('/v1/admin/sync', { method: 'POST' });
    const report = (await res.json()) as { commit: string; errors: unknown[] };
    if (res.status !== 200 || report.commit !== commit) {
      throw new Error(`sync: HTTP ${res.status} ${JSON.stringify(report)}`);
    }
    if (report.errors.length > 0) throw new Error(`sync errors: ${JSON.stringify(report.errors)}`);
    return commit;
  }

  /** The environment a real agent process of `cluster` would get. */
  agentEnv(
    cluster: string,
    token: string,
    opts: { kubeconfigPath: string; namespace: string; env?: Record<string, string> },
  ): Record<string, string> {
    return {
      FLOTILLA_HUB_URL: this.url,
      FLOTILLA_CLUSTER_ID: cluster,
      FLOTILLA_TOKEN: token,
      FLOTILLA_HUB_PUBLIC_KEY: this.publicKeyPem,
      FLOTILLA_KUBECONFIG: opts.kubeconfigPath,
      FLOTILLA_NAMESPACE: opts.namespace,
      FLOTILLA_HTTP_ADDR: 'off',
      FLOTILLA_RECHECK_INTERVAL: '250ms',
      FLOTILLA_REQUEUE_INTERVAL: '2s',
      FLOTILLA_BACKOFF_MIN: '100ms',
      FLOTILLA_BACKOFF_MAX: '2s',
      ...(opts.env ?? {}),
    };
  }

  /** The variables that point an agent at its queue on the bed's ElasticMQ. */
  sqsEnv(queueUrl: string): Record<string, string> {
    return {
      FLOTILLA_SQS_QUEUE_URL: queueUrl,
      FLOTILLA_SQS_ENDPOINT: this.bed.sqs.endpoint,
      FLOTILLA_SQS_REGION: this.bed.region,
      AWS_ACCESS_KEY_ID: 'bed',
      AWS_SECRET_ACCESS_KEY: 'bed',
    };
  }

  /** An agent of `cluster` in this process, on the given control plane, with its adapters as main.ts wires them. */
  async agent(
    cluster: string,
    token: string,
    opts: {
      kubeconfigPath: string;
      namespace: string;
      env?: Record<string, string>;
      overrides?: RuntimeOverrides;
      log?: Logger;
    },
  ): Promise<AgentRuntime & { config: AgentConfig }> {
    const config = loadConfig(this.agentEnv(cluster, token, opts));
    const runtime = await createAgentRuntime(config, opts.log ?? silentLogger, {
      queue: null,
      // The agent shares this process with the test runner: compacting its heap is the agent process's business.
      settle: null,
      ...(opts.overrides ?? {}),
    });
    this.#runtimes.push(runtime);
    return Object.assign(runtime, { config });
  }

  async stop(): Promise<void> {
    for (const r of this.#runtimes) r.close();
    await this.#link?.cut();
    await this.#hub?.stop();
    this.repo?.dispose();
  }
}

/** A Kubernetes client of one of the bed's control planes, for the tests' own reads and writes. */
/** Bundle manifests: a Namespace, and optionally a ConfigMap in it with `data`. */
export function namespaceManifest(
  ns: string,
  configMap?: { name: string; data: Record<string, string> },
): string {
  const head = `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns}\n`;
  if (!configMap) return head;
  const data = Object.entries(configMap.data)
    .map(([k, v]) => `  ${k}: ${JSON.stringify(v)}\n`)
    .join('');
  return `${head}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${configMap.name}\ndata:\n${data}`;
}

/**
 * The bed's control plane `index`, or its first when the bed has fewer (a one-cluster bed
 * runs every test file on one plane). Test files spread over the planes this way.
 */
export function controlPlane(bed: BedState, index: number): BedState['clusters'][number] {
  const plane = bed.clusters[index] ?? bed.clusters[0];
  if (!plane) throw new Error('the bed has no control plane');
  return plane;
}

/**
 * One sync, then the requeues the agent's loop would run, until no bundle is left NotReady
 * or waiting for a dependency: a reconcile takes one look at readiness and never waits.
 */
export async function syncSettled(agent: Agent, timeoutMs = 60_000): Promise<SyncResult> {
  const result = await agent.sync();
  await until(
    'the bundles to settle',
    async () => {
      if (!agent.lastOutcome?.requeue) return true;
      await agent.enforce({ detectDrift: false, trigger: 'requeue' });
      return agent.lastOutcome?.requeue ? undefined : true;
    },
    { timeoutMs, intervalMs: 200 },
  );
  return result;
}

export async function kubeClientOf(kubeconfigPath: string): Promise<KubeClient> {
  return new KubeClient(await loadKubeConnection({ kind: 'kubeconfig', path: kubeconfigPath }));
}

/** The bed's kubectl against one control plane, as an operator would use it. */
export function kubectl(bed: BedState, kubeconfigPath: string, ...args: string[]): string {
  return execFileSync(bed.kubernetes.kubectl, ['--kubeconfig', kubeconfigPath, ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Deletes namespaces (and what is in them) and cluster-scoped leftovers; ignores what is already gone. */
export async function cleanUp(
  client: KubeClient,
  namespaces: readonly string[],
  paths: readonly string[] = [],
) {
  for (const path of [...paths, ...namespaces.map((ns) => `/api/v1/namespaces/${ns}`)]) {
    await client.request('DELETE', path).catch(() => undefined);
  }
}

/** Polls `probe` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(
  probe: () => Promise<T | undefined>,
  timeoutMs = 30_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

/** A TCP link to a server that can be cut (connections dropped, new ones refused) and restored on the same port. */
class NetworkLink {
  readonly url: string;
  readonly #target: URL;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #port: number;

  private constructor(target: URL, server: Server, port: number) {
    this.#target = target;
    this.#server = server;
    this.#port = port;
    this.url = `http://127.0.0.1:${port}`;
  }

  static async open(target: URL): Promise<NetworkLink> {
    let link: NetworkLink | undefined;
    const server = createServer((socket) => link?.pipe(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    link = new NetworkLink(target, server, (server.address() as { port: number }).port);
    return link;
  }

  #stalled = false;

  /** While stalled, open connections are dropped and new ones are accepted and left unanswered. */
  stall(on: boolean): void {
    this.#stalled = on;
    if (on) for (const s of this.#sockets) s.destroy();
  }

  pipe(socket: Socket): void {
    if (this.#stalled) {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
      socket.on('error', () => socket.destroy());
      socket.resume();
      return;
    }
    const upstream = connect(Number(this.#target.port), this.#target.hostname);
    for (const s of [socket, upstream]) {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
      s.on('error', () => s.destroy());
    }
    socket.pipe(upstream).pipe(socket);
  }

  async cut(): Promise<void> {
    if (!this.#server.listening) return;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    await closed;
  }

  async restore(): Promise<void> {
    if (this.#server.listening) return;
    await new Promise<void>((resolve) => this.#server.listen(this.#port, '127.0.0.1', resolve));
  }
}
