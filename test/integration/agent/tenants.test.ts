/**
 * The spoke's second line for tenants, on the bed's real kube-apiserver (which runs with
 * --authorization-mode=Node,RBAC): the agent runs as its service account with the RBAC
 * `flotilla bootstrap --repo` installs, and writes a tenant's bundles as the tenant's own
 * service account. The desired states are made and signed here (the hub's checks would
 * hold the second one), so what stops the write outside the tenant's namespaces is the
 * API server alone.
 */

import { FLOTILLA_API_VERSION, manifestEtag, signDesiredState } from '@flotilla/shared';
import type { DesiredState } from '@flotilla/shared/agent';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../../agent/src/config.ts';
import type { KubeClient } from '../../../agent/src/kube/client.ts';
import { silentLogger } from '../../../agent/src/log.ts';
import { type AgentRuntime, createAgentRuntime } from '../../../agent/src/runtime.ts';
import { ResourceManager } from '../../../agent/src/ssa/resource-manager.ts';
import { agentManifests, clusterRbacName } from '../../../cli/src/bootstrap/manifests.ts';
import { serviceAccountConnection } from '../../support/service-account.ts';
import { FakeHub, keys, renderBundle } from '../../unit/agent/fakes.ts';
import { cleanUp, controlPlane, kubeClientOf, syncSettled, uniqueName } from './harness.ts';

const bed = inject('bed');
const plane = controlPlane(bed, 1);
let kube: KubeClient;
let runtime: AgentRuntime;
const hub = new FakeHub();
const cluster = uniqueName('tenants');
const agentNs = uniqueName('tn-agent');
// Unique per run: the tenant's ClusterRoles are cluster-wide.
const tenant = uniqueName('team-a');
const webNs = `${tenant}-web`;
const platformNs = uniqueName('tn-platform');
const evil = `${tenant}-evil`;
// A source's bundle, named `<source>/<bundle>` as the hub names it.
const webBundle = `${tenant}/web`;

/** What bootstrap installs, less the Secret and the Deployment (the agent runs in this process). */
const installed = () =>
  agentManifests({
    clusterId: cluster,
    namespace: agentNs,
    image: 'unused',
    secretData: {},
    tenants: [{ name: tenant, clusterResources: [{ group: '', kind: 'Namespace' }] }],
  }).filter((o) => o.kind !== 'Secret' && o.kind !== 'Deployment');

/** Serves a desired state signed with the pinned key, as the hub would. */
function publish(
  generation: number,
  bundles: { name: string; tenant?: string; objects: Record<string, unknown>[] }[],
  withTenants = true,
) {
  const rendered = bundles.map((b) => {
    const r = renderBundle({ name: b.name, objects: b.objects });
    return { ...r, ref: b.tenant ? { ...r.ref, tenant: b.tenant } : r.ref };
  });
  for (const r of rendered) hub.bundles.set(r.ref.hash, r.canonical);
  const manifest: DesiredState = {
    apiVersion: FLOTILLA_API_VERSION,
    kind: 'DesiredState',
    cluster,
    generation,
    commit: `commit-${generation}`,
    bundles: rendered.map((r) => r.ref),
    ...(withTenants ? { tenants: [{ name: tenant, namespaces: [tenant, `${tenant}-*`] }] } : {}),
  };
  hub.signed = JSON.parse(JSON.stringify(signDesiredState(manifest, keys.privateKeyPem)));
  hub.etag = manifestEtag(manifest);
}

const configMap = (namespace: string, name: string, value: string) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace },
  data: { value },
});
const tenantObjects = [
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: webNs } },
  configMap(webNs, 'settings', 'one'),
];

beforeAll(async () => {
  kube = await kubeClientOf(plane.kubeconfigPath);
  const admin = new ResourceManager({
    client: kube,
    owner: { field: 'flotilla-test', group: 'test.flotilla.dev' },
  });
  const changes = await admin.applyAll(installed() as never);
  expect(changes.failures).toEqual([]);
  const connection = await serviceAccountConnection(kube, plane.kubeconfigPath, agentNs);
  const config = loadConfig({
    FLOTILLA_HUB_URL: 'http://127.0.0.1:9',
    FLOTILLA_CLUSTER_ID: cluster,
    FLOTILLA_TOKEN: `flt_${cluster}.unused`,
    FLOTILLA_HUB_PUBLIC_KEY: keys.publicKeyPem,
    FLOTILLA_KUBECONFIG: plane.kubeconfigPath,
    FLOTILLA_NAMESPACE: agentNs,
    FLOTILLA_HTTP_ADDR: 'off',
  });
  runtime = await createAgentRuntime(config, silentLogger, { connection, hub, queue: null, settle: null });
});

afterAll(async () => {
  runtime?.close();
  const rbac = '/apis/rbac.authorization.k8s.io/v1';
  await cleanUp(
    kube,
    [webNs, platformNs, agentNs],
    [
      `/api/v1/namespaces/kube-system/configmaps/${evil}`,
      `${rbac}/clusterroles/${clusterRbacName(agentNs)}`,
      `${rbac}/clusterrolebindings/${clusterRbacName(agentNs)}`,
      `${rbac}/clusterroles/flotilla-tenant-${tenant}`,
      `${rbac}/clusterrolebindings/flotilla-tenant-${tenant}`,
      `${rbac}/clusterroles/flotilla-tenant-${tenant}-namespaced`,
    ],
  );
  kube?.close();
});

