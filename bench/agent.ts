/**
 * `npm run bench:agent`: the spoke agent against `kubectl apply --server-side`, with 1,000
 * mixed objects (Namespaces, a CRD and its custom resources, ConfigMaps, Secrets,
 * Services, Deployments, ServiceAccounts, Roles, RoleBindings) in 20 bundles, each side on
 * a fresh control plane of its own (the bed's, same version as the bed's kubectl).
 *
 * The agent is the real process as shipped (`node <shipped flags> agent/src/main.ts`, with
 * a compile cache warmed as the image does), run in the in-cluster mode as its pod runs
 * it (cli/src/bootstrap/agent-pod.ts: its service account's TokenRequest token and the CA
 * in a service-account directory, KUBERNETES_SERVICE_HOST/PORT, leader election on, and
 * the RBAC bootstrap installs), pulling its signed desired state from a local hub on the
 * bed (DynamoDB Local, ElasticMQ, git) and told of changes over its SQS queue.
 * Its timings come from its own log: one `reconciled` line per reconcile. Its memory comes
 * from /proc/<pid>/status (VmRSS, VmHWM).
 *
 *   1. kubectl: apply everything but the custom resources, wait for the CRD to be
 *      Established, apply the custom resources (two passes, as kubectl needs).
 *   2. agent: first apply, then a no-op full resync, then 10% of the objects changed.
 *   3. agent idle: its resident size once nothing has happened for a while, after the change
 *      and again after the next periodic resync or drift check; the higher of the two.
 *   4. kubectl again, for reference: the same no-op and 10% change (kubectl sends every object).
 *
 * Prints one JSON line per phase on stdout; the last line is the headline.
 *
 * Options: --bed-dir DIR reuses a running bed with two clusters (`npm run bed -- up
 * --clusters a,b`) instead of starting one; its planes are then not fresh.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { agentEnvironment, agentNodeArgs } from '@flotilla/shared/agent';
import { stringify } from 'yaml';
import { type BedState, readBedState, repoRoot, startBed } from '../test/bed/src/bed.ts';
import { AgentHarness } from '../test/integration/agent/harness.ts';
import { AgentPod, installAgentObjects } from '../test/integration/agent/pod.ts';

const { values } = parseArgs({
  options: {
    'bed-dir': { type: 'string' },
  },
});
const log = (line: string) => process.stderr.write(`[bench:agent] ${line}\n`);
const print = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(o)}\n`);
const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;
const load = () => round(loadavg()[0] ?? 0, 1);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------
// The objects: 20 bundles of 50 (bundle 00 trades a ConfigMap for the CRD) = 1,000.

const BUNDLES = 20;
const run = Date.now().toString(36).slice(-5);
const group = `b${run}.bench.flotilla.dev`;
const crdName = `widgets.${group}`;
type Obj = Record<string, unknown> & { apiVersion: string; kind: string; metadata: Record<string, unknown> };
interface Bundle {
  readonly name: string;
  readonly namespace: string;
  readonly objects: Obj[];
}

function fleet(revision: 1 | 2): Bundle[] {
  const bundles: Bundle[] = [];
  for (let b = 0; b < BUNDLES; b++) {
    const name = `bench-${String(b).padStart(2, '0')}`;
    const ns = `${name}-${run}`;
    const labels = { 'flotilla.dev/bundle': name };
    const meta = (n: string, extra: Record<string, unknown> = {}) => ({
      name: n,
      namespace: ns,
      labels,
      ...extra,
    });
    // 10% changed: per bundle three ConfigMaps, one Deployment's image and one Widget.
    const rev = (i: number, changedBelow: number) => (revision === 2 && i < changedBelow ? 2 : 1);
    const objects: Obj[] = [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels } }];
    if (b === 0) objects.push(crd(labels));
    for (let i = 0; i < (b === 0 ? 11 : 12); i++)
      objects.push({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: meta(`config-${i}`),
        data: {
          'app.properties': `log.level=info\nfeature.${i}=on\nrevision=${rev(i, 3)}\n`,
          region: 'eu-west-1',
          owner: `team-${b % 7}`,
        },
      });
    for (let i = 0; i < 8; i++)
      objects.push({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: meta(`secret-${i}`),
        type: 'Opaque',
        data: {
          username: Buffer.from(`svc-${b}-${i}`).toString('base64'),
          password: Buffer.from(`p${run}${i}`).toString('base64'),
        },
      });
    for (let i = 0; i < 4; i++)
      objects.push({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(`app-${i}`) });
    for (let i = 0; i < 2; i++) {
      objects.push({
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: meta(`reader-${i}`),
        rules: [{ apiGroups: [''], resources: ['configmaps', 'secrets'], verbs: ['get', 'list', 'watch'] }],
      });
      objects.push({
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: meta(`reader-${i}`),
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: `reader-${i}` },
        subjects: [{ kind: 'ServiceAccount', name: `app-${i}`, namespace: ns }],
      });
    }
    for (let i = 0; i < 5; i++)
      objects.push({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: meta(`web-${i}`),
        spec: { selector: { app: `web-${i % 4}` }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
      });
    for (let i = 0; i < 4; i++)
      objects.push({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: meta(`web-${i}`),
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: `web-${i}` } },
          template: {
            metadata: { labels: { app: `web-${i}` } },
            spec: {
              serviceAccountName: `app-${i}`,
              containers: [
                {
                  name: 'web',
                  image: `registry.example.com/bench/web:1.${rev(i, 1)}.0`,
                  ports: [{ containerPort: 8080 }],
                  envFrom: [{ configMapRef: { name: `config-${i}` } }],
                  resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { memory: '64Mi' } },
                  readinessProbe: { httpGet: { path: '/healthz', port: 8080 } },
                },
              ],
            },
          },
        },
      });
    for (let i = 0; i < 12; i++)
      objects.push({
        apiVersion: `${group}/v1`,
        kind: 'Widget',
        metadata: meta(`widget-${i}`),
        spec: { size: i + 1, color: ['red', 'green', 'blue'][i % 3], revision: rev(i, 1) },
      });
    bundles.push({ name, namespace: ns, objects });
  }
  const total = bundles.reduce((n, b) => n + b.objects.length, 0);
  if (total !== 1000) throw new Error(`the fleet has ${total} objects, not 1000`);
  return bundles;
}

function crd(labels: Record<string, string>): Obj {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: crdName, labels },
    spec: {
      group,
      scope: 'Namespaced',
      names: { plural: 'widgets', singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              properties: {
                spec: {
                  type: 'object',
                  properties: {
                    size: { type: 'integer' },
                    color: { type: 'string' },
                    revision: { type: 'integer' },
                  },
                },
              },
            },
          },
        },
      ],
    },
  };
}

const yamlOf = (objects: readonly Obj[]) => objects.map((o) => stringify(o)).join('---\n');

// ---------------------------------------------------------------------------------------
// kubectl

const kubectlOrder = [
  'Namespace',
  'CustomResourceDefinition',
  'ServiceAccount',
  'Secret',
  'ConfigMap',
  'Role',
  'RoleBinding',
  'Service',
  'Deployment',
];

class Kubectl {
  readonly #bin: string;
  readonly #kubeconfig: string;
  readonly #cacheDir: string;
  readonly #dir: string;
  constructor(bed: BedState, kubeconfig: string, dir: string) {
    this.#bin = bed.kubernetes.kubectl;
    this.#kubeconfig = kubeconfig;
    this.#dir = dir;
    // A discovery cache of its own: empty at first, as for any fresh cluster.
    this.#cacheDir = join(dir, 'kubectl-cache');
    rmSync(this.#cacheDir, { recursive: true, force: true });
    mkdirSync(this.#cacheDir, { recursive: true });
  }

  run(...args: string[]): Promise<{ seconds: number; stdout: string }> {
    const t0 = performance.now();
    return new Promise((resolve, reject) => {
      execFile(
        this.#bin,
        ['--kubeconfig', this.#kubeconfig, '--cache-dir', this.#cacheDir, ...args],
        { maxBuffer: 64 * 1024 * 1024 },
        (err, stdout, stderr) => {
          if (err) reject(new Error(`kubectl ${args.join(' ')}: ${err.message}\n${stderr}`));
          else resolve({ seconds: (performance.now() - t0) / 1000, stdout });
        },
      );
    });
  }

  /** The two passes kubectl needs for a CRD and its resources, and the wait between them. */
  async applyAll(bundles: readonly Bundle[], label: string) {
    const all = bundles.flatMap((b) => b.objects);
    const rank = (o: Obj) => kubectlOrder.indexOf(o.kind);
    const first = all.filter((o) => o.kind !== 'Widget').sort((a, b) => rank(a) - rank(b));
    const second = all.filter((o) => o.kind === 'Widget');
    const firstFile = join(this.#dir, `${label}-1.yaml`);
    const secondFile = join(this.#dir, `${label}-2.yaml`);
    writeFileSync(firstFile, yamlOf(first));
    writeFileSync(secondFile, yamlOf(second));
    const apply = (file: string) =>
      this.run('apply', '--server-side', '--force-conflicts', '--field-manager=flotilla-bench', '-f', file);
    const pass1 = await apply(firstFile);
    const wait = await this.run('wait', '--for=condition=Established', `crd/${crdName}`, '--timeout=60s');
    const pass2 = await apply(secondFile);
    const lines = `${pass1.stdout}${pass2.stdout}`.trim().split('\n');
    if (lines.length !== all.length)
      throw new Error(`kubectl reported ${lines.length} objects, not ${all.length}`);
    return {
      seconds: pass1.seconds + wait.seconds + pass2.seconds,
      pass1Seconds: round(pass1.seconds),
      waitSeconds: round(wait.seconds),
      pass2Seconds: round(pass2.seconds),
    };
  }
}

// ---------------------------------------------------------------------------------------
// The agent process

function procStatus(
  pid: number,
): { rssMb: number; hwmMb: number; anonMb: number; fileMb: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(s)?.[1] ?? Number.NaN);
    return {
      rssMb: round(kb('VmRSS') / 1024, 1),
      hwmMb: round(kb('VmHWM') / 1024, 1),
      // Anonymous memory (heap, malloc) and pages of files (node's own binary, mostly).
      anonMb: round(kb('RssAnon') / 1024, 1),
      fileMb: round(kb('RssFile') / 1024, 1),
    };
  } catch {
    return undefined;
  }
}

