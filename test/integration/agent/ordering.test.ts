import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { KubeClient } from '../../../agent/src/kube/client.ts';
import { until } from '../../support/until.ts';
import { AgentHarness, cleanUp, controlPlane, kubeClientOf, syncSettled, uniqueName } from './harness.ts';

const bed = inject('bed');
const plane = controlPlane(bed, 1);
let h: AgentHarness;
let kube: KubeClient;
const group = `${uniqueName('widgets')}.example.com`;
const crdName = `gadgets.${group}`;
const clusterCrdName = `fleets.${group}`;

beforeAll(async () => {
  h = await AgentHarness.start(bed, 'order');
  kube = await kubeClientOf(plane.kubeconfigPath);
});

const created: string[] = [];
const createdPaths: string[] = [];
afterAll(async () => {
  await cleanUp(kube, created, createdPaths);
  kube.close();
  await h?.stop();
});

const crds = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: ${crdName}
spec:
  group: ${group}
  scope: Namespaced
  names: { plural: gadgets, singular: gadget, kind: Gadget }
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size: { type: integer }
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: ${clusterCrdName}
spec:
  group: ${group}
  scope: Cluster
  names: { plural: fleets, singular: fleet, kind: Fleet }
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
`;

describe('order: CRDs before their custom resources, dependencies before dependents', () => {
  it('applies a CRD and its custom resources in one bundle, waiting for the CRD to be established', async () => {
    const cluster = uniqueName('crd');
    const ns = uniqueName('crd-ns');
    created.push(ns, `${cluster}-agent`);
    createdPaths.push(
      `/apis/${group}/v1/fleets/one`,
      `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crdName}`,
      `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${clusterCrdName}`,
    );
    const { token } = await h.register(cluster);
    // Custom resources first in the file: the agent orders them, the author need not.
    const manifests = `apiVersion: ${group}/v1
kind: Gadget
metadata:
  name: small
spec:
  size: 1
---
apiVersion: ${group}/v1
kind: Gadget
metadata:
  name: large
spec:
  size: 9
---
apiVersion: ${group}/v1
kind: Fleet
metadata:
  name: one
spec:
  ships: 3
---
${crds}---
apiVersion: v1
kind: Namespace
metadata:
  name: ${ns}
