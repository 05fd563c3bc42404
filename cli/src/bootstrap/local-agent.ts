/**
 * Development mode (`bootstrap --run-agent local`): the agent as a background process on
 * this machine, for clusters whose pods never really run (kwok fakes them in the test bed).
 * It runs as the pod would (agent-pod.ts): the in-cluster Secret's keys as files, its
 * service account's TokenRequest token and the cluster CA in a service-account directory,
 * refreshed as the kubelet does, and the in-cluster configuration path; the operator's
 * kubeconfig only serves to request those tokens. Its pid, configuration hash and log file
 * are recorded under the state directory, so a rerun reuses it and `flotilla local-agent
 * stop` ends it.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { agentEnvironment, agentNodeArgs } from '@flotilla/shared/agent';
import { CliError } from '../core/errors.ts';
import { ExitCode } from '../core/exit-codes.ts';
import { type AgentPodSpec, agentPodScript } from './agent-pod.ts';

/** Where a local agent's pod is, and as whom its agent runs. */
export interface LocalAgentPod {
  /** Reaches the cluster for TokenRequest (the kubelet's part); the agent never sees it. */
  readonly kubeconfig: string;
  readonly context: string;
  readonly namespace: string;
  readonly serviceAccount: string;
}

export interface LocalAgentRecord {
  readonly cluster: string;
  /** The pod process (agent-pod.ts): it projects the token and runs the agent. */
  readonly pid: number;
  /** The agent process itself. */
  readonly agentPid?: number;
  readonly logFile: string;
  readonly startedAt: string;
  /** SHA-256 of the agent's configuration: a rerun with the same one keeps the process. */
  readonly configHash: string;
  readonly hubUrl: string;
  readonly kubeconfig: string;
  readonly context: string;
  /** The variables it was started with besides the Secret (namespace, intervals): a restart reuses them. */
  readonly env?: Readonly<Record<string, string>>;
  readonly pod?: LocalAgentPod;
}

export interface LocalAgentStatus extends LocalAgentRecord {
  readonly running: boolean;
}

/** Runs agents as local processes; a fake in unit tests. */
export interface LocalAgents {
  /**
   * Starts the cluster's agent, or keeps the running one when its configuration is the same.
   * `secret` is the in-cluster Secret's data, handed over as files (FLOTILLA_SECRET_DIR) as
   * the pod gets them; `env` the rest of the container's variables (namespace); `pod` the
   * service account it runs as.
   */
  ensure(cluster: string, config: LocalAgentConfig): Promise<{ record: LocalAgentRecord; started: boolean }>;
  /** Stops the cluster's agent; false when none was recorded or it had already ended. */
  stop(cluster: string): Promise<boolean>;
  get(cluster: string): LocalAgentStatus | undefined;
  list(): LocalAgentStatus[];
}

export interface LocalAgentConfig {
  readonly secret: Readonly<Record<string, string>>;
  readonly env: Readonly<Record<string, string>>;
  readonly pod: LocalAgentPod;
}

export const defaultAgentMain = new URL('../../../agent/src/main.ts', import.meta.url).pathname;

export interface ProcessLocalAgentsOptions {
  readonly stateDir: string;
  /** The agent's entry point (agent/src/main.ts of this checkout by default). */
  readonly agentMain?: string;
  readonly nodePath?: string;
  /** Variables of this process passed through (PATH, HOME); never the CLI's own credentials. */
  readonly baseEnv?: Readonly<Record<string, string | undefined>>;
  /** How long a new agent must stay up before it counts as started. */
  readonly settleMs?: number;
  /** The lifetime of the service-account tokens requested for the agent (seconds). */
  readonly tokenExpirationSeconds?: number;
}

export class ProcessLocalAgents implements LocalAgents {
  readonly #dir: string;
  readonly #main: string;
  readonly #node: string;
  readonly #baseEnv: Record<string, string>;
  readonly #settleMs: number;
  readonly #tokenExpirationSeconds: number | undefined;
  #warming: Promise<void> | undefined;

