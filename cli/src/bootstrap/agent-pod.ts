/**
 * The agent's pod, as a process on this machine: what the kubelet does for the agent's
 * container, done for a local agent (`bootstrap --run-agent local`, the integration tests,
 * the image test and `npm run bench:agent`).
 *
 * 1. Project the agent's service-account token: a TokenRequest token and the cluster CA
 *    written to a service-account directory, refreshed at 80% of its lifetime.
 * 2. Start the agent's command with the pod's environment: KUBERNETES_SERVICE_HOST and
 *    KUBERNETES_SERVICE_PORT of the API server, FLOTILLA_SERVICE_ACCOUNT_DIR, and the
 *    variables of the spec. No kubeconfig reaches the agent, so it holds exactly the rights
 *    the RBAC gives its service account.
 * 3. Pass SIGTERM/SIGINT on to the agent, and end with it.
 *
 * Run as `node cli/src/bootstrap/agent-pod.ts <spec.json>` (an {@link AgentPodSpec}).
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import {
  defaultTokenExpirationSeconds,
  ServiceAccountTokenProjector,
  tokenRequester,
} from './service-account-token.ts';

/** What a local pod runs, and as whom. */
export interface AgentPodSpec {
  /** The kubeconfig and context that reach the cluster: used for TokenRequest only (as the kubelet's own credentials). */
  readonly kubeconfig: string;
  readonly context: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  /** Where `token` and `ca.crt` are written (the pod's /var/run/secrets/kubernetes.io/serviceaccount). */
  readonly serviceAccountDir: string;
  readonly tokenExpirationSeconds?: number;
  /** The container's command: the executable and its arguments. */
  readonly command: readonly string[];
  readonly cwd?: string;
  /** The container's environment, besides what the pod adds. */
  readonly env: Readonly<Record<string, string>>;
  /** Where the agent's pid is written once it runs. */
  readonly agentPidFile?: string;
}

/** The path of this script, to run it as a process. */
export const agentPodScript = new URL(import.meta.url).pathname;

export class AgentPodError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'AgentPodError';
  }
}

/** The in-cluster view of an API server a kubeconfig context points at: service host, port and CA. */
export function inClusterEndpoint(kc: KubeConfig): { host: string; port: string; ca: Buffer } {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new AgentPodError(`context "${kc.getCurrentContext()}" has no cluster`);
  const url = new URL(cluster.server);
  if (url.protocol !== 'https:') {
    throw new AgentPodError(`the API server ${cluster.server} is not https: a pod reaches it over TLS`);
  }
  const ca = cluster.caData
    ? Buffer.from(cluster.caData, 'base64')
    : cluster.caFile
      ? readFileSync(cluster.caFile)
      : undefined;
  if (!ca) {
    throw new AgentPodError(
      `the kubeconfig gives no CA for ${cluster.server}: a pod's ca.crt cannot be written without one`,
    );
  }
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port: url.port || '443', ca };
}

function log(level: 'info' | 'error', message: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ level, component: 'agent-pod', message, ...fields })}\n`);
}

/** Runs the pod until its agent exits; resolves to the exit code to end with. */
export async function runAgentPod(spec: AgentPodSpec): Promise<number> {
  const kc = new KubeConfig();
  kc.loadFromFile(spec.kubeconfig);
  kc.setCurrentContext(spec.context);
  const endpoint = inClusterEndpoint(kc);
  const expirationSeconds = spec.tokenExpirationSeconds ?? defaultTokenExpirationSeconds;
  const projector = new ServiceAccountTokenProjector({
    dir: spec.serviceAccountDir,
    ca: endpoint.ca,
    request: tokenRequester(kc, {
      namespace: spec.namespace,
      serviceAccount: spec.serviceAccount,
      expirationSeconds,
    }),
    onRefresh: (t) =>
      log('info', 'service-account token written', {
        serviceAccount: `${spec.namespace}/${spec.serviceAccount}`,
        expiresAt: new Date(t.expiresAt).toISOString(),
      }),
    onError: (e) => log('error', 'service-account token refresh failed', { error: String(e) }),
  });
  await projector.start();
  const [file, ...args] = spec.command;
  if (!file) throw new AgentPodError('the pod spec has no command');
  const child = spawn(file, args, {
    stdio: 'inherit',
    ...(spec.cwd ? { cwd: spec.cwd } : {}),
    env: {
      ...spec.env,
      KUBERNETES_SERVICE_HOST: endpoint.host,
      KUBERNETES_SERVICE_PORT: endpoint.port,
      FLOTILLA_SERVICE_ACCOUNT_DIR: spec.serviceAccountDir,
    },
  });
  const forward = (signal: NodeJS.Signals) => () => {
    child.kill(signal);
  };
  process.on('SIGTERM', forward('SIGTERM'));
  process.on('SIGINT', forward('SIGINT'));
  const code = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('spawn', () => {
      if (spec.agentPidFile && child.pid !== undefined) writeFileSync(spec.agentPidFile, `${child.pid}\n`);
    });
    child.once('exit', (c, signal) => {
      log('info', 'agent exited', { code: c, signal });
      resolve(c ?? 1);
    });
  }).finally(() => projector.stop());
  return code;
}

if (process.argv[1] === agentPodScript) {
  const specPath = process.argv[2];
  if (!specPath) {
    process.stderr.write('usage: node agent-pod.ts <spec.json>\n');
    process.exit(2);
  }
  runAgentPod(JSON.parse(readFileSync(specPath, 'utf8')) as AgentPodSpec).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      log('error', 'the agent pod could not start', {
        error: e instanceof Error ? e.message : String(e),
        cause: e instanceof Error && e.cause ? String(e.cause) : undefined,
      });
      process.exitCode = 1;
    },
  );
}
