/**
 * Tenants at the hub: a team source's bundles are held to its tenant's boundary. Each of
 * the four refusals the issue names (a write into kube-system, a ClusterRoleBinding, a
 * cluster outside the tenant's selector, a chart from another repository) holds that
 * bundle, with its file and line, while the team's good bundle is delivered.
 */
import { buildDesiredState, formatFleetError, loadFleet } from '@flotilla/shared';
import { combineSources } from '@flotilla/shared/sources';
import { describe, expect, it } from 'vitest';
import { repo } from '../helpers.ts';

const TENANT = `apiVersion: flotilla.dev/v1alpha1
kind: Tenant
metadata: {name: team-a}
spec:
  namespaces: ["team-a", "team-a-*"]
  clusterSelector:
    matchLabels: {team-a: enabled}
  helmRepositories: ["https://charts.team-a.example.com/*"]
`;

const SOURCE = (tenant = 'team-a') => `apiVersion: flotilla.dev/v1alpha1
kind: FleetSource
metadata: {name: team-a}
spec:
  repo: https://git.example.com/team-a/apps.git
  ref: {branch: main}
  tenant: ${tenant}
`;

const deployment = (name: string, namespace: string) => `apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}, namespace: ${namespace}}
spec:
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata: {labels: {app: ${name}}}
    spec: {containers: [{name: ${name}, image: "nginx:1.27"}]}
`;

const CRB = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: team-a-admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{kind: ServiceAccount, name: default, namespace: team-a}]
`;

const ALL = 'namespace: team-a\ntargets:\n  - clusterSelector: {}\n';

function fleetOf(source = SOURCE()) {
  const platform = repo({
    'tenants/team-a.yaml': TENANT,
    'sources/team-a.yaml': source,
    'bundles/web/bundle.yaml': 'namespace: web\ntargets: [{clusterSelector: {}}]\n',
    'bundles/web/app.yaml': deployment('web', 'web'),
  });
  const team = repo({
    'bundles/app/bundle.yaml': ALL,
    'bundles/app/app.yaml': deployment('app', 'team-a'),
    'bundles/evil/bundle.yaml': ALL,
    'bundles/evil/app.yaml': `# a Deployment where team-a may not write\n${deployment('evil', 'kube-system')}`,
    'bundles/rbac/bundle.yaml': ALL,
    'bundles/rbac/crb.yaml': CRB,
    'bundles/chart/bundle.yaml': `${ALL}helm:\n  repo: https://charts.other.example.com\n  chart: web\n  version: 1.0.0\n`,
  });
  const combined = combineSources(
    { commit: 'p1', files: platform },
    new Map([['team-a', { commit: 't1', files: team }]]),
  );
  return loadFleet(combined.files);
}

const held = (plan: {
  held: readonly { bundle: string; errors: readonly Parameters<typeof formatFleetError>[0][] }[];
}) => Object.fromEntries(plan.held.map((h) => [h.bundle, h.errors.map(formatFleetError)]));

describe('tenant enforcement', () => {
  it('holds each refused bundle with its file and line, and delivers the good one with its tenant', () => {
    const fleet = fleetOf();
    const plan = fleet.planCluster({ name: 'dev-1', labels: { 'team-a': 'enabled' } });
    expect(plan.bundles.map((b) => [b.ref.name, b.ref.tenant])).toEqual([
      ['team-a/app', 'team-a'],
      ['web', undefined],
    ]);
    expect(held(plan)).toEqual({
      'team-a/chart': [
        'team-a:bundles/chart/bundle.yaml:5: tenant "team-a" may not use Helm charts from "https://charts.other.example.com" (chart web) (allowed: https://charts.team-a.example.com/*)',
      ],
      'team-a/evil': [
        'team-a:bundles/evil/app.yaml:2: tenant "team-a" may not write into namespace "kube-system" (allowed: team-a, team-a-*): apps/Deployment kube-system/evil',
      ],
      'team-a/rbac': [
        'team-a:bundles/rbac/crb.yaml:1: tenant "team-a" may not create cluster-scoped rbac.authorization.k8s.io/ClusterRoleBinding (allowed: none): rbac.authorization.k8s.io/ClusterRoleBinding team-a-admin',
      ],
    });
    // The desired state carries no tenant for a platform bundle: its reference is what it was.
    expect(Object.hasOwn(plan.bundles[1]?.ref ?? {}, 'tenant')).toBe(false);
  });

  it('holds every bundle of the tenant on a cluster outside its selector, at the bundle’s targets', () => {
    const fleet = fleetOf();
    const plan = fleet.planCluster({ name: 'prod-1', labels: {} });
    expect(plan.bundles.map((b) => b.ref.name)).toEqual(['web']);
    expect(held(plan)['team-a/app']).toEqual([
      'team-a:bundles/app/bundle.yaml:3: tenant "team-a" may not target cluster "prod-1" (allowed: clusters matching team-a=enabled)',
    ]);
  });

  it('holds all of a source’s bundles when it names an unknown tenant, with the error on the source file', () => {
    const fleet = fleetOf(SOURCE('team-z'));
    const message =
      'sources/team-a.yaml:7: spec.tenant: unknown tenant "team-z" (no valid tenants/team-z.yaml): the source\'s bundles are held';
    expect(fleet.errors.map(formatFleetError)).toContain(message);
    const plan = fleet.planCluster({ name: 'dev-1', labels: { 'team-a': 'enabled' } });
    expect(plan.bundles.map((b) => b.ref.name)).toEqual(['web']);
    expect(held(plan)['team-a/app']).toEqual([message]);
  });

  it('delivers a trusted (tenant-less) source’s bundles with no tenant check', () => {
    const fleet = fleetOf(SOURCE().replace('  tenant: team-a\n', ''));
    const plan = fleet.planCluster({ name: 'prod-1', labels: {} });
    expect(plan.bundles.map((b) => [b.ref.name, b.ref.tenant])).toEqual([
      ['team-a/app', undefined],
      ['team-a/evil', undefined],
      ['team-a/rbac', undefined],
      ['web', undefined],
    ]);
  });

  it("signs the namespaces of the delivered bundles' tenants into the desired state, for the agent", () => {
    const fleet = fleetOf();
    expect([...fleet.tenantNamespaces]).toEqual([['team-a', ['team-a', 'team-a-*']]]);
    const plan = fleet.planCluster({ name: 'dev-1', labels: { 'team-a': 'enabled' } });
    const state = buildDesiredState({ plan, commit: 'p1', generation: 1, tenants: fleet.tenantNamespaces });
    expect(state.tenants).toEqual([{ name: 'team-a', namespaces: ['team-a', 'team-a-*'] }]);
    // A cluster that gets no tenant bundle gets no tenants section.
    const other = fleet.planCluster({ name: 'prod-1', labels: {} });
    expect(
      buildDesiredState({ plan: other, commit: 'p1', generation: 1, tenants: fleet.tenantNamespaces })
        .tenants,
    ).toBeUndefined();
  });
});
