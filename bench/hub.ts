/**
 * `npm run bench:hub`: renders and stores the desired state of synthetic fleets of
 * 1,000, 10,000 and 100,000 clusters x 50 bundles on the bed's DynamoDB Local and
 * ElasticMQ, then the incremental case (one bundle changed, targeting 10% of the
 * clusters) and a no-op resync. Prints one JSON line per fleet size; the last line is
 * the largest fleet.
 *
 *   render = the pure core alone: load the repo, plan, render, hash every cluster;
 *   store  = a full sync (which renders again) less the render time: bundle and
 *            desired-state writes to DynamoDB Local plus one SQS message per cluster.
 *
 * Two fleets (--fleet): `plain`, every bundle plain YAML with variables, and `mixed`,
 * where 10 of the 50 bundles are a Helm chart with per-region values and 5 a Kustomize
 * base with an overlay per environment, rendered by the real render worker (one render per
 * distinct variant, values and Kubernetes version, however many clusters share it).
 *
 * Options: --sizes 1000,10000,100000, --fleet plain,mixed (render-only: both by default;
 * the full run: mixed), --render-only, --fanout-windows N (a fleet of more windows of 500
 * clusters than N is synced by worker invocations, as the hub does past
 * FLOTILLA_SYNC_FANOUT_WINDOWS; default 20, 0 forces fan-out). A dispatched sync's windows
 * are worked here one at a time from the bed's ElasticMQ, each timed as the Lambda
 * invocation it is in AWS: `maxInvocationSeconds` is the longest single invocation
 * (coordinator or window) of the full sync. --policies N (default 20): ValidatingAdmissionPolicies
 * the fleet passes, evaluated on every distinct render (render-only also renders the fleet
 * without them first, and reports the ratio). BENCH_PHASES=1 logs each phase's peak memory by
 * kind (rss, heap, external, arrayBuffers) and time per store call.
 *
 * --sources N (with --render-only): the same fleets with their bundles spread over N team
 * sources (each a tenant with a boundary every bundle passes) and the platform, loaded as
 * the hub loads them (one combined tree). Renders the fleet without sources and with them
 * in the same run and reports the ratio; then a commit in one team source, rendered again
 * with the hub's render cache warm: which bundles' renders reached the render worker and
 * which bundles' rendered output changed (only that source's, or the run fails).
 */

import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CreateQueueCommand } from '@aws-sdk/client-sqs';
import { ensureRenderer } from '@flotilla/renderer/build.ts';
import { RendererClient } from '@flotilla/renderer/client.ts';
import {
  buildDesiredState,
  CachingEngine,
  desiredContentHash,
  generateSigningKeyPair,
  loadFleet,
} from '@flotilla/shared';
import {
  applySyncWindow,
  type ClusterRecord,
  type FleetSourceFile,
  isRolloutWakeMessage,
  type SyncReport,
  syncFleet,
} from '@flotilla/shared/hub';
import { DynamoDbSyncStateStore, HubDb } from '../functions/src/adapters/dynamodb-stores.ts';
import { DynamoDbSyncJobStore } from '../functions/src/adapters/dynamodb-sync-jobs.ts';
import { ensureHubTables } from '../functions/src/adapters/dynamodb-tables.ts';
import { SqsSyncWorkQueue } from '../functions/src/adapters/sqs-sync-work-queue.ts';
import { loadConfig } from '../functions/src/config.ts';
import { createHubContext, type HubContext } from '../functions/src/hub-context.ts';
import type { EngineRequest } from '../shared/src/fleet/engine.ts';
import { combineSources, type SourceSnapshot } from '../shared/src/sources/index.ts';
import { repoRoot, startBed } from '../test/bed/src/bed.ts';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1000,10000,100000' },
    // The pure core alone, without the bed: for profiling the render path.
    'render-only': { type: 'boolean', default: false },
    fleet: { type: 'string' },
    'fanout-windows': { type: 'string', default: '20' },
    policies: { type: 'string', default: '20' },
    sources: { type: 'string', default: '0' },
  },
});
const sourceCount = Number(values.sources);
if (!Number.isInteger(sourceCount) || sourceCount < 0)
  throw new Error(`--sources: expected a non-negative integer, got "${values.sources}"`);
if (sourceCount > 0 && !values['render-only'])
  throw new Error(
    '--sources runs with --render-only (the sources case measures the render and the re-render)',
  );
const policyCount = Number(values.policies);
if (!Number.isInteger(policyCount) || policyCount < 0)
  throw new Error(`--policies: expected a non-negative integer, got "${values.policies}"`);
const fanoutWindows = Number(values['fanout-windows']);
if (!Number.isInteger(fanoutWindows) || fanoutWindows < 0)
  throw new Error(`--fanout-windows: expected a non-negative integer, got "${values['fanout-windows']}"`);
const sizes = values.sizes.split(',').map(Number);
const log = (line: string) => process.stderr.write(`[bench:hub] ${line}\n`);

