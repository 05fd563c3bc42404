/**
 * Bundle overlays as the hub applies them: kustomize's strategic merge in the render
 * worker, `$patch: json-merge` by Flotilla, whole-object delete and replace. Equality with
 * `kustomize build` on a wider corpus is in overlay-smp.test.ts.
 */
import { ensureRenderer } from '@flotilla/renderer/build.ts';
import { RendererClient } from '@flotilla/renderer/client.ts';
import { type ClusterPlan, type KubeObject, loadFleet } from '@flotilla/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repo } from '../../unit/shared/helpers.ts';

let client: RendererClient;

function objects(plan: ClusterPlan, bundle: string): KubeObject[] {
  const b = plan.bundles.find((x) => x.ref.name === bundle);
  if (!b) throw new Error(`${plan.cluster} has no ${bundle}: ${JSON.stringify(plan.errors)}`);
  return (JSON.parse(b.rendered.canonical) as { objects: KubeObject[] }).objects;
}

describe('overlays', () => {
  const files = {
    'bundles/web/bundle.yaml': `namespace: web
targets: [{ clusterSelector: {} }]
customizations:
  - { clusterName: strategic, overlay: strategic }
  - { clusterName: json, overlay: json }
  - { clusterName: removal, overlay: removal }
`,
    'bundles/web/app.yaml': `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations: { keep: "yes", drop: "me" }
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: web
          image: nginx:1.26
          env:
            - { name: A, value: "1" }
            - { name: B, value: "2" }
        - name: sidecar
          image: envoy:1.30
      tolerations:
        - { key: a, operator: Exists }
---
apiVersion: v1
kind: Service
metadata: { name: web }
spec:
  ports:
    - { name: http, port: 80 }
---
apiVersion: v1
kind: ConfigMap
metadata: { name: extra }
data: { a: "1" }
`,
    'bundles/web/overlays/strategic/patch.yaml': `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations: { drop: null }
spec:
  replicas: 5
  template:
    spec:
      containers:
        - name: web
          image: nginx:1.27
          env:
            - { name: B, $patch: delete }
            - { name: C, value: "3" }
        - name: sidecar
          $patch: delete
      tolerations:
        - { key: b, operator: Exists }
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: web }
spec:
  ports:
    - { name: http, port: 80, targetPort: 8080 }
`,
    'bundles/web/overlays/json/patch.yaml': `$patch: json-merge
apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
spec:
  template:
    spec:
      containers:
        - name: only
          image: busybox:1.36
`,
    'bundles/web/overlays/removal/patch.yaml': `$patch: delete
apiVersion: v1
kind: ConfigMap
metadata: { name: extra }
---
$patch: replace
apiVersion: v1
kind: Service
metadata: { name: web }
spec:
  type: ExternalName
  externalName: web.example.com
`,
  };
  const fleet = loadFleet(repo(files));
  beforeAll(async () => {
    client = new RendererClient({ binary: await ensureRenderer() });
    await fleet.prepare(
      ['strategic', 'json', 'removal', 'other'].map((name) => ({ name })),
      { engine: client },
    );
  }, 900_000);
  afterAll(async () => {
    await client?.close();
  });

  it('loads without errors', () => expect(fleet.errors).toEqual([]));

  it('applies strategic-merge patches: list items merge on their merge keys, null and $patch: delete remove', () => {
    const [, svc, deploy] = objects(fleet.planCluster({ name: 'strategic' }), 'web');
    expect(deploy?.metadata.annotations).toEqual({ keep: 'yes' });
    expect(deploy?.spec).toEqual({
      replicas: 5,
      template: {
        spec: {
          containers: [
            {
              name: 'web',
              image: 'nginx:1.27',
              // kustomize puts an item the base lacks first.
              env: [
                { name: 'C', value: '3' },
                { name: 'A', value: '1' },
              ],
            },
          ],
          // No merge key in the schema: the list is replaced.
          tolerations: [{ key: 'b', operator: 'Exists' }],
        },
      },
    });
    // Service ports merge on port.
    expect(svc?.spec).toEqual({ ports: [{ name: 'http', port: 80, targetPort: 8080 }] });
  });

  it('applies JSON merge patches: lists are replaced', () => {
    const deploy = objects(fleet.planCluster({ name: 'json' }), 'web').find((o) => o.kind === 'Deployment');
    expect(deploy?.spec).toMatchObject({
      template: {
        spec: {
          containers: [{ name: 'only', image: 'busybox:1.36' }],
          tolerations: [{ key: 'a', operator: 'Exists' }],
        },
      },
    });
  });

  it('deletes and replaces whole objects', () => {
    const objs = objects(fleet.planCluster({ name: 'removal' }), 'web');
    expect(objs.map((o) => o.kind)).toEqual(['Service', 'Deployment']);
    expect(objs[0]).toEqual({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', namespace: 'web' },
      spec: { type: 'ExternalName', externalName: 'web.example.com' },
    });
  });

  it('leaves clusters without a customization on the base objects', () => {
    const deploy = objects(fleet.planCluster({ name: 'other' }), 'web').find((o) => o.kind === 'Deployment');
    expect(deploy?.spec).toMatchObject({ replicas: 2 });
  });
});
