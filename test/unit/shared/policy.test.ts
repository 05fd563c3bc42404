/**
 * The policy gate in the fleet: ValidatingAdmissionPolicy documents of `policies/` run on
 * every distinct render; a Deny holds the bundle on the clusters its binding applies to, as
 * a broken bundle; Warn and Audit report and deliver. The engine itself is tested in
 * test/unit/policy and against the real kube-apiserver in test/integration/policy.
 */
import { formatFleetError, loadFleet } from '@flotilla/shared';
import { previewFleet } from '@flotilla/shared/hub';
import { describe, expect, it } from 'vitest';
import { NO_LATEST } from '../../support/policy-fixtures.ts';
import { repo } from './helpers.ts';

const deployment = (name: string, image: string) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
spec:
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata: {labels: {app: ${name}}}
    spec:
      containers:
        - name: ${name}
          image: ${image}
`;

const files = (policy = NO_LATEST) => ({
  'policies/no-latest.yaml': policy,
  'bundles/web/bundle.yaml': 'namespace: web\ntargets: [{ clusterSelector: {} }]\n',
  'bundles/web/app.yaml': deployment('web', 'nginx:latest'),
  'bundles/api/bundle.yaml': 'namespace: api\ntargets: [{ clusterSelector: {} }]\n',
  'bundles/api/app.yaml': deployment('api', 'nginx:1.27.3'),
});

const DENIED =
  'policies/no-latest.yaml:9: policy no-latest-images (binding no-latest-images) denies Deployment.apps "web/web" (bundles/web/app.yaml:1): images must be pinned to a version';

describe('the policy gate', () => {
  it('holds a bundle a Deny binding refuses, on every cluster, and delivers the others (the issue example as written)', () => {
    const fleet = loadFleet(repo(files()));
    expect(fleet.errors).toEqual([]);
    for (const name of ['prod-eu-1', 'dev-1']) {
      const plan = fleet.planCluster({ name, labels: {} });
      expect(plan.bundles.map((b) => b.ref.name)).toEqual(['api']);
      expect(plan.held.map((h) => [h.bundle, h.reason, h.errors.map(formatFleetError)])).toEqual([
        ['web', 'broken', [DENIED]],
      ]);
    }
  });

  it('evaluates a render once, however many clusters share it', () => {
    const fleet = loadFleet(repo(files()));
    const a = fleet.planCluster({ name: 'a', labels: {} }).bundles[0]?.rendered;
    const b = fleet.planCluster({ name: 'b', labels: {} }).bundles[0]?.rendered;
    expect(a).toBeDefined();
    expect(a).toBe(b);
  });

  it('reports and delivers under Warn and Audit', () => {
    const fleet = loadFleet(
      repo(files(NO_LATEST.replace('validationActions: [Deny]', 'validationActions: [Warn, Audit]'))),
    );
    const plan = fleet.planCluster({ name: 'prod-eu-1', labels: {} });
    expect(plan.bundles.map((b) => b.ref.name)).toEqual(['api', 'web']);
    expect(plan.held).toEqual([]);
    expect(plan.warnings?.map(formatFleetError)).toEqual([DENIED.replace('denies', 'warns about')]);
  });

  it('applies a binding only to the clusters its flotilla.dev/cluster-selector matches', () => {
    const scoped = NO_LATEST.replace(
      'metadata: {name: no-latest-images}\nspec: {policyName',
      'metadata: {name: no-latest-images, annotations: {flotilla.dev/cluster-selector: "env=prod"}}\nspec: {policyName',
    );
    expect(scoped).not.toBe(NO_LATEST);
    const fleet = loadFleet(repo(files(scoped)));
    expect(fleet.errors).toEqual([]);
    expect(fleet.planCluster({ name: 'p', labels: { env: 'prod' } }).held.map((h) => h.bundle)).toEqual([
      'web',
    ]);
    expect(fleet.planCluster({ name: 'd', labels: { env: 'dev' } }).held).toEqual([]);
  });

  it('reports a policy that does not compile at its file and line, and holds nothing for it', () => {
    const fleet = loadFleet(
      repo(files(NO_LATEST.replace("!c.image.endsWith(':latest')", '!c.image.endsWith('))),
    );
    expect(fleet.errors.map(formatFleetError)).toEqual([
      expect.stringMatching(/^policies\/no-latest\.yaml:9: /),
    ]);
  });

  it('shows in the preview: held where denied, warnings where warned', async () => {
    const denied = await previewFleet(
      Object.entries(files()).map(([path, content]) => ({ path, content })),
      [{ name: 'c1', labels: {}, registered: false }],
      { source: 'upload', includeObjects: false },
    );
    expect(denied.clusters[0]?.held.map((h) => h.errors.map((e) => e.text))).toEqual([[DENIED]]);
    const warned = await previewFleet(
      Object.entries(files(NO_LATEST.replace('[Deny]', '[Warn]'))).map(([path, content]) => ({
        path,
        content,
      })),
      [{ name: 'c1', labels: {}, registered: false }],
      { source: 'upload', includeObjects: false },
    );
    expect(warned.warnings.map((w) => w.text)).toEqual([DENIED.replace('denies', 'warns about')]);
    expect(warned.clusters[0]?.warnings?.map((w) => w.text)).toEqual([
      DENIED.replace('denies', 'warns about'),
    ]);
  });
});