type FleetKind = 'plain' | 'mixed';
const fleets = (values.fleet ?? (values['render-only'] ? 'plain,mixed' : 'mixed')).split(',') as FleetKind[];
for (const f of fleets)
  if (f !== 'plain' && f !== 'mixed') throw new Error(`--fleet: unknown fleet "${f}" (plain, mixed)`);
let renderer: RendererClient | undefined;
if (fleets.includes('mixed'))
  renderer = new RendererClient({ binary: await ensureRenderer({ log }), maxInFlight: 4 });
const bundleCount = 50;

const envs = ['prod', 'prod', 'prod', 'staging', 'staging', 'dev', 'dev', 'dev', 'dev', 'dev'] as const;
const regions = ['eu', 'us', 'ap'] as const;
const tiers = ['gold', 'silver', 'bronze'] as const;

/** Realistic labels: env, region, tier, team, and a `canary` flag on every tenth cluster (10%). */
function clusterLabels(i: number): Record<string, string> {
  return {
    env: envs[i % envs.length] as string,
    region: regions[Math.floor(i / 10) % regions.length] as string,
    tier: tiers[Math.floor(i / 30) % tiers.length] as string,
    team: `team-${i % 17}`,
    ...(i % 10 === 7 ? { canary: 'true' } : {}),
  };
}

/** In the mixed fleet: which bundles are a Helm chart (10) and which a kustomization (5). */
const helmBundle = (b: number) => b % 5 === 1;
const kustomizeBundle = (b: number) => b % 10 === 3;

/** A small chart: a Deployment, a Service and a ConfigMap, sized and labelled by its values. */
function chartFiles(dir: string, name: string): FleetSourceFile[] {
  return [
    {
      path: `${dir}/Chart.yaml`,
      content: `apiVersion: v2\nname: ${name}\nversion: 1.0.0\nappVersion: "1.0.0"\n`,
    },
    {
      path: `${dir}/values.yaml`,
      content: 'replicas: 1\nregion: unknown\nimage: registry.example.com/app:1.0.0\n',
    },
    {
      path: `${dir}/templates/_helpers.tpl`,
      content:
        '{{- define "app.labels" -}}\napp.kubernetes.io/name: {{ .Chart.Name }}\napp.kubernetes.io/instance: {{ .Release.Name }}\nregion: {{ .Values.region }}\n{{- end -}}\n',
    },
    {
      path: `${dir}/templates/app.yaml`,
      content: [
        'apiVersion: apps/v1',
        'kind: Deployment',
        'metadata:',
        '  name: {{ .Release.Name }}',
        '  labels: {{- include "app.labels" . | nindent 4 }}',
        'spec:',
        '  replicas: {{ .Values.replicas }}',
        '  selector:',
        '    matchLabels: { app: {{ .Release.Name }} }',
        '  template:',
        '    metadata:',
        '      labels: { app: {{ .Release.Name }} }',
        '    spec:',
        '      containers:',
        '        - name: app',
        '          image: {{ .Values.image }}',
        '          env:',
        '            - { name: REGION, value: {{ .Values.region | quote }} }',
        '---',
        'apiVersion: v1',
        'kind: Service',
        'metadata:',
        '  name: {{ .Release.Name }}',
        'spec:',
        '  selector: { app: {{ .Release.Name }} }',
        '  ports: [{ port: 80, targetPort: 8080 }]',
        '---',
        'apiVersion: v1',
        'kind: ConfigMap',
        'metadata:',
        '  name: {{ .Release.Name }}-config',
        'data:',
        '  region: {{ .Values.region | quote }}',
        '',
      ].join('\n'),
    },
  ];
}

/** A kustomize base and one overlay per environment. */
function kustomizeFiles(dir: string, name: string): FleetSourceFile[] {
  const files: FleetSourceFile[] = [
    {
      path: `${dir}/base/kustomization.yaml`,
      content: `resources: [app.yaml]\nlabels:\n  - pairs: { app.kubernetes.io/part-of: ${name} }\nconfigMapGenerator:\n  - name: ${name}-settings\n    literals: [LOG_LEVEL=info]\nimages:\n  - name: app\n    newName: registry.example.com/${name}\n    newTag: 1.0.0\n`,
    },
    {
      path: `${dir}/base/app.yaml`,
      content: `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ${name}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: { app: ${name} }\n  template:\n    metadata:\n      labels: { app: ${name} }\n    spec:\n      containers:\n        - name: app\n          image: app\n          envFrom: [{ configMapRef: { name: ${name}-settings } }]\n`,
    },
  ];
  for (const [env, replicas] of [
    ['prod', 4],
    ['staging', 2],
    ['dev', 1],
  ] as const) {
    files.push({
      path: `${dir}/overlays/${env}/kustomization.yaml`,
      content: `resources: [../../base]\nreplicas:\n  - { name: ${name}, count: ${replicas} }\nconfigMapGenerator:\n  - name: ${name}-settings\n    behavior: merge\n    literals: [ENVIRONMENT=${env}]\n`,
    });
  }
  return files;
}

