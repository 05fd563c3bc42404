// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${...} is the fleet repo's variable syntax, not a mistake
import {
  buildDesiredState,
  type ClusterPlan,
  type DesiredState,
  type Fleet,
  loadFleet,
  type RepoFile,
} from '@flotilla/shared';
import { describe, expect, it } from 'vitest';
import { formatted, readRepoDir } from './helpers.ts';

const good = readRepoDir('test/fixtures/fleet-repos/isolation');
const clusters = [
  { name: 'prod-1', labels: { env: 'prod', region: 'eu' } },
  { name: 'dev-1', labels: { env: 'dev', region: 'eu' } },
  { name: 'store-1', labels: { env: 'prod', region: 'us' } },
];

function withFiles(changes: Record<string, string | null>): RepoFile[] {
  const map = new Map(good.map((f) => [f.path, f.content]));
  for (const [path, content] of Object.entries(changes)) {
    if (content === null) map.delete(path);
    else map.set(path, content);
  }
  return [...map].map(([path, content]) => ({ path, content }));
}

function lastGoodStates(): Map<string, DesiredState> {
  const fleet = loadFleet(good);
  return new Map(
    clusters.map((c) => [
      c.name,
      buildDesiredState({ plan: fleet.planCluster(c), commit: 'good', generation: 1 }),
    ]),
  );
}

function summary(plan: ClusterPlan) {
  return {
    status: plan.status,
    planned: plan.bundles.map((b) => b.ref.name),
    held: plan.held.map((h) => `${h.bundle}:${h.reason}:${h.targeting}`),
  };
}

function next(fleet: Fleet, name: string, last: Map<string, DesiredState>) {
  const c = clusters.find((x) => x.name === name) as (typeof clusters)[0];
  const plan = fleet.planCluster(c);
  return {
    plan,
    state: buildDesiredState({ plan, commit: 'next', generation: 2, lastGood: last.get(name) }),
  };
}

