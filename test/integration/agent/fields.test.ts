import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { KubeClient } from '../../../agent/src/kube/client.ts';
import { ResourceManager } from '../../../agent/src/ssa/resource-manager.ts';
import {
  AgentHarness,
  type BundleFiles,
  cleanUp,
  controlPlane,
  kubeClientOf,
  kubectl,
  namespaceManifest,
  syncSettled,
  uniqueName,
} from './harness.ts';

const bed = inject('bed');
const plane = controlPlane(bed, 1);
let h: AgentHarness;
let kube: KubeClient;
const namespaces: string[] = [];
const scratch = mkdtempSync(join(tmpdir(), 'flotilla-fields-'));

beforeAll(async () => {
  h = await AgentHarness.start(bed, 'fields');
  kube = await kubeClientOf(plane.kubeconfigPath);
});

afterAll(async () => {
  await cleanUp(kube, namespaces);
  kube.close();
  await h?.stop();
});

interface Live {
  metadata: {
    uid: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    managedFields?: { manager: string; operation: string }[];
  };
  spec?: { replicas?: number };
  data?: Record<string, string>;
}

/** A cluster with its own agent and namespace; `bundle` pushes its one bundle and syncs. */
async function setUp(prefix: string) {
  const cluster = uniqueName(prefix);
  const ns = uniqueName(`${prefix}-ns`);
  namespaces.push(ns, `${cluster}-agent`);
  const { token } = await h.register(cluster);
  const runtime = await h.agent(cluster, token, {
    kubeconfigPath: plane.kubeconfigPath,
    namespace: `${cluster}-agent`,
  });
  const name = `${cluster}-app`;
  const bundle = async (manifests: string, more: Partial<BundleFiles> = {}) => {
    await h.push({
      [name]: { cluster, namespace: ns, manifests: `${namespace(ns)}${manifests}`, ...more },
    });
    // What the pass that applied it did, in the state it settled to (the agent looks again while not ready).
    const result = await syncSettled(runtime.agent);
    const first =
      result.kind === 'applied' ? result.outcome?.bundles.find((b) => b.name === name) : undefined;
    const settled = runtime.agent.lastOutcome?.bundles.find((b) => b.name === name);
    if (!first || !settled) throw new Error(`no outcome for ${name}`);
    return { ...first, state: settled.state, message: settled.message, failedObject: settled.failedObject };
  };
  return { cluster, ns, agent: runtime.agent, bundle };
}

const namespace = (ns: string) => namespaceManifest(ns);

const deployment = (label = 'v1') => `---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: { release: ${label} }
spec:
  replicas: 2
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      containers: [{ name: web, image: registry.example.com/web:1.0.0 }]
`;

const ignoreReplicas = `ignoreDifferences:
  - group: apps
    kind: Deployment
    name: web
    jsonPointers: [/spec/replicas]
`;

/** What a HorizontalPodAutoscaler does: a write to the scale subresource under its own field manager. */
async function scale(ns: string, replicas: number) {
  await kube.request(
    'PATCH',
    `/apis/apps/v1/namespaces/${ns}/deployments/web/scale?fieldManager=autoscaler`,
    {
      body: { spec: { replicas } },
      contentType: 'application/merge-patch+json',
    },
  );
}

const replicasOf = async (ns: string) =>
  (await kube.get<Live>(`/apis/apps/v1/namespaces/${ns}/deployments/web`))?.spec?.replicas;

describe('ignoreDifferences', () => {
  it('leaves /spec/replicas to the autoscaler, through drift checks and re-applies', async () => {
    const { ns, agent, bundle } = await setUp('ign');
    expect((await bundle(deployment(), { driftPolicy: 'correct', extraSpec: ignoreReplicas })).state).toBe(
      'Ready',
    );
    const live = await kube.get<Live>(`/apis/apps/v1/namespaces/${ns}/deployments/web`);
    // The agent never applied the field, so it does not own it.
    expect(
      JSON.stringify(live?.metadata.managedFields?.find((m) => m.manager === 'flotilla-agent')),
    ).not.toContain('f:replicas');
    await scale(ns, 4);
    // Nothing changed for the agent, so it looks at readiness once: let the scale-up finish first.
    kubectl(bed, plane.kubeconfigPath, '-n', ns, 'rollout', 'status', 'deployment/web', '--timeout=60s');
    const checked = await agent.enforce({ detectDrift: true });
    expect(checked?.bundles[0]?.state).toBe('Ready');
    expect(checked?.driftEvents).toEqual([]);
    expect(await replicasOf(ns)).toBe(4);
    // A new render is applied for real; the scale stays the autoscaler's.
    const applied = await bundle(deployment('v2'), { driftPolicy: 'correct', extraSpec: ignoreReplicas });
    expect(applied.changes.configured).toBe(1);
    expect(await replicasOf(ns)).toBe(4);
    expect(
      (await kube.get<Live>(`/apis/apps/v1/namespaces/${ns}/deployments/web`))?.metadata.labels?.release,
    ).toBe('v2');
  });

  it('without it, the same scale is drift and is put back', async () => {
    const { ns, agent, bundle } = await setUp('noign');
    expect((await bundle(deployment(), { driftPolicy: 'correct' })).state).toBe('Ready');
    await scale(ns, 4);
    const checked = await agent.enforce({ detectDrift: true });
    expect(checked?.bundles[0]?.drift).toEqual([
      { object: `apps/Deployment/${ns}/web`, fields: ['spec.replicas'] },
    ]);
    expect(await replicasOf(ns)).toBe(2);
  });
});