/** 50 bundles: mostly selector-targeted shared renders; a few with per-cluster variables. */
/**
 * `count` ValidatingAdmissionPolicies over the fleet's Deployments and ConfigMaps, the kind
 * of checks fleets run (pinned images, a registry, replica bounds, labels, no privileged or
 * host networking, small config maps), each bound with Warn. The fleet passes them all, so
 * what they cost is their evaluation, and the stored state is the same with or without them.
 */
function policyFiles(count: number): FleetSourceFile[] {
  const deployments =
    '[{apiGroups: [apps], apiVersions: [v1], resources: [deployments], operations: [CREATE, UPDATE]}]';
  const configMaps =
    '[{apiGroups: [""], apiVersions: [v1], resources: [configmaps], operations: [CREATE, UPDATE]}]';
  const checks: [string, string][] = [
    [deployments, "object.spec.template.spec.containers.all(c, !c.image.endsWith(':latest'))"],
    [deployments, "object.spec.template.spec.containers.all(c, c.image.startsWith('registry.example.com/'))"],
    [deployments, 'object.spec.replicas <= 50 + %N%'],
    [
      deployments,
      "has(object.spec.template.metadata.labels) && 'app' in object.spec.template.metadata.labels",
    ],
    [deployments, '!has(object.spec.template.spec.hostNetwork) || !object.spec.template.spec.hostNetwork'],
    [
      deployments,
      'object.spec.template.spec.containers.all(c, !has(c.securityContext) || !has(c.securityContext.privileged) || !c.securityContext.privileged)',
    ],
    [deployments, 'object.spec.template.spec.containers.all(c, !has(c.env) || size(c.env) < 100 + %N%)'],
    [configMaps, '!has(object.data) || size(object.data) < 100 + %N%'],
    [configMaps, "!has(object.data) || object.data.all(k, k.matches('^[A-Za-z0-9._-]+$'))"],
    [configMaps, "object.metadata.name.endsWith('-config') || object.metadata.name.size() < 64"],
  ];
  const docs: string[] = [];
  for (let i = 0; i < count; i++) {
    const [rules, expression] = checks[i % checks.length] as [string, string];
    const name = `bench-policy-${String(i).padStart(2, '0')}`;
    docs.push(
      `apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\nmetadata: {name: ${name}}\nspec:\n  matchConstraints:\n    resourceRules: ${rules}\n  validations:\n    - expression: ${JSON.stringify(expression.replaceAll('%N%', String(i)))}\n      message: ${name} says no\n---\napiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\nmetadata: {name: ${name}}\nspec: {policyName: ${name}, validationActions: [Warn]}\n`,
    );
  }
  return count === 0 ? [] : [{ path: 'policies/bench.yaml', content: docs.join('---\n') }];
}

function fleetFiles(revision: number, kind: FleetKind = 'plain', policies = policyCount): FleetSourceFile[] {
  const files: FleetSourceFile[] = [
    { path: 'groups/production.yaml', content: 'selector:\n  matchLabels:\n    env: prod\n' },
    { path: 'groups/eu.yaml', content: 'selector: region=eu\n' },
    ...policyFiles(policies),
  ];
  for (let b = 0; b < bundleCount; b++) {
    const name = `app-${String(b).padStart(2, '0')}`;
    const perCluster = b % 10 === 0; // 5 bundles name the cluster in their objects
    const canaryOnly = b === 49; // the bundle the incremental case changes: 10% of clusters
    const targets = canaryOnly
      ? '  - clusterSelector:\n      matchLabels:\n        canary: "true"\n'
      : b % 3 === 0
        ? '  - clusterSelector: {}\n'
        : b % 3 === 1
          ? '  - clusterGroup: production\n  - clusterSelector:\n      matchExpressions:\n        - { key: env, operator: In, values: [staging] }\n'
          : '  - clusterSelector:\n      matchExpressions:\n        - { key: tier, operator: NotIn, values: [bronze] }\n';
    if (kind === 'mixed' && helmBundle(b)) {
      files.push({
        path: `bundles/${name}/bundle.yaml`,
        content: `namespace: ${name}\ntargets:\n${targets}helm:\n  chart: chart\n  values:\n    replicas: 2\n    region: \${cluster.labels.region}\ncustomizations:\n  - clusterGroup: eu\n    helm: { values: { replicas: 3 } }\n`,
      });
      files.push(...chartFiles(`bundles/${name}/chart`, name));
      continue;
    }
    if (kind === 'mixed' && kustomizeBundle(b)) {
      files.push({
        path: `bundles/${name}/bundle.yaml`,
        content: `namespace: ${name}\ntargets:\n${targets}kustomize: { dir: overlays/dev }\ncustomizations:\n  - clusterSelector: env=prod\n    kustomize: { dir: overlays/prod }\n  - clusterSelector: env=staging\n    kustomize: { dir: overlays/staging }\n`,
      });
      files.push(...kustomizeFiles(`bundles/${name}`, name));
      continue;
    }
    files.push({
      path: `bundles/${name}/bundle.yaml`,
      content: `namespace: ${name}\ntargets:\n${targets}customizations:\n  - clusterGroup: eu\n    values:\n      replicas: 3\nvalues:\n  replicas: 2\n  image: registry.example.com/${name}:1.${canaryOnly ? revision : 0}.0\n`,
    });
    files.push({
      path: `bundles/${name}/app.yaml`,
      content: [
        'apiVersion: apps/v1',
        'kind: Deployment',
        'metadata:',
        `  name: ${name}`,
        'spec:',
        '  replicas: ${values.replicas}',
        '  selector:',
        `    matchLabels: { app: ${name} }`,
        '  template:',
        '    metadata:',
        `      labels: { app: ${name} }`,
        '    spec:',
        '      containers:',
        '        - name: app',
        '          image: ${values.image}',
        '          env:',
        '            - name: REGION',
        '              value: ${cluster.labels.region}',
        ...(perCluster ? ['            - name: CLUSTER', '              value: ${cluster.name}'] : []),
        '---',
        'apiVersion: v1',
        'kind: ConfigMap',
        'metadata:',
        `  name: ${name}-config`,
        'data:',
        '  tier: ${cluster.labels.tier}',
        `  owner: ${name}-owners`,
        '',
      ].join('\n'),
    });
  }
  return files;
}

