import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ControlPlane, StartControlPlaneOptions } from './kube.ts';
import { generatePki, type PlanePki, serviceClusterIpRange } from './kube-certs.ts';
import { type KubeConnection, kubeRequest } from './kube-client.ts';
import {
  BedProcessError,
  formatElapsed,
  freePort,
  logTail,
  type ManagedProcess,
  startProcess,
  waitUntilReady,
} from './process.ts';

/** Annotation kwok is told to select on, so it only ever fakes the nodes the bed made. */
const kwokNodeAnnotation = 'kwok.x-k8s.io/node';
const podCidr = '10.244.0.0/16';

/** What `<dir>/plane.json` holds while a plane runs, for cleanup by another process. */
export interface PlaneStateFile {
  readonly name: string;
  readonly server: string;
  readonly kubeconfigPath: string;
  readonly ownerPid: number;
  readonly processes: readonly { readonly name: string; readonly pid: number; readonly log: string }[];
}

/**
 * Starts one independent control plane (own etcd, CA and ports) and resolves once it
 * can run workloads: API server ready, default service account minted, fake nodes
 * Ready and untainted. On failure every process already started is stopped and the
 * error names the process and quotes the end of its log.
 */
export async function startControlPlane(opts: StartControlPlaneOptions): Promise<ControlPlane> {
  const started = Date.now();
  const deadline = started + (opts.timeoutMs ?? 120_000);
  const remaining = () => Math.max(1_000, deadline - Date.now());
  const { bins, name, dir } = opts;
  const nodeCount = opts.nodes ?? 1;
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name)) {
    throw new Error(`control plane name ${JSON.stringify(name)} must be a DNS label`);
  }
  // A fresh plane every time: stale etcd data or certificates from an earlier run would
  // make it neither independent nor reproducible.
  for (const sub of ['pki', 'etcd', 'logs', 'kubeconfigs', 'kubeconfig', 'plane.json']) {
    rmSync(join(dir, sub), { recursive: true, force: true });
  }
  const logs = join(dir, 'logs');
  mkdirSync(logs, { recursive: true });
  mkdirSync(join(dir, 'kubeconfigs'), { recursive: true });

  const procs: ManagedProcess[] = [];
  const kubeconfigPath = join(dir, 'kubeconfig');
  let server = '';
  const writeState = () => {
    const state: PlaneStateFile = {
      name,
      server,
      kubeconfigPath,
      ownerPid: process.pid,
      processes: procs.map((p) => ({ name: p.name, pid: p.pid, log: p.logPath })),
    };
    writeFileSync(join(dir, 'plane.json'), `${JSON.stringify(state, null, 2)}\n`);
  };
  const spawnTracked = (procName: string, command: string, args: string[]): ManagedProcess => {
    const p = startProcess({
      name: `${name}/${procName}`,
      command,
      args,
      logPath: join(logs, `${procName}.log`),
    });
    procs.push(p);
    writeState();
    return p;
  };

  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= stopPlane(procs).then(() => rmSync(join(dir, 'plane.json'), { force: true }));
    return stopped;
  };

  // Phase times go into the ready line, so a slow start shows where it went.
  const phases: string[] = [];
  let phaseStart = Date.now();
  const phase = (what: string) => {
    phases.push(`${what} ${((Date.now() - phaseStart) / 1000).toFixed(1)}s`);
    phaseStart = Date.now();
  };

  try {
    const pki = await generatePki(join(dir, 'pki'), name);
    phase('certs');

    const etcdUrl = await withFreshPorts(async () => {
      const [clientPort, peerPort] = await ports(2);
      const url = `http://127.0.0.1:${clientPort}`;
      const peer = `http://127.0.0.1:${peerPort}`;
      const etcd = spawnTracked('etcd', bins.etcd, [
        `--name=${name}`,
        `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=${url}`,
        `--advertise-client-urls=${url}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=${name}=${peer}`,
        // Throwaway data: durability buys nothing and fsync dominates write latency.
        '--unsafe-no-fsync=true',
        '--log-level=warn',
      ]);
      await waitUntilReady(etcd, () => etcdHealthy(url), Math.min(30_000, remaining()));
      return url;
    }, procs);
    phase('etcd');

    const conn = await withFreshPorts(async () => {
      const port = await onePort();
      server = `https://127.0.0.1:${port}`;
      const c: KubeConnection = {
        server,
        ca: readFileSync(pki.ca.cert, 'utf8'),
        cert: readFileSync(pki.admin.cert, 'utf8'),
        key: readFileSync(pki.admin.key, 'utf8'),
      };
      const apiserver = spawnTracked('kube-apiserver', bins.kubeApiserver, apiserverArgs(pki, etcdUrl, port));
      await waitUntilReady(
        apiserver,
        async () => (await kubeRequest(c, 'GET', '/readyz')).status === 200,
        Math.min(90_000, remaining()),
      );
      return c;
    }, procs);
    phase('apiserver');

    writeFileSync(kubeconfigPath, kubeconfig(name, 'admin', server, pki.ca.cert, pki.admin, true), {
      mode: 0o600,
    });
    const componentConfig = (component: string, pair: { cert: string; key: string }) => {
      const path = join(dir, 'kubeconfigs', `${component}.kubeconfig`);
      writeFileSync(path, kubeconfig(name, component, server, pki.ca.cert, pair, false), { mode: 0o600 });
      return path;
    };

    const nodes = Array.from({ length: nodeCount }, (_, i) => `kwok-node-${i}`);
    for (const node of nodes) await createNode(conn, node);

    const components = [
      spawnTracked('kube-controller-manager', bins.kubeControllerManager, [
        `--kubeconfig=${componentConfig('kube-controller-manager', pki.controllerManager)}`,
        // No serving port: nothing scrapes it, and fixed default ports would clash between planes.
        '--secure-port=0',
        '--leader-elect=false',
        `--cluster-name=${name}`,
        // One identity for all controllers (see kube-certs.ts): halves the plane's start time.
        '--use-service-account-credentials=false',
        `--service-account-private-key-file=${pki.serviceAccount.key}`,
        `--root-ca-file=${pki.ca.cert}`,
        `--cluster-signing-cert-file=${pki.ca.cert}`,
        `--cluster-signing-key-file=${pki.ca.key}`,
        `--service-cluster-ip-range=${serviceClusterIpRange}`,
      ]),
      spawnTracked('kube-scheduler', bins.kubeScheduler, [
        `--kubeconfig=${componentConfig('kube-scheduler', pki.scheduler)}`,
        '--secure-port=0',
        '--leader-elect=false',
      ]),
      spawnTracked('kwok', bins.kwok, [
        `--kubeconfig=${componentConfig('kwok', pki.kwok)}`,
        `--config=${bins.kwokConfig}`,
        '--manage-all-nodes=false',
        `--manage-nodes-with-annotation-selector=${kwokNodeAnnotation}=fake`,
        // Leases are how the node lifecycle controller judges a node alive.
        '--node-lease-duration-seconds=40',
        `--cidr=${podCidr}`,
        '--node-ip=127.0.0.1',
      ]),
    ];

    await waitForAll(
      procs,
      [
        {
          what: 'service account default/default',
          probe: async () =>
            (await kubeRequest(conn, 'GET', '/api/v1/namespaces/default/serviceaccounts/default')).status ===
            200,
        },
        ...nodes.map((node) => ({
          what: `node ${node} Ready and untainted`,
          probe: () => nodeSchedulable(conn, node),
        })),
      ],
      remaining(),
      components,
    );
    phase('nodes and service account');

    opts.log(
      `control plane ${name} ready at ${server} in ${formatElapsed(Date.now() - started)} (${phases.join(', ')})`,
    );
    return {
      name,
      dir,
      server,
      kubeconfigPath,
      pids: procs.map((p) => p.pid),
      nodes,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

function apiserverArgs(pki: PlanePki, etcdUrl: string, port: number): string[] {
  return [
    `--etcd-servers=${etcdUrl}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    `--secure-port=${port}`,
    `--tls-cert-file=${pki.apiserver.cert}`,
    `--tls-private-key-file=${pki.apiserver.key}`,
    `--client-ca-file=${pki.ca.cert}`,
    // Every request must carry a client certificate or token.
    '--anonymous-auth=false',
    '--authorization-mode=Node,RBAC',
    // The TokenRequest API (POST .../serviceaccounts/<sa>/token) needs the issuer and the
    // signing key: local agents run on their service account's token from it, as pods do.
    `--service-account-key-file=${pki.serviceAccount.pub}`,
    `--service-account-signing-key-file=${pki.serviceAccount.key}`,
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    `--service-cluster-ip-range=${serviceClusterIpRange}`,
    // A loopback address is not a valid endpoint of the kubernetes Service, so the
    // reconciler would only log errors; nothing in these clusters dials it.
    '--endpoint-reconciler-type=none',
    '--allow-privileged=true',
    '--profiling=false',
  ];
}

/**
 * Runs `attempt` with newly picked ports, again when a process lost a port race to
 * another program (ports are free when picked but not reserved).
 */
async function withFreshPorts<T>(attempt: () => Promise<T>, procs: ManagedProcess[]): Promise<T> {
  for (let i = 1; ; i++) {
    const before = procs.length;
    try {
      return await attempt();
    } catch (err) {
      const clash = err instanceof BedProcessError && /address already in use/i.test(err.message);
      if (!clash || i >= 3) throw err;
      // Drop the failed process so stop() and plane.json only list live ones.
      for (const p of procs.splice(before)) await p.stop(1_000);
    }
  }
}

// Ports handed out by this process: two planes starting at once must not get the same one.
const handedOut = new Set<number>();

async function ports(count: number): Promise<number[]> {
  const out: number[] = [];
  while (out.length < count) {
    const p = await freePort();
    if (handedOut.has(p)) continue;
    handedOut.add(p);
    out.push(p);
  }
  return out;
}

async function onePort(): Promise<number> {
  const [p] = await ports(1);
  if (p === undefined) throw new Error('unreachable: no port');
  return p;
}

async function etcdHealthy(url: string): Promise<boolean> {
  const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2_000) });
  if (!res.ok) return false;
  return ((await res.json()) as { health?: string }).health === 'true';
}

async function createNode(conn: KubeConnection, name: string): Promise<void> {
  const res = await kubeRequest(conn, 'POST', '/api/v1/nodes', {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      annotations: { [kwokNodeAnnotation]: 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
      labels: {
        'kubernetes.io/arch': 'amd64',
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/role': 'agent',
        'node-role.kubernetes.io/agent': '',
        type: 'kwok',
      },
    },
    // No kwok taint: ordinary Deployments from the fleet repo must schedule here as is.
    spec: {},
  });
  if (res.status !== 201) throw new Error(`creating node ${name}: HTTP ${res.status} ${res.body}`);
}

interface NodeView {
  spec?: { taints?: { effect?: string }[] };
  status?: { conditions?: { type?: string; status?: string }[] };
}

async function nodeSchedulable(conn: KubeConnection, name: string): Promise<boolean> {
  const res = await kubeRequest(conn, 'GET', `/api/v1/nodes/${name}`);
  if (res.status !== 200) return false;
  const node = JSON.parse(res.body) as NodeView;
  const ready = node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
  const blocked =
    node.spec?.taints?.some((t) => t.effect === 'NoSchedule' || t.effect === 'NoExecute') ?? false;
  return ready && !blocked;
}

/**
 * Polls every probe until all pass. A process that exits meanwhile fails the wait at
 * once, naming it; on timeout the unmet conditions and the logs of `suspects` are quoted.
 */
async function waitForAll(
  procs: readonly ManagedProcess[],
  probes: readonly { what: string; probe: () => Promise<boolean> }[],
  timeoutMs: number,
  suspects: readonly ManagedProcess[],
): Promise<void> {
  const exits = new Map<ManagedProcess, string>();
  for (const p of procs) void p.exited.then((how) => exits.set(p, how));
  const pending = new Set(probes);
  const deadline = Date.now() + timeoutMs;
  while (pending.size > 0) {
    const [dead, how] = [...exits][0] ?? [];
    if (dead) {
      throw new BedProcessError(`${dead.name} exited (${how}) during start:\n${logTail(dead.logPath)}`);
    }
    if (Date.now() > deadline) {
      const what = [...pending].map((p) => p.what).join(', ');
      const tails = suspects.map((p) => `--- ${p.name} (${p.logPath}):\n${logTail(p.logPath, 8)}`).join('\n');
      throw new BedProcessError(`not ready within ${timeoutMs / 1000}s: ${what}\n${tails}`);
    }
    for (const p of [...pending]) {
      if (await p.probe().catch(() => false)) pending.delete(p);
    }
    if (pending.size > 0) await sleep(250);
  }
}

/** Clients first, so none of them logs errors about a vanished API server; etcd last. */
async function stopPlane(procs: readonly ManagedProcess[]): Promise<void> {
  const byName = (suffix: string) => procs.filter((p) => p.name.endsWith(`/${suffix}`));
  const apiserver = byName('kube-apiserver');
  const etcd = byName('etcd');
  const clients = procs.filter((p) => !apiserver.includes(p) && !etcd.includes(p));
  for (const group of [clients, apiserver, etcd]) {
    await Promise.all(group.map((p) => p.stop(5_000)));
  }
}

function kubeconfig(
  name: string,
  user: string,
  server: string,
  caPath: string,
  client: { cert: string; key: string },
  embed: boolean,
): string {
  // The admin kubeconfig embeds its credentials so it still works when copied elsewhere.
  const field = (key: string, path: string) =>
    embed ? `${key}-data: ${readFileSync(path).toString('base64')}` : `${key}: ${JSON.stringify(path)}`;
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: ${name}`,
    '  cluster:',
    `    server: ${server}`,
    `    ${field('certificate-authority', caPath)}`,
    'users:',
    `- name: ${name}-${user}`,
    '  user:',
    `    ${field('client-certificate', client.cert)}`,
    `    ${field('client-key', client.key)}`,
    'contexts:',
    `- name: ${name}`,
    '  context:',
    `    cluster: ${name}`,
    `    user: ${name}-${user}`,
    `current-context: ${name}`,
    '',
  ].join('\n');
}
