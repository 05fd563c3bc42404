import { describe, expect, it } from 'vitest';
import { loadConfig as loadAgentConfig } from '../../../agent/src/config.ts';
import {
  type BootstrapOptions,
  bootstrap,
  notificationSettings,
} from '../../../cli/src/bootstrap/bootstrap.ts';
import {
  agentManifests,
  agentNames,
  agentSecretData,
  secretChecksum,
} from '../../../cli/src/bootstrap/manifests.ts';
import { runCli } from '../../../cli/src/cli.ts';
import { CliError } from '../../../cli/src/core/errors.ts';
import { ExitCode } from '../../../cli/src/core/exit-codes.ts';
import { captureIo, FakeHub, FakeLocalAgents, FakeSpoke, publicKey } from './fakes.ts';

const options = (over: Partial<BootstrapOptions> = {}): BootstrapOptions => ({
  cluster: 'edge-1',
  labels: { env: 'edge' },
  namespace: agentNames.namespace,
  image: 'flotilla-agent:test',
  agentHubUrl: 'https://hub.example.com',
  notify: 'auto',
  runAgent: 'none',
  wait: true,
  timeoutMs: 10_000,
  pollMs: 1,
  ...over,
});

function setup() {
  const hub = new FakeHub();
  const kube = new FakeSpoke();
  const localAgents = new FakeLocalAgents();
  const progress: string[] = [];
  let clock = Date.parse('2024-05-01T12:00:00Z');
  const ports = {
    hub,
    kube,
    localAgents,
    progress: (l: string) => progress.push(l),
    now: () => new Date(clock),
    sleep: async (ms: number) => {
      clock += ms;
    },
  };
  return { hub, kube, localAgents, progress, ports };
}

async function failure(p: Promise<unknown>): Promise<CliError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof CliError) return err;
    throw err;
  }
  throw new Error('expected a CliError');
}