/** The team source that owns a bundle of the fleet (`team-01` ...), or undefined for the platform's. */
function ownerOf(bundle: number, count: number): string | undefined {
  const owner = bundle % (count + 1);
  return owner === 0 ? undefined : `team-${String(owner).padStart(2, '0')}`;
}

/** A team's commit in the sources case: more replicas, and a new log level in its kustomizations. */
const teamCommit = (content: string) =>
  content.replaceAll('replicas: 2', 'replicas: 5').replaceAll('LOG_LEVEL=info', 'LOG_LEVEL=debug');

/**
 * The fleet of `fleetFiles`, its bundles spread over `count` team sources and the platform
 * (bundle b goes to team `b mod (count+1)`, 0 the platform), combined as the hub combines
 * fetched sources. Each team is a tenant whose boundary every bundle passes (its bundles'
 * namespaces, any cluster-scoped kind, every cluster), so all the checks run and none
 * refuses. `changed` names a team whose source is at its next commit ({@link teamCommit}).
 */
function sourcedFleetFiles(kind: FleetKind, count: number, changed?: string): FleetSourceFile[] {
  const platform: FleetSourceFile[] = [];
  const teams = new Map<string, FleetSourceFile[]>();
  for (let t = 1; t <= count; t++) teams.set(`team-${String(t).padStart(2, '0')}`, []);
  for (const f of fleetFiles(1, kind)) {
    const m = /^bundles\/app-(\d\d)\//.exec(f.path);
    const team = m ? ownerOf(Number(m[1]), count) : undefined;
    if (team) teams.get(team)?.push(f);
    else platform.push(f);
  }
  const snapshots = new Map<string, SourceSnapshot>();
  for (const [team, files] of teams) {
    platform.push({
      path: `tenants/${team}.yaml`,
      content: `apiVersion: flotilla.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: ${team}\nspec:\n  namespaces: ["app-*"]\n  clusterResources:\n    - { group: "*", kind: "*" }\n  clusterSelector: {}\n`,
    });
    platform.push({
      path: `sources/${team}.yaml`,
      content: `apiVersion: flotilla.dev/v1alpha1\nkind: FleetSource\nmetadata:\n  name: ${team}\nspec:\n  repo: https://git.example.com/${team}/apps.git\n  ref: { branch: main }\n  tenant: ${team}\n`,
    });
    snapshots.set(
      team,
      team === changed
        ? { commit: `${team}-2`, files: files.map((f) => ({ path: f.path, content: teamCommit(f.content) })) }
        : { commit: `${team}-1`, files },
    );
  }
  const tree = combineSources({ commit: 'platform-1', files: platform }, snapshots);
  if (tree.errors.length > 0 || tree.warnings.length > 0)
    throw new Error(`combining the bench sources: ${[...tree.errors, ...tree.warnings][0]?.message}`);
  return tree.files;
}

/** The bundle an engine request renders (`app-07`): a chart's namespace, or the name a kustomization's files carry. */
function engineRequestBundle(request: EngineRequest): string {
  if (request.kind !== 'kustomize') return request.namespace ?? '?';
  for (const content of Object.values(request.files)) {
    const m = /app-\d\d/.exec(content) ?? /app-\d\d/.exec(Buffer.from(content, 'base64').toString('utf8'));
    if (m) return m[0];
  }
  return '?';
}

function rssMb(): number {
  return Math.round(process.memoryUsage().rss / 1024 / 1024);
}

