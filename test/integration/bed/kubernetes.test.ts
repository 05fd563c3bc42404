import {
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  type V1Deployment,
} from '@kubernetes/client-node';
import { describe, expect, inject, it } from 'vitest';

const bed = inject('bed');
const fieldManager = 'flotilla-smoke';

function clients(kubeconfigPath: string) {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  return {
    objects: KubernetesObjectApi.makeApiClient(kc),
    apps: kc.makeApiClient(AppsV1Api),
    core: kc.makeApiClient(CoreV1Api),
  };
}

function deployment(namespace: string): V1Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace, labels: { 'app.kubernetes.io/name': 'web' } },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: { containers: [{ name: 'web', image: 'registry.example.com/web:1.0.0' }] },
      },
    },
  };
}

async function waitForAvailable(
  apps: AppsV1Api,
  namespace: string,
  timeoutMs: number,
): Promise<V1Deployment> {
  const deadline = Date.now() + timeoutMs;
  let last: V1Deployment | undefined;
  while (Date.now() < deadline) {
    last = await apps.readNamespacedDeploymentStatus({ name: 'web', namespace });
    const available = last.status?.conditions?.find((c) => c.type === 'Available');
    if (available?.status === 'True' && last.status?.availableReplicas === 2) return last;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`Deployment web never became Available: ${JSON.stringify(last?.status)}`);
}

describe('Kubernetes control planes (smoke)', () => {
  it('runs independent planes, each with its own kubeconfig', () => {
    expect(bed.clusters.length).toBeGreaterThanOrEqual(2);
    const servers = new Set(bed.clusters.map((c) => c.server));
    expect(servers.size).toBe(bed.clusters.length);
  });

  it.each([0, 1])(
    'server-side applies a Deployment to plane %i; the field manager owns it and it becomes Available',
    async (i) => {
      const cluster = bed.clusters[i];
      if (!cluster) throw new Error(`bed has no cluster #${i}`);
      const { objects, apps, core } = clients(cluster.kubeconfigPath);
      const namespace = `smoke-${Date.now()}`;
      await objects.patch(
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } },
        undefined,
        undefined,
        fieldManager,
        true,
        PatchStrategy.ServerSideApply,
      );
      const applied = await objects.patch(
        deployment(namespace),
        undefined,
        undefined,
        fieldManager,
        true,
        PatchStrategy.ServerSideApply,
      );

      const managers = applied.metadata?.managedFields ?? [];
      expect(managers.some((m) => m.manager === fieldManager && m.operation === 'Apply')).toBe(true);

      const ready = await waitForAvailable(apps, namespace, 90_000);
      expect(ready.status?.readyReplicas).toBe(2);
      // The pods really exist and were placed on a (kwok) node by the scheduler.
      const pods = await core.listNamespacedPod({ namespace, labelSelector: 'app=web' });
      expect(pods.items).toHaveLength(2);
      expect(pods.items.every((p) => p.spec?.nodeName && p.status?.phase === 'Running')).toBe(true);

      // The same object in another plane is untouched: the planes are independent.
      const other = bed.clusters[1 - i];
      if (other) {
        const { core: otherCore } = clients(other.kubeconfigPath);
        const err = await otherCore.readNamespace({ name: namespace }).catch((e: unknown) => e);
        expect(err).toMatchObject({ code: 404 });
      }
    },
  );
});
