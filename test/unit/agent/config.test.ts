import { join } from 'node:path';
import { generateSigningKeyPair } from '@flotilla/shared';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { AgentConfigError, loadConfig, parseDuration } from '../../../agent/src/config.ts';
import { parseSimpleYaml, UnsupportedYamlError } from '../../../agent/src/kube/simple-yaml.ts';
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
      requeueMs: 10_000,
      recheckMs: 1_000,
      backoffMinMs: 1_000,
      backoffMaxMs: 300_000,
    });
    expect(c.http).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(c.applyConcurrency).toBe(16);
  });

  it('runs in the cluster without a kubeconfig', () => {
    const { FLOTILLA_KUBECONFIG: _, ...rest } = env;
    const c = loadConfig({ ...rest, KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' });
    expect(c.kube).toEqual({ kind: 'in-cluster', host: '10.0.0.1', port: '443' });
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

describe('the simple YAML reader for kubeconfigs', () => {
  const kubeconfigs = [
    `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTg==
    server: https://127.0.0.1:6443 # a comment
  name: kind-kind
contexts:
- context:
    cluster: kind-kind
    namespace: "team-a"
    user: kind-kind
  name: kind-kind
current-context: kind-kind
kind: Config
preferences: {}
users:
- name: kind-kind
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      args:
      - --region
      - eu-west-1
      - 'it''s'
      command: aws
      env: null
      provideClusterInfo: false
`,
    `# written by hand
apiVersion: v1
kind: Config
clusters:
  - name: a
    cluster:
      server: "https://a.example.com:443"
      insecure-skip-tls-verify: true
users:
  - name: a
    user:
      token: abc:def
contexts:
  - name: a
    context: { }
current-context: a
`.replace('{ }', '{}'),
  ];

  it('reads kubeconfigs exactly as a full YAML parser does', () => {
    for (const text of kubeconfigs) expect(parseSimpleYaml(text)).toEqual(parse(text));
  });

  it('refuses what it does not understand, so the full parser takes over', () => {
    expect(() => parseSimpleYaml('a: &x 1\nb: *x\n')).toThrow(UnsupportedYamlError);
    expect(() => parseSimpleYaml('a: |\n  text\n')).toThrow(UnsupportedYamlError);
    expect(() => parseSimpleYaml('a: [1, 2]\n')).toThrow(UnsupportedYamlError);
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
