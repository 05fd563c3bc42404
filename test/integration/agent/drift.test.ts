import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { KubeClient } from '../../../agent/src/kube/client.ts';
import { until } from '../../support/until.ts';
import {
  AgentHarness,
  cleanUp,
  controlPlane,
  kubeClientOf,
  kubectl,
  syncSettled,
  uniqueName,
} from './harness.ts';

const bed = inject('bed');
const plane = controlPlane(bed, 2);
let h: AgentHarness;
let kube: KubeClient;
const namespaces: string[] = [];

beforeAll(async () => {
  h = await AgentHarness.start(bed, 'drift');
  kube = await kubeClientOf(plane.kubeconfigPath);
});

afterAll(async () => {
  await cleanUp(kube, namespaces);
  kube.close();
  await h?.stop();
});

function workload(ns: string): string {
  return `apiVersion: v1
kind: Namespace
metadata:
  name: ${ns}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  mode: strict
  level: "3"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      containers: [{ name: web, image: registry.example.com/web:1.0.0 }]
`;
}

async function setUp(policy: 'correct' | 'warn' | 'ignore') {
  const cluster = uniqueName(`drift-${policy}`);
  const ns = uniqueName(`drift-${policy}-ns`);
  namespaces.push(ns, `${cluster}-agent`);
  const { token } = await h.register(cluster);
  await h.push({
    [`${cluster}-app`]: { cluster, namespace: ns, driftPolicy: policy, manifests: workload(ns) },
  });
  const runtime = await h.agent(cluster, token, {
    kubeconfigPath: plane.kubeconfigPath,
    namespace: `${cluster}-agent`,
  });
  await syncSettled(runtime.agent);
  expect(runtime.agent.lastOutcome?.bundles[0]?.state).toBe('Ready');
  // Someone scales the Deployment by hand and edits the ConfigMap, as operators do.
  kubectl(bed, plane.kubeconfigPath, '-n', ns, 'scale', 'deployment/web', '--replicas=5');
  kubectl(
    bed,
    plane.kubeconfigPath,
    '-n',
    ns,
    'patch',
    'configmap/settings',
    '--type=merge',
    '-p',
    '{"data":{"mode":"lenient","extra":"added by hand"}}',
  );
  return { cluster, ns, ...runtime };
}

async function liveState(ns: string) {
  const dep = await kube.get<{ spec: { replicas: number } }>(
    `/apis/apps/v1/namespaces/${ns}/deployments/web`,
  );
  const cm = await kube.get<{ data: Record<string, string> }>(`/api/v1/namespaces/${ns}/configmaps/settings`);
  return { replicas: dep?.spec.replicas, data: cm?.data };
}

async function hubBundle(cluster: string) {
  return (await h.clusterStatus(cluster))?.bundles[0];
}

