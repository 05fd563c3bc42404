/**
 * `npm run bench:render`: Flotilla's render worker (renderer/, Helm and kustomize linked
 * into one long-lived Go process, driven through `RendererClient`) against one CLI
 * process per variant, the way Argo CD's repo server renders: write the values file or
 * the overlay to disk, spawn `helm template` / `kustomize build`, read stdout. Both
 * sides render the same variants of the same corpus (test/fixtures/renderer/bench/):
 *
 *   helm:      a chart with helpers, a Deployment, Service, ConfigMap, Ingress, HPA and
 *              ServiceAccount, a `keystore` subchart and a values.schema.json; a variant
 *              is one region's values (replicas, image tag, region label, hosts, ...).
 *   kustomize: a base with generators, two components (strategic-merge and JSON 6902
 *              patches); a variant is one region's overlay (namespace, namePrefix, labels,
 *              images, replicas, a merged configMapGenerator, both kinds of patch and a
 *              replacement), generated here.
 *
 * Every variant's output is compared, object by object, between the two sides; the run
 * fails on the first difference, so both sides are known to do the same work. Both are
 * warmed up first, then take turns in three slices: the worker's side renders every
 * variant round after round for a third of `--seconds` (every round must give the same
 * bytes as its first); the CLI side renders the next third of the variants,
 * `--cli-concurrency` processes at a time, so each variant once in all.
 *
 * Prints one JSON line per tool on stdout, then the headline line. Linux only: CPU
 * times come from /proc.
 *
 * Options: --variants N (per tool, default 96), --seconds S (worker's timed rounds,
 * default 6), --in-flight N (requests written to the worker ahead of their answers,
 * default 4), --workers N (RendererClients, one worker process each), --cli-concurrency N
 * (CLI processes at a time); both default to the machine's cores, so that each side may
 * use the whole machine (a worker renders one request at a time). --binary PATH runs
 * another build of the worker, to compare before and after a change.
 */
import { spawn } from 'node:child_process';
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual, parseArgs } from 'node:util';
import { ensureReferenceTools, ensureRenderer } from '@flotilla/renderer/build.ts';
import {
  type EncodedFiles,
  encodeFiles,
  RendererClient,
  type RenderRequest,
} from '@flotilla/renderer/client.ts';
import { parseAllDocuments } from 'yaml';

const { values: opts } = parseArgs({
  options: {
    variants: { type: 'string', default: '96' },
    // Another build of the worker (to compare before and after a change); ours by default.
    binary: { type: 'string' },
    seconds: { type: 'string', default: '6' },
    'in-flight': { type: 'string', default: '4' },
    workers: { type: 'string', default: String(availableParallelism()) },
    'cli-concurrency': { type: 'string', default: String(availableParallelism()) },
  },
});
const variantCount = positive('variants', opts.variants);
const workerSeconds = Number(opts.seconds);
const inFlight = positive('in-flight', opts['in-flight']);
const workerCount = positive('workers', opts.workers);
const cliConcurrency = positive('cli-concurrency', opts['cli-concurrency']);

