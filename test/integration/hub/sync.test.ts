import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openSignedDesiredState, parseRenderedBundle } from '@flotilla/shared';
import { registerCluster, relabelCluster, syncFleet } from '@flotilla/shared/hub';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FleetWorkingCopy } from '../../support/fleet-git.ts';
import { createTestHub, drainQueue } from '../../support/hub.ts';

const bed = inject('bed');
let repo: FleetWorkingCopy;
let hub: Awaited<ReturnType<typeof createTestHub>>;
const queues = new Map<string, string>();

const fleet = {
  'prod-eu-1': { env: 'prod', region: 'eu' },
  'prod-us-1': { env: 'prod', region: 'us' },
  'staging-eu-1': { env: 'staging', region: 'eu' },
} as const;

async function messages(): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const [id, url] of queues) counts[id] = (await drainQueue(hub, url)).length;
  return counts;
}

async function manifestOf(id: string) {
  const stored = await hub.desiredStates.current(id);
  if (!stored) throw new Error(`no desired state for ${id}`);
  return openSignedDesiredState(
    { manifest: JSON.parse(stored.manifest), signature: stored.signature, keyId: stored.keyId },
    hub.publicKeyPem,
  );
}

async function objectsOf(id: string, bundle: string) {
  const manifest = await manifestOf(id);
  const ref = manifest.bundles.find((b) => b.name === bundle);
  if (!ref) return undefined;
  const bytes = await hub.bundles.get(ref.hash);
  return parseRenderedBundle(Buffer.from(bytes ?? []).toString('utf8'), ref.hash).objects;
}

beforeAll(async () => {
  repo = await FleetWorkingCopy.create(bed.git, `sync-${Date.now()}`);
  hub = await createTestHub(bed, repo.url);
  for (const [name, labels] of Object.entries(fleet)) {
    const { cluster } = await registerCluster(hub, { name, labels });
    queues.set(name, cluster.queueUrl ?? '');
  }
});

afterAll(async () => {
  repo?.dispose();
  await hub?.renderer?.close();
});