/** Resident size by mapping (a file's path, [heap], [anon] for unnamed), largest first. */
function rssByMapping(pid: number, top = 8): Record<string, number> {
  const sizes = new Map<string, number>();
  let name = '';
  try {
    for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
      const head = /^[0-9a-f]+-[0-9a-f]+ (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
      if (head) name = `${head[2] || '[anon]'} ${head[1]}`;
      const rss = /^Rss:\s+(\d+) kB/.exec(line);
      if (rss) sizes.set(name, (sizes.get(name) ?? 0) + Number(rss[1]));
    }
  } catch {
    return {};
  }
  return Object.fromEntries(
    [...sizes]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, v]) => [k, round(v / 1024, 1)]),
  );
}

type Line = Record<string, unknown> & { time?: string; message?: string };
interface Reconciled extends Line {
  trigger: string;
  generation: number;
  complete: boolean;
  seconds: number;
  applySeconds: number;
  changes: Record<string, number>;
  states: Record<string, string>;
}

async function waitForLine<T extends Line>(
  agent: Pick<AgentPod, 'lines' | 'stderr' | 'child'>,
  from: number,
  match: (l: Line) => boolean,
  what: string,
  timeoutMs: number,
): Promise<{ line: T; index: number }> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (let i = from; i < agent.lines.length; i++) {
      const l = agent.lines[i] as Line;
      if (l.level === 'error') throw new Error(`the agent logged an error: ${JSON.stringify(l)}`);
      if (match(l)) return { line: l as T, index: i };
    }
    if (agent.child.exitCode !== null) break;
    await sleep(100);
  }
  throw new Error(
    `no ${what} in the agent's log after ${timeoutMs / 1000} s; it said:\n${agent.lines
      .slice(-20)
      .map((l) => JSON.stringify(l))
      .join('\n')}\n${agent.stderr.join('')}`,
  );
}