describe('bootstrap (fakes for hub, cluster and local agents)', () => {
  it('registers, installs namespace, RBAC, Secret and Deployment in order, and waits for the heartbeat', async () => {
    const { hub, kube, ports } = setup();
    const result = await bootstrap(ports, options());
    expect(result.registration).toBe('registered');
    expect(result.via).toBe('admin');
    expect(kube.applied).toEqual([
      'Namespace//flotilla-system',
      'Secret/flotilla-system/flotilla-agent',
      'ServiceAccount/flotilla-system/flotilla-agent',
      'ClusterRole//flotilla-agent:flotilla-system',
      'ClusterRoleBinding//flotilla-agent:flotilla-system',
      'Role/flotilla-system/flotilla-agent-leader-election',
      'RoleBinding/flotilla-system/flotilla-agent-leader-election',
      'Deployment/flotilla-system/flotilla-agent',
    ]);
    expect(result.objects.every((o) => o.result === 'created')).toBe(true);
    const secret = await kube.readSecret('flotilla-system', 'flotilla-agent');
    expect(secret?.FLOTILLA_TOKEN).toBe(hub.clusters.get('edge-1')?.token);
    expect(secret?.FLOTILLA_HUB_PUBLIC_KEY).toBe(publicKey.publicKeyPem);
    expect(secret?.FLOTILLA_HUB_URL).toBe('https://hub.example.com');
    // A local queue: SQS with its endpoint; credentials are placeholders ElasticMQ ignores.
    expect(secret?.FLOTILLA_SQS_QUEUE_URL).toMatch(/flotilla-spoke-edge-1$/);
    expect(secret?.FLOTILLA_SQS_ENDPOINT).toBe('http://127.0.0.1:9324');
    expect(result.heartbeat?.agentVersion).toBe('0.1.0');
    expect(JSON.stringify(result)).not.toContain(secret?.FLOTILLA_TOKEN ?? 'x');
  });

  it('is idempotent: a rerun checks the token with the hub, registers nothing and changes nothing', async () => {
    const { hub, kube, ports } = setup();
    await bootstrap(ports, options());
    const before = structuredClone([...kube.objects]);
    hub.calls.length = 0;
    const again = await bootstrap(ports, options());
    expect(again.registration).toBe('unchanged');
    expect(again.via).toBe('existing-token');
    expect(again.objects.every((o) => o.result === 'unchanged')).toBe(true);
    expect([...kube.objects]).toEqual(before);
    expect(hub.calls.filter((c) => /register|rotate/.test(c))).toEqual([]);
    expect(hub.clusters.size).toBe(1);
  });

  it('rotates a token the hub no longer accepts, and re-registers a cluster the hub removed', async () => {
    const { hub, kube, ports } = setup();
    await bootstrap(ports, options());
    await hub.rotateClusterToken('edge-1'); // an admin rotated without updating the cluster
    const rotated = await bootstrap(ports, options());
    expect(rotated.registration).toBe('token-rotated');
    expect((await kube.readSecret('flotilla-system', 'flotilla-agent'))?.FLOTILLA_TOKEN).toBe(
      hub.clusters.get('edge-1')?.token,
    );
    await hub.deregisterCluster('edge-1');
    const back = await bootstrap(ports, options());
    expect(back.registration).toBe('re-registered');
    expect(hub.clusters.size).toBe(1);
  });

  it('refuses a name another cluster holds, before writing anything; --take-over rotates it', async () => {
    const { hub, ports } = setup();
    await bootstrap(ports, options());
    const other = new FakeSpoke('spoke-2');
    const err = await failure(bootstrap({ ...ports, kube: other }, options()));
    expect(err.exitCode).toBe(ExitCode.Conflict);
    expect(err.message).toMatch(/"edge-1" is already registered at the hub by another cluster/);
    expect(err.hint).toMatch(/--take-over/);
    expect(other.applied).toEqual([]);
    const taken = await bootstrap({ ...ports, kube: other }, options({ takeOver: true }));
    expect(taken.registration).toBe('token-rotated');
    expect((await other.readSecret('flotilla-system', 'flotilla-agent'))?.FLOTILLA_TOKEN).toBe(
      hub.clusters.get('edge-1')?.token,
    );
  });

  it('refuses to give a cluster a second name', async () => {
    const { kube, ports } = setup();
    await bootstrap(ports, options());
    const err = await failure(bootstrap(ports, options({ cluster: 'edge-2' })));
    expect(err.exitCode).toBe(ExitCode.Conflict);
    expect(err.message).toMatch(/already bootstrapped as cluster "edge-1"/);
    expect(kube.applied.filter((k) => k.includes('edge-2'))).toEqual([]);
  });

  it('registers with a registration token (no admin), whose labels it gets; a used token is refused', async () => {
    const { hub, ports } = setup();
    hub.hasAdmin = false;
    hub.registrationTokens.set('frt_one', { used: false, labels: { site: 'berlin' } });
    const result = await bootstrap(ports, options({ registrationToken: 'frt_one' }));
    expect(result.via).toBe('registration-token');
    expect(result.labels).toEqual({ env: 'edge', site: 'berlin' });
    const err = await failure(
      bootstrap(
        { ...ports, kube: new FakeSpoke('spoke-2') },
        options({ cluster: 'edge-2', registrationToken: 'frt_one' }),
      ),
    );
    expect(err.exitCode).toBe(ExitCode.Unauthorized);
    expect(err.message).toMatch(/already used/);
    const none = await failure(
      bootstrap({ ...ports, kube: new FakeSpoke('spoke-3') }, options({ cluster: 'edge-3' })),
    );
    expect(none.exitCode).toBe(ExitCode.Config);
    expect(none.hint).toMatch(/--registration-token/);
  });

  it('rolls a fresh registration back when the Secret cannot be written', async () => {
    const { hub, kube, ports } = setup();
    kube.failOn = 'Secret';
    await expect(bootstrap(ports, options())).rejects.toThrow(/apply Secret/);
    expect(hub.clusters.size).toBe(0);
    expect(hub.calls).toContain('deregisterCluster edge-1');
  });

  it('times out with exit 8 and says where the agent logs are', async () => {
    const { hub, ports } = setup();
    hub.heartbeat = undefined;
    const err = await failure(bootstrap(ports, options({ timeoutMs: 5_000, pollMs: 1000 })));
    expect(err.exitCode).toBe(ExitCode.Timeout);
    expect(err.message).toMatch(
      /no heartbeat from the agent of "edge-1" within 5s; everything else is installed/,
    );
    expect(err.hint).toMatch(/kubectl --context spoke-1 -n flotilla-system logs deploy\/flotilla-agent/);
  });

  it('starts a local agent with the Secret as its configuration, and keeps it on a rerun', async () => {
    const { localAgents, kube, ports } = setup();
    const first = await bootstrap(ports, options({ runAgent: 'local' }));
    expect(first.agent).toMatchObject({ mode: 'local', started: true });
    const record = localAgents.records.get('edge-1');
    expect(record?.secret).toEqual(await kube.readSecret('flotilla-system', 'flotilla-agent'));
    // The kubeconfig only reaches the pod (for TokenRequest); the agent runs as the service account.
    expect(record?.pod).toEqual({
      kubeconfig: '/tmp/kubeconfig',
      context: 'spoke-1',
      namespace: 'flotilla-system',
      serviceAccount: 'flotilla-agent',
    });
    expect(Object.keys(record?.env ?? {}).filter((k) => /KUBE/.test(k))).toEqual([]);
    const again = await bootstrap(ports, options({ runAgent: 'local' }));
    expect(again.agent).toMatchObject({ mode: 'local', started: false, pid: record?.pid });
  });

  it('sets labels given on a rerun (admin), never removing any', async () => {
    const { hub, ports } = setup();
    await bootstrap(ports, options({ labels: { env: 'edge', site: 'a' } }));
    const again = await bootstrap(ports, options({ labels: { tier: 'gold' } }));
    expect(again.labelsUpdated).toBe(true);
    expect(hub.clusters.get('edge-1')?.view.labels).toEqual({ env: 'edge', site: 'a', tier: 'gold' });
  });
});

