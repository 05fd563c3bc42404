import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { lockDirectory } from '../../../scripts/build-support.ts';
import type { KubeBinaries } from './kube.ts';
import { formatElapsed, type Log, run, withProgress } from './process.ts';

/** The Go wrapper modules, one per upstream project, under test/bed/kube/. */
export const kubeModulesDir = new URL('../kube/', import.meta.url).pathname;

// Bump when the way binaries are built changes (flags, environment, layout), so
// caches made by the old recipe are rebuilt even though go.mod/go.sum did not change.
const recipeVersion = 1;

interface ModuleBuild {
  /** Directory under test/bed/kube/ holding go.mod and go.sum. */
  readonly module: string;
  /** Binary names this module produces, as they appear in the bin directory. */
  readonly binaries: readonly string[];
  /** `go build` arguments after the common ones: output and packages. */
  args(outDir: string, versions: KubeBinaries['versions']): string[];
}

const builds: readonly ModuleBuild[] = [
  {
    module: 'kubernetes',
    binaries: ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kubectl'],
    // One invocation for all four so the packages they share compile once.
    args: (outDir, v) => [
      '-ldflags',
      ['-s', '-w', ...kubeVersionLdflags(v.kubernetes)].join(' '),
      '-o',
      `${outDir}/`,
      'k8s.io/kubernetes/cmd/kube-apiserver',
      'k8s.io/kubernetes/cmd/kube-controller-manager',
      'k8s.io/kubernetes/cmd/kube-scheduler',
      'k8s.io/kubernetes/cmd/kubectl',
    ],
  },
  {
    module: 'etcd',
    binaries: ['etcd'],
    // The package path ends in /v3, so go build would name the binary "server".
    args: (outDir) => ['-ldflags', '-s -w', '-o', join(outDir, 'etcd'), 'go.etcd.io/etcd/server/v3'],
  },
  {
    module: 'kwok',
    binaries: ['kwok'],
    args: (outDir) => ['-ldflags', '-s -w', '-o', `${outDir}/`, 'sigs.k8s.io/kwok/cmd/kwok'],
  },
];

/** Versions pinned by the wrapper modules' go.mod files, which are the single source of truth. */
export function kubeVersions(): KubeBinaries['versions'] {
  return {
    kubernetes: requiredVersion('kubernetes', 'k8s.io/kubernetes'),
    etcd: requiredVersion('etcd', 'go.etcd.io/etcd/server/v3'),
    kwok: requiredVersion('kwok', 'sigs.k8s.io/kwok'),
  };
}

/**
 * Returns the control-plane binaries, building them from the Go module proxy when
 * they are missing or the wrapper modules changed. A cold build takes several
 * minutes on two cores; afterwards this is a few file reads.
 */
export async function ensureKubeBinaries(opts: { cacheDir: string; log: Log }): Promise<KubeBinaries> {
  const versions = kubeVersions();
  const root = join(opts.cacheDir, 'kube', versions.kubernetes);
  const binDir = join(root, 'bin');
  const wanted = Object.fromEntries(builds.map((b) => [b.module, moduleStamp(b.module)]));
  if (!isStale(binDir, wanted)) return binaries(binDir, versions);

  mkdirSync(root, { recursive: true });
  const unlock = await lockDirectory(join(root, 'build.lock'), opts.log, 'the Kubernetes binaries');
  try {
    // Another process may have finished the same build while this one waited.
    if (!isStale(binDir, wanted)) return binaries(binDir, versions);
    await build(root, binDir, wanted, versions, opts.log);
    return binaries(binDir, versions);
  } finally {
    unlock();
  }
}