const reconciled = (l: Line): l is Reconciled => l.message === 'reconciled';
const at = (l: Line) => Date.parse(l.time ?? '');

function checkReconcile(r: Reconciled, what: string, expect: Record<string, number>) {
  const failed = Object.entries(r.states).filter(([, s]) => s === 'Failed' || s === 'Pending');
  if (failed.length > 0) throw new Error(`${what}: bundles ${JSON.stringify(failed)}`);
  for (const [action, n] of Object.entries(expect)) {
    if ((r.changes[action] ?? 0) !== n)
      throw new Error(`${what}: expected ${n} ${action}, the agent says ${JSON.stringify(r.changes)}`);
  }
}

/** Warms a compile cache as agent/Dockerfile does at build time. */
function warmCompileCache(dir: string): Promise<void> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', NODE_COMPILE_CACHE: dir };
  const node = (args: string[]) =>
    new Promise<void>((resolve) => execFile(process.execPath, args, { cwd: repoRoot, env }, () => resolve()));
  return node([
    ...agentNodeArgs,
    '--input-type=module',
    '-e',
    "for (const m of ['runtime', 'server', 'config', 'queue/sqs-queue', 'memory']) await import('./agent/src/' + m + '.ts')",
  ]).then(() => node([...agentNodeArgs, 'agent/src/main.ts']));
}

