/**
 * Manual check of the Kubernetes part of the bed: builds (or reuses) the binaries,
 * starts one plane alone and then three at once, deploys with the real kubectl and
 * server-side apply, finalizes a namespace, reports start-up times and peak RSS, and
 * checks that stop() leaves no process behind.
 *
 *   node test/bed/kube/smoke.ts [work-dir]
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ControlPlane, ensureKubeBinaries, type KubeBinaries, startControlPlane } from '../src/kube.ts';

const workDir = process.argv[2] ?? join(tmpdir(), `flotilla-kube-smoke-${process.pid}`);
// Same default as the bed's, without importing the rest of the bed.
const cacheDir = process.env.FLOTILLA_CACHE_DIR ?? join(homedir(), '.cache', 'flotilla');
const log = (line: string) => process.stderr.write(`[kube-smoke] ${line}\n`);
const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  replicas: 2
  selector:
    matchLabels: { app: web }
  template:
    metadata:
      labels: { app: web }
    spec:
      containers:
      - name: web
        image: registry.k8s.io/pause:3.10
`;

function kubectl(bins: KubeBinaries, plane: ControlPlane, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(bins.kubectl, [`--kubeconfig=${plane.kubeconfigPath}`, ...args]);
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0
        ? resolve(out)
        : reject(new Error(`kubectl ${args.join(' ')} (${plane.name}): ${err}${out}`)),
    );
    child.stdin.end(input ?? '');
  });
}

function rssKiB(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function processName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

/**
 * Bed binaries running on this run's directory, found through /proc. Matching on the
 * work directory too leaves alone planes that other runs start from the same binaries.
 */
function leftovers(bins: KubeBinaries): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        const cmdline = readFileSync(`/proc/${d}/cmdline`, 'utf8');
        return cmdline.startsWith(bins.dir) && cmdline.includes(workDir);
      } catch {
        return false;
      }
    })
    .map(Number);
}

