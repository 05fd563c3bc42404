import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { KubeApiError, KubeClient } from '../../../agent/src/kube/client.ts';
import type { KubeConnection } from '../../../agent/src/kube/connection.ts';
import { LeaderElector } from '../../../agent/src/leader/leader-elector.ts';
import { LeaseLock } from '../../../agent/src/leader/lease-lock.ts';
import { silentLogger } from '../../../agent/src/log.ts';
import { systemClock } from '../../../agent/src/reconcile/ports.ts';
import { ResourceManager } from '../../../agent/src/ssa/resource-manager.ts';
import { repoRoot } from '../../bed/src/bed.ts';
import { serviceAccountConnection } from '../../support/service-account.ts';
import {
  AgentHarness,
  cleanUp,
  controlPlane,
  eventually,
  kubeClientOf,
  syncSettled,
  uniqueName,
} from './harness.ts';

const bed = inject('bed');
const plane = controlPlane(bed, 2);
let h: AgentHarness;
let kube: KubeClient;
const agentNs = uniqueName('rbac-agent');
const appNs = uniqueName('rbac-app');
const suffix = agentNs;
const group = `${uniqueName('rbac')}.example.com`;

/** The manifests of agent/deploy, moved to a namespace and names of this test's own. */
function deployManifests(file: string): Record<string, unknown>[] {
  const text = readFileSync(`${repoRoot}/agent/deploy/${file}`, 'utf8')
    .replaceAll('flotilla-system', agentNs)
    .replaceAll('name: flotilla-agent-apply', `name: flotilla-agent-apply-${suffix}`)
    .replaceAll('name: flotilla-agent-state', `name: flotilla-agent-state-${suffix}`);
  return parseAllDocuments(text).map((d) => d.toJSON() as Record<string, unknown>);
}

async function applyAsAdmin(objects: Record<string, unknown>[]) {
  const admin = new ResourceManager({
    client: kube,
    owner: { field: 'flotilla-test', group: 'test.flotilla.dev' },
  });
  const changes = await admin.applyAll(objects as never);
  expect(changes.failures).toEqual([]);
}

beforeAll(async () => {
  h = await AgentHarness.start(bed, 'rbac');
  kube = await kubeClientOf(plane.kubeconfigPath);
});

afterAll(async () => {
  await cleanUp(
    kube,
    [agentNs, appNs],
    [
      `/apis/rbac.authorization.k8s.io/v1/clusterroles/flotilla-agent-apply-${suffix}`,
      `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/flotilla-agent-apply-${suffix}`,
      `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.${group}`,
    ],
  );
  kube.close();
  await h?.stop();
});