`;
    await h.push({ [`${cluster}-types`]: { cluster, namespace: ns, manifests } });
    const { agent } = await h.agent(cluster, token, {
      kubeconfigPath: plane.kubeconfigPath,
      namespace: `${cluster}-agent`,
    });
    const result = await syncSettled(agent);
    const outcome = agent.lastOutcome?.bundles[0];
    expect(outcome?.state, outcome?.message).toBe('Ready');
    expect(result.kind === 'applied' && result.outcome?.bundles[0]?.changes.created).toBe(6);
    const gadget = await kube.get<{ spec: { size: number } }>(
      `/apis/${group}/v1/namespaces/${ns}/gadgets/large`,
    );
    expect(gadget?.spec.size).toBe(9);
    // A cluster-scoped custom resource gets no namespace, whatever the bundle's default.
    const fleet = await kube.get<{ metadata: { namespace?: string } }>(`/apis/${group}/v1/fleets/one`);
    expect(fleet).toBeDefined();
    expect(fleet?.metadata.namespace).toBeUndefined();

    // Removing the bundle deletes custom resources before their definitions, and the namespace last.
    await h.push({ [`${cluster}-types`]: null });
    await agent.sync();
    expect(agent.lastOutcome?.pruned).toBe(6);
    const gone = async (path: string) => {
      const live = await kube.get<{ metadata: { deletionTimestamp?: string } }>(path);
      return live === undefined || live.metadata.deletionTimestamp !== undefined;
    };
    expect(await gone(`/apis/${group}/v1/namespaces/${ns}/gadgets/large`)).toBe(true);
    expect(await gone(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crdName}`)).toBe(true);
  });

  it('applies a bundle only after the bundles it depends on are Ready', async () => {
    const cluster = uniqueName('deps');
    const ns = uniqueName('deps-ns');
    created.push(ns, `${cluster}-agent`);
    const { token } = await h.register(cluster);
    const db = `apiVersion: v1
kind: Namespace
metadata:
  name: ${ns}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: db
spec:
  replicas: 3
  selector: { matchLabels: { app: db } }
  template:
    metadata: { labels: { app: db } }
    spec:
      containers: [{ name: db, image: registry.example.com/db:1 }]
`;
    const web = `apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  db: db.${ns}.svc
`;
    await h.push({
      [`${cluster}-web`]: { cluster, namespace: ns, dependsOn: [`${cluster}-db`], manifests: web },
      [`${cluster}-db`]: { cluster, namespace: ns, manifests: db },
    });
    const { agent } = await h.agent(cluster, token, {
      kubeconfigPath: plane.kubeconfigPath,
      namespace: `${cluster}-agent`,
    });
    await syncSettled(agent);
    const [dbOutcome, webOutcome] = agent.lastOutcome?.bundles ?? [];
    expect(dbOutcome?.name).toBe(`${cluster}-db`);
    expect(dbOutcome?.state).toBe('Ready');
    expect(webOutcome?.state).toBe('Ready');
    // web started only once db had settled Ready.
    expect(webOutcome?.startedAt).toBeGreaterThanOrEqual(dbOutcome?.settledAt ?? Number.POSITIVE_INFINITY);
    // And the cluster agrees: the Deployment was Available before the ConfigMap existed (to the second).
    const deployment = await kube.get<{
      status: { conditions: { type: string; lastTransitionTime: string }[] };
    }>(`/apis/apps/v1/namespaces/${ns}/deployments/db`);
    const available =
      deployment?.status.conditions.find((c) => c.type === 'Available')?.lastTransitionTime ?? '';
    const config = await kube.get<{ metadata: { creationTimestamp: string } }>(
      `/api/v1/namespaces/${ns}/configmaps/web-config`,
    );
    expect(Date.parse(config?.metadata.creationTimestamp ?? '')).toBeGreaterThanOrEqual(
      Date.parse(available),
    );
  });

  it('keeps a dependent bundle Pending while its dependency is not Ready, and applies nothing of it', async () => {
    const cluster = uniqueName('stuck');
    const ns = uniqueName('stuck-ns');
    created.push(ns, `${cluster}-agent`);
    const { token } = await h.register(cluster);
    // No node has this label: the pods never schedule, the Deployment never becomes Available.
    const db = `apiVersion: v1
kind: Namespace
metadata:
  name: ${ns}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: db
spec:
  replicas: 1
  selector: { matchLabels: { app: db } }
  template:
    metadata: { labels: { app: db } }
    spec:
      nodeSelector: { flotilla.dev/no-such-node: "true" }
      containers: [{ name: db, image: registry.example.com/db:1 }]
`;
    await h.push({
      [`${cluster}-db`]: { cluster, namespace: ns, manifests: db },
      [`${cluster}-web`]: {
        cluster,
        namespace: ns,
        dependsOn: [`${cluster}-db`],
        manifests: 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata: {}\n',
      },
    });
    const { agent } = await h.agent(cluster, token, {
      kubeconfigPath: plane.kubeconfigPath,
      namespace: `${cluster}-agent`,
    });
    await agent.sync();
    // The loop looks again while db is not ready: by then its controller has counted the replicas.
    await until('db to count its replicas', async () => {
      const outcome = await agent.enforce({ detectDrift: false, trigger: 'requeue' });
      return /replicas/.test(outcome?.bundles[0]?.message ?? '') ? true : undefined;
    });
    const [dbOutcome, webOutcome] = agent.lastOutcome?.bundles ?? [];
    expect(dbOutcome?.state).toBe('NotReady');
    expect(dbOutcome?.message).toMatch(/Deployment .*\/db: .*replicas/);
    expect(webOutcome?.state).toBe('Pending');
    expect(webOutcome?.message).toBe(`waiting for ${cluster}-db (NotReady) to be Ready`);
    expect(agent.lastOutcome?.requeue).toBe(true);
    expect(agent.lastOutcome?.complete).toBe(false);
    expect(await kube.get(`/api/v1/namespaces/${ns}/configmaps/web-config`)).toBeUndefined();
  });
});
