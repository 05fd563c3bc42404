/**
 * Hand-written fakes for the CLI's ports: an in-memory hub (admin, registration-token and
 * cluster-token routes), a spoke cluster that records applies, local agents, and an IO
 * that captures stdout and stderr.
 */
import type { BootstrapHub } from '../../../cli/src/bootstrap/bootstrap.ts';
import type {
  LocalAgentConfig,
  LocalAgentRecord,
  LocalAgentStatus,
  LocalAgents,
} from '../../../cli/src/bootstrap/local-agent.ts';
import type { KubeObject } from '../../../cli/src/bootstrap/manifests.ts';
import type { CliIo } from '../../../cli/src/core/command.ts';
import {
  type ClusterView,
  HubApiError,
  type HubPublicKey,
  type Labels,
  type Registered,
} from '../../../cli/src/hub/hub-client.ts';
import type { ApplyResult, SpokeCluster } from '../../../cli/src/kube/spoke-cluster.ts';

export const publicKey: HubPublicKey = {
  algorithm: 'Ed25519',
  keyId: 'sha256:key1',
  publicKeyPem:
    '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA8Uq3pYqVQm7Jm1sPZ3uQm0Fq1Zr2Yk0xSx9rj8c7Jbs=\n-----END PUBLIC KEY-----\n',
};

interface HubCluster {
  view: ClusterView;
  token: string;
}

export class FakeHub implements BootstrapHub {
  hasAdmin = true;
  readonly clusters = new Map<string, HubCluster>();
  readonly registrationTokens = new Map<string, { used: boolean; labels: Labels }>();
  readonly calls: string[] = [];
  #n = 0;
  /** Heartbeat the fake agent sends once the cluster has been looked at this many times. */
  heartbeatAfterPolls = 1;
  #polls = 0;