describe('the RBAC of agent/deploy', () => {
  const cluster = uniqueName('rbac');
  let connection: KubeConnection;
  let token: string;

  it('lets the agent apply and keep its state, as its service account', async () => {
    await applyAsAdmin([
      ...deployManifests('namespace.yaml'),
      ...deployManifests('serviceaccount.yaml'),
      ...deployManifests('rbac.yaml'),
    ]);
    connection = await serviceAccountConnection(kube, plane.kubeconfigPath, agentNs);
    ({ token } = await h.register(cluster));
    const manifests = `apiVersion: v1
kind: Namespace
metadata:
  name: ${appNs}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.${group}
spec:
  group: ${group}
  scope: Namespaced
  names: { plural: widgets, singular: widget, kind: Widget }
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: { type: object, x-kubernetes-preserve-unknown-fields: true }
---
apiVersion: ${group}/v1
kind: Widget
metadata:
  name: w
spec: { size: 1 }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: reader
rules:
  - apiGroups: [""]
    resources: [configmaps]
    verbs: [get]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: web
spec:
  minAvailable: 1
  selector: { matchLabels: { app: web } }
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      containers: [{ name: web, image: registry.example.com/web:1 }]
`;
    await h.push({ [`${cluster}-app`]: { cluster, namespace: appNs, manifests } });
    const { agent } = await h.agent(cluster, token, {
      kubeconfigPath: plane.kubeconfigPath,
      namespace: agentNs,
      overrides: { connection },
    });
    const result = await syncSettled(agent);
    const bundle = agent.lastOutcome?.bundles[0];
    expect(bundle?.state, bundle?.message).toBe('Ready');
    // It may read the API server's version (GET /version) that it reports to the hub.
    const version = await kube.request<{ gitVersion: string }>('GET', '/version');
    expect(await agent.checkKubeVersion()).toBe(version.body.gitVersion);
    expect(result.kind === 'applied' && result.outcome?.bundles[0]?.changes.created).toBe(6);
    // Its bookkeeping is in its own namespace.
    expect(
      await kube.get(`/api/v1/namespaces/${agentNs}/configmaps/flotilla-inventory-${cluster}-app`),
    ).toBeDefined();
    expect(
      await kube.get(`/api/v1/namespaces/${agentNs}/secrets/flotilla-cache-desired-state`),
    ).toBeDefined();
  });

  it('with the scoped example, an unlisted kind fails with the API server message and the rest proceeds', async () => {
    await applyAsAdmin(deployManifests('rbac-scoped.example.yaml'));
    // The scoped role has no policy/PodDisruptionBudget, nor rbac Roles: changing them now is forbidden.
    await h.push({
      [`${cluster}-app`]: {
        cluster,
        namespace: appNs,
        manifests: `apiVersion: v1
kind: ConfigMap
metadata:
  name: allowed
data: { ok: "yes" }
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: web
spec:
  minAvailable: 2
  selector: { matchLabels: { app: web } }
`,
      },
      [`${cluster}-other`]: {
        cluster,
        namespace: appNs,
        manifests: 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\ndata: {}\n',
      },
    });
    const { agent } = await h.agent(cluster, token, {
      kubeconfigPath: plane.kubeconfigPath,
      namespace: agentNs,
      overrides: { connection },
    });
    const outcome = await eventually(
      async () => {
        await agent.sync({ detectDrift: true });
        const app = agent.lastOutcome?.bundles.find((b) => b.name === `${cluster}-app`);
        return app?.state === 'Failed' ? agent.lastOutcome : undefined;
      },
      20_000,
      'the forbidden apply',
    );
    const app = outcome.bundles.find((b) => b.name === `${cluster}-app`);
    expect(app?.failedObject).toBe(`policy/PodDisruptionBudget/${appNs}/web`);
    expect(app?.message).toMatch(/forbidden/);
    expect(outcome.bundles.find((b) => b.name === `${cluster}-other`)?.state).toBe('Ready');
    expect(await kube.get(`/api/v1/namespaces/${appNs}/configmaps/allowed`)).toBeDefined();
  });

  it('with the scoped example, the agent elects itself on its own Lease, and only that one', async () => {
    // The scoped ClusterRole has no leases: the leader-election Role of rbac.yaml is what allows it.
    const client = new KubeClient(connection);
    try {
      const elector = new LeaderElector({
        lock: new LeaseLock(client, agentNs, 'flotilla-agent-leader'),
        identity: 'rbac-test',
        clock: systemClock,
        log: silentLogger,
      });
      expect(await elector.tryAcquireOrRenew()).toBe(true);
      expect(await elector.tryAcquireOrRenew()).toBe(true);
      const other = new LeaseLock(client, agentNs, 'someone-elses-lease');
      const created = await other.create({
        holderIdentity: 'rbac-test',
        leaseDurationSeconds: 15,
        acquireTime: Date.now(),
        renewTime: Date.now(),
        leaseTransitions: 0,
      });
      // Create cannot be limited to a name; reading or taking over another Lease can.
      const forbidden = await other.update(created.record, created.resourceVersion).catch((e: unknown) => e);
      expect(forbidden).toBeInstanceOf(KubeApiError);
      expect((forbidden as KubeApiError).status).toBe(403);
      expect(await other.get().catch((e: unknown) => (e as KubeApiError).status)).toBe(403);
    } finally {
      client.close();
    }
  });
});