// ---------------------------------------------------------------------------------------

const dir = join(repoRoot, '.flotilla', 'bench-agent');
let owned: Awaited<ReturnType<typeof startBed>> | undefined;
let bed: BedState;
if (values['bed-dir']) {
  const state = readBedState(values['bed-dir']);
  if (!state) throw new Error(`no running bed in ${values['bed-dir']}`);
  bed = state;
  log(`reusing the bed in ${values['bed-dir']}: its control planes are not fresh`);
} else {
  log('starting the bed: DynamoDB Local, ElasticMQ, git and two control planes');
  owned = await startBed({ dir: join(dir, 'bed'), clusters: ['agent', 'kubectl'], log });
  bed = owned.state;
}
const [agentPlane, kubectlPlane] = bed.clusters;
if (!agentPlane || !kubectlPlane) throw new Error('the bed needs two control planes');
const work = join(dir, 'work');
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

let harness: AgentHarness | undefined;
let agent: AgentPod | undefined;
let sampler: NodeJS.Timeout | undefined;
const cleanUp = async () => {
  if (sampler) clearInterval(sampler);
  await agent?.stop();
  await harness?.stop();
  await owned?.stop();
};
// Ctrl-C stops the agent and the bed too.
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    log(`${signal}: stopping`);
    void cleanUp().finally(() => process.exit(130));
  });
