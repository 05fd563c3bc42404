import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { KubeClient } from '../../../agent/src/kube/client.ts';
import { AgentHarness, cleanUp, controlPlane, kubeClientOf, syncSettled, uniqueName } from './harness.ts';

const bed = inject('bed');
const plane = controlPlane(bed, 0);
let h: AgentHarness;
let kube: KubeClient;
const cluster = uniqueName('cycle');
const ns = uniqueName('cycle-app');
const agentNs = uniqueName('cycle-agent');

const namespaceYaml = `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns}\n`;
const configMap = (name: string, value: string) =>
  `---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  value: "${value}"\n`;
const deployment = `---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: { app: web }
  template:
    metadata:
      labels: { app: web }
    spec:
      containers:
        - name: web
          image: registry.example.com/web:1.0.0
`;

const hubView = () => h.clusterStatus(cluster);

beforeAll(async () => {
  h = await AgentHarness.start(bed, 'cycle');
  kube = await kubeClientOf(plane.kubeconfigPath);
});

afterAll(async () => {
  await cleanUp(kube, [ns, agentNs]);
  kube.close();
  await h?.stop();
});

describe('apply, update and prune against a real API server', () => {
  let token: string;

  it('applies bundles with server-side apply, labels them, records inventories and reports Ready', async () => {
    ({ token } = await h.register(cluster));
    await h.push({
      [`${cluster}-base`]: { cluster, manifests: namespaceYaml },
      [`${cluster}-app`]: {
        cluster,
        namespace: ns,
        dependsOn: [`${cluster}-base`],
        manifests: configMap('settings', 'one') + configMap('extra', 'x') + deployment,
      },
    });
    const { agent } = await h.agent(cluster, token, {
      kubeconfigPath: plane.kubeconfigPath,
      namespace: agentNs,
    });
    const result = await syncSettled(agent);
    expect(result.kind).toBe('applied');
    const outcome = agent.lastOutcome;
    expect(outcome?.bundles.map((b) => [b.name, b.state])).toEqual([
      [`${cluster}-base`, 'Ready'],
      [`${cluster}-app`, 'Ready'],
    ]);
    expect(outcome?.complete).toBe(true);
    // What the first pass did; later passes only looked again until the Deployment was ready.
    const first = result.kind === 'applied' ? result.outcome : undefined;
    expect(first?.bundles[1]?.changes.created).toBe(3);

    const cm = await kube.get<{
      metadata: { labels: Record<string, string>; managedFields: { manager: string; operation: string }[] };
      data: Record<string, string>;
    }>(`/api/v1/namespaces/${ns}/configmaps/settings`);
    expect(cm?.data.value).toBe('one');
    expect(cm?.metadata.labels['flotilla.dev/bundle']).toBe(`${cluster}-app`);
    expect(
      cm?.metadata.managedFields.some((m) => m.manager === 'flotilla-agent' && m.operation === 'Apply'),
    ).toBe(true);
    const dep = await kube.get<{ status?: { availableReplicas?: number } }>(
      `/apis/apps/v1/namespaces/${ns}/deployments/web`,
    );
    expect(dep?.status?.availableReplicas).toBe(2);

    const inventory = await kube.get<{ data: { content: string } }>(
      `/api/v1/namespaces/${agentNs}/configmaps/flotilla-inventory-${cluster}-app`,
    );
    expect(inventory?.data.content).toContain(`"ConfigMap","${ns}","settings"`);

    const view = await hubView();
    expect(view?.appliedGeneration).toBe(agent.current?.manifest.generation);
    expect(view?.agentVersion).toBe('0.1.0');
    expect(view?.bundles.map((b) => [b.name, b.state, b.upToDate])).toEqual([
      [`${cluster}-base`, 'Ready', true],
      [`${cluster}-app`, 'Ready', true],
    ]);
  });

  it('answers an unchanged desired state with a 304 and applies nothing', async () => {
    const { agent } = await h.agent(cluster, token, {
      kubeconfigPath: plane.kubeconfigPath,
      namespace: agentNs,
    });
    expect(await agent.loadCache()).toBe(true);
    const result = await agent.sync();
    expect(result.kind).toBe('unchanged');
  });

  it('updates changed objects, creates new ones and prunes the ones that left, from the stored inventory', async () => {
    await h.push({
      [`${cluster}-app`]: {
        cluster,
        namespace: ns,
        dependsOn: [`${cluster}-base`],
        manifests: configMap('settings', 'two') + configMap('added', 'y') + deployment,
      },
    });
    // A new agent instance: what to prune comes from the inventory in the cluster, not from memory.
    const { agent } = await h.agent(cluster, token, {
      kubeconfigPath: plane.kubeconfigPath,
      namespace: agentNs,
    });
    const result = await agent.sync();
    expect(result.kind).toBe('applied');
    const app = agent.lastOutcome?.bundles.find((b) => b.name === `${cluster}-app`);
    expect(app?.state).toBe('Ready');
    expect(app?.changes).toMatchObject({ created: 1, configured: 1, unchanged: 1, deleted: 1 });
    expect(
      (await kube.get<{ data: Record<string, string> }>(`/api/v1/namespaces/${ns}/configmaps/settings`))?.data
        .value,
    ).toBe('two');
    expect(await kube.get(`/api/v1/namespaces/${ns}/configmaps/added`)).toBeDefined();
    expect(await kube.get(`/api/v1/namespaces/${ns}/configmaps/extra`)).toBeUndefined();
  });

  it('prunes a bundle that left the desired state, and drops its inventory', async () => {
    await h.push({ [`${cluster}-app`]: null });
    const { agent } = await h.agent(cluster, token, {
      kubeconfigPath: plane.kubeconfigPath,
      namespace: agentNs,
    });
    await agent.sync();
    expect(agent.lastOutcome?.pruned).toBe(3);
    expect(await kube.get(`/apis/apps/v1/namespaces/${ns}/deployments/web`)).toBeUndefined();
    expect(await kube.get(`/api/v1/namespaces/${ns}/configmaps/settings`)).toBeUndefined();
    expect(
      await kube.get(`/api/v1/namespaces/${agentNs}/configmaps/flotilla-inventory-${cluster}-app`),
    ).toBeUndefined();
    expect(await kube.get(`/api/v1/namespaces/${ns}`)).toBeDefined();
  });

  it('removes everything only when the desired state is explicitly empty', async () => {
    await h.push({ [`${cluster}-base`]: null });
    const { agent } = await h.agent(cluster, token, {
      kubeconfigPath: plane.kubeconfigPath,
      namespace: agentNs,
    });
    await agent.sync();
    expect(agent.current?.manifest.bundles).toEqual([]);
    expect(agent.lastOutcome?.pruned).toBe(1);
    const gone = await kube.get<{ status?: { phase?: string } }>(`/api/v1/namespaces/${ns}`);
    expect(gone === undefined || gone.status?.phase === 'Terminating').toBe(true);
    expect((await hubView())?.bundles).toEqual([]);
  });
});
