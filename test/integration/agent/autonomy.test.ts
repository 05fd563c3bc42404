import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { KubeClient } from '../../../agent/src/kube/client.ts';
import {
  AgentHarness,
  cleanUp,
  controlPlane,
  eventually,
  kubeClientOf,
  kubectl,
  uniqueName,
} from './harness.ts';
import { AgentProcess } from './process.ts';

const bed = inject('bed');
const plane = controlPlane(bed, 1);
let h: AgentHarness;
let kube: KubeClient;
const cluster = uniqueName('edge');
const ns = uniqueName('edge-ns');
const agentNs = uniqueName('edge-agent');
const processes: AgentProcess[] = [];

beforeAll(async () => {
  h = await AgentHarness.start(bed, 'edge');
  kube = await kubeClientOf(plane.kubeconfigPath);
});

afterAll(async () => {
  for (const p of processes) await p.stop();
  await cleanUp(kube, [ns, agentNs]);
  kube.close();
  await h?.stop();
});

const manifests = (extra: boolean) => `apiVersion: v1
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
${extra ? '---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  note: "to be pruned later"\n' : ''}`;

const replicas = async () =>
  (await kube.get<{ spec: { replicas: number } }>(`/apis/apps/v1/namespaces/${ns}/deployments/web`))?.spec
    .replicas;

/** Names and uids of everything the bundle's label selects in the namespace. */
async function owned(): Promise<string[]> {
  const selector = `labelSelector=${encodeURIComponent(`flotilla.dev/bundle=${cluster}-app`)}`;
  const cms = await kube.request<{ items: { metadata: { name: string; uid: string } }[] }>(
    'GET',
    `/api/v1/namespaces/${ns}/configmaps?${selector}`,
  );
  const deps = await kube.request<{ items: { metadata: { name: string; uid: string } }[] }>(
    'GET',
    `/apis/apps/v1/namespaces/${ns}/deployments?${selector}`,
  );
  return [...cms.body.items, ...deps.body.items].map((i) => `${i.metadata.name}:${i.metadata.uid}`).sort();
}

describe('autonomy: the agent as a process, with the hub away', () => {
  let token: string;
  let env: Record<string, string>;
  let before: string[];

  it('applies from the hub as a real process', async () => {
    ({ token } = await h.register(cluster));
    await h.push({ [`${cluster}-app`]: { cluster, namespace: ns, manifests: manifests(true) } });
    env = h.agentEnv(cluster, token, {
      kubeconfigPath: plane.kubeconfigPath,
      namespace: agentNs,
      env: {
        FLOTILLA_POLL_INTERVAL: '1s',
        FLOTILLA_DRIFT_INTERVAL: '1s',
        FLOTILLA_HEARTBEAT_INTERVAL: '2s',
        FLOTILLA_HTTP_ADDR: '127.0.0.1:0',
      },
    });
    const agent = AgentProcess.start(env);
    processes.push(agent);
    await agent.waitForLog('flotilla agent started');
    await eventually(
      async () => ((await h.clusterStatus(cluster))?.bundles[0]?.state === 'Ready' ? true : undefined),
      30_000,
      'Ready on the hub',
    );
    before = await owned();
    expect(before).toHaveLength(3);
    expect(JSON.stringify(agent.lines)).not.toContain(token);
  });

  it('keeps correcting drift from what it has while the hub is down', async () => {
    const agent = processes[0] as AgentProcess;
    await h.stopHub();
    kubectl(bed, plane.kubeconfigPath, '-n', ns, 'scale', 'deployment/web', '--replicas=4');
    await eventually(
      async () => ((await replicas()) === 2 ? true : undefined),
      20_000,
      'replicas corrected to 2',
    );
    await agent.waitForLog('the hub is unreachable; enforcing the desired state in hand');
    const started = agent.lines.find((l) => l.message === 'flotilla agent started') as { http: string };
    // The reconcile that corrected the drift ends once the Deployment is ready again.
    const metrics = await eventually(
      async () => {
        const text = await (await fetch(`${started.http}/metrics`)).text();
        return /^flotilla_agent_drift_events_total\{bundle="[^"]+",action="corrected"\} [1-9]/m.test(text)
          ? text
          : undefined;
      },
      20_000,
      'a drift event in the metrics',
    );
    expect(metrics).toMatch(/^flotilla_agent_hub_reachable 0$/m);
    expect(metrics).toMatch(/^flotilla_agent_status_reports_pending 1$/m);
    expect(await (await fetch(`${started.http}/healthz`)).json()).toMatchObject({ ok: true, ready: true });
    expect(await agent.stop()).toBe(0);
  });

  it('after a restart with the hub still down, enforces the cached desired state: nothing duplicated, nothing lost', async () => {
    kubectl(bed, plane.kubeconfigPath, '-n', ns, 'scale', 'deployment/web', '--replicas=6');
    const agent = AgentProcess.start(env);
    processes.push(agent);
    const loaded = await agent.waitForLog('enforcing the cached desired state until the hub answers');
    expect(loaded.bundles).toBe(1);
    await eventually(
      async () => ((await replicas()) === 2 ? true : undefined),
      20_000,
      'replicas corrected to 2',
    );
    expect(await owned()).toEqual(before);
  });

  it('reports to the hub when it is back, and prunes what the previous process applied', async () => {
    const agent = processes[1] as AgentProcess;
    await h.restartHub();
    await eventually(
      async () => {
        const view = await h.clusterStatus(cluster);
        return view?.connection === 'Online' && view.bundles[0]?.state === 'Ready' ? view : undefined;
      },
      20_000,
      'the hub to hear from the agent again',
    );
    await h.push({ [`${cluster}-app`]: { cluster, namespace: ns, manifests: manifests(false) } });
    await eventually(
      async () =>
        (await kube.get(`/api/v1/namespaces/${ns}/configmaps/extra`)) === undefined ? true : undefined,
      20_000,
      'the extra ConfigMap to be pruned',
    );
    const after = await owned();
    expect(after).toEqual(before.filter((o) => !o.startsWith('extra:')));
    expect(await agent.stop()).toBe(0);
  });
});
