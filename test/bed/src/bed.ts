import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { ChartRepos, ChartReposState } from './chart-repos.ts';
import { createBareRepo, type GitServer, startGitServer } from './git-server.ts';
import {
  ensureJavaService,
  type RunningService,
  startDynamoDbLocal,
  startElasticMq,
} from './java-services.ts';
import type { ControlPlane, KubeBinaries } from './kube.ts';
import { formatElapsed, type Log } from './process.ts';

/** Everything a test or the local hub needs to reach the bed's services. */
export interface BedState {
  readonly version: 1;
  readonly dir: string;
  /** The process that owns the services; `bed down` signals it. */
  readonly ownerPid: number;
  readonly region: string;
  readonly accountId: string;
  readonly dynamodb: { readonly endpoint: string; readonly version: string };
  readonly sqs: { readonly endpoint: string; readonly version: string };
  readonly git: { readonly url: string; readonly reposDir: string; readonly version: string };
  readonly kubernetes: KubeBinaries['versions'] & { readonly kubectl: string };
  readonly clusters: readonly {
    readonly name: string;
    readonly server: string;
    readonly kubeconfigPath: string;
  }[];
  /** Helm HTTP repositories and OCI registries holding test charts; absent when not started. */
  readonly charts?: ChartReposState;
  /** Every service process, so a bed whose owner died can still be cleaned up. */
  readonly pids: readonly number[];
}

export interface Bed {
  readonly state: BedState;
  readonly stateFile: string;
  stop(): Promise<void>;
}

export interface BedOptions {
  /** Where logs, data, kubeconfigs and state.json go. Emptied at start. */
  readonly dir: string;
  /** Names of the spoke control planes to start; empty for none. */
  readonly clusters: readonly string[];
  readonly cacheDir?: string;
  readonly region?: string;
  readonly log?: Log;
  /** Heap of each Java service; benchmarks with 100,000 queues need more than tests do. */
  readonly javaHeapMb?: number;
  /** Start the chart repositories (needs Go for the registry, cached after one build). Default false. */
  readonly charts?: boolean;
}

export const repoRoot = new URL('../../../', import.meta.url).pathname.replace(/\/$/, '');

export function defaultCacheDir(): string {
  return (
    process.env.FLOTILLA_CACHE_DIR ??
    join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'flotilla')
  );
}

export function stateFilePath(dir: string): string {
  return join(dir, 'state.json');
}

/**
 * Installs what is missing (jars from Maven Central, Kubernetes binaries built from
 * the Go module proxy), then starts DynamoDB Local, ElasticMQ, a git smart-HTTP
 * server, one Kubernetes control plane per cluster and the chart repositories (a
 * Helm HTTP repository and OCI registries), all on loopback ports.
 */