describe('notifications', () => {
  it('uses local queues directly, polls in AWS unless asked for SQS, and polls with --notify poll', () => {
    expect(notificationSettings({ notify: 'auto' }, 'http://127.0.0.1:9324/000000000000/q').settings).toEqual(
      {
        queueUrl: 'http://127.0.0.1:9324/000000000000/q',
        region: 'us-east-1',
        endpoint: 'http://127.0.0.1:9324',
        localCredentials: true,
      },
    );
    const aws = 'https://sqs.eu-west-1.amazonaws.com/123456789012/flotilla-spoke-x';
    expect(notificationSettings({ notify: 'auto' }, aws).settings).toBeUndefined();
    expect(notificationSettings({ notify: 'sqs' }, aws).settings).toEqual({
      queueUrl: aws,
      region: 'eu-west-1',
    });
    expect(notificationSettings({ notify: 'poll' }, 'http://127.0.0.1:9324/q').settings).toBeUndefined();
    expect(() => notificationSettings({ notify: 'sqs' }, null)).toThrow(/no queue/);
  });
});

describe('what bootstrap installs', () => {
  const secretData = agentSecretData({
    clusterId: 'edge-1',
    hubUrl: 'https://hub.example.com',
    token: 'flt_edge-1.abc',
    hubPublicKeyPem: publicKey.publicKeyPem,
    sqs: {
      queueUrl: 'http://127.0.0.1:9324/000000000000/q',
      region: 'eu-west-1',
      endpoint: 'http://127.0.0.1:9324',
      localCredentials: true,
    },
  });

  it('writes a Secret the agent reads as its configuration (agent/src/config.ts)', () => {
    const dir = '/etc/flotilla/secret';
    const config = loadAgentConfig(
      { FLOTILLA_SECRET_DIR: dir, FLOTILLA_KUBECONFIG: '/tmp/kubeconfig' },
      {
        readFile: (path) => {
          const key = path.slice(dir.length + 1);
          const value = secretData[key];
          if (value === undefined) throw new Error(`ENOENT ${path}`);
          return value;
        },
      },
    );
    expect(config.clusterId).toBe('edge-1');
    expect(config.token).toBe('flt_edge-1.abc');
    expect(config.hubUrl).toBe('https://hub.example.com');
    expect(config.hubPublicKey.asymmetricKeyType).toBe('ed25519');
    expect(config.sqs).toMatchObject({
      queueUrl: 'http://127.0.0.1:9324/000000000000/q',
      endpoint: 'http://127.0.0.1:9324',
    });
  });

  it('is deterministic, mounts the Secret where FLOTILLA_SECRET_DIR points, and rolls the agent when the Secret changes', () => {
    const a = agentManifests({ clusterId: 'edge-1', namespace: 'flotilla-system', image: 'img', secretData });
    const b = agentManifests({
      clusterId: 'edge-1',
      namespace: 'flotilla-system',
      image: 'img',
      secretData: { ...secretData },
    });
    expect(a).toEqual(b);
    const deployment = a.find((o) => o.kind === 'Deployment') as unknown as {
      spec: {
        template: {
          metadata: { annotations: Record<string, string> };
          spec: {
            containers: { env: { name: string; value?: string }[]; volumeMounts: { mountPath: string }[] }[];
          };
        };
      };
    };
    const container = deployment.spec.template.spec.containers[0];
    expect(container?.env.find((e) => e.name === 'FLOTILLA_SECRET_DIR')?.value).toBe(
      container?.volumeMounts[0]?.mountPath,
    );
    expect(deployment.spec.template.metadata.annotations['flotilla.dev/secret-checksum']).toBe(
      secretChecksum(secretData),
    );
    expect(secretChecksum({ ...secretData, FLOTILLA_TOKEN: 'flt_edge-1.new' })).not.toBe(
      secretChecksum(secretData),
    );
    // Two agents in one cluster (two namespaces) never share cluster-wide RBAC.
    const other = agentManifests({
      clusterId: 'edge-2',
      namespace: 'flotilla-two',
      image: 'img',
      secretData,
    });
    const names = (objs: typeof a) =>
      objs.filter((o) => o.kind.startsWith('Cluster')).map((o) => o.metadata.name);
    expect(names(a)).toEqual(['flotilla-agent:flotilla-system', 'flotilla-agent:flotilla-system']);
    expect(names(other)).toEqual(['flotilla-agent:flotilla-two', 'flotilla-agent:flotilla-two']);
  });
});