let peakRss = 0;
/** Peaks of each kind of memory since the last `phaseMemory()`: where the resident memory goes. */
let peaks = { rss: 0, heapUsed: 0, external: 0, arrayBuffers: 0 };
const samplePeaks = () => {
  const u = process.memoryUsage();
  peakRss = Math.max(peakRss, Math.round(u.rss / 1024 / 1024));
  for (const key of Object.keys(peaks) as (keyof typeof peaks)[]) {
    peaks[key] = Math.max(peaks[key], Math.round(u[key] / 1024 / 1024));
  }
};
const sampler = setInterval(samplePeaks, 100);
sampler.unref();
/** The peaks (MB) since the previous call, logged per phase with BENCH_PHASES=1. */
function phaseMemory(phase: string): typeof peaks {
  samplePeaks();
  const seen = peaks;
  peaks = { rss: 0, heapUsed: 0, external: 0, arrayBuffers: 0 };
  if (process.env.BENCH_PHASES) log(`${phase}: peak MB ${JSON.stringify(seen)}`);
  return seen;
}

/** The pure core over every cluster (and the render worker for Helm and Kustomize): what the hub computes before it writes anything. */
async function renderAll(
  files: FleetSourceFile[],
  clusters: readonly ClusterRecord[],
  opts: {
    /** The engine the render goes through (a hub's cache, kept across renders); the render worker by default. */
    readonly engine?: { render: RendererClient['render'] };
    /** Collects each bundle's distinct rendered hashes and each cluster's desired-content hash. */
    readonly record?: { byBundle: Map<string, Set<string>>; byCluster: Map<string, string> };
  } = {},
): Promise<{ seconds: number; cpuSeconds: number; bundlesRendered: number; engineRenders: number }> {
  const started = performance.now();
  const cpu = process.cpuUsage();
  const fleet = loadFleet(files);
  if (fleet.errors.length > 0) {
    const e = fleet.errors[0];
    throw new Error(`the bench fleet has errors: ${e?.file}:${e?.line}: ${e?.message}`);
  }
  let engineRenders = 0;
  if (fleet.needsEngine) {
    const engine = opts.engine ?? (renderer as RendererClient);
    await fleet.prepare(
      clusters.map((c) => ({ name: c.id, labels: c.labels })),
      {
        engine: {
          render: (request) => {
            engineRenders++;
            return engine.render(request as Parameters<RendererClient['render']>[0]);
          },
        },
      },
    );
  }
  const hashes = new Set<string>();
  for (const c of clusters) {
    const plan = fleet.planCluster({ name: c.id, labels: c.labels });
    const next = buildDesiredState({ plan, commit: 'bench', generation: 1 });
    const content = desiredContentHash(next);
    for (const b of plan.bundles) hashes.add(b.rendered.hash);
    if (opts.record) {
      opts.record.byCluster.set(c.id, content);
      for (const b of plan.bundles) {
        const set = opts.record.byBundle.get(b.ref.name) ?? new Set<string>();
        opts.record.byBundle.set(b.ref.name, set);
        set.add(b.rendered.hash);
      }
    }
    if (plan.errors.length > 0)
      throw new Error(`${c.id}: ${plan.errors[0]?.file}:${plan.errors[0]?.line}: ${plan.errors[0]?.message}`);
    if (plan.warnings?.length)
      throw new Error(`${c.id}: the bench fleet should pass its policies: ${plan.warnings[0]?.message}`);
  }
  const used = process.cpuUsage(cpu);
  return {
    seconds: (performance.now() - started) / 1000,
    // CPU time too: on a shared machine wall time says as much about the neighbours as about the code.
    cpuSeconds: (used.user + used.system) / 1e6,
    bundlesRendered: hashes.size,
    engineRenders,
  };
}

async function seedClusters(hub: HubContext, count: number): Promise<ClusterRecord[]> {
  const clusters: ClusterRecord[] = [];
  const db = new HubDb(hub.dynamodb, hub.config.tables);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const id = `c${String(i).padStart(6, '0')}`;
      const res = await hub.sqs.send(
        new CreateQueueCommand({ QueueName: `${hub.config.prefix}-spoke-${id}` }),
      );
      clusters[i] = {
        id,
        labels: clusterLabels(i),
        tokenHash: '0'.repeat(64),
        registeredAt: new Date().toISOString(),
        queueUrl: res.QueueUrl ?? '',
      };
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  await db.batchWrite(
    hub.config.tables.clusters,
    clusters.map(({ id, ...rest }) => ({ PutRequest: { Item: { clusterId: id, ...rest } } })),
  );
  return clusters;
}

