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
 * Options: --sizes 1000,10000,100000, --render-only. BENCH_PHASES=1 logs each phase's
 * peak memory by kind (rss, heap, external, arrayBuffers) and time per store call.
 */

import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CreateQueueCommand } from '@aws-sdk/client-sqs';
import { buildDesiredState, desiredContentHash, generateSigningKeyPair, loadFleet } from '@flotilla/shared';
import { type ClusterRecord, type FleetSourceFile, syncFleet } from '@flotilla/shared/hub';
import { DynamoDbSyncStateStore, HubDb } from '../functions/src/adapters/dynamodb-stores.ts';
import { ensureHubTables } from '../functions/src/adapters/dynamodb-tables.ts';
import { loadConfig } from '../functions/src/config.ts';
import { createHubContext, type HubContext } from '../functions/src/hub-context.ts';
import { repoRoot, startBed } from '../test/bed/src/bed.ts';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1000,10000,100000' },
    // The pure core alone, without the bed: for profiling the render path.
    'render-only': { type: 'boolean', default: false },
  },
});
const sizes = values.sizes.split(',').map(Number);
const bundleCount = 50;
const log = (line: string) => process.stderr.write(`[bench:hub] ${line}\n`);

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

/** 50 bundles: mostly selector-targeted shared renders; a few with per-cluster variables. */
function fleetFiles(revision: number): FleetSourceFile[] {
  const files: FleetSourceFile[] = [
    { path: 'groups/production.yaml', content: 'selector:\n  matchLabels:\n    env: prod\n' },
    { path: 'groups/eu.yaml', content: 'selector: region=eu\n' },
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

/** The pure core over every cluster: what the hub computes before it writes anything. */
function renderAll(
  files: FleetSourceFile[],
  clusters: readonly ClusterRecord[],
): { seconds: number; cpuSeconds: number; bundlesRendered: number } {
  const started = performance.now();
  const cpu = process.cpuUsage();
  const fleet = loadFleet(files);
  const hashes = new Set<string>();
  for (const c of clusters) {
    const plan = fleet.planCluster({ name: c.id, labels: c.labels });
    const next = buildDesiredState({ plan, commit: 'bench', generation: 1 });
    desiredContentHash(next);
    for (const b of plan.bundles) hashes.add(b.rendered.hash);
  }
  const used = process.cpuUsage(cpu);
  return {
    seconds: (performance.now() - started) / 1000,
    // CPU time too: on a shared machine wall time says as much about the neighbours as about the code.
    cpuSeconds: (used.user + used.system) / 1e6,
    bundlesRendered: hashes.size,
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

if (values['render-only']) {
  for (const size of sizes) {
    const clusters = Array.from({ length: size }, (_, i) => ({
      id: `c${String(i).padStart(6, '0')}`,
      labels: clusterLabels(i),
      tokenHash: '',
      registeredAt: '',
    }));
    peakRss = rssMb();
    const render = renderAll(fleetFiles(1), clusters);
    process.stdout.write(
      `${JSON.stringify({ bench: 'hub-render', clusters: size, bundles: bundleCount, renderSeconds: round(render.seconds), renderCpuSeconds: round(render.cpuSeconds), clustersPerSecond: Math.round(size / render.seconds), peakRssMb: Math.max(peakRss, rssMb()), distinctBundles: render.bundlesRendered })}\n`,
    );
  }
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
  for (const size of sizes) {
    const { privateKeyPem } = generateSigningKeyPair();
    let files = fleetFiles(1);
    let commit = 'c1';
    const config = loadConfig({
      FLOTILLA_PREFIX: `b${size}`,
      AWS_REGION: bed.state.region,
      FLOTILLA_DYNAMODB_ENDPOINT: bed.state.dynamodb.endpoint,
      FLOTILLA_SQS_ENDPOINT: bed.state.sqs.endpoint,
      FLOTILLA_FLEET_REPO_URL: 'http://unused.invalid/fleet.git',
      FLOTILLA_SIGNING_KEY: privateKeyPem,
    });
    const base = createHubContext(config, {
      credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
    });
    const hub: HubContext = { ...base, source: { fetch: async () => ({ commit, files }) } } as HubContext;
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
    const render = renderAll(files, clusters);
    phaseMemory(`${size} clusters: render`);
    log(
      `${size} clusters: rendered in ${render.seconds.toFixed(2)} s, ${render.cpuSeconds.toFixed(2)} s CPU (${render.bundlesRendered} distinct bundles, load ${loadavg()[0]?.toFixed(1)})`,
    );
    const syncStarted = performance.now();
    const full = await syncFleet(hub, { holder: 'bench' });
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
    files = fleetFiles(2);
    commit = 'c2';
    const incStarted = performance.now();
    const inc = await syncFleet(hub, { holder: 'bench' });
    const incSeconds = (performance.now() - incStarted) / 1000;
    log(
      `${size} clusters: one-bundle change: ${inc.changed.length} clusters, ${inc.itemsWritten} items, ${incSeconds.toFixed(1)} s`,
    );
    if (process.env.BENCH_PHASES) log(`phases (ms, summed over workers): ${JSON.stringify(phaseTotals)}`);
    const incMemory = phaseMemory(`${size} clusters: one-bundle change`);

    // No-op: a new commit with the same content writes nothing.
    commit = 'c3';
    const noop = await syncFleet(hub, { holder: 'bench' });
    if (noop.itemsWritten !== 0 || noop.changed.length !== 0) {
      throw new Error(`no-op sync wrote ${noop.itemsWritten} items for ${noop.changed.length} clusters`);
    }
    await new DynamoDbSyncStateStore(new HubDb(hub.dynamodb, config.tables)).get();

    const result = {
      bench: 'hub',
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
    };
    results.push(result);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  }
} finally {
  await bed.stop();
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