export async function startBed(opts: BedOptions): Promise<Bed> {
  const started = Date.now();
  const log: Log = opts.log ?? ((line) => process.stderr.write(`[bed] ${line}\n`));
  const cacheDir = opts.cacheDir ?? defaultCacheDir();
  const region = opts.region ?? 'eu-west-1';
  const accountId = '000000000000';
  await stopStaleBed(opts.dir, log);
  rmSync(opts.dir, { recursive: true, force: true });
  mkdirSync(opts.dir, { recursive: true });

  // Loaded only when planes are wanted, so a bed without clusters needs no Go toolchain.
  const kube = opts.clusters.length > 0 ? await import('./kube.ts') : undefined;
  const [dynamoJars, sqsJars, kubeBins] = await Promise.all([
    ensureJavaService('dynamodbLocal', cacheDir, log),
    ensureJavaService('elasticmq', cacheDir, log),
    kube ? kube.ensureKubeBinaries({ cacheDir, log }) : Promise.resolve(undefined),
  ]);

  const running: { stop(): Promise<void> }[] = [];
  const stopAll = async () => {
    await Promise.allSettled(running.map((s) => s.stop()));
  };
  try {
    const gitTask = startGitServer({ reposDir: join(opts.dir, 'git') }).then((g) => {
      running.push(g);
      return g;
    });
    const dynamoTask = startDynamoDbLocal({
      service: dynamoJars,
      dir: opts.dir,
      log,
      heapMb: opts.javaHeapMb,
    }).then((s) => {
      running.push(s.process);
      return s;
    });
    const sqsTask = startElasticMq({
      service: sqsJars,
      dir: opts.dir,
      region,
      accountId,
      log,
      heapMb: opts.javaHeapMb,
    }).then((s) => {
      running.push(s.process);
      return s;
    });
    const planesTask = Promise.all(
      opts.clusters.map((name) => {
        if (!kube || !kubeBins) throw new Error('unreachable: no Kubernetes binaries');
        const dir = join(opts.dir, 'clusters', name);
        mkdirSync(dir, { recursive: true });
        return kube.startControlPlane({ name, dir, bins: kubeBins, log }).then((cp) => {
          running.push(cp);
          return cp;
        });
      }),
    );
    const chartsTask = !opts.charts
      ? Promise.resolve(undefined)
      : import('./chart-repos.ts')
          .then((m) => m.startChartRepos({ dir: join(opts.dir, 'charts'), cacheDir, log }))
          .then((c) => {
            running.push(c);
            return c;
          });
    const results = await Promise.allSettled([gitTask, dynamoTask, sqsTask, planesTask, chartsTask]);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const git = (await gitTask) as GitServer;
    const dynamo = (await dynamoTask) as RunningService;
    const sqs = (await sqsTask) as RunningService;
    const planes = (await planesTask) as ControlPlane[];
    const charts = (await chartsTask) as ChartRepos | undefined;

    const state: BedState = {
      version: 1,
      dir: opts.dir,
      ownerPid: process.pid,
      region,
      accountId,
      dynamodb: { endpoint: dynamo.endpoint, version: dynamo.version },
      sqs: { endpoint: sqs.endpoint, version: sqs.version },
      git: { url: git.url, reposDir: git.reposDir, version: git.version },
      kubernetes: kubeBins
        ? { ...kubeBins.versions, kubectl: kubeBins.kubectl }
        : { kubernetes: 'none', etcd: 'none', kwok: 'none', kubectl: '' },
      clusters: planes.map((p) => ({ name: p.name, server: p.server, kubeconfigPath: p.kubeconfigPath })),
      ...(charts ? { charts: charts.state } : {}),
      pids: [dynamo.process.pid, sqs.process.pid, ...planes.flatMap((p) => p.pids), ...(charts?.pids ?? [])],
    };
    const stateFile = stateFilePath(opts.dir);
    writeFileSync(stateFile, `${JSON.stringify(state, null, 2)}\n`);
    log(`bed ready in ${formatElapsed(Date.now() - started)}: ${stateFile}`);
    return {
      state,
      stateFile,
      async stop() {
        await stopAll();
        rmSync(stateFile, { force: true });
      },
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** Reads the state of a bed started elsewhere (`bed up`), if its owner is alive. */
export function readBedState(dir: string): BedState | undefined {
  const file = stateFilePath(dir);
  if (!existsSync(file)) return undefined;
  const state = JSON.parse(readFileSync(file, 'utf8')) as BedState;
  return isAlive(state.ownerPid) ? state : undefined;
}

/** Kills whatever a previous bed in `dir` left running. */
export async function stopStaleBed(dir: string, log: Log): Promise<void> {
  const file = stateFilePath(dir);
  if (!existsSync(file)) return;
  const state = JSON.parse(readFileSync(file, 'utf8')) as BedState;
  const pids = [state.ownerPid, ...state.pids].filter((pid) => pid !== process.pid && isAlive(pid));
  if (pids.length > 0) log(`stopping ${pids.length} processes left by an earlier bed in ${dir}`);
  for (const pid of pids) signal(pid, 'SIGTERM');
  const deadline = Date.now() + 10_000;
  while (pids.some(isAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  for (const pid of pids.filter(isAlive)) signal(pid, 'SIGKILL');
  rmSync(file, { force: true });
}

export { createBareRepo };

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}