describe('error isolation', () => {
  const last = lastGoodStates();

  it('the fixture is healthy', () => {
    const fleet = loadFleet(good);
    expect(fleet.errors).toEqual([]);
    expect(clusters.map((c) => summary(fleet.planCluster(c)))).toEqual([
      { status: 'ok', planned: ['base', 'app', 'addon'], held: [] },
      { status: 'ok', planned: ['base'], held: [] },
      { status: 'ok', planned: ['base', 'app', 'addon', 'edge'], held: [] },
    ]);
  });

  it('holds a broken bundle (and its dependents) only on the clusters it targets; the rest syncs', () => {
    const fleet = loadFleet(
      withFiles({
        'bundles/app/app.yaml': 'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec: [\n',
        'bundles/base/ns.yaml':
          'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n  labels: { v: "2" }\n',
      }),
    );
    expect(formatted(fleet.errors)).toEqual([
      'bundles/app/app.yaml:6: YAML syntax error: Flow sequence in block collection must be sufficiently indented and end with a ]',
    ]);
    expect(fleet.errors[0]?.bundle).toBe('app');
    const prod = next(fleet, 'prod-1', last);
    expect(summary(prod.plan)).toEqual({
      status: 'partial',
      planned: ['base'],
      held: ['addon:dependency-broken:matched', 'app:broken:matched'],
    });
    expect(formatted(prod.plan.errors)).toEqual([
      'bundles/addon/bundle.yaml:2: dependsOn[0]: bundle "app" has errors for cluster "prod-1"',
      'bundles/app/app.yaml:6: YAML syntax error: Flow sequence in block collection must be sufficiently indented and end with a ]',
    ]);
    // The new base syncs; app and addon keep their last good references.
    const before = last.get('prod-1') as DesiredState;
    expect(prod.state.bundles.map((b) => b.name)).toEqual(['base', 'app', 'addon']);
    expect(prod.state.bundles[0]?.hash).not.toBe(before.bundles[0]?.hash);
    expect(prod.state.bundles.slice(1)).toEqual(before.bundles.slice(1));
    // A cluster the broken bundle does not target syncs normally.
    expect(summary(next(fleet, 'dev-1', last).plan)).toEqual({ status: 'ok', planned: ['base'], held: [] });
  });

  it('holds a bundle whose CEL health check does not compile, like any broken bundle', () => {
    const appSpec = good.find((f) => f.path === 'bundles/app/bundle.yaml')?.content ?? '';
    const fleet = loadFleet(
      withFiles({
        'bundles/app/bundle.yaml': `${appSpec}healthChecks:\n  - kind: Deployment\n    current: self.status.readyReplicas >\n`,
        'bundles/base/ns.yaml':
          'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n  labels: { v: "2" }\n',
      }),
    );
    expect(formatted(fleet.errors)).toEqual([
      'bundles/app/bundle.yaml:9: healthChecks[0].current: syntax error at column 27: found > but expecting end of input',
    ]);
    const prod = next(fleet, 'prod-1', last);
    expect(summary(prod.plan)).toEqual({
      status: 'partial',
      planned: ['base'],
      held: ['addon:dependency-broken:matched', 'app:broken:matched'],
    });
    const before = last.get('prod-1') as DesiredState;
    expect(prod.state.bundles[0]?.hash).not.toBe(before.bundles[0]?.hash);
    expect(prod.state.bundles.slice(1)).toEqual(before.bundles.slice(1));
  });

  it('holds a bundle whose targets cannot be read everywhere it is, and adds it nowhere', () => {
    const fleet = loadFleet(
      withFiles({ 'bundles/edge/bundle.yaml': 'namespace: shop\ntargets:\n  - clusterGroup: edgy\n' }),
    );
    expect(formatted(fleet.errors)).toEqual([
      'bundles/edge/bundle.yaml:3: targets[0].clusterGroup: unknown group "edgy" (no groups/edgy.yaml)',
    ]);
    const store = next(fleet, 'store-1', last);
    expect(store.plan.held.map((h) => `${h.bundle}:${h.targeting}`)).toEqual(['edge:unknown']);
    expect(store.state.bundles.map((b) => b.name)).toEqual(['base', 'app', 'addon', 'edge']);
    expect(store.state.bundles[3]).toEqual(last.get('store-1')?.bundles[3]);
    const dev = next(fleet, 'dev-1', last);
    expect(dev.plan.held.map((h) => h.bundle)).toEqual(['edge']);
    expect(dev.state.bundles.map((b) => b.name)).toEqual(['base']);
  });

  it('holds a bundle for one cluster when that cluster lacks a label it references', () => {
    const fleet = loadFleet(good);
    const plan = fleet.planCluster({ name: 'prod-2', labels: { env: 'prod' } });
    expect(summary(plan)).toEqual({
      status: 'partial',
      planned: ['base', 'app'],
      held: ['addon:broken:matched'],
    });
    expect(formatted(plan.errors)).toEqual([
      'bundles/addon/cm.yaml:6: undefined variable ${cluster.labels.region}: cluster "prod-2" has no label "region"',
    ]);
  });

  it('holds both bundles that define the same object for one cluster, and only there', () => {
    const fleet = loadFleet(
      withFiles({
        'bundles/app/extra.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: edge-store-1\n',
      }),
    );
    expect(fleet.errors).toEqual([]);
    const store = fleet.planCluster(clusters[2] as (typeof clusters)[0]);
    expect(summary(store)).toEqual({
      status: 'partial',
      planned: ['base'],
      held: ['addon:dependency-broken:matched', 'app:broken:matched', 'edge:broken:matched'],
    });
    expect(formatted(store.errors)).toEqual([
      'bundles/addon/bundle.yaml:2: dependsOn[0]: bundle "app" has errors for cluster "store-1"',
      'bundles/app/extra.yaml:1: duplicate object ConfigMap "shop/edge-store-1": also defined by bundle "edge" at bundles/edge/cm.yaml:1',
      'bundles/edge/cm.yaml:1: duplicate object ConfigMap "shop/edge-store-1": also defined by bundle "app" at bundles/app/extra.yaml:1',
    ]);
    expect(summary(fleet.planCluster(clusters[0] as (typeof clusters)[0])).status).toBe('ok');
  });

  it('holds a bundle whose dependency does not target the cluster', () => {
    const fleet = loadFleet(
      withFiles({
        'bundles/edge/bundle.yaml': 'namespace: shop\ndependsOn: [app]\ntargets:\n  - clusterGroup: edge\n',
      }),
    );
    const plan = fleet.planCluster({ name: 'kiosk', labels: { site: 'k1' } });
    expect(summary(plan)).toEqual({ status: 'partial', planned: ['base'], held: ['edge:broken:matched'] });
    expect(formatted(plan.errors)).toEqual([
      'bundles/edge/bundle.yaml:2: dependsOn[0]: bundle "app" does not target cluster "kiosk"',
    ]);
  });

  it('keeps the whole last good state of a cluster whose own file is broken', () => {
    const fleet = loadFleet(withFiles({ 'clusters/store-1.yaml': 'labels:\n  site: store 1\n' }));
    const store = next(fleet, 'store-1', last);
    expect(store.plan.status).toBe('held');
    expect(formatted(store.plan.errors)).toEqual([
      `clusters/store-1.yaml:2: labels.site: invalid label value "store 1": must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`,
    ]);
    expect(store.state.bundles).toEqual(last.get('store-1')?.bundles);
    expect(summary(next(fleet, 'prod-1', last).plan).status).toBe('ok');
  });

  it('removes a bundle from clusters it no longer targets, broken or not', () => {
    const fleet = loadFleet(
      withFiles({
        'bundles/addon/bundle.yaml':
          'namespace: shop\ndependsOn: [app]\ntargets:\n  - clusterSelector: env=staging\n',
        'bundles/addon/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: 0777\n',
      }),
    );
    expect(fleet.errors.length).toBe(1);
    const prod = next(fleet, 'prod-1', last);
    expect(prod.plan.status).toBe('ok');
    expect(prod.state.bundles.map((b) => b.name)).toEqual(['base', 'app']);
  });
});