if (sourceCount > 0) {
  for (const size of sizes)
    for (const kind of fleets) {
      const clusters = Array.from({ length: size }, (_, i) => ({
        id: `c${String(i).padStart(6, '0')}`,
        labels: clusterLabels(i),
        tokenHash: '',
        registeredAt: '',
      }));
      peakRss = rssMb();
      // The same fleet without sources, in the same run, through the render worker alone.
      const bare = await renderAll(fleetFiles(1, kind), clusters);
      log(
        `${size} clusters, ${kind}: without sources ${bare.seconds.toFixed(2)} s, ${bare.cpuSeconds.toFixed(2)} s CPU`,
      );
      // With sources, through the hub's render cache (kept across syncs, as a warm hub keeps it).
      const engineRendersByBundle = new Map<string, number>();
      const counted = {
        render: (request: EngineRequest) => {
          const b = engineRequestBundle(request);
          engineRendersByBundle.set(b, (engineRendersByBundle.get(b) ?? 0) + 1);
          return (renderer as RendererClient).render(request as Parameters<RendererClient['render']>[0]);
        },
      };
      const cache = new CachingEngine(counted);
      const before = { byBundle: new Map<string, Set<string>>(), byCluster: new Map<string, string>() };
      const render = await renderAll(sourcedFleetFiles(kind, sourceCount), clusters, {
        engine: cache,
        record: before,
      });
      log(
        `${size} clusters, ${kind}: ${sourceCount} sources ${render.seconds.toFixed(2)} s, ${render.cpuSeconds.toFixed(2)} s CPU`,
      );
      const firstEngineRenders = cache.misses;

      // One commit in one team source; the platform and the other sources are as they were.
      const team = 'team-01';
      const teamBundles = [...before.byBundle.keys()].filter((b) => b.startsWith(`${team}/`)).sort();
      engineRendersByBundle.clear();
      const missesBefore = cache.misses;
      const hitsBefore = cache.hits;
      const after = { byBundle: new Map<string, Set<string>>(), byCluster: new Map<string, string>() };
      const again = await renderAll(sourcedFleetFiles(kind, sourceCount, team), clusters, {
        engine: cache,
        record: after,
      });
      const changedBundles = [...after.byBundle.keys()]
        .filter((b) => {
          const old = before.byBundle.get(b);
          const now = after.byBundle.get(b) as Set<string>;
          return !old || old.size !== now.size || [...now].some((h) => !old.has(h));
        })
        .sort();
      const newRendersByBundle = Object.fromEntries(
        changedBundles.map((b) => [
          b,
          [...(after.byBundle.get(b) ?? [])].filter((h) => !before.byBundle.get(b)?.has(h)).length,
        ]),
      );
      const rerenderedBundles = Object.fromEntries(
        [...engineRendersByBundle].map(([b, n]) => [
          `${ownerOf(Number(b.slice(4)), sourceCount) ?? 'platform'}/${b}`,
          n,
        ]),
      );
      let changedClusters = 0;
      for (const [id, hash] of after.byCluster) if (before.byCluster.get(id) !== hash) changedClusters++;
      const outside = [
        ...changedBundles.filter((b) => !teamBundles.includes(b)),
        ...Object.keys(rerenderedBundles).filter((b) => !b.startsWith(`${team}/`)),
      ];
      if (outside.length > 0)
        throw new Error(
          `a commit in ${team} re-rendered or changed bundles of other sources: ${outside.join(', ')}`,
        );
      if (changedBundles.length !== teamBundles.length)
        throw new Error(
          `a commit in ${team} changed ${changedBundles.join(', ')}, expected all of ${teamBundles.join(', ')}`,
        );
      process.stdout.write(
        `${JSON.stringify({
          bench: 'hub-sources',
          fleet: kind,
          clusters: size,
          bundles: bundleCount,
          sources: sourceCount,
          tenants: sourceCount,
          policies: policyCount,
          renderSeconds: round(render.seconds),
          renderCpuSeconds: round(render.cpuSeconds),
          withoutSources: { renderSeconds: round(bare.seconds), renderCpuSeconds: round(bare.cpuSeconds) },
          sourcesCpuRatio: round(render.cpuSeconds / bare.cpuSeconds),
          clustersPerSecond: Math.round(size / render.seconds),
          ...(kind === 'mixed' ? { engineRenders: firstEngineRenders } : {}),
          distinctBundles: render.bundlesRendered,
          peakRssMb: Math.max(peakRss, rssMb()),
          commitInOneSource: {
            source: team,
            sourceBundles: teamBundles,
            renderSeconds: round(again.seconds),
            renderCpuSeconds: round(again.cpuSeconds),
            engineRenders: cache.misses - missesBefore,
            engineCacheHits: cache.hits - hitsBefore,
            engineRendersByBundle: rerenderedBundles,
            changedBundles,
            newDistinctRendersByBundle: newRendersByBundle,
            changedClusters,
          },
        })}\n`,
      );
    }
  await renderer?.close();
  process.exit(0);
}