describe('taking over objects that kubectl created', () => {
  const configMap = (name: string, data: Record<string, string>) =>
    `---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n${Object.entries(data)
      .map(([k, v]) => `  ${k}: "${v}"\n`)
      .join('')}`;

  function kubectlApply(ns: string, name: string, data: Record<string, string>) {
    const file = join(scratch, `${ns}-${name}.yaml`);
    const body = Object.entries(data)
      .map(([k, v]) => `  ${k}: "${v}"\n`)
      .join('');
    writeFileSync(
      file,
      `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n  namespace: ${ns}\ndata:\n${body}`,
    );
    // Client-side apply: manager kubectl-client-side-apply, and the last-applied annotation.
    kubectl(bed, plane.kubeconfigPath, 'apply', '-f', file);
  }

  const managers = (o: Live | undefined) =>
    (o?.metadata.managedFields ?? []).map((m) => `${m.manager}/${m.operation}`);
  const cm = (ns: string, name: string) => kube.get<Live>(`/api/v1/namespaces/${ns}/configmaps/${name}`);

  it('moves kubectl apply and kubectl create fields to the agent, so a key removed from git goes', async () => {
    const { ns, bundle } = await setUp('adopt');
    kubectl(bed, plane.kubeconfigPath, 'create', 'namespace', ns);
    kubectlApply(ns, 'applied', { mode: 'strict', extra: 'from kubectl' });
    kubectl(
      bed,
      plane.kubeconfigPath,
      '-n',
      ns,
      'create',
      'configmap',
      'created',
      '--from-literal=mode=strict',
      '--from-literal=extra=from-kubectl',
    );
    expect(managers(await cm(ns, 'applied'))).toEqual(['kubectl-client-side-apply/Update']);
    expect(
      (await cm(ns, 'applied'))?.metadata.annotations?.['kubectl.kubernetes.io/last-applied-configuration'],
    ).toBeDefined();
    expect(managers(await cm(ns, 'created'))).toEqual(['kubectl-create/Update']);

    // Adopted with the same content: the agent's Apply entry now holds kubectl's fields.
    const adopted = await bundle(
      configMap('applied', { mode: 'strict', extra: 'from kubectl' }) +
        configMap('created', { mode: 'strict', extra: 'from-kubectl' }),
    );
    expect(adopted.state).toBe('Ready');
    for (const name of ['applied', 'created']) {
      expect(managers(await cm(ns, name))).toEqual(['flotilla-agent/Apply']);
    }
    // The annotation was kubectl's field; the agent does not apply it, so it went with the takeover.
    expect(
      (await cm(ns, 'applied'))?.metadata.annotations?.['kubectl.kubernetes.io/last-applied-configuration'],
    ).toBeUndefined();

    // Removed from git, removed from the objects.
    const trimmed = await bundle(
      configMap('applied', { mode: 'strict' }) + configMap('created', { mode: 'strict' }),
    );
    expect(trimmed.state).toBe('Ready');
    expect((await cm(ns, 'applied'))?.data).toEqual({ mode: 'strict' });
    expect((await cm(ns, 'created'))?.data).toEqual({ mode: 'strict' });
  });

  it('(control) plain server-side apply, without the takeover, leaves the key in place', async () => {
    const ns = uniqueName('control-ns');
    namespaces.push(ns);
    kubectl(bed, plane.kubeconfigPath, 'create', 'namespace', ns);
    kubectlApply(ns, 'plain', { mode: 'strict', extra: 'from kubectl' });
    const apply = (data: Record<string, string>) =>
      kube.request(
        'PATCH',
        `/api/v1/namespaces/${ns}/configmaps/plain?fieldManager=flotilla-agent&force=true`,
        {
          body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'plain', namespace: ns }, data },
          contentType: 'application/apply-patch+yaml',
        },
      );
    await apply({ mode: 'strict', extra: 'from kubectl' });
    await apply({ mode: 'strict' });
    // kubectl-client-side-apply still owns the key: the API server keeps it.
    expect((await cm(ns, 'plain'))?.data).toEqual({ mode: 'strict', extra: 'from kubectl' });
  });
});

const job = (image: string, force: boolean) => `---
apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
${force ? '  annotations:\n    flotilla.dev/force: "true"\n' : ''}spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{ name: migrate, image: ${image} }]
`;