async function main(): Promise<void> {
  rmSync(workDir, { recursive: true, force: true });
  let t = Date.now();
  const bins = await ensureKubeBinaries({ cacheDir, log });
  log(`binaries: ${JSON.stringify(bins.versions)} in ${((Date.now() - t) / 1000).toFixed(1)}s`);

  t = Date.now();
  const solo = await startControlPlane({ name: 'solo', dir: join(workDir, 'solo'), bins, log });
  const soloStart = (Date.now() - t) / 1000;
  const soloRss = solo.pids.reduce((sum, pid) => sum + rssKiB(pid), 0);
  log(
    `one plane: started in ${soloStart.toFixed(1)}s, RSS ${(soloRss / 1024).toFixed(0)} MiB right after start`,
  );
  log(`  kubectl version: ${(await kubectl(bins, solo, ['version'])).replace(/\n/g, ' | ')}`);
  await solo.stop();

  t = Date.now();
  const planes = await Promise.all(
    ['spoke-a', 'spoke-b', 'spoke-c'].map((name) =>
      startControlPlane({ name, dir: join(workDir, name), bins, log }),
    ),
  );
  const threeStart = (Date.now() - t) / 1000;
  log(`three planes: started concurrently in ${threeStart.toFixed(1)}s`);
  const servers = new Set(planes.map((p) => p.server));
  if (servers.size !== 3) throw new Error(`planes share a server: ${[...servers].join(', ')}`);

  const allPids = planes.flatMap((p) => p.pids);
  let peak = 0;
  let peakByName = new Map<string, number>();
  const sample = () => {
    const byName = new Map<string, number>();
    let total = 0;
    for (const pid of allPids) {
      const kib = rssKiB(pid);
      total += kib;
      const n = processName(pid);
      byName.set(n, (byName.get(n) ?? 0) + kib);
    }
    if (total > peak) {
      peak = total;
      peakByName = byName;
    }
  };
  sample();
  const sampler = setInterval(sample, 500);

  try {
    const [a, b, c] = planes as [ControlPlane, ControlPlane, ControlPlane];
    for (const plane of [a, b]) {
      await kubectl(
        bins,
        plane,
        ['apply', '--server-side', '--field-manager=flotilla-smoke', '-f', '-'],
        deployment,
      );
    }
    for (const plane of [a, b]) {
      const obj = JSON.parse(
        await kubectl(bins, plane, ['get', 'deployment', 'web', '-o', 'json', '--show-managed-fields']),
      ) as {
        metadata: { managedFields?: { manager?: string; operation?: string }[] };
      };
      const managers = (obj.metadata.managedFields ?? []).map((f) => `${f.manager}/${f.operation}`);
      if (!managers.includes('flotilla-smoke/Apply')) {
        throw new Error(`${plane.name}: managedFields lack flotilla-smoke/Apply: ${managers.join(', ')}`);
      }
      log(`${plane.name}: managedFields ${managers.join(', ')}`);
    }
    t = Date.now();
    await Promise.all(
      [a, b].map((plane) => kubectl(bins, plane, ['rollout', 'status', 'deployment/web', '--timeout=90s'])),
    );
    for (const plane of [a, b]) {
      const available = await kubectl(bins, plane, [
        'get',
        'deployment',
        'web',
        '-o',
        'jsonpath={.status.conditions[?(@.type=="Available")].status} {.status.availableReplicas}',
      ]);
      if (available !== 'True 2')
        throw new Error(`${plane.name}: deployment web not Available: ${available}`);
      const pods = await kubectl(bins, plane, ['get', 'pods', '-o', 'wide', '--no-headers']);
      log(`${plane.name}: Available=True, 2/2 replicas; pods:\n${pods.trimEnd()}`);
    }
    log(`rollouts Available in ${((Date.now() - t) / 1000).toFixed(1)}s`);
    const cDeploys = await kubectl(bins, c, ['get', 'deployments', '-A', '--no-headers']);
    if (cDeploys.trim() !== '') throw new Error(`spoke-c is not independent: it has ${cDeploys}`);

    // Namespace finalization needs the controller-manager's namespace controller.
    await kubectl(bins, a, ['create', 'namespace', 'doomed']);
    await kubectl(bins, a, ['-n', 'doomed', 'create', 'configmap', 'x', '--from-literal=a=b']);
    await kubectl(bins, a, [
      '-n',
      'doomed',
      'create',
      'deployment',
      'd',
      '--image=registry.k8s.io/pause:3.10',
    ]);
    const token = await kubectl(bins, a, [
      '-n',
      'doomed',
      'get',
      'configmap',
      'kube-root-ca.crt',
      '-o',
      'name',
    ]);
    log(`spoke-a: root CA published into new namespace (${token.trim()})`);
    t = Date.now();
    await kubectl(bins, a, ['delete', 'namespace', 'doomed', '--wait=false']);
    await kubectl(bins, a, ['wait', '--for=delete', 'namespace/doomed', '--timeout=90s']);
    log(`spoke-a: namespace doomed finalized and gone in ${((Date.now() - t) / 1000).toFixed(1)}s`);
    sample();
  } finally {
    clearInterval(sampler);
    const breakdown = [...peakByName].map(([n, k]) => `${n} ${(k / 1024).toFixed(0)} MiB`).join(', ');
    log(
      `peak RSS, three planes (${allPids.length} processes): ${(peak / 1024).toFixed(0)} MiB (${breakdown})`,
    );
    t = Date.now();
    await Promise.all(planes.map((p) => p.stop()));
    log(`stopped three planes in ${((Date.now() - t) / 1000).toFixed(1)}s`);
  }
  const alive = allPids.filter((pid) => existsSync(`/proc/${pid}`));
  const stray = leftovers(bins);
  if (alive.length > 0 || stray.length > 0) {
    throw new Error(`processes left behind: ${[...alive, ...stray].join(', ')}`);
  }
  log('no process left behind');
  rmSync(workDir, { recursive: true, force: true });
  log('smoke check passed');
}

main().catch((err: unknown) => {
  process.stderr.write(`[kube-smoke] FAILED: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
