// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${...} is the fleet repo's variable syntax, not a mistake
import { loadFleet } from '@flotilla/shared';
import { describe, expect, it } from 'vitest';
import { DEPLOYMENT, repo } from './helpers.ts';

const fleetFiles = {
  'groups/production.yaml': 'selector:\n  matchLabels:\n    env: prod\n',
  'groups/eu.yaml': 'selector: region=eu\n',
  'bundles/web/bundle.yaml': `namespace: web
targets:
  - name: prod
    clusterGroup: production
  - name: staging
    clusterSelector:
      matchLabels: { env: staging }
  - name: lab
    clusterName: lab-1
exclude:
  - name: frozen
    clusterSelector: "freeze in (true)"
customizations:
  - name: prod-eu
    clusterSelector:
      matchLabels: { env: prod }
      matchExpressions:
        - { key: region, operator: In, values: [eu] }
    values: { replicas: 6 }
  - name: prod
    clusterGroup: production
    values: { replicas: 4 }
  - name: eu
    clusterGroup: eu
    values: { replicas: 3 }
values:
  replicas: 2
`,
  'bundles/web/deployment.yaml': DEPLOYMENT.replace('replicas: 1', 'replicas: ${values.replicas}'),
};

describe('targeting', () => {
  const fleet = loadFleet(repo(fleetFiles));

  it('loads without errors', () => {
    expect(fleet.errors).toEqual([]);
  });

  it('reports the first matching target entry', () => {
    expect(fleet.matchBundles({ name: 'p1', labels: { env: 'prod', region: 'us' } })).toEqual([
      {
        bundle: 'web',
        status: 'targeted',
        target: { index: 0, name: 'prod', kind: 'clusterGroup' },
        customization: { index: 1, name: 'prod', kind: 'clusterGroup' },
      },
    ]);
    expect(fleet.matchBundles({ name: 'lab-1', labels: {} })).toEqual([
      { bundle: 'web', status: 'targeted', target: { index: 2, name: 'lab', kind: 'clusterName' } },
    ]);
  });

  it('does not target clusters no entry matches', () => {
    expect(fleet.matchBundles({ name: 'dev-1', labels: { env: 'dev' } })).toEqual([]);
    expect(fleet.planCluster({ name: 'dev-1', labels: { env: 'dev' } }).bundles).toEqual([]);
  });

  it('lets exclude win over targets', () => {
    const labels = { env: 'prod', region: 'eu', freeze: 'true' };
    expect(fleet.matchBundles({ name: 'p2', labels })).toEqual([
      {
        bundle: 'web',
        status: 'excluded',
        target: { index: 0, name: 'prod', kind: 'clusterGroup' },
        excludedBy: { index: 0, name: 'frozen', kind: 'clusterSelector' },
      },
    ]);
    const plan = fleet.planCluster({ name: 'p2', labels });
    expect(plan.bundles).toEqual([]);
    expect(plan.status).toBe('ok');
  });

  it('picks the first matching customization, in order', () => {
    const replicas = (labels: Record<string, string>, name = 'c') => {
      const plan = fleet.planCluster({ name, labels });
      const b = plan.bundles[0];
      if (!b) return undefined;
      const doc = JSON.parse(b.rendered.canonical) as { objects: { spec: { replicas: number } }[] };
      return [b.customization?.name, doc.objects[0]?.spec.replicas];
    };
    // prod-eu and prod and eu all match: the first one listed wins.
    expect(replicas({ env: 'prod', region: 'eu' })).toEqual(['prod-eu', 6]);
    expect(replicas({ env: 'prod', region: 'us' })).toEqual(['prod', 4]);
    expect(replicas({ env: 'staging', region: 'eu' })).toEqual(['eu', 3]);
    // No customization matches: defaults.
    expect(replicas({ env: 'staging', region: 'us' })).toEqual([undefined, 2]);
    // Customizations never add clusters.
    expect(replicas({ env: 'dev', region: 'eu' })).toBeUndefined();
  });

  it('lets labels declared in git override registered labels', () => {
    const withDeclared = loadFleet(
      repo({ ...fleetFiles, 'clusters/edge-7.yaml': 'labels:\n  env: prod\n  region: eu\n' }),
    );
    const plan = withDeclared.planCluster({ name: 'edge-7', labels: { env: 'staging', site: 's7' } });
    expect(plan.labels).toEqual({ env: 'prod', region: 'eu', site: 's7' });
    expect(plan.bundles[0]?.customization?.name).toBe('prod-eu');
    expect(withDeclared.declaredClusters.get('edge-7')?.labels).toEqual({ env: 'prod', region: 'eu' });
  });

  it('holds a paused bundle in place: still targeted and rendered, marked paused', () => {
    const paused = loadFleet(
      repo({
        ...fleetFiles,
        'bundles/web/bundle.yaml': `${fleetFiles['bundles/web/bundle.yaml']}paused: true\n`,
      }),
    );
    const plan = paused.planCluster({ name: 'p1', labels: { env: 'prod' } });
    expect(plan.bundles.map((b) => [b.ref.name, b.ref.paused])).toEqual([['web', true]]);
  });
});