if (values['render-only']) {
  for (const size of sizes)
    for (const kind of fleets) {
      const clusters = Array.from({ length: size }, (_, i) => ({
        id: `c${String(i).padStart(6, '0')}`,
        labels: clusterLabels(i),
        tokenHash: '',
        registeredAt: '',
      }));
      peakRss = rssMb();
      // The same fleet without policies first, in the same run: what the policies cost.
      const bare = policyCount > 0 ? await renderAll(fleetFiles(1, kind, 0), clusters) : undefined;
      const render = await renderAll(fleetFiles(1, kind), clusters);
      process.stdout.write(
        `${JSON.stringify({ bench: 'hub-render', fleet: kind, clusters: size, bundles: bundleCount, policies: policyCount, ...(kind === 'mixed' ? { helmBundles: 10, kustomizeBundles: 5, engineRenders: render.engineRenders } : {}), renderSeconds: round(render.seconds), renderCpuSeconds: round(render.cpuSeconds), ...(bare ? { withoutPolicies: { renderSeconds: round(bare.seconds), renderCpuSeconds: round(bare.cpuSeconds) }, policyCpuRatio: round(render.cpuSeconds / bare.cpuSeconds) } : {}), clustersPerSecond: Math.round(size / render.seconds), peakRssMb: Math.max(peakRss, rssMb()), distinctBundles: render.bundlesRendered })}\n`,
      );
    }
  await renderer?.close();
  process.exit(0);
}

const bed = await startBed({
  dir: join(repoRoot, '.flotilla', 'bench-hub'),
  clusters: [],
  log,
  // DynamoDB Local holding 100,000 clusters' items and ElasticMQ 100,000 queues need room.
  javaHeapMb: Math.max(...sizes) >= 100_000 ? 6144 : 3072,
});
const results: unknown[] = [];
const phaseTotals: Record<string, number> = {};
try {
  for (const size of sizes)
    for (const kind of fleets) {
      const { privateKeyPem } = generateSigningKeyPair();
      let files = fleetFiles(1, kind);
      let commit = 'c1';
      const config = loadConfig({
        FLOTILLA_PREFIX: `b${size}${kind === 'mixed' ? 'm' : ''}`,
        ...(kind === 'mixed' ? { FLOTILLA_RENDERER: await ensureRenderer({ log }) } : {}),
        AWS_REGION: bed.state.region,
        FLOTILLA_DYNAMODB_ENDPOINT: bed.state.dynamodb.endpoint,
        FLOTILLA_SQS_ENDPOINT: bed.state.sqs.endpoint,
        FLOTILLA_FLEET_REPO_URL: 'http://unused.invalid/fleet.git',
        FLOTILLA_SIGNING_KEY: privateKeyPem,
      });
      const base = createHubContext(config, {
        credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
      });
      const workQueue = await hub0WorkQueue(base);
      const hub: HubContext = {
        ...base,
        source: { fetch: async () => ({ commit, files }) },
        fanout: {
          queue: workQueue,
          jobs: new DynamoDbSyncJobStore(new HubDb(base.dynamodb, config.tables)),
          thresholdWindows: fanoutWindows,
          newJobId: () => `bench-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`,
        },
      } as HubContext;
      if (process.env.BENCH_PHASES) {
        const timed = <T extends object>(obj: T, method: keyof T & string) => {
          const original = (obj[method] as (...a: unknown[]) => Promise<unknown>).bind(obj);
          (obj as Record<string, unknown>)[method] = async (...args: unknown[]) => {
            const t = performance.now();
            try {
              return await original(...args);
            } finally {
              phaseTotals[method] = Math.round((phaseTotals[method] ?? 0) + performance.now() - t);
            }
          };
        };
        timed(hub.desiredStates, 'commit');
        timed(hub.bundles, 'putMany');
        timed(hub.bundles, 'existing');
        timed(hub.notifier, 'notify');
        timed(hub.clusters, 'list');
      }
      await ensureHubTables(hub.dynamodb, config.tables);
      log(`${size} clusters: creating queues and cluster records (not measured)`);
      const clusters = await seedClusters(hub, size);

      peakRss = rssMb();
      phaseMemory(`${size} clusters: seeding`);
      const render = await renderAll(files, clusters);
      phaseMemory(`${size} clusters: render`);
      log(
        `${size} clusters: rendered in ${render.seconds.toFixed(2)} s, ${render.cpuSeconds.toFixed(2)} s CPU (${render.bundlesRendered} distinct bundles, load ${loadavg()[0]?.toFixed(1)})`,
      );
      const syncStarted = performance.now();
      const full = await timedSync(hub, 'bench');
      const syncSeconds = (performance.now() - syncStarted) / 1000;
      if (full.changed.length !== size || full.notified !== size) {
        throw new Error(
          `full sync changed ${full.changed.length} and notified ${full.notified} of ${size} clusters`,
        );
      }
      log(`${size} clusters: full sync ${syncSeconds.toFixed(1)} s, ${full.itemsWritten} items written`);
      const fullMemory = phaseMemory(`${size} clusters: full sync`);
      if (process.env.BENCH_PHASES) log(`phases (ms, summed over workers): ${JSON.stringify(phaseTotals)}`);
      for (const key of Object.keys(phaseTotals)) delete phaseTotals[key];

      // Incremental: one bundle (targeting the 10% canary clusters) gets a new image.
      files = fleetFiles(2, kind);
      commit = 'c2';
      const incStarted = performance.now();
      const inc = await timedSync(hub, 'bench');
      const incSeconds = (performance.now() - incStarted) / 1000;
      log(
        `${size} clusters: one-bundle change: ${inc.changed.length} clusters, ${inc.itemsWritten} items, ${incSeconds.toFixed(1)} s`,
      );
      if (process.env.BENCH_PHASES) log(`phases (ms, summed over workers): ${JSON.stringify(phaseTotals)}`);
      const incMemory = phaseMemory(`${size} clusters: one-bundle change`);

      // No-op: a new commit with the same content writes nothing.
      commit = 'c3';
      const noop = await timedSync(hub, 'bench');
      if (noop.itemsWritten !== 0 || noop.changed.length !== 0) {
        throw new Error(`no-op sync wrote ${noop.itemsWritten} items for ${noop.changed.length} clusters`);
      }
      await new DynamoDbSyncStateStore(new HubDb(hub.dynamodb, config.tables)).get();

      await hub.renderer?.close();
      const result = {
        bench: 'hub',
        policies: policyCount,
        fleet: kind,
        clusters: size,
        bundles: bundleCount,
        renderSeconds: round(render.seconds),
        renderCpuSeconds: round(render.cpuSeconds),
        storeSeconds: round(Math.max(0, syncSeconds - render.seconds)),
        clustersPerSecond: Math.round(size / render.seconds),
        peakRssMb: peakRss,
        // Peaks (MB) during the full sync and the one-bundle change: resident, JS heap, off-heap.
        syncMemoryMb: fullMemory,
        incrementalMemoryMb: incMemory,
        itemsWritten: full.itemsWritten,
        incremental: {
          changedClusters: inc.changed.length,
          itemsWritten: inc.itemsWritten,
          seconds: round(incSeconds),
        },
        noop: { itemsWritten: noop.itemsWritten, changedClusters: noop.changed.length },
        distinctBundles: render.bundlesRendered,
        syncSeconds: round(syncSeconds),
        // The full sync: dispatched to workers (and in how many windows), or in one invocation.
        fanout: full.windows > 0 ? { windows: full.windows, threshold: fanoutWindows } : false,
        maxInvocationSeconds: round(full.maxInvocationSeconds),
      };
      results.push(result);
      process.stdout.write(`${JSON.stringify(result)}\n`);
    }
} finally {
  // The render worker of the render phase is a child process: left open, the run never exits.
  await renderer?.close();
  await bed.stop();
}

