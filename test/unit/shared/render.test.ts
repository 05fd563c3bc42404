// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${...} is the fleet repo's variable syntax, not a mistake
import { type ClusterPlan, type KubeObject, loadFleet } from '@flotilla/shared';
import { describe, expect, it } from 'vitest';
import { formatted, repo } from './helpers.ts';

function objects(plan: ClusterPlan, bundle: string): KubeObject[] {
  const b = plan.bundles.find((p) => p.ref.name === bundle);
  if (!b) throw new Error(`bundle ${bundle} not planned: ${JSON.stringify(plan.errors)}`);
  return (JSON.parse(b.rendered.canonical) as { objects: KubeObject[] }).objects;
}

const cluster = { name: 'prod-eu-1', labels: { env: 'prod', 'topology.kubernetes.io/region': 'eu-west-1' } };

describe('variable substitution', () => {
  const files = {
    'bundles/app/bundle.yaml': `namespace: app
targets: [{ clusterSelector: {} }]
customizations:
  - clusterSelector: env=prod
    values:
      replicas: 5
      image: { tag: "2.0" }
values:
  replicas: 1
  debug: false
  image: { repository: ghcr.io/acme/app, tag: "1.0" }
`,
    'bundles/app/config.yaml': `apiVersion: v1
kind: ConfigMap
metadata:
  name: \${cluster.name}-config
data:
  cluster: \${cluster.name}
  region: \${cluster.labels.topology.kubernetes.io/region}
  image: \${values.image.repository}:\${values.image.tag}
  quotedNumber: "\${values.replicas}"
  debug: \${values.debug}
  literal: echo $\${HOME} costs $5 and \${values.replicas} replicas
  shell: |
    export URL=https://\${cluster.name}.example.com/$\${PATH_SUFFIX}
`,
    'bundles/app/deployment.yaml': `apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  replicas: \${values.replicas}
`,
  };
  const plan = loadFleet(repo(files)).planCluster(cluster);

  it('substitutes cluster name, labels and values (customization over defaults)', () => {
    expect(plan.errors).toEqual([]);
    const [cm, deploy] = objects(plan, 'app');
    expect(cm?.metadata.name).toBe('prod-eu-1-config');
    expect(cm?.data).toEqual({
      cluster: 'prod-eu-1',
      region: 'eu-west-1',
      image: 'ghcr.io/acme/app:2.0',
      quotedNumber: '5',
      debug: false,
      literal: 'echo ${HOME} costs $5 and 5 replicas',
      shell: 'export URL=https://prod-eu-1.example.com/${PATH_SUFFIX}\n',
    });
    // A plain scalar that is exactly one value keeps the value's type.
    expect(deploy?.spec).toEqual({ replicas: 5 });
  });

  it('reports an undefined cluster label with file, line and variable, for that cluster only', () => {
    const fleet = loadFleet(repo(files));
    const bare = fleet.planCluster({ name: 'bare', labels: { env: 'dev' } });
    expect(bare.status).toBe('partial');
    expect(bare.bundles).toEqual([]);
    expect(formatted(bare.errors)).toEqual([
      'bundles/app/config.yaml:7: undefined variable ${cluster.labels.topology.kubernetes.io/region}: cluster "bare" has no label "topology.kubernetes.io/region"',
    ]);
    expect(bare.errors[0]).toMatchObject({
      file: 'bundles/app/config.yaml',
      line: 7,
      column: 11,
      bundle: 'app',
    });
    expect(fleet.planCluster(cluster).status).toBe('ok');
  });

  it('never substitutes an empty string for an undefined value', () => {
    const fleet = loadFleet(
      repo({
        ...files,
        'bundles/app/deployment.yaml': files['bundles/app/deployment.yaml'].replace('replicas}', 'replica}'),
      }),
    );
    expect(formatted(fleet.errors)).toEqual([
      'bundles/app/deployment.yaml:6: undefined variable ${values.replica} (not set in values of bundle.yaml and customizations[0])',
      'bundles/app/deployment.yaml:6: undefined variable ${values.replica} (not set in values of bundles/app/bundle.yaml)',
    ]);
  });
});

describe('YAML anchors and aliases', () => {
  it('expand like any other YAML reader', () => {
    const plan = loadFleet(
      repo({
        'bundles/a/bundle.yaml': 'targets: [{ clusterSelector: {} }]\n',
        'bundles/a/cm.yaml': `apiVersion: v1
kind: ConfigMap
metadata:
  name: cm
  labels: &labels { app: a, cluster: "\${cluster.name}" }
  annotations: *labels
`,
      }),
    ).planCluster({ name: 'c9' });
    expect(objects(plan, 'a')[0]?.metadata).toEqual({
      name: 'cm',
      namespace: 'default',
      labels: { app: 'a', cluster: 'c9' },
      annotations: { app: 'a', cluster: 'c9' },
    });
  });
});

describe('namespaces and scope', () => {
  const files = {
    'bundles/base/bundle.yaml': 'namespace: team-a\ntargets: [{ clusterSelector: {} }]\n',
    'bundles/base/all.yaml': `apiVersion: v1
kind: Namespace
metadata: { name: team-a }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: viewer }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: bot }
---
apiVersion: v1
kind: ConfigMap
metadata: { name: elsewhere, namespace: other }
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: { name: fast }
provisioner: ebs.csi.aws.com
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: { name: critical }
value: 1000
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: { name: policy }
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: { name: widgets.acme.io }
spec:
  group: acme.io
  scope: Cluster
  names: { kind: Widget, plural: widgets }
---
apiVersion: acme.io/v1
kind: Widget
metadata: { name: global-widget }
---
apiVersion: acme.io/v1
kind: Gadget
metadata: { name: some-gadget }
`,
  };
  const plan = loadFleet(repo(files)).planCluster({ name: 'c1', labels: {} });

  it('defaults the namespace of namespaced objects only, and orders objects for apply', () => {
    expect(plan.errors).toEqual([]);
    expect(
      objects(plan, 'base').map((o) => `${o.kind}:${o.metadata.namespace ?? '-'}/${o.metadata.name}`),
    ).toEqual([
      'Namespace:-/team-a',
      'ServiceAccount:team-a/bot',
      'ConfigMap:other/elsewhere',
      'StorageClass:-/fast',
      'PriorityClass:-/critical',
      'CustomResourceDefinition:-/widgets.acme.io',
      'ClusterRole:-/viewer',
      'ValidatingWebhookConfiguration:-/policy',
      // Custom resources last; Widget is cluster-scoped per its CRD in the repo, Gadget is unknown so namespaced.
      'Gadget:team-a/some-gadget',
      'Widget:-/global-widget',
    ]);
  });

  it('defaults to the "default" namespace when the bundle sets none', () => {
    const fleet = loadFleet(
      repo({
        'bundles/x/bundle.yaml': 'targets: [{ clusterSelector: {} }]\n',
        'bundles/x/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: x }\n',
      }),
    );
    const p = fleet.planCluster({ name: 'c1' });
    expect(objects(p, 'x')[0]?.metadata.namespace).toBe('default');
    expect(p.bundles[0]?.ref.namespace).toBe('default');
  });
});