try {
  const v1 = fleet(1);
  const v2 = fleet(2);

  // 1. kubectl on its own plane.
  const kubectl = new Kubectl(bed, kubectlPlane.kubeconfigPath, work);
  log(`kubectl ${bed.kubernetes.kubernetes}: first apply of 1,000 objects (load ${load()})`);
  const kFirst = await kubectl.applyAll(v1, 'first');
  log(`kubectl: ${round(kFirst.seconds)} s; letting its Deployments settle`);
  await kubectl.run('wait', '--for=condition=Available', 'deployments', '--all', '-A', '--timeout=180s');

  // 2. The agent, through a hub.
  harness = await AgentHarness.start(bed, 'bench');
  const cluster = `bench-${run}`;
  const { token, queueUrl } = await harness.register(cluster);
  const push = async (bundles: readonly Bundle[], message: string) => {
    await harness?.push(
      Object.fromEntries(
        bundles.map((b) => [b.name, { cluster, namespace: b.namespace, manifests: yamlOf(b.objects) }]),
      ),
      message,
    );
    const view = await harness?.clusterStatus(cluster);
    if (!view?.desired) throw new Error('the hub has no desired state for the cluster');
    return view.desired.generation;
  };
  log('hub: syncing the 20 bundles');
  const g1 = await push(v1, 'Bench: 1,000 objects');
  const compileCache = join(work, 'compile-cache');
  await warmCompileCache(compileCache);

  // A reused bed holds earlier runs' agents' state (signed by another hub key) in theirs.
  const namespace = owned ? 'flotilla-system' : `flotilla-bench-${run}`;
  // What bootstrap installs (namespace, Secret, service account, RBAC): the agent runs as
  // that service account, in the in-cluster mode.
  const secretData = await installAgentObjects(agentPlane.kubeconfigPath, {
    clusterId: cluster,
    namespace,
    hubUrl: harness.url,
    token,
    hubPublicKeyPem: harness.publicKeyPem,
  });
  const env = {
    NODE_ENV: 'production',
    NODE_COMPILE_CACHE: compileCache,
    ...agentEnvironment,
    FLOTILLA_SQS_QUEUE_URL: queueUrl,
    FLOTILLA_SQS_ENDPOINT: bed.sqs.endpoint,
    FLOTILLA_SQS_REGION: bed.region,
    AWS_ACCESS_KEY_ID: 'bed',
    AWS_SECRET_ACCESS_KEY: 'bed',
    FLOTILLA_HTTP_ADDR: '127.0.0.1:0',
    // As the Deployment sets them.
    FLOTILLA_LEADER_ELECTION: 'true',
    FLOTILLA_POD_NAME: `flotilla-agent-bench-${run}`,
    // Every other setting is the default; the full resync comes sooner so that the run is shorter.
    FLOTILLA_RESYNC_INTERVAL: '1m',
  };
  log(`agent: starting node ${agentNodeArgs.join(' ')} agent/src/main.ts in its pod (load ${load()})`);
  const spawnedAt = Date.now();
  agent = AgentPod.start({
    kubeconfigPath: agentPlane.kubeconfigPath,
    namespace,
    secretData,
    command: [process.execPath, ...agentNodeArgs, 'agent/src/main.ts'],
    cwd: repoRoot,
    env,
  });
  const pid = await agent.agentPid();
  let peak = 0;
  sampler = setInterval(() => {
    peak = Math.max(peak, procStatus(pid)?.rssMb ?? 0);
  }, 100);

  const first = await waitForLine<Reconciled>(
    agent,
    0,
    (l) => reconciled(l) && l.generation === g1,
    'first reconcile',
    10 * 60_000,
  );
  checkReconcile(first.line, 'first apply', { created: 1000 });
  const verified = agent.lines.find((l) => l.message === 'new desired state verified') as Line;
  const appliedAt = at(first.line) - (first.line.seconds - first.line.applySeconds) * 1000;
  print({
    bench: 'agent',
    phase: 'first apply',
    objects: 1000,
    agentApplySeconds: round(first.line.applySeconds),
    agentReconcileSeconds: round(first.line.seconds),
    agentStartToVerifiedSeconds: round((at(verified) - spawnedAt) / 1000),
    agentStartToAppliedSeconds: round((appliedAt - spawnedAt) / 1000),
    kubectlSeconds: round(kFirst.seconds),
    kubectlPass1Seconds: kFirst.pass1Seconds,
    kubectlWaitSeconds: kFirst.waitSeconds,
    kubectlPass2Seconds: kFirst.pass2Seconds,
    ratio: round(first.line.applySeconds / kFirst.seconds),
    rssAfterMb: procStatus(pid)?.rssMb,
    load: load(),
  });
  log(
    `agent: first apply ${round(first.line.applySeconds)} s (${round(first.line.seconds)} s with readiness), kubectl ${round(kFirst.seconds)} s`,
  );

  log('agent: waiting for its full resync (FLOTILLA_RESYNC_INTERVAL=1m)');
  const noop = await waitForLine<Reconciled>(
    agent,
    first.index + 1,
    (l) => reconciled(l) && l.trigger === 'resync',
    'resync',
    5 * 60_000,
  );
  checkReconcile(noop.line, 'no-op resync', { created: 0, configured: 0, unchanged: 1000 });
  print({
    bench: 'agent',
    phase: 'no-op resync',
    agentSeconds: round(noop.line.seconds),
    agentApplySeconds: round(noop.line.applySeconds),
    load: load(),
  });
  log(`agent: no-op resync ${round(noop.line.seconds)} s`);

  log('hub: 100 objects changed');
  const pushedAt = Date.now();
  const g2 = await push(v2, 'Bench: 10% changed');
  const syncedAt = Date.now();
  const changed = await waitForLine<Reconciled>(
    agent,
    noop.index + 1,
    (l) => reconciled(l) && l.generation === g2,
    'reconcile of the change',
    5 * 60_000,
  );
  checkReconcile(changed.line, 'change', { configured: 100, unchanged: 900 });
  const changedAppliedAt = at(changed.line) - (changed.line.seconds - changed.line.applySeconds) * 1000;
  print({
    bench: 'agent',
    phase: '10% changed',
    agentApplySeconds: round(changed.line.applySeconds),
    agentReconcileSeconds: round(changed.line.seconds),
    hubSyncSeconds: round((syncedAt - pushedAt) / 1000),
    hubSyncedToAppliedSeconds: round((changedAppliedAt - syncedAt) / 1000),
    trigger: changed.line.trigger,
    load: load(),
  });
  log(`agent: change applied in ${round(changed.line.applySeconds)} s`);

  // 3. Idle: nothing in the log for 15 s, then ten samples a second apart; then the same
  //    again after the next periodic resync or drift check (they run code the change did not).
  const quietSamples = async (): Promise<number[]> => {
    let samples: number[] = [];
    const deadline = Date.now() + 5 * 60_000;
    while (samples.length < 10) {
      if (Date.now() > deadline) throw new Error('the agent never went quiet');
      const lastLine = agent?.lines.at(-1) as Line;
      const quietFor = Date.now() - at(lastLine);
      if (quietFor < 15_000) {
        samples = [];
        await sleep(Math.min(1000, 15_000 - quietFor + 10));
        continue;
      }
      const count = agent?.lines.length;
      const s = procStatus(pid);
      if (!s) throw new Error('the agent is gone');
      samples.push(s.rssMb);
      await sleep(1000);
      if (agent?.lines.length !== count) samples = [];
    }
    return samples;
  };
  log('agent: waiting for it to be idle');
  const afterWork = await quietSamples();
  log(`agent: idle ${Math.max(...afterWork)} MB; waiting for a periodic resync or drift check`);
  const periodic = await waitForLine<Reconciled>(
    agent,
    agent.lines.length,
    (l) => reconciled(l) && (l.trigger === 'resync' || l.trigger === 'drift'),
    'periodic resync or drift check',
    3 * 60_000,
  );
  const afterPeriodic = await quietSamples();
  const idle = [...afterWork, ...afterPeriodic];
  const idleRssMb = Math.max(...idle);
  const status = procStatus(pid);
  const peakRssMb = Math.max(peak, status?.hwmMb ?? 0);
  const probes = agent.lines.find((l) => l.message === 'flotilla agent started')?.http as string;
  const metrics = await (await fetch(`${probes}/metrics`)).text();
  const gauge = (name: string) =>
    round(Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1] ?? Number.NaN) / 2 ** 20, 1);
  print({
    bench: 'agent',
    phase: 'idle',
    mode: 'in-cluster',
    idleRssMb,
    idleAfterWorkMb: Math.max(...afterWork),
    idleAfterPeriodicMb: Math.max(...afterPeriodic),
    periodicTrigger: periodic.line.trigger,
    idleSamplesMb: idle,
    rssAnonMb: status?.anonMb,
    rssFileMb: status?.fileMb,
    rssByMappingMb: rssByMapping(pid),
    peakRssMb,
    heapUsedMb: gauge('nodejs_heap_used_bytes'),
    heapTotalMb: gauge('nodejs_heap_total_bytes'),
    externalMb: gauge('nodejs_external_memory_bytes'),
    nodeArgs: agentNodeArgs,
  });
  log(`agent: idle ${idleRssMb} MB, peak ${peakRssMb} MB`);
  clearInterval(sampler);
  const code = await agent.stop();
  agent = undefined;
  if (code !== 0) throw new Error(`the agent exited ${code}`);

  // 4. kubectl's no-op and change, for reference: it sends all 1,000 objects each time.
  const kNoop = await kubectl.applyAll(v1, 'noop');
  const kChanged = await kubectl.applyAll(v2, 'changed');
  print({
    bench: 'kubectl',
    phase: 'no-op and 10% changed',
    noopSeconds: round(kNoop.seconds),
    changedSeconds: round(kChanged.seconds),
    load: load(),
  });

  print({
    bench: 'agent',
    mode: 'in-cluster',
    objects: 1000,
    agentSeconds: round(first.line.applySeconds),
    kubectlSeconds: round(kFirst.seconds),
    ratio: round(first.line.applySeconds / kFirst.seconds),
    noopSeconds: round(noop.line.seconds),
    changedSeconds: round(changed.line.applySeconds),
    idleRssMb,
    peakRssMb,
  });
} finally {
  await cleanUp();
}