  constructor(opts: ProcessLocalAgentsOptions) {
    this.#dir = join(opts.stateDir, 'agents');
    this.#main = opts.agentMain ?? defaultAgentMain;
    this.#node = opts.nodePath ?? process.execPath;
    this.#settleMs = opts.settleMs ?? 1500;
    this.#tokenExpirationSeconds = opts.tokenExpirationSeconds;
    const base = opts.baseEnv ?? {};
    this.#baseEnv = Object.fromEntries(
      ['PATH', 'HOME', 'TZ', 'LANG'].flatMap((k) => (base[k] ? [[k, base[k] as string]] : [])),
    );
  }

  /**
   * Fills the agents' compile cache as the image does at build time: the agent run without
   * configuration loads every module it runs, then exits (a fraction of a second once the
   * cache is warm). An agent started on a cold cache strips its TypeScript with Node's
   * WebAssembly stripper and holds about 25 MB more for its whole life, and a running agent
   * writes its cache only when it exits. Once per process: the cache is keyed by the node
   * options and the sources, which may have changed since the directory was made.
   */
  #warmCompileCache(dir: string): Promise<void> {
    this.#warming ??= new Promise<void>((resolve) => {
      const child = spawn(this.#node, [...agentNodeArgs, this.#main], {
        stdio: 'ignore',
        env: { ...this.#baseEnv, NODE_COMPILE_CACHE: dir },
      });
      child.once('error', () => resolve());
      child.once('exit', () => resolve());
    });
    return this.#warming;
  }

  #recordPath(cluster: string): string {
    return join(this.#dir, `${cluster}.json`);
  }

  #read(cluster: string): LocalAgentRecord | undefined {
    try {
      return JSON.parse(readFileSync(this.#recordPath(cluster), 'utf8')) as LocalAgentRecord;
    } catch {
      return undefined;
    }
  }

  /** Alive, and (where /proc tells) still running the agent's pod: a reused pid is not ours. */
  #running(record: LocalAgentRecord): boolean {
    return alive(record.pid, 'agent-pod.ts');
  }

  get(cluster: string): LocalAgentStatus | undefined {
    const record = this.#read(cluster);
    return record ? { ...record, running: this.#running(record) } : undefined;
  }

  list(): LocalAgentStatus[] {
    if (!existsSync(this.#dir)) return [];
    return readdirSync(this.#dir)
      .filter((f) => f.endsWith('.json'))
      .sort()
      .flatMap((f) => {
        const status = this.get(f.slice(0, -'.json'.length));
        return status ? [status] : [];
      });
  }

  async ensure(
    cluster: string,
    config: LocalAgentConfig,
  ): Promise<{ record: LocalAgentRecord; started: boolean }> {
    const configHash = hashEnv({
      ...config.secret,
      ...config.env,
      [podKey]: JSON.stringify(config.pod),
    });
    const current = this.#read(cluster);
    if (current && current.configHash === configHash && this.#running(current)) {
      return { record: current, started: false };
    }
    if (current) await this.stop(cluster);
    mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
    // The Secret as the kubelet mounts it: one file per key, readable by the agent alone.
    const secretDir = join(this.#dir, `${cluster}.secret`);
    rmSync(secretDir, { recursive: true, force: true });
    mkdirSync(secretDir, { mode: 0o700 });
    for (const [key, value] of Object.entries(config.secret)) {
      writeFileSync(join(secretDir, key), value, { mode: 0o600 });
    }
    const compileCache = join(this.#dir, 'compile-cache');
    await this.#warmCompileCache(compileCache);
    const agentPidFile = join(this.#dir, `${cluster}.agent.pid`);
    rmSync(agentPidFile, { force: true });
    const spec: AgentPodSpec = {
      ...config.pod,
      serviceAccountDir: join(this.#dir, `${cluster}.serviceaccount`),
      ...(this.#tokenExpirationSeconds ? { tokenExpirationSeconds: this.#tokenExpirationSeconds } : {}),
      // As the image runs it: the same node options, and a warm compile cache (kept with
      // the agents' state).
      command: [this.#node, ...agentNodeArgs, this.#main],
      env: {
        NODE_COMPILE_CACHE: compileCache,
        ...agentEnvironment,
        ...this.#baseEnv,
        ...config.env,
        FLOTILLA_SECRET_DIR: secretDir,
      },
      agentPidFile,
    };
    const specFile = join(this.#dir, `${cluster}.pod.json`);
    writeFileSync(specFile, `${JSON.stringify(spec, null, 2)}\n`, { mode: 0o600 });
    const logFile = join(this.#dir, `${cluster}.log`);
    const out = openSync(logFile, 'a');
    let exited: { code: number | null; signal: string | null } | undefined;
    let pid: number | undefined;
    try {
      const child = spawn(this.#node, [agentPodScript, specFile], {
        detached: true,
        stdio: ['ignore', out, out],
        env: this.#baseEnv,
      });
      child.on('exit', (code, signal) => {
        exited = { code, signal };
      });
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', reject);
      });
      pid = child.pid;
      child.unref();
    } catch (err) {
      throw new CliError(
        ExitCode.Failure,
        `cannot start the local agent (${this.#node} ${this.#main}): ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    } finally {
      closeSync(out);
    }
    // An agent with a bad configuration, or a pod refused its token, exits at once; say why
    // instead of waiting for a heartbeat.
    await new Promise((r) => setTimeout(r, this.#settleMs));
    let agentPid = readPid(agentPidFile);
    // The first token request may take a moment on a busy machine.
    for (let i = 0; i < 100 && agentPid === undefined && !exited; i++) {
      await new Promise((r) => setTimeout(r, 100));
      agentPid = readPid(agentPidFile);
    }
    if (exited || pid === undefined || agentPid === undefined) {
      throw new CliError(
        ExitCode.Failure,
        `the local agent exited at start (${exited?.code ?? exited?.signal ?? 'no pid'}):\n${tail(logFile, 15)}`,
        {
          hint: `its log is ${logFile}`,
        },
      );
    }
    const record: LocalAgentRecord = {
      cluster,
      pid,
      agentPid,
      logFile,
      startedAt: new Date().toISOString(),
      configHash,
      hubUrl: config.secret.FLOTILLA_HUB_URL ?? '',
      kubeconfig: config.pod.kubeconfig,
      context: config.pod.context,
      env: config.env,
      pod: config.pod,
    };
    writeFileSync(this.#recordPath(cluster), `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
    return { record, started: true };
  }

  async stop(cluster: string): Promise<boolean> {
    const record = this.#read(cluster);
    if (!record) return false;
    let stopped = false;
    const agentRunning = () => record.agentPid !== undefined && alive(record.agentPid, 'main.ts');
    if (this.#running(record)) {
      // The pod passes SIGTERM on to the agent, which sends a last status on its way out
      // (at most a few seconds), and ends with it.
      process.kill(record.pid, 'SIGTERM');
      for (let i = 0; i < 100 && this.#running(record); i++) await new Promise((r) => setTimeout(r, 100));
      if (this.#running(record)) process.kill(record.pid, 'SIGKILL');
      stopped = true;
    }
    if (agentRunning()) {
      process.kill(record.agentPid as number, 'SIGKILL');
      stopped = true;
    }
    rmSync(this.#recordPath(cluster), { force: true });
    for (const leftover of ['secret', 'serviceaccount', 'pod.json', 'agent.pid']) {
      rmSync(join(this.#dir, `${cluster}.${leftover}`), { recursive: true, force: true });
    }
    return stopped;
  }
}

/** Keyed into the configuration hash: a changed service account or cluster restarts the pod. */
const podKey = '\0pod';

/** Alive, and (where /proc tells) running a command line that names `script`: a reused pid is not ours. */
function alive(pid: number, script: string): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const cmdline = `/proc/${pid}/cmdline`;
  if (!existsSync(cmdline)) return true;
  try {
    return readFileSync(cmdline, 'utf8').includes(script);
  } catch {
    return false;
  }
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function hashEnv(env: Readonly<Record<string, string>>): string {
  const hash = createHash('sha256');
  for (const key of Object.keys(env).sort()) hash.update(`${key}\0${env[key]}\0`);
  return hash.digest('hex');
}

function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