describe('bootstrap on the command line', () => {
  it('prints what it did as a table, or the whole result as JSON', async () => {
    const hub = new FakeHub();
    const kube = new FakeSpoke();
    const seen: unknown[] = [];
    const io = captureIo({ FLOTILLA_HUB_URL: 'https://hub.example.com', FLOTILLA_ADMIN_KEY: 'adm_x' });
    // The command builds its own HubClient; route its calls to the fake through fetch.
    const fetch = (async (input: string | URL, init: RequestInit = {}) => {
      const url = new URL(String(input));
      const body = init.body ? JSON.parse(String(init.body)) : undefined;
      seen.push(`${init.method} ${url.pathname}`);
      const reply = (status: number, value: unknown) => new Response(JSON.stringify(value), { status });
      if (init.method === 'POST' && url.pathname === '/v1/admin/clusters')
        return reply(201, await hub.registerCluster(body.name, body.labels));
      if (url.pathname === '/v1/admin/public-key') return reply(200, publicKey);
      if (url.pathname === '/v1/clusters/edge-1') {
        const own = await hub.ownCluster(
          'edge-1',
          new Headers(init.headers).get('authorization')?.slice(7) ?? '',
        );
        return own ? reply(200, own) : reply(401, { error: { code: 'unauthenticated', message: 'no' } });
      }
      if (url.pathname === '/v1/admin/clusters/edge-1') {
        const c = await hub.getCluster('edge-1');
        return c
          ? reply(200, { cluster: c })
          : reply(404, { error: { code: 'not_found', message: 'cluster "edge-1" not found' } });
      }
      return reply(404, { error: { code: 'route_not_found', message: `no route ${url.pathname}` } });
    }) as typeof globalThis.fetch;
    const code = await runCli(['bootstrap', 'edge-1', '--label', 'env=edge', '--timeout', '10s'], io, {
      fetch,
      openSpoke: () => kube,
      sleep: async () => undefined,
    });
    expect(code, io.stderrText()).toBe(0);
    expect(io.stdoutText()).toMatch(/^cluster "edge-1" bootstrapped \(context spoke-1, Kubernetes v1.37.2\)/);
    expect(io.stdoutText()).toMatch(/Secret\/flotilla-system\/flotilla-agent\s+created/);
    expect(io.stderrText()).toMatch(/waiting for the agent's first heartbeat/);
    expect(io.stdoutText() + io.stderrText()).not.toContain(hub.clusters.get('edge-1')?.token ?? 'x');

    const json = captureIo({ FLOTILLA_HUB_URL: 'https://hub.example.com', FLOTILLA_ADMIN_KEY: 'adm_x' });
    expect(
      await runCli(['bootstrap', 'edge-1', '-o', 'json', '-q', '--no-wait'], json, {
        fetch,
        openSpoke: () => kube,
      }),
    ).toBe(0);
    expect(JSON.parse(json.stdoutText())).toMatchObject({ cluster: 'edge-1', heartbeat: null });
    expect(json.stderrText()).toBe('');
  });
});

describe('cluster remove --uninstall', () => {
  const env = { FLOTILLA_HUB_URL: 'https://hub.example.com', FLOTILLA_ADMIN_KEY: 'adm_x' };
  const fetch = (async () => new Response(null, { status: 204 })) as unknown as typeof globalThis.fetch;

  async function installed(cluster: string) {
    const kube = new FakeSpoke();
    const hub = new FakeHub();
    await bootstrap(
      { hub, kube, progress: () => undefined, now: () => new Date(), sleep: async () => undefined },
      options({ cluster, wait: false }),
    );
    return kube;
  }

  it('deletes the agent where its Secret names the cluster, and stops its local agent', async () => {
    const kube = await installed('edge-1');
    const agents = new FakeLocalAgents();
    await agents.ensure('edge-1', {
      secret: {},
      env: {},
      pod: { kubeconfig: '/k', context: 'c', namespace: 'flotilla-system', serviceAccount: 'flotilla-agent' },
    });
    const io = captureIo(env);
    const code = await runCli(['cluster', 'remove', 'edge-1', '--uninstall', '-o', 'json'], io, {
      fetch,
      openSpoke: () => kube,
      localAgents: () => agents,
    });
    expect(code, io.stderrText()).toBe(0);
    expect(JSON.parse(io.stdoutText()).objects.map((o: { object: string }) => o.object)).toEqual([
      'Deployment/flotilla-system/flotilla-agent',
      'ClusterRoleBinding/flotilla-agent:flotilla-system',
      'ClusterRole/flotilla-agent:flotilla-system',
      'Namespace/flotilla-system',
    ]);
    expect(agents.records.size).toBe(0);
  });

  it('refuses where the agent belongs to another cluster, and deletes nothing where there is none', async () => {
    const kube = await installed('edge-2');
    const io = captureIo(env);
    expect(
      await runCli(['cluster', 'remove', 'edge-1', '--uninstall'], io, { fetch, openSpoke: () => kube }),
    ).toBe(ExitCode.Conflict);
    expect(io.stderrText()).toMatch(/runs the agent of cluster "edge-2", not "edge-1"/);
    const empty = new FakeSpoke();
    empty.objects.set('Namespace//flotilla-system', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'flotilla-system' },
    });
    const quiet = captureIo(env);
    const code = await runCli(['cluster', 'remove', 'edge-1', '--uninstall', '-o', 'json'], quiet, {
      fetch,
      openSpoke: () => empty,
      localAgents: () => new FakeLocalAgents(),
    });
    expect(code).toBe(0);
    expect(JSON.parse(quiet.stdoutText())).toMatchObject({
      deregistered: true,
      uninstalled: false,
      objects: [],
    });
    expect(empty.objects.size).toBe(1);
    expect(quiet.stderrText()).toMatch(/nothing uninstalled there/);
  });
});
