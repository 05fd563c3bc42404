import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { KubeClient } from '../../../agent/src/kube/client.ts';
import { ResourceManager } from '../../../agent/src/ssa/resource-manager.ts';
import { AgentHarness, cleanUp, controlPlane, kubeClientOf, uniqueName } from './harness.ts';

const bed = inject('bed');
const plane = controlPlane(bed, 0);
let h: AgentHarness;
let kube: KubeClient;
const cluster = uniqueName('health');
const ns = uniqueName('health-app');
const agentNs = uniqueName('health-agent');
// CRDs are cluster-wide: a group of this run's own keeps runs on a shared bed apart.
const group = `${uniqueName('h')}.flotilla.test`;
const widgets = `/apis/${group}/v1/namespaces/${ns}/widgets`;
const claims = `/apis/${group}/v1/namespaces/${ns}/claims`;
const crdPaths = ['widgets', 'claims'].map(
  (plural) => `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${plural}.${group}`,
);

const crd = (kind: string, plural: string) => `---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: ${plural}.${group}
spec:
  group: ${group}
  scope: Namespaced
  names: { plural: ${plural}, singular: ${kind.toLowerCase()}, kind: ${kind}, listKind: ${kind}List }
  versions:
    - name: v1
      served: true
      storage: true
      subresources: { status: {} }
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
`;

const base = `apiVersion: v1
kind: Namespace
metadata:
  name: ${ns}
${crd('Widget', 'widgets')}${crd('Claim', 'claims')}`;

const widget = (size: number) => `---
apiVersion: ${group}/v1
kind: Widget
metadata:
  name: w1
spec:
  size: ${size}
`;
const claim = `---
apiVersion: ${group}/v1
kind: Claim
metadata:
  name: data-0
spec:
  storage: 1Gi
`;
const configMap = (value: string) =>
  `---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\ndata:\n  value: "${value}"\n`;

const claimChecks = (current: string) => `healthChecks:
  - apiVersion: ${group}/v1
    kind: Claim
    name: data-*
    failed: self.status.phase == "Lost"
    current: ${current}
    message: '"claim is " + self.status.phase'
`;

/**
 * Writes bundles as a fleet admin would (bundle.yaml text as given), pushes and syncs the
 * hub. Returns the sync report, errors included: a broken bundle is not a failed sync.
 */
async function pushFiles(
  bundles: Record<string, { bundleYaml: string; manifests: string }>,
): Promise<{ commit: string; errors: { text: string; bundle?: string }[] }> {
  for (const [name, b] of Object.entries(bundles)) {
    h.repo.remove(`bundles/${name}`);
    h.repo.write(`bundles/${name}/bundle.yaml`, b.bundleYaml);
    h.repo.write(`bundles/${name}/manifests.yaml`, b.manifests);
  }
  const commit = await h.repo.commitAsync('Update bundles');
  const res = await h.admin('/v1/admin/sync', { method: 'POST' });
  const report = (await res.json()) as { commit: string; errors: { text: string; bundle?: string }[] };
  if (res.status !== 200 || report.commit !== commit) throw new Error(`sync: HTTP ${res.status}`);
  return report;
}

const targets = `targets:\n  - clusterName: ${cluster}\nnamespace: ${ns}\n`;

async function setStatus(path: string, status: Record<string, unknown>): Promise<void> {
  const res = await kube.request('PATCH', `${path}/status`, {
    body: { status },
    contentType: 'application/merge-patch+json',
  });
  if (res.status !== 200) throw new Error(`PATCH ${path}/status: HTTP ${res.status}`);
}

const ready = (status: 'True' | 'False', message = '') => ({
  type: 'Ready',
  status,
  reason: status === 'True' ? 'Succeeded' : 'Progressing',
  message,
});

beforeAll(async () => {
  h = await AgentHarness.start(bed, 'health');
  kube = await kubeClientOf(plane.kubeconfigPath);
});

