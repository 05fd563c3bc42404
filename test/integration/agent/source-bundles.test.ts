/**
 * A bundle of another fleet source (`team-x/app`) end to end: the local hub reads the team
 * repo from the bed's git server, the agent applies it to a real API server with the label
 * value `team-x.app` (a `/` is not allowed there) and its full name in an annotation,
 * keeps its inventory, reports its state under the full name, and prunes it when it goes.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { KubeClient } from '../../../agent/src/kube/client.ts';
import { FleetWorkingCopy } from '../../support/fleet-git.ts';
import { AgentHarness, cleanUp, controlPlane, kubeClientOf, syncSettled, uniqueName } from './harness.ts';

const bed = inject('bed');
const plane = controlPlane(bed, 0);
let h: AgentHarness;
let kube: KubeClient;
let team: FleetWorkingCopy;
let seed: string;
const cluster = uniqueName('srcb');
const ns = uniqueName('srcb-app');
const agentNs = uniqueName('srcb-agent');

const manifests = `apiVersion: v1
kind: Namespace
metadata: {name: ${ns}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: ${ns}}
data: {value: "one"}
`;

beforeAll(async () => {
  h = await AgentHarness.start(bed, 'srcb');
  kube = await kubeClientOf(plane.kubeconfigPath);
  seed = mkdtempSync(join(tmpdir(), 'flotilla-team-x-'));
  writeFileSync(join(seed, 'README.md'), 'team-x apps\n');
  team = await FleetWorkingCopy.create(bed.git, uniqueName('team-x'), seed);
  team.write('bundles/app/bundle.yaml', `namespace: ${ns}\ntargets:\n  - clusterName: ${cluster}\n`);
  team.write('bundles/app/manifests.yaml', manifests);
  await team.commitAsync('app');
});

afterAll(async () => {
  await cleanUp(kube, [ns, agentNs]);
  kube.close();
  await h?.stop();
  team?.dispose();
  if (seed) rmSync(seed, { recursive: true, force: true });
});

describe('a bundle of another fleet source in a spoke', () => {
  let token: string;

  it('is applied under a label value and its full name, inventoried and reported as team-x/app', async () => {
    ({ token } = await h.register(cluster));
    h.repo.write(
      'sources/team-x.yaml',
      `apiVersion: flotilla.dev/v1alpha1\nkind: FleetSource\nmetadata: {name: team-x}\nspec:\n  repo: ${team.url}\n  ref: {branch: main}\n`,
    );
    await h.push({}, 'Declare the team-x source');
    const { agent } = await h.agent(cluster, token, {
      kubeconfigPath: plane.kubeconfigPath,
      namespace: agentNs,
    });
    const result = await syncSettled(agent);
    expect(result.kind).toBe('applied');
    expect(agent.lastOutcome?.bundles.map((b) => [b.name, b.state])).toEqual([['team-x/app', 'Ready']]);

    const cm = await kube.get<{
      metadata: { labels: Record<string, string>; annotations: Record<string, string> };
    }>(`/api/v1/namespaces/${ns}/configmaps/settings`);
    expect(cm?.metadata.labels['flotilla.dev/bundle']).toBe('team-x.app');
    expect(cm?.metadata.annotations['flotilla.dev/bundle-name']).toBe('team-x/app');
    const inventory = await kube.get<{ data: { content: string } }>(
      `/api/v1/namespaces/${agentNs}/configmaps/flotilla-inventory-team-x.app`,
    );
    expect(inventory?.data.content).toContain(`"ConfigMap","${ns}","settings"`);
    const view = await h.clusterStatus(cluster);
    expect(view?.bundles.map((b) => [b.name, b.state])).toEqual([['team-x/app', 'Ready']]);
  });

  it('prunes what the bundle applied when it leaves the team repo', async () => {
    team.remove('bundles/app');
    await team.commitAsync('app goes');
    await h.push({}, 'Sync after the team repo changed');
    const { agent } = await h.agent(cluster, token, {
      kubeconfigPath: plane.kubeconfigPath,
      namespace: agentNs,
    });
    const result = await syncSettled(agent);
    expect(result.kind).toBe('applied');
    expect(await kube.get(`/api/v1/namespaces/${ns}/configmaps/settings`)).toBeUndefined();
    expect(
      await kube.get(`/api/v1/namespaces/${agentNs}/configmaps/flotilla-inventory-team-x.app`),
    ).toBeUndefined();
  });
});
