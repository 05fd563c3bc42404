/**
 * The main job end to end, as `npm start` runs it: the example fleet repo on the bed's git
 * server, a local hub (the Lambda handlers) on DynamoDB Local and ElasticMQ, whose push
 * webhook the git server calls, and three real control planes bootstrapped with
 * `flotilla bootstrap --run-agent local` as prod-eu-1, prod-us-1 and staging-eu-1. Every
 * change goes in as a person makes it: a git push, `flotilla label`, an edit on a spoke.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FleetStatus } from '@flotilla/shared/hub';
import { AppsV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { describeStatus, LocalFleet, type LocalSpoke } from '../../support/local-fleet.ts';
import { until } from '../../support/until.ts';

const bed = inject('bed');
const id = `${process.pid % 1000}${Date.now().toString(36).slice(-4)}`;
const agentNamespace = `flotilla-e2e-${id}`;
/** Short intervals, so that drift and reconnects show within a test's time. */
const agentEnv = {
  FLOTILLA_DRIFT_INTERVAL: '2s',
  FLOTILLA_HEARTBEAT_INTERVAL: '2s',
  FLOTILLA_BACKOFF_MIN: '200ms',
  FLOTILLA_BACKOFF_MAX: '2s',
};
const labels: Record<string, Record<string, string>> = {
  'prod-eu-1': { env: 'prod', region: 'eu' },
  'prod-us-1': { env: 'prod', region: 'us' },
  'staging-eu-1': { env: 'staging', region: 'eu' },
};
const names = Object.keys(labels);

let fleet: LocalFleet;
let spokes: LocalSpoke[];

function kube(cluster: string): { core: CoreV1Api; apps: AppsV1Api } {
  const spoke = spokes.find((s) => s.name === cluster);
  if (!spoke) throw new Error(`no spoke ${cluster}`);
  const kc = new KubeConfig();
  kc.loadFromFile(spoke.kubeconfigPath);
  return { core: kc.makeApiClient(CoreV1Api), apps: kc.makeApiClient(AppsV1Api) };
}

async function exists(read: () => Promise<unknown>): Promise<boolean> {
  try {
    await read();
    return true;
  } catch (err) {
    if ((err as { code?: number }).code === 404) return false;
    throw err;
  }
}

const cluster = (s: FleetStatus, name: string) => {
  const c = s.clusters.find((x) => x.id === name);
  if (!c) throw new Error(`${name} is not in the fleet status:\n${describeStatus(s)}`);
  return c;
};
const bundlesOf = (s: FleetStatus, name: string) =>
  cluster(s, name)
    .bundles.map((b) => b.name)
    .sort();
const generation = (s: FleetStatus, name: string) => cluster(s, name).desired?.generation ?? 0;

const clusterInfo = (name: string) =>
  kube(name).core.readNamespacedConfigMap({ name: 'cluster-info', namespace: 'platform' });
/** A person's edit on the spoke: the whole ConfigMap replaced, with one key left, changed. */
async function patchClusterInfoRegion(name: string, region: string): Promise<void> {
  const edited = await kube(name).core.replaceNamespacedConfigMap({
    name: 'cluster-info',
    namespace: 'platform',
    body: { metadata: { name: 'cluster-info', namespace: 'platform' }, data: { region } },
  });
  expect(edited.data).toEqual({ region });
}

beforeAll(async () => {
  expect(bed.clusters.length, 'the bed needs three spoke control planes').toBeGreaterThanOrEqual(3);
  spokes = names.map((name, i) => ({
    name,
    labels: labels[name] ?? {},
    kubeconfigPath: bed.clusters[i]?.kubeconfigPath ?? '',
  }));
  fleet = await LocalFleet.start({ bed, repoName: `e2e-${id}`, prefix: `e2e${id}` });
  await fleet.bootstrap(spokes, { namespace: agentNamespace, agentEnv });
  await fleet.waitInSync({ timeoutMs: 180_000 });
}, 300_000);

afterAll(async () => {
  await fleet?.stop();
  for (const s of spokes ?? []) {
    const { core } = kube(s.name);
    for (const ns of [agentNamespace, 'web', 'platform', 'monitoring']) {
      await core.deleteNamespace({ name: ns }).catch(() => undefined);
    }
  }
}, 120_000);