async function build(
  root: string,
  binDir: string,
  wanted: Record<string, string>,
  versions: KubeBinaries['versions'],
  log: Log,
): Promise<void> {
  const go = process.env.GO ?? 'go';
  await run(go, ['version']).catch((err: unknown) => {
    throw new Error(
      `building the Kubernetes binaries needs the Go toolchain (go on PATH or $GO): ${String(err)}`,
    );
  });
  // Only the lock holder creates these, so any left over come from a build that was killed.
  for (const n of readdirSync(root)) {
    if (n.startsWith('bin.tmp-') || n.startsWith('bin.old-'))
      rmSync(join(root, n), { recursive: true, force: true });
  }
  const old = readStamp(binDir);
  const tmp = join(root, `bin.tmp-${process.pid}-${Date.now()}`);
  mkdirSync(tmp, { recursive: true });
  const started = Date.now();
  try {
    for (const b of builds) {
      const reusable =
        old?.[b.module] === wanted[b.module] && b.binaries.every((n) => existsSync(join(binDir, n)));
      if (reusable) {
        for (const n of b.binaries) hardlinkOrCopy(join(binDir, n), join(tmp, n));
        continue;
      }
      const label = `building ${b.binaries.join(', ')} (${b.module} module)`;
      await withProgress(
        log,
        label,
        // -buildvcs=false: the wrapper sits in this git work tree, and stamping its state
        // would fail where git refuses the directory and make builds differ per checkout.
        run(go, ['build', '-trimpath', '-buildvcs=false', ...b.args(tmp, versions)], {
          cwd: join(kubeModulesDir, b.module),
          env: {
            ...process.env,
            // Static binaries, as upstream releases them, and no C toolchain needed.
            CGO_ENABLED: '0',
            // A go.work further up the tree must not change what these modules resolve to.
            GOWORK: 'off',
          },
        }),
      );
    }
    await writeKwokStages(tmp, go);
    writeFileSync(join(tmp, 'stamp.json'), `${JSON.stringify(wanted, null, 2)}\n`);
    // Swap directories so readers only ever see a complete bin/.
    const aside = `${binDir}.old-${process.pid}-${Date.now()}`;
    if (existsSync(binDir)) renameSync(binDir, aside);
    renameSync(tmp, binDir);
    rmSync(aside, { recursive: true, force: true });
    log(`Kubernetes binaries ready in ${binDir} (${formatElapsed(Date.now() - started)})`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * The kwok binary ships no stages of its own (kwokctl normally passes them), so the
 * node and pod stages are taken from the same kwok module version and written as a
 * kwok config: nodes become Ready and renew leases, pods become Running and Ready.
 */
async function writeKwokStages(outDir: string, go: string): Promise<void> {
  const moduleDir = (
    await run(go, ['list', '-m', '-f', '{{.Dir}}', 'sigs.k8s.io/kwok'], {
      cwd: join(kubeModulesDir, 'kwok'),
      env: { ...process.env, GOWORK: 'off' },
    })
  ).trim();
  const stageFiles = [
    'kustomize/stage/node/fast/node-initialize.yaml',
    'kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml',
    'kustomize/stage/pod/fast/pod-ready.yaml',
    'kustomize/stage/pod/fast/pod-complete.yaml',
    'kustomize/stage/pod/fast/pod-delete.yaml',
  ];
  const docs = stageFiles.map((f) => readFileSync(join(moduleDir, f), 'utf8').trim());
  writeFileSync(join(outDir, 'kwok-stages.yaml'), `${docs.join('\n---\n')}\n`);
}

function binaries(dir: string, versions: KubeBinaries['versions']): KubeBinaries {
  return {
    dir,
    etcd: join(dir, 'etcd'),
    kubeApiserver: join(dir, 'kube-apiserver'),
    kubeControllerManager: join(dir, 'kube-controller-manager'),
    kubeScheduler: join(dir, 'kube-scheduler'),
    kubectl: join(dir, 'kubectl'),
    kwok: join(dir, 'kwok'),
    kwokConfig: join(dir, 'kwok-stages.yaml'),
    versions,
  };
}

function kubeVersionLdflags(gitVersion: string): string[] {
  const match = /^v(\d+)\.(\d+)\./.exec(gitVersion);
  if (!match) throw new Error(`unexpected Kubernetes version ${gitVersion}`);
  const [, major, minor] = match as unknown as [string, string, string];
  const vars = {
    gitVersion,
    gitMajor: major,
    gitMinor: minor,
    gitTreeState: 'clean',
    // Fixed so that rebuilding gives the same bytes; the servers only print it.
    buildDate: '1970-01-01T00:00:00Z',
  };
  // component-base serves /version and --version; client-go's copy is what kubectl reports.
  return ['k8s.io/component-base/version', 'k8s.io/client-go/pkg/version'].flatMap((pkg) =>
    Object.entries(vars).map(([k, v]) => `-X ${pkg}.${k}=${v}`),
  );
}

function requiredVersion(module: string, path: string): string {
  const goMod = readFileSync(join(kubeModulesDir, module, 'go.mod'), 'utf8');
  const escaped = path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const match = new RegExp(`^\\s*(?:require\\s+)?${escaped}\\s+(v\\S+)`, 'm').exec(goMod);
  if (!match?.[1]) throw new Error(`${module}/go.mod does not require ${path}`);
  return match[1];
}

function moduleStamp(module: string): string {
  const hash = createHash('sha256').update(`recipe ${recipeVersion}\n`);
  for (const f of ['go.mod', 'go.sum']) hash.update(readFileSync(join(kubeModulesDir, module, f)));
  return hash.digest('hex');
}

function readStamp(binDir: string): Record<string, string> | undefined {
  try {
    return JSON.parse(readFileSync(join(binDir, 'stamp.json'), 'utf8')) as Record<string, string>;
  } catch {
    return undefined;
  }
}

function isStale(binDir: string, wanted: Record<string, string>): boolean {
  const have = readStamp(binDir);
  if (!have) return true;
  if (!existsSync(join(binDir, 'kwok-stages.yaml'))) return true;
  return builds.some(
    (b) => have[b.module] !== wanted[b.module] || b.binaries.some((n) => !existsSync(join(binDir, n))),
  );
}

function hardlinkOrCopy(from: string, to: string): void {
  try {
    linkSync(from, to);
  } catch {
    copyFileSync(from, to);
  }
}