/** The sync work queue on the bed's ElasticMQ (the CDK app creates it in AWS). */
async function hub0WorkQueue(hub: HubContext): Promise<SqsSyncWorkQueue> {
  const res = await hub.sqs.send(
    new CreateQueueCommand({
      QueueName: `${hub.config.prefix}-sync-work`,
      Attributes: { VisibilityTimeout: '900' },
    }),
  );
  if (!res.QueueUrl) throw new Error('ElasticMQ returned no URL for the sync work queue');
  return new SqsSyncWorkQueue(hub.sqs, res.QueueUrl);
}

/**
 * A sync as the hub runs it: in one invocation, or dispatched and then worked a window at
 * a time (as the sync function's SQS event source does), each window timed as its own
 * invocation. Returns the report with the windows' results summed.
 */
async function timedSync(
  hub: HubContext,
  holder: string,
): Promise<SyncReport & { readonly maxInvocationSeconds: number; readonly windows: number }> {
  const started = performance.now();
  const report = await syncFleet(hub, { holder });
  let maxInvocationSeconds = (performance.now() - started) / 1000;
  const { fanout } = hub;
  if (report.status !== 'dispatched' || !fanout) return { ...report, maxInvocationSeconds, windows: 0 };
  const changed: SyncReport['changed'][number][] = [];
  let itemsWritten = report.itemsWritten;
  let notified = 0;
  let unchanged = 0;
  const stop = new AbortController();
  let failure: unknown;
  await fanout.queue.poll(
    async (message) => {
      // This hub arms no rollout timer (its work queue is its own, made above).
      if (isRolloutWakeMessage(message)) throw new Error(`unexpected rollout wake of ${message.bundle}`);
      const t = performance.now();
      const window = await applySyncWindow({ ...hub, fanout }, message);
      maxInvocationSeconds = Math.max(maxInvocationSeconds, (performance.now() - t) / 1000);
      changed.push(...window.result.changed);
      itemsWritten += window.result.itemsWritten;
      notified += window.result.notified;
      unchanged += window.result.unchanged;
      if (window.completed) stop.abort();
    },
    stop.signal,
    (err) => {
      failure = err;
      stop.abort();
    },
  );
  if (failure !== undefined) throw failure;
  return {
    ...report,
    status: 'synced',
    changed,
    itemsWritten,
    notified,
    unchanged,
    maxInvocationSeconds,
    windows: report.job?.windows ?? 0,
  };
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