describe('hub sync (git server, DynamoDB Local, ElasticMQ)', () => {
  it('stores every cluster its targeted bundles and tells each cluster once', async () => {
    const report = await syncFleet(hub, { holder: 'test' });
    expect(report.status).toBe('synced');
    expect(report.commit).toBe(repo.git('rev-parse', 'HEAD'));
    expect(report.errors).toEqual([]);
    expect(report.changed.map((c) => c.clusterId)).toEqual(['prod-eu-1', 'prod-us-1', 'staging-eu-1']);
    expect(await messages()).toEqual({ 'prod-eu-1': 1, 'prod-us-1': 1, 'staging-eu-1': 1 });

    const names = async (id: string) => (await manifestOf(id)).bundles.map((b) => b.name).sort();
    expect(await names('prod-us-1')).not.toContain('log-shipper'); // excluded by name
    expect(await names('prod-eu-1')).toContain('log-shipper');
    const web = await objectsOf('prod-eu-1', 'web');
    const deployment = web?.find((o) => o.kind === 'Deployment') as
      | { spec: { replicas: number } }
      | undefined;
    expect(deployment?.spec.replicas).toBe(6); // the prod-eu customization, first match
  });

  it('writes nothing and sends nothing for a commit that changes nothing for any cluster', async () => {
    repo.write('README.md', 'Notes that no cluster renders.\n');
    repo.commit('Docs only');
    const report = await syncFleet(hub, { holder: 'test' });
    expect(report.changed).toEqual([]);
    expect(report.unchanged).toBe(3);
    expect(report.itemsWritten).toBe(0);
    expect(await messages()).toEqual({ 'prod-eu-1': 0, 'prod-us-1': 0, 'staging-eu-1': 0 });
  });

  it('changes and notifies only the clusters a commit targets', async () => {
    const before = await hub.clusters.get('staging-eu-1');
    // prod-us-1 is the only cluster whose first matching customization is `prod`.
    const bundle = readFileSync(join(repo.dir, 'bundles/web/bundle.yaml'), 'utf8');
    repo.write('bundles/web/bundle.yaml', bundle.replace('      replicas: 4\n', '      replicas: 5\n'));
    repo.commit('Scale prod-us storefront');
    const report = await syncFleet(hub, { holder: 'test' });
    expect(report.changed.map((c) => c.clusterId)).toEqual(['prod-us-1']);
    expect(report.changed[0]?.generation).toBe(2);
    expect(await messages()).toEqual({ 'prod-eu-1': 0, 'prod-us-1': 1, 'staging-eu-1': 0 });
    expect((await hub.clusters.get('staging-eu-1'))?.head).toEqual(before?.head);
    // One bundle and one manifest changed: the fleet snapshot, the new bundle, and the one
    // commit's head, current manifest and history item; not a rewrite of the fleet.
    expect(report.itemsWritten).toBe(5);
  });

  it('keeps the last good state of a broken bundle, reports file and line, and syncs the other bundles', async () => {
    const webBefore = (await manifestOf('prod-eu-1')).bundles.find((b) => b.name === 'web')?.hash;
    const bundle = readFileSync(join(repo.dir, 'bundles/web/bundle.yaml'), 'utf8');
    repo.write('bundles/web/bundle.yaml', bundle.replace('namespace: web\n', 'namespace: web\nreplica: 3\n'));
    const monitoring = readFileSync(join(repo.dir, 'bundles/monitoring-agent/bundle.yaml'), 'utf8');
    repo.write(
      'bundles/monitoring-agent/bundle.yaml',
      monitoring.replace('scrapeInterval: 30s', 'scrapeInterval: 20s'),
    );
    repo.commit('Typo in web, faster EU scrapes');

    const report = await syncFleet(hub, { holder: 'test' });
    const webErrors = report.errors.filter((e) => e.file === 'bundles/web/bundle.yaml');
    expect(webErrors.length).toBeGreaterThan(0);
    expect(webErrors[0]?.line).toBe(3);
    expect(webErrors[0]?.message).toMatch(/replica/);
    // EU clusters get the monitoring change; every cluster keeps its web bundle as it was.
    expect(report.changed.map((c) => c.clusterId)).toEqual(['prod-eu-1', 'staging-eu-1']);
    expect((await manifestOf('prod-eu-1')).bundles.find((b) => b.name === 'web')?.hash).toBe(webBefore);
    expect(await messages()).toEqual({ 'prod-eu-1': 1, 'prod-us-1': 0, 'staging-eu-1': 1 });
    const state = await hub.syncState.get();
    expect(state?.errors.some((e) => e.file === 'bundles/web/bundle.yaml')).toBe(true);

    repo.write('bundles/web/bundle.yaml', bundle);
    repo.commit('Fix web');
    const fixed = await syncFleet(hub, { holder: 'test' });
    expect(fixed.errors).toEqual([]);
    await messages();
  });

  it('reads policies/ and fleet.yaml from the commit: a Deny and a refused plain Secret hold their bundles, last good kept', async () => {
    const webBefore = (await manifestOf('prod-eu-1')).bundles.find((b) => b.name === 'web')?.hash;
    repo.write(
      'policies/no-storefront.yaml',
      `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: no-storefront}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], resources: [deployments], operations: [CREATE, UPDATE]}]
  validations:
    - expression: "object.metadata.name != 'storefront'"
      message: no storefront today
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: no-storefront}
spec: {policyName: no-storefront, validationActions: [Deny]}
`,
    );
    repo.write('fleet.yaml', 'secrets:\n  plaintext: refuse\n');
    repo.write(
      'bundles/monitoring-agent/token.yaml',
      'apiVersion: v1\nkind: Secret\nmetadata:\n  name: scrape-token\nstringData:\n  token: plain\n',
    );
    repo.commit('A policy, and a plain Secret under a refusing fleet.yaml');
    const report = await syncFleet(hub, { holder: 'test' });
    const texts = report.errors.map((e) => `${e.file}:${e.line}`);
    expect(texts).toContain('policies/no-storefront.yaml:8');
    expect(texts).toContain('bundles/monitoring-agent/token.yaml:1');
    expect((await manifestOf('prod-eu-1')).bundles.find((b) => b.name === 'web')?.hash).toBe(webBefore);

    repo.remove('policies/no-storefront.yaml');
    repo.remove('fleet.yaml');
    repo.remove('bundles/monitoring-agent/token.yaml');
    repo.commit('Back');
    expect((await syncFleet(hub, { holder: 'test' })).errors).toEqual([]);
    await messages();
  });

  it('moves bundles onto and off a cluster when its labels change, touching only that cluster', async () => {
    // Labels declared in git (clusters/<name>.yaml) win over registered ones, so use a cluster git does not declare.
    const { cluster, sync: first } = await registerCluster(hub, {
      name: 'edge-1',
      labels: { env: 'staging', region: 'us' },
    });
    queues.set('edge-1', cluster.queueUrl ?? '');
    expect(first.changed.map((c) => c.clusterId)).toEqual(['edge-1']);
    expect((await manifestOf('edge-1')).bundles.map((b) => b.name)).toContain('monitoring-agent');
    await messages();

    const { sync } = await relabelCluster(hub, 'edge-1', { set: { env: 'prod', monitoring: 'disabled' } });
    expect(sync.changed.map((c) => c.clusterId)).toEqual(['edge-1']);
    const names = (await manifestOf('edge-1')).bundles.map((b) => b.name);
    expect(names).not.toContain('monitoring-agent'); // the `monitored` group excludes monitoring=disabled
    const web = await objectsOf('edge-1', 'web');
    const deployment = web?.find((o) => o.kind === 'Deployment') as
      | { spec: { replicas: number } }
      | undefined;
    expect(deployment?.spec.replicas).toBe(5); // now the `prod` customization
    expect(await messages()).toEqual({ 'prod-eu-1': 0, 'prod-us-1': 0, 'staging-eu-1': 0, 'edge-1': 1 });
  });

  it('never loses or reorders a generation when syncs run concurrently with pushes', async () => {
    const generationsBefore = (await hub.clusters.get('prod-eu-1'))?.head?.generation ?? 0;
    const bundle = readFileSync(join(repo.dir, 'bundles/web/bundle.yaml'), 'utf8');
    const runs: Promise<unknown>[] = [];
    for (let i = 1; i <= 4; i++) {
      repo.write('bundles/web/bundle.yaml', bundle.replace('replicas: 6', `replicas: ${10 + i}`));
      repo.commit(`Scale EU to ${10 + i}`);
      runs.push(syncFleet(hub, { holder: `sync-${i}` }), syncFleet(hub, { holder: `sync-${i}b` }));
    }
    await Promise.all(runs);
    // Whatever interleaving happened, the queued reruns end on the tip.
    const tip = repo.git('rev-parse', 'HEAD');
    const last = await syncFleet(hub, { holder: 'final' });
    expect(last.commit).toBe(tip);
    const history = await hub.desiredStates.history('prod-eu-1');
    const generations = history.map((h) => h.generation);
    // Contiguous, newest first, no gaps, no duplicates.
    const newest = generations[0] ?? 0;
    expect(generations).toEqual(generations.map((_, i) => newest - i));
    expect(generations[0]).toBeGreaterThan(generationsBefore);
    const web = await objectsOf('prod-eu-1', 'web');
    const deployment = web?.find((o) => o.kind === 'Deployment') as
      | { spec: { replicas: number } }
      | undefined;
    expect(deployment?.spec.replicas).toBe(14);
  });
});