const leftover = `---
apiVersion: v1
kind: ConfigMap
metadata:
  name: leftover
data: { note: "leaves the bundle with the Job change" }
`;

describe('immutable fields', () => {
  it('fail with the field named, and nothing is pruned after the failed apply; with flotilla.dev/force the object is re-created', async () => {
    const { ns, bundle } = await setUp('immut');
    expect((await bundle(job('registry.example.com/migrate:1', false) + leftover)).state).not.toBe('Failed');
    const first = await kube.get<Live>(`/apis/batch/v1/namespaces/${ns}/jobs/migrate`);

    const refused = await bundle(job('registry.example.com/migrate:2', false));
    expect(refused.state).toBe('Failed');
    expect(refused.failedObject).toBe(`batch/Job/${ns}/migrate`);
    expect(refused.message).toBe(
      `applying Job ${ns}/migrate: cannot change immutable field spec.template of Job ${ns}/migrate: annotate it flotilla.dev/force: "true" to have the agent delete it and create it again`,
    );
    // A failed apply prunes nothing: the ConfigMap that left the bundle stays.
    expect(await kube.get(`/api/v1/namespaces/${ns}/configmaps/leftover`)).toBeDefined();
    expect((await kube.get<Live>(`/apis/batch/v1/namespaces/${ns}/jobs/migrate`))?.metadata.uid).toBe(
      first?.metadata.uid,
    );

    const forced = await bundle(job('registry.example.com/migrate:2', true));
    expect(forced.state).not.toBe('Failed');
    expect(forced.changes.created).toBeGreaterThanOrEqual(1);
    const second = await kube.get<{
      metadata: { uid: string };
      spec: { template: { spec: { containers: { image: string }[] } } };
    }>(`/apis/batch/v1/namespaces/${ns}/jobs/migrate`);
    expect(second?.metadata.uid).not.toBe(first?.metadata.uid);
    expect(second?.spec.template.spec.containers[0]?.image).toBe('registry.example.com/migrate:2');
    // The apply went through this time, so what left the bundle is pruned.
    expect(await kube.get(`/api/v1/namespaces/${ns}/configmaps/leftover`)).toBeUndefined();
  });
});

describe('immutable fields, as this API server words them', () => {
  it("names a Deployment's spec.selector and a Service's spec.clusterIPs[0]", async () => {
    const ns = uniqueName('immut-kinds');
    namespaces.push(ns);
    kubectl(bed, plane.kubeconfigPath, 'create', 'namespace', ns);
    const manager = new ResourceManager({ client: kube });
    const objects = (app: string, ip: string) => [
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'web', namespace: ns },
        spec: {
          selector: { matchLabels: { app } },
          template: {
            metadata: { labels: { app } },
            spec: { containers: [{ name: 'web', image: 'registry.example.com/web:1' }] },
          },
        },
      },
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'web', namespace: ns },
        spec: { clusterIP: ip, ports: [{ port: 80 }], selector: { app } },
      },
    ];
    expect((await manager.applyAll(objects('web', '10.96.200.10'))).failures).toEqual([]);
    const changed = await manager.applyAll(objects('web-2', '10.96.200.11'));
    expect(changed.failures.map((f) => f.message)).toEqual([
      `cannot change immutable field spec.clusterIPs[0] of Service ${ns}/web: annotate it flotilla.dev/force: "true" to have the agent delete it and create it again`,
      `cannot change immutable field spec.selector of Deployment ${ns}/web: annotate it flotilla.dev/force: "true" to have the agent delete it and create it again`,
    ]);
  });
});

describe('prune rules', () => {
  const cm = (name: string, annotations = '') =>
    `---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n${annotations}data: { k: v }\n`;

  it('keeps what is annotated prune: disabled and what another bundle label now claims; deletes the rest', async () => {
    const { ns, bundle } = await setUp('prune');
    const first = await bundle(
      cm('kept', '  annotations:\n    flotilla.dev/prune: disabled\n') +
        cm('relabeled') +
        cm('removed') +
        cm('stays'),
    );
    expect(first.state).toBe('Ready');
    // Someone hands one object to another owner.
    kubectl(
      bed,
      plane.kubeconfigPath,
      '-n',
      ns,
      'label',
      '--overwrite',
      'configmap/relabeled',
      'flotilla.dev/bundle=someone-else',
    );

    const second = await bundle(cm('stays'));
    expect(second.state).toBe('Ready');
    expect(second.changes.deleted).toBe(1);
    expect(second.changes.skipped).toBe(2);
    expect(await kube.get(`/api/v1/namespaces/${ns}/configmaps/removed`)).toBeUndefined();
    expect(await kube.get(`/api/v1/namespaces/${ns}/configmaps/kept`)).toBeDefined();
    const relabeled = await kube.get<Live>(`/api/v1/namespaces/${ns}/configmaps/relabeled`);
    expect(relabeled?.metadata.labels?.['flotilla.dev/bundle']).toBe('someone-else');
  });
});
