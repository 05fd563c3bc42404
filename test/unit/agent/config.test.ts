import { join } from 'node:path';
import { generateSigningKeyPair } from '@flotilla/shared';
import { describe, expect, it } from 'vitest';
import { AgentConfigError, loadConfig, parseDuration } from '../../../agent/src/config.ts';
import {
  KubeConfigError,
  loadKubeConnection,
  tokenFromFile,
  tokenRereadMs,
} from '../../../agent/src/kube/connection.ts';
import { AgentMetrics } from '../../../agent/src/metrics.ts';

const { publicKeyPem } = generateSigningKeyPair();
const token = 'flt_edge-1.c2VjcmV0LXNlY3JldC1zZWNyZXQ';
const env = {
  FLOTILLA_HUB_URL: 'https://hub.example.com/',
  FLOTILLA_CLUSTER_ID: 'edge-1',
  FLOTILLA_TOKEN: token,
  FLOTILLA_HUB_PUBLIC_KEY: publicKeyPem,
  FLOTILLA_KUBECONFIG: '/etc/kubeconfig',
};

function problemsOf(
  e: Record<string, string | undefined>,
  files: Record<string, string> = {},
): readonly string[] {
  try {
    loadConfig(e, {
      readFile: (p) =>
        files[p] ??
        (() => {
          throw new Error(`ENOENT ${p}`);
        })(),
    });
  } catch (err) {
    if (err instanceof AgentConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('agent configuration', () => {
  it('reads a valid environment with defaults', () => {
    const c = loadConfig(env);
    expect(c.hubUrl).toBe('https://hub.example.com');
    expect(c.namespace).toBe('flotilla-system');
    expect(c.kube).toEqual({ kind: 'kubeconfig', path: '/etc/kubeconfig', context: undefined });
    expect(c.sqs).toBeUndefined();
    expect(c.intervals).toEqual({
      pollMs: 30_000,
      resyncMs: 300_000,
      driftMs: 60_000,
      heartbeatMs: 60_000,
      kubeVersionMs: 600_000,
      requeueMs: 10_000,
      recheckMs: 1_000,
      backoffMinMs: 1_000,
      backoffMaxMs: 300_000,
    });
    expect(c.http).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(c.applyConcurrency).toBe(16);
  });

  it('runs in the cluster without a kubeconfig, electing a leader by default', () => {
    const { FLOTILLA_KUBECONFIG: _, ...rest } = env;
    const c = loadConfig(
      { ...rest, KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' },
      { host: { hostname: 'node-a', pid: 7 } },
    );
    expect(c.kube).toEqual({
      kind: 'in-cluster',
      host: '10.0.0.1',
      port: '443',
      serviceAccountDir: '/var/run/secrets/kubernetes.io/serviceaccount',
    });
    expect(c.leaderElection).toEqual({ leaseName: 'flotilla-agent-leader', identity: 'node-a_7' });
  });

  it('takes the service-account directory, pod name and leader election from the environment', () => {
    const { FLOTILLA_KUBECONFIG: _, ...rest } = env;
    const inCluster = { ...rest, KUBERNETES_SERVICE_HOST: '10.0.0.1', FLOTILLA_SERVICE_ACCOUNT_DIR: '/sa' };
    const c = loadConfig({ ...inCluster, FLOTILLA_POD_NAME: 'flotilla-agent-5d8f-x2' });
    expect(c.kube).toMatchObject({ kind: 'in-cluster', serviceAccountDir: '/sa' });
    expect(c.leaderElection?.identity).toBe('flotilla-agent-5d8f-x2');
    expect(loadConfig({ ...inCluster, FLOTILLA_LEADER_ELECTION: 'false' }).leaderElection).toBeUndefined();
    // A developer's agent on a kubeconfig runs alone unless asked.
    expect(loadConfig(env).leaderElection).toBeUndefined();
    expect(loadConfig({ ...env, FLOTILLA_LEADER_ELECTION: 'true' }).leaderElection).toBeDefined();
    expect(problemsOf({ ...env, FLOTILLA_LEADER_ELECTION: 'yes' })).toEqual([
      'FLOTILLA_LEADER_ELECTION must be true or false, got "yes"',
    ]);
  });

  it('names every problem at once, and never shows the token', () => {
    const problems = problemsOf({
      FLOTILLA_HUB_URL: 'ftp://hub',
      FLOTILLA_CLUSTER_ID: 'Edge_1',
      FLOTILLA_TOKEN: 'flt_other.supersecretvalue',
      FLOTILLA_HUB_PUBLIC_KEY: 'not a key',
      FLOTILLA_DRIFT_INTERVAL: 'often',
      FLOTILLA_APPLY_CONCURRENCY: '0',
      FLOTILLA_HTTP_ADDR: 'localhost',
      FLOTILLA_SQS_QUEUE_URL: 'https://sqs.example.com/1/q',
      AWS_ACCESS_KEY_ID: 'AKIA',
    });
    expect(problems).toEqual([
      'FLOTILLA_HUB_URL must be an http(s) URL, got "ftp://hub"',
      'FLOTILLA_CLUSTER_ID must be a DNS label of at most 50 characters, got "Edge_1"',
      'FLOTILLA_TOKEN belongs to cluster "other", not to FLOTILLA_CLUSTER_ID "Edge_1"',
      'FLOTILLA_HUB_PUBLIC_KEY is not a PEM public key',
      'no Kubernetes API: set FLOTILLA_KUBECONFIG (or KUBECONFIG), or run in a pod',
      'FLOTILLA_SQS_REGION (or AWS_REGION) is required with FLOTILLA_SQS_QUEUE_URL',
      'AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together: set both or neither',
      'FLOTILLA_DRIFT_INTERVAL must be a duration such as 30s, 5m or 1h30m, got "often"',
      'FLOTILLA_APPLY_CONCURRENCY must be an integer from 1 to 256, got "0"',
      'FLOTILLA_HTTP_ADDR must be [host]:port or "off", got "localhost"',
    ]);
    expect(problems.join('\n')).not.toContain('supersecretvalue');
    expect(problemsOf({})).toEqual([
      'FLOTILLA_HUB_URL is required (the hub API base URL, e.g. https://hub.example.com)',
      'FLOTILLA_CLUSTER_ID is required (the name the cluster was registered under)',
      'FLOTILLA_TOKEN is required (or FLOTILLA_TOKEN_FILE: the token shown at registration)',
      'FLOTILLA_HUB_PUBLIC_KEY is required (or FLOTILLA_HUB_PUBLIC_KEY_FILE: the PEM from GET /v1/admin/public-key)',
      'no Kubernetes API: set FLOTILLA_KUBECONFIG (or KUBECONFIG), or run in a pod',
    ]);
  });

  it('takes credentials from a mounted Secret, the environment winning', () => {
    const dir = '/etc/flotilla';
    const c = loadConfig(
      {
        FLOTILLA_SECRET_DIR: dir,
        FLOTILLA_KUBECONFIG: '/k',
        FLOTILLA_CLUSTER_ID: 'edge-1',
        FLOTILLA_SQS_REGION: 'eu-west-1',
      },
      {
        readFile: (p) => {
          const files: Record<string, string> = {
            [join(dir, 'FLOTILLA_HUB_URL')]: 'https://hub.example.com\n',
            [join(dir, 'FLOTILLA_CLUSTER_ID')]: 'ignored',
            [join(dir, 'FLOTILLA_TOKEN')]: `${token}\n`,
            [join(dir, 'FLOTILLA_HUB_PUBLIC_KEY')]: publicKeyPem,
            [join(dir, 'FLOTILLA_SQS_QUEUE_URL')]:
              'https://sqs.eu-west-1.amazonaws.com/123456789012/flotilla-spoke-edge-1',
          };
          const v = files[p];
          if (v === undefined) throw new Error('ENOENT');
          return v;
        },
      },
    );
    expect(c.clusterId).toBe('edge-1');
    expect(c.token).toBe(token);
    expect(c.sqs).toEqual({
      queueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/flotilla-spoke-edge-1',
      region: 'eu-west-1',
      endpoint: undefined,
      credentials: undefined,
    });
  });

  it('reads durations as people write them', () => {
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('2')).toBe(2_000);
    expect(parseDuration('5 minutes')).toBeUndefined();
  });
});

describe('the connection to the API server', () => {
  const files = (map: Record<string, string>) => (path: string) => {
    const text = map[path];
    if (text === undefined) throw new Error(`ENOENT ${path}`);
    return Buffer.from(text);
  };

  it('in a pod: the token and CA of the service-account directory, the service host and port', async () => {
    const conn = await loadKubeConnection(
      { kind: 'in-cluster', host: '10.96.0.1', port: '443', serviceAccountDir: '/sa' },
      files({ '/sa/token': 'eyJ.token\n', '/sa/ca.crt': 'CA PEM' }),
    );
    expect(conn.server).toBe('https://10.96.0.1:443');
    expect(conn.tls.ca?.toString()).toBe('CA PEM');
    expect(conn.token?.()).toBe('eyJ.token');
  });

  it('in a pod without its token, fails at start naming the file', async () => {
    await expect(
      loadKubeConnection(
        { kind: 'in-cluster', host: 'fd00::1', port: '6443', serviceAccountDir: '/sa' },
        files({ '/sa/ca.crt': 'CA PEM' }),
      ),
    ).rejects.toThrow(new KubeConfigError('cannot read the token file /sa/token'));
  });

  it('picks up a rotated token within a minute, and keeps the old one while the file is being swapped', () => {
    let now = 0;
    const disk: Record<string, string> = { '/sa/token': 'first' };
    const token = tokenFromFile('/sa/token', files(disk), () => now);
    expect(token()).toBe('first');
    // The kubelet rewrites the token at 80% of its lifetime: at least two minutes before
    // the old one expires (TokenRequest tokens live 10 minutes or more).
    disk['/sa/token'] = 'second';
    now += tokenRereadMs - 1;
    expect(token()).toBe('first');
    now += 1;
    expect(token()).toBe('second');
    delete disk['/sa/token'];
    now += tokenRereadMs;
    expect(token()).toBe('second');
    expect(tokenRereadMs).toBeLessThan(0.2 * 600_000);
  });

  it('reads a kubeconfig with the yaml package: anchors, block scalars, flow sequences', async () => {
    const kubeconfig = `# written by hand
apiVersion: v1
kind: Config
clusters:
  - name: a
    cluster: &cluster
      server: "https://a.example.com:443"
      certificate-authority-data: Q0EgUEVN
  - name: b
    cluster: *cluster
users:
  - name: a
    user:
      token: |-
        abc:def
contexts: [{ name: a, context: { cluster: b, user: a } }]
current-context: a
`;
    const conn = await loadKubeConnection(
      { kind: 'kubeconfig', path: '/k/config' },
      files({ '/k/config': kubeconfig }),
    );
    expect(conn.server).toBe('https://a.example.com:443');
    expect(conn.tls.ca?.toString()).toBe('CA PEM');
    expect(conn.token?.()).toBe('abc:def');
    expect(conn.description).toBe('/k/config (context a)');
  });

  it('refuses a kubeconfig that is not YAML, or whose user runs a plugin', async () => {
    await expect(
      loadKubeConnection({ kind: 'kubeconfig', path: '/k/bad' }, files({ '/k/bad': 'a: [1, 2\n' })),
    ).rejects.toThrow(new KubeConfigError('/k/bad is not valid YAML'));
    const exec = `clusters: [{name: c, cluster: {server: "https://c"}}]
users: [{name: u, user: {exec: {command: aws}}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`;
    await expect(
      loadKubeConnection({ kind: 'kubeconfig', path: '/k/exec' }, files({ '/k/exec': exec })),
    ).rejects.toThrow(/authenticates with an exec or auth-provider plugin/);
  });
});

describe('metrics', () => {
  it('renders the Prometheus text format', () => {
    const m = new AgentMetrics();
    m.reconciles.inc({ trigger: 'sync', result: 'success' });
    m.reconcileDuration.observe(0.3);
    m.driftEvents.inc({ bundle: 'web "x"', action: 'corrected' });
    const text = m.render();
    expect(text).toContain('# TYPE flotilla_agent_reconciles_total counter');
    expect(text).toContain('flotilla_agent_reconciles_total{trigger="sync",result="success"} 1');
    expect(text).toContain('flotilla_agent_reconcile_duration_seconds_bucket{le="0.5"} 1');
    expect(text).toContain('flotilla_agent_reconcile_duration_seconds_bucket{le="0.25"} 0');
    expect(text).toContain('flotilla_agent_reconcile_duration_seconds_count 1');
    expect(text).toContain('flotilla_agent_drift_events_total{bundle="web \\"x\\"",action="corrected"} 1');
    expect(text).toMatch(/^process_resident_memory_bytes \d+$/m);
  });
});