describe("a tenant's bundles, written as the tenant's service account", () => {
  it("applies a tenant bundle into the tenant's namespace, binding the tenant there first", async () => {
    publish(1, [{ name: webBundle, tenant, objects: tenantObjects }]);
    await syncSettled(runtime.agent);
    const web = runtime.agent.lastOutcome?.bundles[0];
    expect(web?.state, web?.message).toBe('Ready');
    expect(
      (await kube.get<{ data: { value: string } }>(`/api/v1/namespaces/${webNs}/configmaps/settings`))?.data
        .value,
    ).toBe('one');
    const binding = await kube.get<{ roleRef: { name: string }; subjects: unknown[] }>(
      `/apis/rbac.authorization.k8s.io/v1/namespaces/${webNs}/rolebindings/flotilla-tenant-${tenant}`,
    );
    expect(binding?.roleRef.name).toBe(`flotilla-tenant-${tenant}-namespaced`);
    expect(binding?.subjects).toEqual([
      { kind: 'ServiceAccount', name: `flotilla-tenant-${tenant}`, namespace: agentNs },
    ]);
  });

  it('a signed tenant bundle holding an object in kube-system fails on the RBAC refusal; the platform bundle applies', async () => {
    publish(2, [
      {
        name: webBundle,
        tenant,
        objects: [...tenantObjects, configMap('kube-system', evil, 'evil')],
      },
      {
        name: `platform-${tenant}`,
        objects: [
          { apiVersion: 'v1', kind: 'Namespace', metadata: { name: platformNs } },
          configMap(platformNs, 'platform', 'yes'),
        ],
      },
    ]);
    await syncSettled(runtime.agent);
    const outcome = runtime.agent.lastOutcome;
    const web = outcome?.bundles.find((b) => b.name === webBundle);
    const platform = outcome?.bundles.find((b) => b.name === `platform-${tenant}`);
    expect(web?.state).toBe('Failed');
    expect(web?.message).toMatch(
      new RegExp(
        `^tenant "${tenant}" may not write ConfigMap kube-system/${evil}: forbidden by RBAC \\(.*system:serviceaccount:${agentNs}:flotilla-tenant-${tenant}.*\\)$`,
      ),
    );
    expect(web?.failedObject).toBe(`/ConfigMap/kube-system/${evil}`);
    expect(platform?.state, platform?.message).toBe('Ready');
    expect(await kube.get(`/api/v1/namespaces/${platformNs}/configmaps/platform`)).toBeDefined();
    // Nothing was written in kube-system, and the tenant was not bound there.
    expect(await kube.get(`/api/v1/namespaces/kube-system/configmaps/${evil}`)).toBeUndefined();
    expect(
      await kube.get(
        `/apis/rbac.authorization.k8s.io/v1/namespaces/kube-system/rolebindings/flotilla-tenant-${tenant}`,
      ),
    ).toBeUndefined();
    // The agent itself could have written there: the refusal is the tenant's account's.
    const review = await kube.request<{ status: { allowed: boolean } }>(
      'POST',
      '/apis/authorization.k8s.io/v1/subjectaccessreviews',
      {
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SubjectAccessReview',
          spec: {
            user: `system:serviceaccount:${agentNs}:flotilla-agent`,
            resourceAttributes: { namespace: 'kube-system', verb: 'patch', resource: 'configmaps' },
          },
        },
      },
    );
    expect(review.body.status.allowed).toBe(true);
    // The report to the hub carries the refusal.
    expect(JSON.stringify(hub.lastReport)).toContain(`may not write ConfigMap kube-system/${evil}`);
  });

  it('prunes what left a tenant bundle as the tenant', async () => {
    publish(3, [{ name: webBundle, tenant, objects: [tenantObjects[0] as Record<string, unknown>] }]);
    await syncSettled(runtime.agent);
    const web = runtime.agent.lastOutcome?.bundles[0];
    expect(web?.state, web?.message).toBe('Ready');
    expect(web?.changes.deleted).toBe(1);
    expect(await kube.get(`/api/v1/namespaces/${webNs}/configmaps/settings`)).toBeUndefined();
  });

  it('applies nothing of a tenant bundle whose tenant the desired state does not list', async () => {
    publish(4, [{ name: webBundle, tenant, objects: tenantObjects }], false);
    await runtime.agent.sync();
    const web = runtime.agent.lastOutcome?.bundles[0];
    expect(web?.state).toBe('Failed');
    expect(web?.message).toBe(
      `tenant "${tenant}" is not in the desired state's tenants: its namespaces are unknown, so nothing of the bundle is applied`,
    );
    expect(await kube.get(`/api/v1/namespaces/${webNs}/configmaps/settings`)).toBeUndefined();
  });
});