describe('the main job end to end: hub, three spokes, pushes that converge', () => {
  it('gives every cluster exactly the bundles that target it, applied on the spoke', async () => {
    const s = await fleet.status();
    const all = [
      'backup-crds',
      'backups',
      'baseline',
      'ingress',
      'log-shipper',
      'monitoring-agent',
      'shop',
      'web',
    ];
    expect(bundlesOf(s, 'prod-eu-1')).toEqual(all);
    // log-shipper excludes prod-us-1 by name.
    expect(bundlesOf(s, 'prod-us-1')).toEqual(all.filter((b) => b !== 'log-shipper'));
    expect(bundlesOf(s, 'staging-eu-1')).toEqual(all);
    for (const name of names) {
      expect(cluster(s, name).inSync, describeStatus(s)).toBe(true);
      // Rendered for this cluster: its name and (git-declared) labels.
      const info = await clusterInfo(name);
      expect(info.data).toMatchObject({
        cluster: name,
        region: labels[name]?.region,
        environment: labels[name]?.env,
      });
    }
    const replicas = async (name: string) =>
      (await kube(name).apps.readNamespacedDeployment({ name: 'storefront', namespace: 'web' })).spec
        ?.replicas;
    expect(await replicas('prod-eu-1')).toBe(6);
    expect(await replicas('prod-us-1')).toBe(4);
    expect(await replicas('staging-eu-1')).toBe(2);
    const fluentBit = (name: string) => () =>
      kube(name).apps.readNamespacedDaemonSet({ name: 'fluent-bit', namespace: 'platform' });
    expect(await exists(fluentBit('prod-eu-1'))).toBe(true);
    expect(await exists(fluentBit('staging-eu-1'))).toBe(true);
    expect(await exists(fluentBit('prod-us-1'))).toBe(false);
    // The Helm chart, with per-environment replicas and the cluster's region in its values.
    for (const name of names) {
      const deployment = await kube(name).apps.readNamespacedDeployment({
        name: 'ingress-edge-proxy',
        namespace: 'ingress',
      });
      expect(deployment.spec?.replicas).toBe(labels[name]?.env === 'prod' ? 4 : 2);
      expect(deployment.metadata?.labels?.['helm.sh/chart']).toBe('edge-proxy-0.3.1');
      const config = await kube(name).core.readNamespacedConfigMap({
        name: 'ingress-edge-proxy',
        namespace: 'ingress',
      });
      expect(config.data?.region).toBe(labels[name]?.region);
      // The Kustomize overlay of the cluster's environment.
      const orders = await kube(name).apps.readNamespacedDeployment({ name: 'orders', namespace: 'shop' });
      expect(orders.spec?.replicas).toBe(labels[name]?.env === 'prod' ? 3 : 1);
      expect(orders.spec?.template.spec?.containers[0]?.volumeMounts).toHaveLength(2);
    }
  });

  it('takes a Helm values change to exactly the clusters it targets', async () => {
    const before = await fleet.status();
    const push = await fleet.push('ingress: more replicas in production', (repo) => {
      const path = 'bundles/ingress/bundle.yaml';
      const text = readFile(repo.dir, path);
      const next = text.replace('replicaCount: 4', 'replicaCount: 5');
      expect(next).not.toBe(text);
      repo.write(path, next);
    });
    const after = await fleet.waitInSync({ commit: push.commit, timeoutMs: 90_000 });
    expect(generation(after, 'prod-eu-1')).toBe(generation(before, 'prod-eu-1') + 1);
    expect(generation(after, 'prod-us-1')).toBe(generation(before, 'prod-us-1') + 1);
    expect(generation(after, 'staging-eu-1')).toBe(generation(before, 'staging-eu-1'));
    const replicas = async (name: string) =>
      (await kube(name).apps.readNamespacedDeployment({ name: 'ingress-edge-proxy', namespace: 'ingress' }))
        .spec?.replicas;
    expect(await replicas('prod-eu-1')).toBe(5);
    expect(await replicas('prod-us-1')).toBe(5);
    expect(await replicas('staging-eu-1')).toBe(2);
  });

  it('takes a commit to exactly the clusters it targets', async () => {
    const before = await fleet.status();
    const tag = '1.27.4-alpine';
    const push = await fleet.push('web: new image in production', (repo) => {
      const path = 'bundles/web/bundle.yaml';
      const text = readFile(repo.dir, path);
      const next = text.replace('      replicas: 4\n', `      replicas: 4\n      image: { tag: "${tag}" }\n`);
      expect(next).not.toBe(text);
      repo.write(path, next);
    });
    // The webhook, not a sync call, brings the commit in.
    const after = await fleet.waitInSync({ commit: push.commit, timeoutMs: 90_000 });
    // Only the `prod` customization changed: the production group minus prod-eu (first match wins).
    expect(generation(after, 'prod-us-1')).toBe(generation(before, 'prod-us-1') + 1);
    expect(generation(after, 'prod-eu-1')).toBe(generation(before, 'prod-eu-1'));
    expect(generation(after, 'staging-eu-1')).toBe(generation(before, 'staging-eu-1'));
    const image = async (name: string) =>
      (await kube(name).apps.readNamespacedDeployment({ name: 'storefront', namespace: 'web' })).spec
        ?.template.spec?.containers[0]?.image;
    expect(await image('prod-us-1')).toBe(`nginxinc/nginx-unprivileged:${tag}`);
    expect(await image('prod-eu-1')).toBe('nginxinc/nginx-unprivileged:1.27.3-alpine');
    expect(await image('staging-eu-1')).toBe('nginxinc/nginx-unprivileged:1.27.3-alpine');
  });

  it('moves a bundle off a cluster and back when its labels change, pruning what it left', async () => {
    const nodeExporter = (name: string) => () =>
      kube(name).apps.readNamespacedDaemonSet({ name: 'node-exporter', namespace: 'monitoring' });
    expect(await exists(nodeExporter('staging-eu-1'))).toBe(true);

    // The monitored group is env in (prod, staging), monitoring notin (disabled).
    const off = await fleet.flotilla(['label', 'staging-eu-1', 'monitoring=disabled']);
    expect(off.code, off.stderr).toBe(0);
    const without = await fleet.waitFor(
      'staging-eu-1 without monitoring-agent, in sync',
      (s) => !bundlesOf(s, 'staging-eu-1').includes('monitoring-agent') && cluster(s, 'staging-eu-1').inSync,
    );
    expect(bundlesOf(without, 'prod-eu-1')).toContain('monitoring-agent');
    await until('node-exporter pruned from staging-eu-1', async () =>
      (await exists(nodeExporter('staging-eu-1'))) ? undefined : true,
    );
    expect(await exists(nodeExporter('prod-eu-1'))).toBe(true);

    const on = await fleet.flotilla(['label', 'staging-eu-1', 'monitoring-']);
    expect(on.code, on.stderr).toBe(0);
    await fleet.waitFor(
      'monitoring-agent back on staging-eu-1, in sync',
      (s) => bundlesOf(s, 'staging-eu-1').includes('monitoring-agent') && cluster(s, 'staging-eu-1').inSync,
    );
    expect(await exists(nodeExporter('staging-eu-1'))).toBe(true);
  });

  it('corrects a manual change on a spoke under driftPolicy correct', async () => {
    await patchClusterInfoRegion('prod-eu-1', 'tampered');
    await until('cluster-info corrected on prod-eu-1', async () =>
      (await clusterInfo('prod-eu-1')).data?.region === 'eu' ? true : undefined,
    );
    // The whole object is back, not just the edited key.
    expect((await clusterInfo('prod-eu-1')).data).toMatchObject({
      cluster: 'prod-eu-1',
      environment: 'prod',
    });
  });

  it('keeps every cluster on its last good state after a broken commit, and flotilla status shows the error', async () => {
    const before = await fleet.status();
    const good = readFile(fleet.repo.dir, 'bundles/web/bundle.yaml');
    const push = await fleet.push('web: a typo', (repo) =>
      repo.write('bundles/web/bundle.yaml', good.replace('operator: In', 'operator: Inn')),
    );
    const broken = await fleet.waitFor('the broken commit synced', (s) => s.sync?.commit === push.commit);
    // The broken bundle, named by file and line; and `backups`, which depends on it, held too.
    const errors = broken.sync?.errors.map((e) => e.text) ?? [];
    expect(errors).toContainEqual(
      expect.stringMatching(/^bundles\/web\/bundle\.yaml:9: .*operator: unknown operator "Inn"/),
    );
    for (const e of errors.filter((t) => !t.startsWith('bundles/web/')))
      expect(e).toMatch(/^bundles\/backups\/bundle\.yaml:\d+: dependsOn\[1\]: bundle "web" has errors/);
    // Nothing new to apply anywhere: every cluster stays on (and in sync with) its last good state.
    const held = await fleet.waitInSync({ commit: push.commit });
    for (const name of names) {
      expect(generation(held, name)).toBe(generation(before, name));
      expect(bundlesOf(held, name)).toEqual(bundlesOf(before, name));
    }
    const status = await fleet.flotilla(['status']);
    expect(status.code).toBe(10);
    expect(status.stderr).toMatch(/bundles\/web\/bundle\.yaml:\d+: .*Inn/);
    expect(status.stdout).toMatch(new RegExp(`${errors.length} error\\(s\\)`));

    const fixed = await fleet.push('web: fix the typo', (repo) =>
      repo.write('bundles/web/bundle.yaml', good),
    );
    const after = await fleet.waitInSync({ commit: fixed.commit });
    expect(after.sync?.errors).toEqual([]);
    expect((await fleet.flotilla(['status'])).code).toBe(0);
  });

  it('keeps correcting drift with the hub stopped, and reports once it is back', async () => {
    await fleet.stopHub();
    try {
      await expect(fetch(`${fleet.hubUrl}/v1/admin/status`)).rejects.toThrow();
      // The agents cannot reach the hub now; a manual change is still corrected from their cache.
      await patchClusterInfoRegion('staging-eu-1', 'tampered');
      await until('cluster-info corrected on staging-eu-1 with the hub down', async () =>
        (await clusterInfo('staging-eu-1')).data?.region === 'eu' ? true : undefined,
      );
    } finally {
      await fleet.startHub();
    }
    const back = Date.now();
    const s = await fleet.waitFor(
      'a report from every agent after the hub came back',
      (x) =>
        x.clusters.length === names.length &&
        x.clusters.every(
          (c) => c.inSync && c.lastHeartbeatAt !== null && Date.parse(c.lastHeartbeatAt) >= back - 1000,
        ),
      { timeoutMs: 60_000 },
    );
    for (const name of names) expect(cluster(s, name).connection).toBe('Online');
  });

  it('only reports a manual change under driftPolicy warn, naming the fields', async () => {
    const { core } = kube('staging-eu-1');
    const original = await core.readNamespacedConfigMap({ name: 'fluent-bit', namespace: 'platform' });
    await core.replaceNamespacedConfigMap({
      name: 'fluent-bit',
      namespace: 'platform',
      body: { ...original, data: { 'fluent-bit.conf': '# edited by hand\n' } },
    });
    const s = await fleet.waitFor('log-shipper Drifted on staging-eu-1', (x) =>
      cluster(x, 'staging-eu-1').bundles.some((b) => b.name === 'log-shipper' && b.state === 'Drifted'),
    );
    const drifted = cluster(s, 'staging-eu-1').bundles.find((b) => b.name === 'log-shipper');
    expect(drifted?.drift).toEqual([
      expect.objectContaining({
        object: expect.stringContaining('fluent-bit'),
        fields: expect.arrayContaining([expect.stringContaining('fluent-bit.conf')]),
      }),
    ]);
    // Several drift intervals later, the edit is still there: warn never writes.
    await new Promise((r) => setTimeout(r, 6_000));
    const live = await core.readNamespacedConfigMap({ name: 'fluent-bit', namespace: 'platform' });
    expect(live.data?.['fluent-bit.conf']).toBe('# edited by hand\n');
    const status = await fleet.flotilla(['status']);
    expect(status.stdout).toMatch(/staging-eu-1\s+log-shipper\s+Drifted/);
  });
});

function readFile(dir: string, path: string): string {
  return readFileSync(join(dir, path), 'utf8');
}