  #newToken(id: string) {
    return `flt_${id}.secret${++this.#n}`;
  }

  #register(name: string, labels: Labels): Registered {
    if (this.clusters.has(name))
      throw new HubApiError(409, 'conflict', `cluster "${name}" is already registered`);
    const view: ClusterView = {
      id: name,
      labels,
      registeredAt: '2024-05-01T12:00:00.000Z',
      queueUrl: `http://127.0.0.1:9324/000000000000/flotilla-spoke-${name}`,
      lastHeartbeatAt: null,
      agentVersion: null,
      kubeVersion: null,
      desiredState: null,
    };
    const token = this.#newToken(name);
    this.clusters.set(name, { view, token });
    return { cluster: view, token, queueUrl: view.queueUrl };
  }

  async getCluster(id: string) {
    this.calls.push(`getCluster ${id}`);
    const c = this.clusters.get(id);
    if (!c) return undefined;
    if (++this.#polls >= this.heartbeatAfterPolls && this.heartbeat) this.heartbeat(c);
    return c.view;
  }
  /** What the agent does when bootstrap looks: by default it reports at once. */
  heartbeat: ((c: HubCluster) => void) | undefined = (c) => {
    c.view = {
      ...c.view,
      lastHeartbeatAt: new Date(
        Date.parse(c.view.lastHeartbeatAt ?? '2024-05-01T12:00:00Z') + 1000,
      ).toISOString(),
      agentVersion: '0.1.0',
    };
  };
  async registerCluster(name: string, labels: Labels) {
    this.calls.push(`registerCluster ${name}`);
    return this.#register(name, labels);
  }
  async registerWithToken(token: string, name: string, labels: Labels) {
    this.calls.push(`registerWithToken ${name}`);
    const t = this.registrationTokens.get(token);
    if (!t) throw new HubApiError(401, 'unauthenticated', 'the registration token is not valid');
    if (t.used) throw new HubApiError(401, 'unauthenticated', 'the registration token was already used');
    if (this.clusters.has(name))
      throw new HubApiError(409, 'conflict', `cluster "${name}" is already registered`);
    t.used = true;
    return { ...this.#register(name, { ...labels, ...t.labels }), publicKey };
  }
  async ownCluster(id: string, token: string) {
    this.calls.push(`ownCluster ${id}`);
    const c = this.clusters.get(id);
    if (!c || c.token !== token) return undefined;
    if (++this.#polls >= this.heartbeatAfterPolls && this.heartbeat) this.heartbeat(c);
    return { cluster: c.view, publicKey };
  }
  async rotateClusterToken(id: string) {
    this.calls.push(`rotateClusterToken ${id}`);
    const c = this.clusters.get(id);
    if (!c) throw new HubApiError(404, 'not_found', `cluster "${id}" not found`);
    c.token = this.#newToken(id);
    return c.token;
  }
  async relabelCluster(id: string, change: { set?: Labels }) {
    this.calls.push(`relabelCluster ${id}`);
    const c = this.clusters.get(id);
    if (!c) throw new HubApiError(404, 'not_found', `cluster "${id}" not found`);
    c.view = { ...c.view, labels: { ...c.view.labels, ...change.set } };
    return { cluster: c.view };
  }
  async publicKey() {
    this.calls.push('publicKey');
    return publicKey;
  }
  async deregisterCluster(id: string) {
    this.calls.push(`deregisterCluster ${id}`);
    this.clusters.delete(id);
  }
}

/** A spoke cluster in memory: objects by Kind/namespace/name, an apply counts as unchanged when identical. */
export class FakeSpoke implements SpokeCluster {
  readonly description: string;
  readonly kubeconfigPath = '/tmp/kubeconfig';
  readonly context: string;
  readonly objects = new Map<string, KubeObject>();
  readonly applied: string[] = [];
  failOn: string | undefined;

  constructor(context = 'spoke-1') {
    this.context = context;
    this.description = `context "${context}" (https://127.0.0.1:6443)`;
  }

  #key(o: Pick<KubeObject, 'kind' | 'metadata'>) {
    return `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
  }
  async serverVersion() {
    return 'v1.37.2';
  }
  async apply(object: KubeObject): Promise<ApplyResult> {
    const key = this.#key(object);
    if (this.failOn === object.kind) throw new Error(`apply ${key} refused`);
    this.applied.push(key);
    const before = this.objects.get(key);
    this.objects.set(key, structuredClone(object));
    if (!before) return 'created';
    return JSON.stringify(before) === JSON.stringify(object) ? 'unchanged' : 'configured';
  }
  async readSecret(namespace: string, name: string) {
    const s = this.objects.get(`Secret/${namespace}/${name}`);
    if (!s) return undefined;
    const data = (s.data ?? {}) as Record<string, string>;
    return Object.fromEntries(
      Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
    );
  }
  async annotatePodTemplate() {
    return true;
  }
  async delete(object: Pick<KubeObject, 'apiVersion' | 'kind' | 'metadata'>) {
    return this.objects.delete(this.#key(object)) ? ('deleted' as const) : ('absent' as const);
  }
}

export class FakeLocalAgents implements LocalAgents {
  readonly records = new Map<string, LocalAgentRecord & { secret: Readonly<Record<string, string>> }>();
  #pid = 1000;
  async ensure(cluster: string, config: LocalAgentConfig) {
    const hash = JSON.stringify(config);
    const current = this.records.get(cluster);
    if (current && current.configHash === hash) return { record: current, started: false };
    const record = {
      cluster,
      pid: ++this.#pid,
      logFile: `/tmp/${cluster}.log`,
      startedAt: '2024-05-01T12:00:00Z',
      configHash: hash,
      hubUrl: config.secret.FLOTILLA_HUB_URL ?? '',
      kubeconfig: config.pod.kubeconfig,
      context: config.pod.context,
      env: config.env,
      pod: config.pod,
      secret: config.secret,
    };
    this.records.set(cluster, record);
    return { record, started: true };
  }
  async stop(cluster: string) {
    return this.records.delete(cluster);
  }
  get(cluster: string): LocalAgentStatus | undefined {
    const r = this.records.get(cluster);
    return r ? { ...r, running: true } : undefined;
  }
  list(): LocalAgentStatus[] {
    return [...this.records.values()].map((r) => ({ ...r, running: true }));
  }
}

export interface CapturedIo extends CliIo {
  readonly out: string[];
  readonly err: string[];
  stdoutText(): string;
  stderrText(): string;
}

export function captureIo(env: Record<string, string | undefined> = {}): CapturedIo {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    stdout: (t) => out.push(t),
    stderr: (t) => err.push(t),
    env: { XDG_CONFIG_HOME: '/nonexistent-flotilla-test', ...env },
    cwd: '/tmp',
    homeDir: '/nonexistent-home',
    stdoutText: () => out.join(''),
    stderrText: () => err.join(''),
  };
}

/** A fetch that answers from a route table: `METHOD /path` → status and JSON body. */
export function fakeFetch(
  routes: Record<string, (req: { url: URL; init: RequestInit }) => { status: number; body?: unknown }>,
  seen: { url: string; method: string; headers: Headers; body: string | undefined }[] = [],
): typeof fetch {
  return (async (input: string | URL | Request, init: RequestInit = {}) => {
    const url = new URL(String(input));
    const method = init.method ?? 'GET';
    seen.push({
      url: url.toString(),
      method,
      headers: new Headers(init.headers),
      body: init.body as string | undefined,
    });
    const handler = routes[`${method} ${url.pathname}`];
    if (!handler) {
      return new Response(
        JSON.stringify({
          error: { code: 'route_not_found', message: `no route for ${method} ${url.pathname}` },
        }),
        {
          status: 404,
        },
      );
    }
    const { status, body } = handler({ url, init });
    return new Response(body === undefined ? null : JSON.stringify(body), {
      status,
      headers: { 'content-type': 'application/json', 'x-request-id': 'req-1' },
    });
  }) as typeof fetch;
}
