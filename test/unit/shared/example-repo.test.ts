// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${...} is the fleet repo's variable syntax, not a mistake
import { type ClusterPlan, type KubeObject, loadFleet, planFleet } from '@flotilla/shared';
import { describe, expect, it } from 'vitest';
import { readRepoDir } from './helpers.ts';

const files = readRepoDir('examples/fleet-repo');
/** The bundles Helm and kustomize build are rendered with the real engines in test/integration/renderer/example-fleet.test.ts. */
const engineBundles = ['bundles/ingress/', 'bundles/shop/'];
const plainFiles = files.filter((f) => !engineBundles.some((dir) => f.path.startsWith(dir)));

function objectsOf(plan: ClusterPlan, bundle: string): KubeObject[] {
  const b = plan.bundles.find((x) => x.ref.name === bundle);
  return b ? (JSON.parse(b.rendered.canonical) as { objects: KubeObject[] }).objects : [];
}

describe('examples/fleet-repo', () => {
  it('loads without errors', () => {
    expect(loadFleet(files).errors).toEqual([]);
  });

  it('renders its plain bundles cleanly for prod/eu, prod/us and staging/eu clusters', () => {
    const { clusters, errors } = planFleet(plainFiles, [
      { name: 'fra-prod-2', labels: { env: 'prod', region: 'eu' } },
      { name: 'iad-prod-2', labels: { env: 'prod', region: 'us' } },
      { name: 'fra-staging-2', labels: { env: 'staging', region: 'eu' } },
    ]);
    expect(errors).toEqual([]);
    expect(clusters.map((c) => [c.cluster, c.status, c.bundles.map((b) => b.ref.name)])).toEqual([
      ['fra-prod-2', 'ok', ['backup-crds', 'baseline', 'log-shipper', 'monitoring-agent', 'web', 'backups']],
      [
        'fra-staging-2',
        'ok',
        ['backup-crds', 'baseline', 'log-shipper', 'monitoring-agent', 'web', 'backups'],
      ],
      ['iad-prod-2', 'ok', ['backup-crds', 'baseline', 'log-shipper', 'monitoring-agent', 'web', 'backups']],
    ]);
  });

  it('uses the labels declared in clusters/ and the exclude of log-shipper', () => {
    const fleet = loadFleet(files);
    const us = fleet.planCluster({ name: 'prod-us-1' });
    expect(us.labels).toEqual({ env: 'prod', region: 'us', tier: 'gold' });
    expect(us.bundles.map((b) => b.ref.name)).not.toContain('log-shipper');
    expect(fleet.matchBundles({ name: 'prod-us-1' }).find((m) => m.bundle === 'log-shipper')).toEqual({
      bundle: 'log-shipper',
      status: 'excluded',
      target: { index: 0, kind: 'clusterSelector' },
      excludedBy: { index: 0, name: 'managed-logging', kind: 'clusterName' },
    });
  });

  it('sizes and configures the storefront per environment', () => {
    const fleet = loadFleet(files);
    const web = (name: string) => {
      const plan = fleet.planCluster({ name });
      const objs = objectsOf(plan, 'web');
      const deploy = objs.find((o) => o.kind === 'Deployment') as KubeObject & {
        spec: { replicas: number; template: { spec: { containers: { env: { value: string }[] }[] } } };
      };
      const svc = objs.find((o) => o.kind === 'Service') as KubeObject & { spec: { type?: string } };
      const conf = (objs.find((o) => o.kind === 'ConfigMap') as KubeObject & { data: Record<string, string> })
        .data['default.conf'];
      return {
        customization: plan.bundles.find((b) => b.ref.name === 'web')?.customization?.name,
        replicas: deploy.spec.replicas,
        env: deploy.spec.template.spec.containers[0]?.env.map((e) => e.value),
        serviceType: svc.spec.type ?? 'ClusterIP',
        serverName: /server_name ([^;]+);/.exec(conf ?? '')?.[1],
        escaped: conf?.includes('"${hostname}"'),
      };
    };
    expect(web('prod-eu-1')).toEqual({
      customization: 'prod-eu',
      replicas: 6,
      env: ['info', 'prod-eu-1', 'eu'],
      serviceType: 'ClusterIP',
      serverName: 'eu.shop.example.com',
      escaped: true,
    });
    expect(web('prod-us-1')).toMatchObject({
      customization: 'prod',
      replicas: 4,
      serverName: 'shop.example.com',
    });
    expect(web('staging-eu-1')).toMatchObject({
      customization: 'staging',
      replicas: 2,
      env: ['debug', 'staging-eu-1', 'eu'],
      serviceType: 'NodePort',
      serverName: 'staging.shop.example.com',
    });
  });

  it('learns the scope of custom resources from the CRDs in the repo', () => {
    const plan = loadFleet(files).planCluster({ name: 'staging-eu-1' });
    expect(objectsOf(plan, 'backups').map((o) => [o.kind, o.metadata.namespace ?? null, o.spec])).toEqual([
      ['BackupLocation', null, { bucket: 'backups-eu-staging' }],
      ['BackupSchedule', 'web', { schedule: '0 2 * * *', location: 'default', retentionDays: 3 }],
    ]);
  });
});