const log = (line: string) => process.stderr.write(`[bench:render] ${line}\n`);
const print = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(o)}\n`);
const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;
const load = () => round(loadavg()[0] ?? 0);

function positive(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`--${name} must be a positive integer, not ${JSON.stringify(text)}`);
  return n;
}

const corpus = fileURLToPath(new URL('../test/fixtures/renderer/bench/', import.meta.url));
const chartDir = join(corpus, 'chart');
const kustomizeDir = join(corpus, 'kustomize');

// ---------------------------------------------------------------------------------------
// Variants

const areas = [
  'eu-west',
  'eu-central',
  'eu-north',
  'us-east',
  'us-west',
  'ap-south',
  'ap-northeast',
  'sa-east',
];
/** Distinct, realistic region names: eu-west-1, eu-central-1, ..., eu-west-2, ... */
const regionOf = (i: number) => `${areas[i % areas.length]}-${1 + Math.floor(i / areas.length)}`;

interface HelmVariant {
  readonly region: string;
  readonly releaseName: string;
  readonly namespace: string;
  readonly values: Record<string, unknown>;
}

/** One region's values: what a fleet admin sets per cluster group. */
function helmVariant(i: number): HelmVariant {
  const region = regionOf(i);
  const host = `shop.${region}.example.com`;
  return {
    region,
    releaseName: `shop-${region}`,
    namespace: `shop-${region}`,
    values: {
      replicaCount: 2 + (i % 4),
      region,
      environment: i % 5 === 4 ? 'staging' : 'production',
      image: { tag: `2.7.${i}` },
      podAnnotations: { 'shop.example.com/rollout': `r${i}` },
      ingress: {
        hosts: [{ host, paths: [{ path: '/', pathType: 'Prefix' }] }],
        tls: i % 2 === 0 ? [{ secretName: `shop-${region}-tls`, hosts: [host] }] : [],
      },
      autoscaling: { enabled: i % 3 === 0, maxReplicas: 6 + (i % 5) },
      config: { currency: i % areas.length < 3 ? 'EUR' : 'USD', features: { giftCards: i % 2 === 0 } },
      env: [{ name: 'REGION_CELL', value: `cell-${i}` }],
      nodeSelector: { 'topology.kubernetes.io/region': region },
      keystore: { enabled: i % 4 !== 3, persistence: { size: `${1 + (i % 3)}Gi` } },
    },
  };
}

interface KustomizeVariant {
  readonly region: string;
  /** The overlay directory, relative to the kustomization tree. */
  readonly dir: string;
  /** The overlay's files, relative to the tree. */
  readonly files: Readonly<Record<string, string>>;
}

/** One region's overlay of the catalog base, as a fleet repo would hold it. */
function kustomizeVariant(i: number): KustomizeVariant {
  const region = regionOf(i);
  const dir = `overlays/${region}`;
  const kustomization = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: catalog-${region}
namePrefix: ${region}-
resources:
  - ../../base
components:
  - ../../components/monitoring
${i % 2 === 0 ? '  - ../../components/hardening\n' : ''}labels:
  - pairs:
      topology.example.com/region: ${region}
images:
  - name: catalog
    newName: registry.example.com/shop/catalog
    newTag: "3.1.${i}"
  - name: envoy
    newName: registry.example.com/mirror/envoy
    newTag: v1.31.${i % 4}
replicas:
  - name: catalog
    count: ${2 + (i % 4)}
configMapGenerator:
  - name: catalog-config
    behavior: merge
    literals:
      - REGION=${region}
      - LOG_LEVEL=${i % 3 === 0 ? 'debug' : 'warn'}
patches:
  - path: resources.yaml
  - target:
      version: v1
      kind: Service
      name: catalog
    patch: |-
      - op: add
        path: /metadata/annotations
        value:
          service.beta.kubernetes.io/aws-load-balancer-internal: "${i % 2 === 0}"
replacements:
  - source:
      kind: Service
      name: catalog
      fieldPath: metadata.name
    targets:
      - select:
          kind: Deployment
          name: catalog
        fieldPaths:
          - spec.template.spec.containers.[name=catalog].env.[name=PUBLIC_SERVICE].value
`;
  const resources = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: catalog
spec:
  template:
    spec:
      containers:
        - name: catalog
          resources:
            limits:
              memory: ${256 + 64 * (i % 4)}Mi