describe('drift in fields the agent owns', () => {
  it('driftPolicy correct: puts the fields back, and reports which ones drifted', async () => {
    const { cluster, ns, agent, metrics } = await setUp('correct');
    expect((await liveState(ns)).replicas).toBe(5);
    const outcome = await agent.enforce({ detectDrift: true });
    const bundle = outcome?.bundles[0];
    expect(bundle?.state).toBe('Drifted');
    expect(bundle?.message).toBe('2 objects differed from the desired state; corrected');
    expect(bundle?.drift).toEqual([
      { object: `/ConfigMap/${ns}/settings`, fields: ['data.mode'] },
      { object: `apps/Deployment/${ns}/web`, fields: ['spec.replicas'] },
    ]);
    const live = await liveState(ns);
    expect(live.replicas).toBe(2);
    // Fields the agent does not own are not its business: the extra key stays.
    expect(live.data).toEqual({ mode: 'strict', level: '3', extra: 'added by hand' });
    expect((await hubBundle(cluster))?.state).toBe('Drifted');
    expect(metrics.driftEvents.value({ bundle: `${cluster}-app`, action: 'corrected' })).toBe(1);

    // Once corrected, the next look finds nothing, and the bundle is Ready again.
    const again = await agent.enforce({ detectDrift: true });
    expect(again?.bundles[0]?.state).toBe('Ready');
    expect((await hubBundle(cluster))?.state).toBe('Ready');
  });

  it('driftPolicy warn: reports the drifted fields and leaves them as they are', async () => {
    const { cluster, ns, agent } = await setUp('warn');
    const outcome = await agent.enforce({ detectDrift: true });
    const bundle = outcome?.bundles[0];
    expect(bundle?.state).toBe('Drifted');
    expect(bundle?.message).toBe('2 objects differ from the desired state; not corrected (driftPolicy warn)');
    expect(bundle?.drift).toEqual([
      { object: `/ConfigMap/${ns}/settings`, fields: ['data.mode'] },
      { object: `apps/Deployment/${ns}/web`, fields: ['spec.replicas'] },
    ]);
    expect((await liveState(ns)).replicas).toBe(5);
    expect((await liveState(ns)).data?.mode).toBe('lenient');
    const reported = await hubBundle(cluster);
    expect(reported?.state).toBe('Drifted');
    expect(reported?.drift).toEqual(bundle?.drift);

    // A full resync does not correct it either: unchanged content is not re-applied.
    await agent.sync({ detectDrift: true });
    expect((await liveState(ns)).replicas).toBe(5);
    expect(agent.lastOutcome?.bundles[0]?.state).toBe('Drifted');
  });

  it('driftPolicy ignore: neither corrects nor reports', async () => {
    const { ns, agent } = await setUp('ignore');
    // Nothing is applied, so the agent looks at readiness once: let the hand-made scale-up finish first.
    kubectl(bed, plane.kubeconfigPath, '-n', ns, 'rollout', 'status', 'deployment/web', '--timeout=60s');
    const outcome = await agent.enforce({ detectDrift: true });
    expect(outcome?.bundles[0]?.state).toBe('Ready');
    expect(outcome?.driftEvents).toEqual([]);
    expect((await liveState(ns)).replicas).toBe(5);
  });

  it('re-creates an object deleted by hand under correct', async () => {
    const { ns, agent } = await setUp('correct');
    kubectl(bed, plane.kubeconfigPath, '-n', ns, 'delete', 'configmap/settings');
    const outcome = await agent.enforce({ detectDrift: true });
    expect(outcome?.bundles[0]?.drift).toContainEqual({
      object: `/ConfigMap/${ns}/settings`,
      fields: ['(object deleted)'],
    });
    expect((await liveState(ns)).data).toEqual({ mode: 'strict', level: '3' });
  });
});

describe('paused bundles', () => {
  it('are left as they are: no apply of a new render, no drift correction, no prune', async () => {
    const { cluster, ns, agent } = await setUp('correct');
    await h.push({
      [`${cluster}-app`]: {
        cluster,
        namespace: ns,
        driftPolicy: 'correct',
        paused: true,
        // A new render that drops the ConfigMap and changes the Deployment.
        manifests: workload(ns)
          .replace('replicas: 2', 'replicas: 3')
          .replace(/---\napiVersion: v1\nkind: ConfigMap[\s\S]*?level: "3"\n/, ''),
      },
    });
    await agent.sync({ detectDrift: true });
    // The hand scale to 5 may still be rolling out: a paused bundle is only looked at, so look until it settles.
    await until('the paused bundle to look Ready', async () =>
      agent.lastOutcome?.bundles[0]?.state === 'Ready'
        ? true
        : (await agent.enforce({ detectDrift: true })) && undefined,
    );
    const bundle = agent.lastOutcome?.bundles[0];
    expect(bundle?.state).toBe('Ready');
    expect(bundle?.message).toMatch(/^paused/);
    const live = await liveState(ns);
    expect(live.replicas).toBe(5);
    expect(live.data?.mode).toBe('lenient');
    // The hub sees the render in force, not the paused one: the bundle shows as behind.
    const reported = await h.clusterStatus(cluster);
    expect(reported?.bundles[0]?.upToDate).toBe(false);

    // Unpaused: the latest render is applied, drift corrected, the ConfigMap pruned.
    await h.push({
      [`${cluster}-app`]: {
        cluster,
        namespace: ns,
        driftPolicy: 'correct',
        manifests: workload(ns)
          .replace('replicas: 2', 'replicas: 3')
          .replace(/---\napiVersion: v1\nkind: ConfigMap[\s\S]*?level: "3"\n/, ''),
      },
    });
    await syncSettled(agent);
    expect(agent.lastOutcome?.bundles[0]?.state).toBe('Ready');
    expect((await liveState(ns)).replicas).toBe(3);
    expect((await liveState(ns)).data).toBeUndefined();
  });
});
