import { createPublicKey, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { readFileSync } from './builtins.ts';
import type { KubeSource } from './kube/connection.ts';
import type { LogLevel } from './log.ts';
import type { AgentIntervals } from './reconcile/agent.ts';

/** Everything the agent reads from its environment (and its mounted Secret), validated once at start. */
export interface AgentConfig {
  /** Base URL of the hub API, without a trailing slash. */
  readonly hubUrl: string;
  readonly clusterId: string;
  /** The cluster's bearer token. Never logged. */
  readonly token: string;
  /** The hub's Ed25519 public key, pinned at bootstrap. */
  readonly hubPublicKey: KeyObject;
  /** The agent's own namespace: inventories and the desired-state cache live there. */
  readonly namespace: string;
  readonly kube: KubeSource;
  readonly sqs:
    | {
        readonly queueUrl: string;
        readonly region: string;
        readonly endpoint: string | undefined;
        readonly credentials:
          | {
              readonly accessKeyId: string;
              readonly secretAccessKey: string;
              readonly sessionToken: string | undefined;
            }
          | undefined;
      }
    | undefined;
  readonly intervals: AgentIntervals;
  readonly hubTimeoutMs: number;
  /** Concurrent requests to the API server. */
  readonly applyConcurrency: number;
  /** Where `/healthz`, `/readyz` and `/metrics` listen; undefined when switched off. */
  readonly http: { readonly host: string; readonly port: number } | undefined;
  readonly logLevel: LogLevel;
  /**
   * Leader election among the agent's replicas, on a Lease in its namespace; undefined
   * when switched off (one replica applies by itself).
   */
  readonly leaderElection: { readonly leaseName: string; readonly identity: string } | undefined;
}

export class AgentConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`invalid agent configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'AgentConfigError';
    this.problems = problems;
  }
}

type Env = Readonly<Record<string, string | undefined>>;

export interface LoadConfigOptions {
  /** Reads a file as text; `readFileSync` by default. Throws when the file is missing. */
  readonly readFile?: (path: string) => string;
  /** This machine's name and this process's id: the leader-election identity without FLOTILLA_POD_NAME. */
  readonly host?: { readonly hostname: string; readonly pid: number };
}

/** Where the kubelet mounts a pod's service-account token and the cluster's CA. */
export const defaultServiceAccountDir = '/var/run/secrets/kubernetes.io/serviceaccount';

/** The Lease the agent's replicas elect their leader on, in the agent's namespace (RBAC names it). */
export const leaderLeaseName = 'flotilla-agent-leader';

/** Every variable the agent reads, with its default (for the docs and the error messages). */
export const configVariables = [
  'FLOTILLA_HUB_URL',
  'FLOTILLA_CLUSTER_ID',
  'FLOTILLA_TOKEN',
  'FLOTILLA_TOKEN_FILE',
  'FLOTILLA_HUB_PUBLIC_KEY',
  'FLOTILLA_HUB_PUBLIC_KEY_FILE',
  'FLOTILLA_SECRET_DIR',
  'FLOTILLA_NAMESPACE',
  'FLOTILLA_KUBECONFIG',
  'FLOTILLA_KUBE_CONTEXT',
  'KUBECONFIG',
  'KUBERNETES_SERVICE_HOST',
  'KUBERNETES_SERVICE_PORT',
  'FLOTILLA_SERVICE_ACCOUNT_DIR',
  'FLOTILLA_LEADER_ELECTION',
  'FLOTILLA_POD_NAME',
  'FLOTILLA_SQS_QUEUE_URL',
  'FLOTILLA_SQS_REGION',
  'FLOTILLA_SQS_ENDPOINT',
  'AWS_REGION',
  'AWS_DEFAULT_REGION',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'FLOTILLA_POLL_INTERVAL',
  'FLOTILLA_RESYNC_INTERVAL',
  'FLOTILLA_DRIFT_INTERVAL',
  'FLOTILLA_HEARTBEAT_INTERVAL',
  'FLOTILLA_KUBE_VERSION_INTERVAL',
  'FLOTILLA_REQUEUE_INTERVAL',
  'FLOTILLA_RECHECK_INTERVAL',
  'FLOTILLA_HUB_TIMEOUT',
  'FLOTILLA_BACKOFF_MIN',
  'FLOTILLA_BACKOFF_MAX',
  'FLOTILLA_APPLY_CONCURRENCY',
  'FLOTILLA_HTTP_ADDR',
  'FLOTILLA_LOG_LEVEL',
] as const;

/** Variables that may come from files in FLOTILLA_SECRET_DIR (a mounted Secret, one key per variable). */
const secretVariables = [
  'FLOTILLA_HUB_URL',
  'FLOTILLA_CLUSTER_ID',
  'FLOTILLA_TOKEN',
  'FLOTILLA_HUB_PUBLIC_KEY',
  'FLOTILLA_SQS_QUEUE_URL',
  'FLOTILLA_SQS_REGION',
  'FLOTILLA_SQS_ENDPOINT',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
];

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `250ms`, `30s`, `5m`, `1h`, `1m30s`, or a plain number of seconds. Undefined when it does not parse. */
export function parseDuration(text: string): number | undefined {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000);
  const parts = [...t.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== t) return undefined;
  return Math.round(parts.reduce((sum, p) => sum + Number(p[1]) * (units[p[2] as string] as number), 0));
}

const clusterName = /^[a-z0-9]([-a-z0-9]{0,48}[a-z0-9])?$/;

/**
 * Reads and validates the agent's configuration from the environment and, for what
 * `FLOTILLA_SECRET_DIR` holds, from files (a mounted Secret whose keys are the variable
 * names; a variable set in the environment wins). Every problem is reported at once,
 * naming the variable; the token's value never appears in a message.
 *
 * @throws {AgentConfigError} listing every problem.
 * @example
 * const config = loadConfig(process.env);
 */
export function loadConfig(env: Env, opts: LoadConfigOptions = {}): AgentConfig {
  const readFile = opts.readFile ?? ((path: string) => readFileSync(path, 'utf8'));
  const problems: string[] = [];
  const secretDir = env.FLOTILLA_SECRET_DIR?.trim() || undefined;
  const fromSecret = new Map<string, string>();
  if (secretDir) {
    for (const name of secretVariables) {
      try {
        fromSecret.set(name, readFile(join(secretDir, name)));
      } catch {
        // Keys the Secret does not have are simply not set.
      }
    }
  }
  const get = (name: string): string | undefined => {
    const v = env[name] ?? fromSecret.get(name);
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const fileOr = (name: string, fileVar: string): string | undefined => {
    const direct = get(name);
    if (direct !== undefined) return direct;
    const path = get(fileVar);
    if (path === undefined) return undefined;
    try {
      return readFile(path).trim() || undefined;
    } catch {
      problems.push(`${fileVar}: cannot read ${path}`);
      return undefined;
    }
  };
  const required = (name: string, value: string | undefined, hint: string): string => {
    if (value === undefined) problems.push(`${name} is required (${hint})`);
    return value ?? '';
  };
  const duration = (name: string, fallback: string, min: number): number => {
    const text = get(name) ?? fallback;
    const ms = parseDuration(text);
    if (ms === undefined) {
      problems.push(`${name} must be a duration such as 30s, 5m or 1h30m, got "${text}"`);
      return parseDuration(fallback) as number;
    }
    if (ms < min) problems.push(`${name} must be at least ${min} ms, got "${text}"`);
    return ms;
  };

  let hubUrl = required(
    'FLOTILLA_HUB_URL',
    get('FLOTILLA_HUB_URL'),
    'the hub API base URL, e.g. https://hub.example.com',
  );
  if (hubUrl) {
    if (!URL.canParse(hubUrl) || !/^https?:$/.test(new URL(hubUrl).protocol)) {
      problems.push(`FLOTILLA_HUB_URL must be an http(s) URL, got "${hubUrl}"`);
    }
    hubUrl = hubUrl.replace(/\/+$/, '');
  }
  const clusterId = required(
    'FLOTILLA_CLUSTER_ID',
    get('FLOTILLA_CLUSTER_ID'),
    'the name the cluster was registered under',
  );
  if (clusterId && !clusterName.test(clusterId)) {
    problems.push(`FLOTILLA_CLUSTER_ID must be a DNS label of at most 50 characters, got "${clusterId}"`);
  }
  const token = required(
    'FLOTILLA_TOKEN',
    fileOr('FLOTILLA_TOKEN', 'FLOTILLA_TOKEN_FILE'),
    'or FLOTILLA_TOKEN_FILE: the token shown at registration',
  );
  if (token && clusterId) {
    const match = /^flt_([a-z0-9-]+)\./.exec(token);
    if (!match) problems.push('FLOTILLA_TOKEN does not look like a cluster token (flt_<cluster>.<secret>)');
    else if (match[1] !== clusterId) {
      problems.push(
        `FLOTILLA_TOKEN belongs to cluster "${match[1]}", not to FLOTILLA_CLUSTER_ID "${clusterId}"`,
      );
    }
  }
  const keyPem = required(
    'FLOTILLA_HUB_PUBLIC_KEY',
    fileOr('FLOTILLA_HUB_PUBLIC_KEY', 'FLOTILLA_HUB_PUBLIC_KEY_FILE'),
    'or FLOTILLA_HUB_PUBLIC_KEY_FILE: the PEM from GET /v1/admin/public-key',
  );
  let hubPublicKey: KeyObject | undefined;
  if (keyPem) {
    try {
      hubPublicKey = createPublicKey(keyPem.replace(/\\n/g, '\n'));
      if (hubPublicKey.asymmetricKeyType !== 'ed25519') {
        problems.push(
          `FLOTILLA_HUB_PUBLIC_KEY must be an Ed25519 key, got ${hubPublicKey.asymmetricKeyType}`,
        );
      }
    } catch {
      problems.push('FLOTILLA_HUB_PUBLIC_KEY is not a PEM public key');
    }
  }

  const namespace = get('FLOTILLA_NAMESPACE') ?? 'flotilla-system';
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(namespace)) {
    problems.push(`FLOTILLA_NAMESPACE must be a namespace name, got "${namespace}"`);
  }

  const kubeconfig = get('FLOTILLA_KUBECONFIG') ?? get('KUBECONFIG')?.split(':')[0];
  const serviceHost = get('KUBERNETES_SERVICE_HOST');
  let kube: KubeSource;
  if (kubeconfig) kube = { kind: 'kubeconfig', path: kubeconfig, context: get('FLOTILLA_KUBE_CONTEXT') };
  else if (serviceHost)
    kube = {
      kind: 'in-cluster',
      host: serviceHost,
      port: get('KUBERNETES_SERVICE_PORT') ?? '443',
      serviceAccountDir: get('FLOTILLA_SERVICE_ACCOUNT_DIR') ?? defaultServiceAccountDir,
    };
  else {
    problems.push('no Kubernetes API: set FLOTILLA_KUBECONFIG (or KUBECONFIG), or run in a pod');
    kube = { kind: 'kubeconfig', path: '' };
  }

  let sqs: AgentConfig['sqs'];
  const queueUrl = get('FLOTILLA_SQS_QUEUE_URL');
  if (queueUrl) {
    if (!URL.canParse(queueUrl)) problems.push(`FLOTILLA_SQS_QUEUE_URL is not a URL: "${queueUrl}"`);
    const fromUrl = URL.canParse(queueUrl)
      ? /^sqs\.([a-z0-9-]+)\.amazonaws\.com/.exec(new URL(queueUrl).host)?.[1]
      : undefined;
    const region = get('FLOTILLA_SQS_REGION') ?? get('AWS_REGION') ?? get('AWS_DEFAULT_REGION') ?? fromUrl;
    if (!region) problems.push('FLOTILLA_SQS_REGION (or AWS_REGION) is required with FLOTILLA_SQS_QUEUE_URL');
    const endpoint = get('FLOTILLA_SQS_ENDPOINT');
    if (endpoint && !URL.canParse(endpoint))
      problems.push(`FLOTILLA_SQS_ENDPOINT is not a URL: "${endpoint}"`);
    const accessKeyId = get('AWS_ACCESS_KEY_ID');
    const secretAccessKey = get('AWS_SECRET_ACCESS_KEY');
    if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
      problems.push('AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together: set both or neither');
    }
    sqs = {
      queueUrl,
      region: region ?? '',
      endpoint,
      credentials:
        accessKeyId && secretAccessKey
          ? { accessKeyId, secretAccessKey, sessionToken: get('AWS_SESSION_TOKEN') }
          : undefined,
    };
  }

  const intervals: AgentIntervals = {
    pollMs: duration('FLOTILLA_POLL_INTERVAL', '30s', 1_000),
    resyncMs: duration('FLOTILLA_RESYNC_INTERVAL', '5m', 1_000),
    driftMs: duration('FLOTILLA_DRIFT_INTERVAL', '1m', 500),
    heartbeatMs: duration('FLOTILLA_HEARTBEAT_INTERVAL', '1m', 1_000),
    kubeVersionMs: duration('FLOTILLA_KUBE_VERSION_INTERVAL', '10m', 1_000),
    requeueMs: duration('FLOTILLA_REQUEUE_INTERVAL', '10s', 200),
    recheckMs: duration('FLOTILLA_RECHECK_INTERVAL', '1s', 100),
    backoffMinMs: duration('FLOTILLA_BACKOFF_MIN', '1s', 10),
    backoffMaxMs: duration('FLOTILLA_BACKOFF_MAX', '5m', 10),
  };
  if (intervals.backoffMaxMs < intervals.backoffMinMs) {
    problems.push('FLOTILLA_BACKOFF_MAX must not be below FLOTILLA_BACKOFF_MIN');
  }
  if (intervals.requeueMs < (intervals.recheckMs ?? 0)) {
    problems.push('FLOTILLA_REQUEUE_INTERVAL must not be below FLOTILLA_RECHECK_INTERVAL');
  }
  const hubTimeoutMs = duration('FLOTILLA_HUB_TIMEOUT', '30s', 100);

  const concurrencyText = get('FLOTILLA_APPLY_CONCURRENCY') ?? '16';
  const applyConcurrency = Number(concurrencyText);
  if (!Number.isInteger(applyConcurrency) || applyConcurrency < 1 || applyConcurrency > 256) {
    problems.push(`FLOTILLA_APPLY_CONCURRENCY must be an integer from 1 to 256, got "${concurrencyText}"`);
  }

  const addr = get('FLOTILLA_HTTP_ADDR') ?? ':8080';
  let http: AgentConfig['http'];
  if (addr !== 'off') {
    const m = /^(.*):(\d+)$/.exec(addr);
    const port = Number(m?.[2]);
    if (!m || port > 65535) problems.push(`FLOTILLA_HTTP_ADDR must be [host]:port or "off", got "${addr}"`);
    else http = { host: (m[1] || '0.0.0.0').replace(/^\[|\]$/g, ''), port };
  }

  const level = get('FLOTILLA_LOG_LEVEL') ?? 'info';
  if (!['debug', 'info', 'warn', 'error'].includes(level)) {
    problems.push(`FLOTILLA_LOG_LEVEL must be debug, info, warn or error, got "${level}"`);
  }

  // On by default in a pod, where the Deployment runs two replicas; off by default with a
  // kubeconfig (a developer's single agent).
  const electionText = get('FLOTILLA_LEADER_ELECTION') ?? (kube.kind === 'in-cluster' ? 'true' : 'false');
  let leaderElection: AgentConfig['leaderElection'];
  if (!['true', 'false'].includes(electionText)) {
    problems.push(`FLOTILLA_LEADER_ELECTION must be true or false, got "${electionText}"`);
  } else if (electionText === 'true') {
    const host = opts.host ?? { hostname: 'localhost', pid: 0 };
    // A pod's name is unique among live pods; outside a pod, the machine and process are.
    const identity = get('FLOTILLA_POD_NAME') ?? `${host.hostname}_${host.pid}`;
    leaderElection = { leaseName: leaderLeaseName, identity };
  }

  if (problems.length > 0) throw new AgentConfigError(problems);
  return {
    hubUrl,
    clusterId,
    token,
    hubPublicKey: hubPublicKey as KeyObject,
    namespace,
    kube,
    sqs,
    intervals,
    hubTimeoutMs,
    applyConcurrency,
    http,
    logLevel: level as LogLevel,
    leaderElection,
  };
}
