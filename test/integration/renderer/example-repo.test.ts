// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${...} is the fleet repo's variable syntax, not a mistake
/**
 * The example fleet repo as the hub renders it: overlays (kustomize's strategic merge),
 * Helm and Kustomize bundles through the real render worker.
 */
import { ensureRenderer } from '@flotilla/renderer/build.ts';
import { RendererClient } from '@flotilla/renderer/client.ts';
import {
  type ClusterInput,
  type ClusterPlan,
  type KubeObject,
  loadFleet,
  renderFleet,
} from '@flotilla/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readRepoDir } from '../../unit/shared/helpers.ts';

const files = readRepoDir('examples/fleet-repo');
let client: RendererClient;

beforeAll(async () => {
  client = new RendererClient({ binary: await ensureRenderer() });
}, 900_000);
afterAll(async () => {
  await client?.close();
});

/** The repo loaded and prepared for these clusters, ready for planCluster. */
async function fleetFor(clusters: readonly ClusterInput[]) {
  const fleet = loadFleet(files);
  await fleet.prepare(clusters, { engine: client });
  return fleet;
}

function objectsOf(plan: ClusterPlan, bundle: string): KubeObject[] {
  const b = plan.bundles.find((x) => x.ref.name === bundle);
  return b ? (JSON.parse(b.rendered.canonical) as { objects: KubeObject[] }).objects : [];
}

describe('examples/fleet-repo', () => {
  it('loads without errors', () => {
    expect(loadFleet(files).errors).toEqual([]);
  });

  it('renders cleanly for prod/eu, prod/us and staging/eu clusters', async () => {
    const { clusters, errors } = await renderFleet(
      files,
      [
        { name: 'fra-prod-2', labels: { env: 'prod', region: 'eu' } },
        { name: 'iad-prod-2', labels: { env: 'prod', region: 'us' } },
        { name: 'fra-staging-2', labels: { env: 'staging', region: 'eu' } },
      ],
      { engine: client },
    );
    expect(errors).toEqual([]);
    expect(clusters.map((c) => [c.cluster, c.status, c.bundles.map((b) => b.ref.name)])).toEqual([
      [
        'fra-prod-2',
        'ok',
        ['backup-crds', 'baseline', 'ingress', 'log-shipper', 'monitoring-agent', 'shop', 'web', 'backups'],
      ],
      [
        'fra-staging-2',
        'ok',
        ['backup-crds', 'baseline', 'ingress', 'log-shipper', 'monitoring-agent', 'shop', 'web', 'backups'],
      ],
      [
        'iad-prod-2',
        'ok',
        ['backup-crds', 'baseline', 'ingress', 'log-shipper', 'monitoring-agent', 'shop', 'web', 'backups'],
      ],
    ]);
  });

  it('uses the labels declared in clusters/ and the exclude of log-shipper', async () => {
    const fleet = await fleetFor([{ name: 'prod-us-1' }]);
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

  it('sizes and configures the storefront per environment', async () => {
    const fleet = await fleetFor([{ name: 'prod-eu-1' }, { name: 'prod-us-1' }, { name: 'staging-eu-1' }]);
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

  it('learns the scope of custom resources from the CRDs in the repo', async () => {
    const plan = (await fleetFor([{ name: 'staging-eu-1' }])).planCluster({ name: 'staging-eu-1' });
    expect(objectsOf(plan, 'backups').map((o) => [o.kind, o.metadata.namespace ?? null, o.spec])).toEqual([
      ['BackupLocation', null, { bucket: 'backups-eu-staging' }],
      ['BackupSchedule', 'web', { schedule: '0 2 * * *', location: 'default', retentionDays: 3 }],
    ]);
  });
});