afterAll(async () => {
  await cleanUp(kube, [ns, agentNs], crdPaths);
  kube.close();
  await h?.stop();
});

describe('health of custom resources, as kstatus and CEL checks say', () => {
  let token: string;
  const bundle = `${cluster}-app`;
  // A short wait after changes (the CRDs' copies from the apply predate Established, so one
  // look again is needed); otherwise each look is one reconcile, as the agent's requeue does it.
  const env = { FLOTILLA_HEALTH_TIMEOUT: '3s' };
  // One agent throughout, as one process runs: enforce() looks again at the desired state in hand.
  let a: Awaited<ReturnType<AgentHarness['agent']>>['agent'];
  const stateOf = (
    outcome: { bundles: readonly { name: string; state: string; message?: string }[] } | undefined,
  ) => outcome?.bundles.find((b) => b.name === bundle);

  it('follows the Ready condition and the observed generation through the status subresource', async () => {
    ({ token } = await h.register(cluster));
    const report = await pushFiles({
      [bundle]: { bundleYaml: targets, manifests: `${base}${widget(1)}${configMap('one')}` },
    });
    expect(report.errors).toEqual([]);
    ({ agent: a } = await h.agent(cluster, token, {
      kubeconfigPath: plane.kubeconfigPath,
      namespace: agentNs,
      env,
    }));
    expect((await a.sync()).kind).toBe('applied');
    // A custom resource that reports nothing is ready once it exists (kstatus).
    expect(stateOf(a.lastOutcome)?.state).toBe('Ready');

    await setStatus(`${widgets}/w1`, { observedGeneration: 1, conditions: [ready('False', 'warming up')] });
    let outcome = await a.enforce({ detectDrift: false });
    expect(stateOf(outcome)).toMatchObject({
      state: 'NotReady',
      message: `not ready: Widget ${ns}/w1: not ready: warming up`,
    });
    expect(outcome?.requeue).toBe(true);

    await setStatus(`${widgets}/w1`, { observedGeneration: 1, conditions: [ready('True')] });
    outcome = await a.enforce({ detectDrift: false });
    expect(stateOf(outcome)?.state).toBe('Ready');

    // A spec change the controller has not seen yet: Ready=True is stale until observedGeneration catches up.
    await pushFiles({
      [bundle]: { bundleYaml: targets, manifests: `${base}${widget(2)}${configMap('one')}` },
    });
    expect((await a.sync()).kind).toBe('applied');
    expect(stateOf(a.lastOutcome)).toMatchObject({
      state: 'NotReady',
      message: `not ready: Widget ${ns}/w1: the controller has not observed generation 2 yet`,
    });
    await setStatus(`${widgets}/w1`, { observedGeneration: 2 });
    outcome = await a.enforce({ detectDrift: false });
    expect(stateOf(outcome)?.state).toBe('Ready');
    expect((await h.clusterStatus(cluster))?.bundles.find((b) => b.name === bundle)?.state).toBe('Ready');
  });

  it('calls a Stalled object failed for good', async () => {
    await setStatus(`${widgets}/w1`, {
      observedGeneration: 2,
      conditions: [
        ready('False', 'quota exceeded'),
        { type: 'Stalled', status: 'True', reason: 'Quota', message: 'quota exceeded' },
      ],
    });
    const outcome = await a.enforce({ detectDrift: false });
    expect(stateOf(outcome)).toMatchObject({
      state: 'NotReady',
      message: `not ready: Widget ${ns}/w1: stalled: quota exceeded`,
    });
    const manager = new ResourceManager({ client: kube });
    const [report] = await manager.health([
      { apiVersion: `${group}/v1`, kind: 'Widget', namespace: ns, name: 'w1' },
    ]);
    expect(report).toMatchObject({ ready: false, failed: true, message: 'stalled: quota exceeded' });
    await setStatus(`${widgets}/w1`, { conditions: [ready('True')] });
  });

  it('lets a CEL health check in bundle.yaml decide, and carries the checks to the agent', async () => {
    await pushFiles({
      [bundle]: {
        bundleYaml: `${targets}${claimChecks('self.status.phase == "Bound"')}`,
        manifests: `${base}${widget(2)}${claim}${configMap('one')}`,
      },
    });
    expect((await a.sync()).kind).toBe('applied');
    const doc = a.current?.bundles.get(a.current.manifest.bundles.find((b) => b.name === bundle)?.hash ?? '');
    expect(doc?.parse().healthChecks?.[0]).toMatchObject({ kind: 'Claim', name: 'data-*' });
    // No status at all: without the check it would be ready once it exists; the check's error says why not.
    expect(stateOf(a.lastOutcome)).toMatchObject({
      state: 'NotReady',
      message: `not ready: Claim ${ns}/data-0: cannot evaluate health check "failed" (self.status.phase == "Lost"): field not found: status`,
    });

    await setStatus(`${claims}/data-0`, { phase: 'Pending' });
    let outcome = await a.enforce({ detectDrift: false });
    expect(stateOf(outcome)).toMatchObject({
      state: 'NotReady',
      message: `not ready: Claim ${ns}/data-0: claim is Pending`,
    });

    await setStatus(`${claims}/data-0`, { phase: 'Bound' });
    outcome = await a.enforce({ detectDrift: false });
    expect(stateOf(outcome)?.state).toBe('Ready');

    await setStatus(`${claims}/data-0`, { phase: 'Lost' });
    const manager = new ResourceManager({ client: kube });
    const checks = doc?.parse().healthChecks ?? [];
    const [report] = await manager.health(
      [{ apiVersion: `${group}/v1`, kind: 'Claim', namespace: ns, name: 'data-0' }],
      { healthChecks: checks },
    );
    expect(report).toMatchObject({ ready: false, failed: true, message: 'claim is Lost' });
    outcome = await a.enforce({ detectDrift: false });
    expect(stateOf(outcome)).toMatchObject({
      state: 'NotReady',
      message: `not ready: Claim ${ns}/data-0: claim is Lost`,
    });
  });

  it('holds a bundle whose CEL does not compile, with file:line, while other bundles still sync', async () => {
    const other = `${cluster}-other`;
    const before = await pushFiles({
      [other]: {
        bundleYaml: `targets:\n  - clusterName: ${cluster}\nnamespace: ${ns}\n`,
        manifests: configMap('v1').replace('plain', 'other'),
      },
    });
    expect(before.errors).toEqual([]);
    await a.sync();
    const heldHash = a.current?.manifest.bundles.find((b) => b.name === bundle)?.hash;

    const report = await pushFiles({
      [bundle]: {
        bundleYaml: `${targets}${claimChecks('self.status.phase == ')}`,
        manifests: `${base}${widget(2)}${claim}${configMap('two')}`,
      },
      [other]: {
        bundleYaml: `targets:\n  - clusterName: ${cluster}\nnamespace: ${ns}\n`,
        manifests: configMap('v2').replace('plain', 'other'),
      },
    });
    expect(report.errors.map((e) => e.text)).toEqual([
      `bundles/${bundle}/bundle.yaml:9: healthChecks[0].current: syntax error at column 19: found = but expecting end of input`,
    ]);
    expect((await a.sync()).kind).toBe('applied');
    // The broken bundle keeps its last good render; the other bundle moves on.
    expect(a.current?.manifest.bundles.find((b) => b.name === bundle)?.hash).toBe(heldHash);
    const plain = await kube.get<{ data: Record<string, string> }>(
      `/api/v1/namespaces/${ns}/configmaps/plain`,
    );
    expect(plain?.data.value).toBe('one');
    const otherCm = await kube.get<{ data: Record<string, string> }>(
      `/api/v1/namespaces/${ns}/configmaps/other`,
    );
    expect(otherCm?.data.value).toBe('v2');
  });
});