`;
  return {
    region,
    dir,
    files: { [`${dir}/kustomization.yaml`]: kustomization, [`${dir}/resources.yaml`]: resources },
  };
}

// ---------------------------------------------------------------------------------------
// Helpers

/** Every file under `dir`, by slash-separated relative path. */
function readTree(dir: string, prefix = ''): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    const rel = prefix ? `${prefix}/${name}` : name;
    if (statSync(path).isDirectory()) Object.assign(out, readTree(path, rel));
    else out[rel] = readFileSync(path);
  }
  return out;
}

/** CPU seconds from /proc: a process's own, and that of its children it has waited for. */
function cpuSeconds(pid: number | 'self'): { own: number; children: number } {
  // Fields after the command (which may hold spaces), counted from field 3: utime is 14,
  // stime 15, cutime 16, cstime 17. USER_HZ is 100 on Linux.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  const at = (n: number) => f[n - 3] ?? 0;
  return { own: (at(14) + at(15)) / 100, children: (at(16) + at(17)) / 100 };
}

/** VmHWM of a process, in MB. */
function peakRssMb(pid: number): number {
  const kb = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return round(Number(kb ?? 0) / 1024);
}

/** Runs `command`, resolving with its stdout; a non-zero exit is an error carrying its stderr. */
function capture(
  command: string,
  args: readonly string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
      else
        reject(
          new Error(
            `${command} ${args.join(' ')} failed (${signal ?? `exit ${code}`}): ${Buffer.concat(err).toString('utf8').trim()}`,
          ),
        );
    });
  });
}

/** Runs `task` over 0..count-1 with at most `concurrency` at a time; results in index order. */
async function pool<T>(count: number, concurrency: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const i = next++;
      results[i] = await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
  return results;
}

/** The objects of a multi-document YAML stream, empty documents dropped. */
function objects(yaml: string): unknown[] {
  return parseAllDocuments(yaml)
    .map((d) => {
      if (d.errors.length > 0) throw new Error(`unparsable output: ${d.errors[0]?.message}`);
      return d.toJS() as unknown;
    })
    .filter((o) => o !== null);
}

/**
 * Throws unless both sides rendered the same objects, in the same order, for every variant.
 * Returns how many of them were also the same bytes.
 */
function compare(
  tool: string,
  names: readonly string[],
  worker: readonly string[],
  cli: readonly string[],
): number {
  let sameBytes = 0;
  names.forEach((name, i) => {
    const w = objects(worker[i] ?? '');
    const c = objects(cli[i] ?? '');
    if (w.length === 0) throw new Error(`${tool} ${name}: the worker rendered no objects`);
    if (w.length !== c.length)
      throw new Error(`${tool} ${name}: the worker rendered ${w.length} objects, the CLI ${c.length}`);
    w.forEach((o, k) => {
      if (!isDeepStrictEqual(o, c[k]))
        throw new Error(
          `${tool} ${name}: object ${k + 1} differs\nworker: ${JSON.stringify(o)}\ncli:    ${JSON.stringify(c[k])}`,
        );
    });
    if (worker[i] === cli[i]) sameBytes++;
  });
  return sameBytes;
}

// ---------------------------------------------------------------------------------------
// The two sides

interface Side {
  /** Variants rendered in the timed part. */
  readonly rendered: number;
  readonly seconds: number;
  /** Both processes' CPU: this one's (client, spawning, pipes) and the renderers'. */
  readonly cpuSeconds: number;
  /** The renderers' share of it: the worker processes', or the CLIs'. */
  readonly rendererCpuSeconds: number;
  /** The largest worker's peak resident size so far (MB); the CLI side has none. */
  readonly peakRssMb?: number;
}

/** A cumulative measurement: add slices of work to it. */
class Meter {
  rendered = 0;
  seconds = 0;
  cpuSeconds = 0;
  rendererCpuSeconds = 0;

  /** Times `work`, which renders `count` variants; `rendererCpu` reads the renderers' CPU so far. */
  async time<T>(count: number, rendererCpu: () => number, work: () => Promise<T>): Promise<T> {
    const self = cpuSeconds('self').own;
    const renderer = rendererCpu();
    const started = performance.now();
    const result = await work();
    this.seconds += (performance.now() - started) / 1000;
    const rendererUsed = rendererCpu() - renderer;
    this.rendererCpuSeconds += rendererUsed;
    this.cpuSeconds += cpuSeconds('self').own - self + rendererUsed;
    this.rendered += count;
    return result;
  }

  side(peakRssMb?: number): Side {
    return { ...this, ...(peakRssMb === undefined ? {} : { peakRssMb }) };
  }
}

/** Timed slices of each side, taken in turn, so that a change of load on a shared machine weighs on both. */
const slices = 3;

/**
 * Both sides of one tool, after a warm-up of each (the worker's first round gives the
 * outputs to compare; the CLI renders two variants untimed). Then, `slices` times in
 * turn: the worker renders every variant, round after round, for a `slices`th of
 * `workerSeconds` (all of a round's requests handed to the clients at once: each keeps
 * `inFlight` written ahead and queues the rest); the CLI renders the next `slices`th of
 * the variants, `cliConcurrency` processes at a time. Every later round of the worker
 * must give the same bytes as its first.
 */
async function measure(
  tool: string,
  clients: readonly RendererClient[],
  requests: () => RenderRequest[],
  renderCli: (i: number) => Promise<string>,
): Promise<{ worker: Side; cli: Side; workerOutputs: string[]; cliOutputs: string[] }> {
  const renderRound = async () =>
    Promise.all(
      requests().map(async (req, i) => {
        const result = await (clients[i % clients.length] as RendererClient).render(req);
        if (!result.ok) throw new Error(`${tool} variant ${i}: the worker failed: ${result.error.message}`);
        return result.manifests;
      }),
    );
  const workerOutputs = await renderRound();
  await renderCli(0);
  await renderCli(Math.min(1, variantCount - 1));

  const workersCpu = () => clients.reduce((s, c) => s + cpuSeconds(c.pid as number).own, 0);
  // The CLIs are children this process has waited for.
  const clisCpu = () => cpuSeconds('self').children;
  const worker = new Meter();
  const cli = new Meter();
  const cliOutputs = new Array<string>(variantCount);
  for (let slice = 0; slice < slices; slice++) {
    const until = ((slice + 1) * workerSeconds) / slices;
    do {
      const again = await worker.time(variantCount, workersCpu, renderRound);
      again.forEach((m, i) => {
        if (m !== workerOutputs[i])
          throw new Error(`${tool} variant ${i}: the worker rendered different bytes on a later round`);
      });
    } while (worker.seconds < until);
    const from = Math.floor((slice * variantCount) / slices);
    const to = Math.floor(((slice + 1) * variantCount) / slices);
    const outputs = await cli.time(to - from, clisCpu, () =>
      pool(to - from, cliConcurrency, (k) => renderCli(from + k)),
    );
    outputs.forEach((o, k) => {
      cliOutputs[from + k] = o;
    });
    log(
      `${tool}: slice ${slice + 1}/${slices}: worker ${worker.rendered} renders in ${worker.seconds.toFixed(2)} s, CLI ${cli.rendered} in ${cli.seconds.toFixed(2)} s (load ${load()})`,
    );
  }
  return {
    worker: worker.side(Math.max(...clients.map((c) => peakRssMb(c.pid as number)))),
    cli: cli.side(),
    workerOutputs,
    cliOutputs,
  };
}

function summary(tool: string, worker: Side, cli: Side, sameBytes: number) {
  const perSecond = worker.rendered / worker.seconds;
  const cliPerSecond = cli.rendered / cli.seconds;
  const line = {
    bench: `render-${tool}`,
    variants: variantCount,
    worker: {
      rendered: worker.rendered,
      seconds: round(worker.seconds, 2),
      perSecond: round(perSecond),
      cpuMsPerVariant: round((worker.cpuSeconds * 1000) / worker.rendered, 2),
      workerCpuMsPerVariant: round((worker.rendererCpuSeconds * 1000) / worker.rendered, 2),
      peakRssMb: worker.peakRssMb,
      workers: workerCount,
      inFlight,
    },
    cli: {
      rendered: cli.rendered,
      seconds: round(cli.seconds, 2),
      perSecond: round(cliPerSecond),
      cpuMsPerVariant: round((cli.cpuSeconds * 1000) / cli.rendered, 2),
      cliCpuMsPerVariant: round((cli.rendererCpuSeconds * 1000) / cli.rendered, 2),
      concurrency: cliConcurrency,
    },
    ratio: round(perSecond / cliPerSecond),
    sameObjects: variantCount,
    sameBytes,
    load: load(),
  };
  print(line);
  log(
    `${tool}: worker ${line.worker.perSecond}/s (${line.worker.cpuMsPerVariant} ms CPU each), CLI ${line.cli.perSecond}/s (${line.cli.cpuMsPerVariant} ms CPU each): ${line.ratio}x; ${variantCount} variants the same objects, ${sameBytes} the same bytes`,
  );
  return { perSecond, cliPerSecond };
}

// ---------------------------------------------------------------------------------------
// Main

const binary = opts.binary ?? (await ensureRenderer({ log }));
const reference = await ensureReferenceTools({ log });
const work = mkdtempSync(join(tmpdir(), 'flotilla-bench-render-'));
// The CLIs get a private home, so they read no user configuration.
const cliEnv: NodeJS.ProcessEnv = {
  ...process.env,
  HOME: work,
  HELM_CACHE_HOME: join(work, 'helm/cache'),
  HELM_CONFIG_HOME: join(work, 'helm/config'),
  HELM_DATA_HOME: join(work, 'helm/data'),
};
const clients = Array.from(
  { length: workerCount },
  () => new RendererClient({ binary, maxInFlight: inFlight }),
);
log(
  `${variantCount} variants per tool; worker: ${workerCount} process(es), ${inFlight} in flight, ${workerSeconds} s of rounds; CLI: ${cliConcurrency} at a time; load ${load()}`,
);

try {
  const versions = await (clients[0] as RendererClient).versions();
  await Promise.all(clients.map((c) => c.versions())); // every worker started before timing

  // Helm. The hub holds a chart's files once and sends them with each variant's values.
  const chartFiles: EncodedFiles = encodeFiles(readTree(chartDir));
  const helmVariants = Array.from({ length: variantCount }, (_, i) => helmVariant(i));
  const valuesDir = join(work, 'values');
  mkdirSync(valuesDir);
  const helmRun = await measure(
    'helm',
    clients,
    () =>
      helmVariants.map((v) => ({
        kind: 'helm',
        files: chartFiles,
        releaseName: v.releaseName,
        namespace: v.namespace,
        values: v.values,
      })),
    (i) => {
      const v = helmVariants[i] as HelmVariant;
      const valuesFile = join(valuesDir, `${v.region}.json`);
      writeFileSync(valuesFile, JSON.stringify(v.values));
      return capture(
        reference.helm,
        ['template', v.releaseName, chartDir, '--namespace', v.namespace, '--include-crds', '-f', valuesFile],
        work,
        cliEnv,
      );
    },
  );
  const helmSame = compare(
    'helm',
    helmVariants.map((v) => v.region),
    helmRun.workerOutputs,
    helmRun.cliOutputs,
  );
  const helm = summary('helm', helmRun.worker, helmRun.cli, helmSame);

  // Kustomize. The base and components are shared; each request carries them and one
  // overlay. The CLI's checkout holds the base and components on disk once, and each
  // overlay is written before its build.
  const encodedBase = encodeFiles(readTree(kustomizeDir));
  const kustomizeVariants = Array.from({ length: variantCount }, (_, i) => kustomizeVariant(i));
  const tree = join(work, 'kustomize');
  cpSync(kustomizeDir, tree, { recursive: true });
  const kustomizeRun = await measure(
    'kustomize',
    clients,
    () =>
      kustomizeVariants.map((v) => ({
        kind: 'kustomize',
        files: { ...encodedBase, ...encodeFiles(v.files) },
        dir: v.dir,
      })),
    (i) => {
      const v = kustomizeVariants[i] as KustomizeVariant;
      for (const [path, content] of Object.entries(v.files)) {
        mkdirSync(dirname(join(tree, path)), { recursive: true });
        writeFileSync(join(tree, path), content);
      }
      return capture(reference.kustomize, ['build', v.dir], tree, cliEnv);
    },
  );
  const kustomizeSame = compare(
    'kustomize',
    kustomizeVariants.map((v) => v.region),
    kustomizeRun.workerOutputs,
    kustomizeRun.cliOutputs,
  );
  const kustomize = summary('kustomize', kustomizeRun.worker, kustomizeRun.cli, kustomizeSame);

  print({
    bench: 'render',
    helm: {
      variants: variantCount,
      perSecond: round(helm.perSecond),
      helmTemplatePerSecond: round(helm.cliPerSecond),
      ratio: round(helm.perSecond / helm.cliPerSecond),
    },
    kustomize: {
      variants: variantCount,
      perSecond: round(kustomize.perSecond),
      kustomizeBuildPerSecond: round(kustomize.cliPerSecond),
      ratio: round(kustomize.perSecond / kustomize.cliPerSecond),
    },
    versions: { helm: versions.helm, kustomize: versions['kustomize/api'] },
  });
} finally {
  await Promise.all(clients.map((c) => c.close()));
  rmSync(work, { recursive: true, force: true });
}
