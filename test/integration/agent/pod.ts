/**
 * The agent as it runs in a pod, on the bed: the objects `flotilla bootstrap` installs
 * (namespace, Secret, service account, RBAC), and the agent run by the CLI's pod process
 * (cli/src/bootstrap/agent-pod.ts) on its service account's TokenRequest token and the
 * in-cluster configuration path, as `bootstrap --run-agent local` runs it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AgentPodSpec, agentPodScript } from '../../../cli/src/bootstrap/agent-pod.ts';
import { agentManifests, agentNames, agentSecretData } from '../../../cli/src/bootstrap/manifests.ts';
import { openSpokeCluster } from '../../../cli/src/kube/spoke-cluster.ts';
import { collectLogLines } from './process.ts';

/** What bootstrap writes into the cluster, but the Deployment (kwok's pods never run): returns the Secret's data. */
export async function installAgentObjects(
  kubeconfigPath: string,
  opts: { clusterId: string; namespace: string; hubUrl: string; token: string; hubPublicKeyPem: string },
): Promise<Record<string, string>> {
  const secretData = agentSecretData({
    clusterId: opts.clusterId,
    hubUrl: opts.hubUrl,
    token: opts.token,
    hubPublicKeyPem: opts.hubPublicKeyPem,
  });
  const spoke = openSpokeCluster({
    kubeconfigPaths: [kubeconfigPath],
    context: undefined,
    fieldManager: agentNames.fieldManager,
  });
  const objects = agentManifests({
    clusterId: opts.clusterId,
    namespace: opts.namespace,
    image: 'unused',
    secretData,
  });
  for (const object of objects.filter((o) => o.kind !== 'Deployment')) await spoke.apply(object);
  return secretData;
}

/** The agent's pod process and its log lines (the pod's and the agent's, JSON). */
export class AgentPod {
  readonly child: ChildProcess;
  readonly lines: Record<string, unknown>[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<number | null>;
  readonly #dir: string;
  readonly #pidFile: string;

  private constructor(child: ChildProcess, dir: string) {
    this.child = child;
    this.#dir = dir;
    this.#pidFile = join(dir, 'agent.pid');
    this.exited = collectLogLines(child, this.lines, this.stderr);
  }

  /**
   * Starts a pod running `command` (the agent's, as the image or local-agent.ts runs it) as
   * the agent's service account of `namespace`, with `env` (the container's variables) and
   * the Secret's keys as files in FLOTILLA_SECRET_DIR.
   */
  static start(opts: {
    kubeconfigPath: string;
    namespace: string;
    secretData: Readonly<Record<string, string>>;
    command: readonly string[];
    cwd?: string;
    env: Readonly<Record<string, string>>;
  }): AgentPod {
    const dir = mkdtempSync(join(tmpdir(), 'flotilla-pod-'));
    const secretDir = join(dir, 'secret');
    mkdirSync(secretDir, { mode: 0o700 });
    for (const [k, v] of Object.entries(opts.secretData))
      writeFileSync(join(secretDir, k), v, { mode: 0o600 });
    const spec: AgentPodSpec = {
      kubeconfig: opts.kubeconfigPath,
      context: currentContext(opts.kubeconfigPath),
      namespace: opts.namespace,
      serviceAccount: agentNames.serviceAccount,
      serviceAccountDir: join(dir, 'serviceaccount'),
      command: opts.command,
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/tmp',
        ...opts.env,
        FLOTILLA_SECRET_DIR: secretDir,
        FLOTILLA_NAMESPACE: opts.namespace,
      },
      agentPidFile: join(dir, 'agent.pid'),
    };
    writeFileSync(join(dir, 'pod.json'), JSON.stringify(spec), { mode: 0o600 });
    const child = spawn(process.execPath, [agentPodScript, join(dir, 'pod.json')], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new AgentPod(child, dir);
  }

  /** The agent's own pid, once it runs. */
  async agentPid(timeoutMs = 30_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      try {
        const pid = Number(readFileSync(this.#pidFile, 'utf8').trim());
        if (pid > 0) return pid;
      } catch {
        // not yet
      }
      if (this.child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`the agent did not start:\n${this.log()}`);
  }

  /** The first log line with this message, waiting for it. */
  async waitForLog(message: string, timeoutMs = 60_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const line = this.lines.find((l) => l.message === message);
      if (line) return line;
      if (this.child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`no "${message}" in the pod's log; it said:\n${this.log()}`);
  }

  log(): string {
    return `${this.lines.map((l) => JSON.stringify(l)).join('\n')}\n${this.stderr.join('')}`;
  }

  /** SIGTERM to the pod, which passes it on to the agent; waits for the end, then removes its token and Secret files. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode === null) this.child.kill('SIGTERM');
    const code = await this.exited;
    rmSync(this.#dir, { recursive: true, force: true });
    return code;
  }
}

/** The kubeconfig's current context (the bed's kubeconfigs have one). */
export function currentContext(kubeconfigPath: string): string {
  const m = /^current-context:\s*"?([^"\s]+)"?\s*$/m.exec(readFileSync(kubeconfigPath, 'utf8'));
  if (!m?.[1]) throw new Error(`${kubeconfigPath} has no current-context`);
  return m[1];
}
