/**
 * The tenant checks, on objects rendered by the real fleet pipeline where positions
 * matter, and on hand-written objects elsewhere. Each case asserts the exact error (or that
 * there is none), so that a check that lets something through, or refuses too much, fails.
 */
import { formatFleetError, type KubeObject, loadFleet, type RenderedBundle } from '@flotilla/shared';
import {
  checkTenantChart,
  checkTenantObjects,
  checkTenantRender,
  checkTenantSource,
  checkTenantTargets,
  loadTenants,
  type Tenant,
  type TenantObjectsContext,
  tenantAllowsCluster,
} from '@flotilla/shared/tenants';
import { describe, expect, it } from 'vitest';
import { repo } from '../helpers.ts';

const TENANTS = `apiVersion: flotilla.dev/v1alpha1
kind: Tenant
metadata: {name: team-a}
spec:
  namespaces: ["team-a", "team-a-*"]
  clusterResources:
    - {group: "", kind: Namespace}
  clusterSelector:
    matchLabels: {team-a: enabled}
  helmRepositories: ["https://charts.example.com/*", "oci://registry.example.com/team-a/*"]
---
apiVersion: flotilla.dev/v1alpha1
kind: Tenant
metadata: {name: platform}
spec:
  namespaces: ["*"]
  clusterResources: [{group: "*", kind: "*"}]
  clusterSelector: {}
  helmRepositories: ["https://**"]
`;

function tenant(name: string): Tenant {
  const { tenants, errors } = loadTenants([{ path: 'tenants/all.yaml', content: TENANTS }]);
  expect(errors).toEqual([]);
  const t = tenants.get(name);
  if (!t) throw new Error(`no tenant ${name}`);
  return t;
}

const teamA = tenant('team-a');
const CTX: TenantObjectsContext = {
  bundle: 'web',
  file: 'bundles/web/bundle.yaml',
  line: 1,
  namespace: 'team-a',
};

/** Checks objects and returns the errors, formatted. */
function check(objects: KubeObject[], t: Tenant = teamA, ctx: Partial<TenantObjectsContext> = {}): string[] {
  return checkTenantObjects(t, objects, { ...CTX, ...ctx }).map(formatFleetError);
}

function obj(
  apiVersion: string,
  kind: string,
  name: string,
  namespace?: string,
  rest: object = {},
): KubeObject {
  return { apiVersion, kind, metadata: namespace === undefined ? { name } : { name, namespace }, ...rest };
}

/** Renders one bundle through the fleet pipeline for a cluster, as the hub does. */
function render(files: Record<string, string>): RenderedBundle {
  const fleet = loadFleet(repo(files));
  expect(fleet.errors.map(formatFleetError)).toEqual([]);
  const plan = fleet.planCluster({ name: 'c1', labels: { 'team-a': 'enabled' } });
  const rendered = plan.bundles[0]?.rendered;
  if (!rendered) throw new Error(`not rendered: ${JSON.stringify(plan)}`);
  return rendered;
}

const BUNDLE = 'namespace: team-a\ntargets: [{ clusterSelector: {} }]\n';

describe('the four boundaries the issue names', () => {
  it('refuses a Deployment written into kube-system, at the object’s own file and line', () => {
    const rendered = render({
      'bundles/web/bundle.yaml': BUNDLE,
      'bundles/web/web.yaml': `apiVersion: v1
kind: ConfigMap
metadata: {name: web-config}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: evil
  namespace: kube-system
spec: {replicas: 1}
`,
    });
    const errors = checkTenantRender(teamA, rendered, CTX);
    expect(errors.map(formatFleetError)).toEqual([
      'bundles/web/web.yaml:5: tenant "team-a" may not write into namespace "kube-system" (allowed: team-a, team-a-*): apps/Deployment kube-system/evil',
    ]);
    expect(errors[0]?.bundle).toBe('web');
  });

  it('refuses a ClusterRoleBinding (a cluster-scoped kind it is not given)', () => {
    const crb = obj('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', 'team-a-admin', undefined, {
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
      subjects: [{ kind: 'ServiceAccount', name: 'deployer', namespace: 'team-a' }],
    });
    expect(check([crb])).toEqual([
      'bundles/web/bundle.yaml:1: tenant "team-a" may not create cluster-scoped rbac.authorization.k8s.io/ClusterRoleBinding (allowed: Namespace): rbac.authorization.k8s.io/ClusterRoleBinding team-a-admin',
    ]);
    // The platform tenant, allowed every kind, may.
    expect(check([crb], tenant('platform'))).toEqual([]);
  });

  it('refuses a cluster outside its clusterSelector, and allows one inside', () => {
    const at = { bundle: 'web', file: 'bundles/web/bundle.yaml', line: 2 };
    const refused = checkTenantTargets(teamA, { name: 'prod-eu', labels: { env: 'prod' } }, at);
    expect(refused && formatFleetError(refused)).toBe(
      'bundles/web/bundle.yaml:2: tenant "team-a" may not target cluster "prod-eu" (allowed: clusters matching team-a=enabled)',
    );
    expect(checkTenantTargets(teamA, { name: 'dev', labels: { 'team-a': 'enabled' } }, at)).toBeUndefined();
    expect(tenantAllowsCluster(teamA, { 'team-a': 'disabled' })).toBe(false);
    expect(tenantAllowsCluster(tenant('platform'), {})).toBe(true);
  });

  it('refuses a chart from another repository', () => {
    const at = { bundle: 'web', file: 'bundles/web/bundle.yaml', line: 3 };
    const refused = checkTenantChart(
      teamA,
      { kind: 'repo', repo: 'https://charts.bitnami.example', chart: 'redis' },
      at,
    );
    expect(refused && formatFleetError(refused)).toBe(
      'bundles/web/bundle.yaml:3: tenant "team-a" may not use Helm charts from "https://charts.bitnami.example" (chart redis) (allowed: https://charts.example.com/*, oci://registry.example.com/team-a/*)',
    );
    expect(
      checkTenantChart(teamA, { kind: 'repo', repo: 'https://charts.example.com', chart: 'web' }, at),
    ).toBeUndefined();
  });
});

describe('namespaces', () => {
  it('matches globs: * and ? within a name, nothing more', () => {
    const deploy = (ns: string) => obj('apps/v1', 'Deployment', 'web', ns);
    expect(check([deploy('team-a'), deploy('team-a-dev'), deploy('team-a-')])).toEqual([]);
    expect(check([deploy('team-ab'), deploy('team-b'), deploy('xteam-a')])).toHaveLength(3);
    const { tenants } = loadTenants([
      {
        path: 'tenants/q.yaml',
        content: TENANTS.split('---')[0]?.replace('["team-a", "team-a-*"]', '["team-?"]') ?? '',
      },
    ]);
    const single = tenants.get('team-a') as Tenant;
    expect(check([deploy('team-b')], single)).toEqual([]);
    expect(check([deploy('team-bb')], single)).toEqual([
      'bundles/web/bundle.yaml:1: tenant "team-a" may not write into namespace "team-bb" (allowed: team-?): apps/Deployment team-bb/web',
    ]);
  });

  it('gives an object without a namespace the bundle’s default first', () => {
    const cm = obj('v1', 'ConfigMap', 'settings');
    expect(check([cm])).toEqual([]);
    expect(check([cm], teamA, { namespace: 'default' })).toEqual([
      'bundles/web/bundle.yaml:1: tenant "team-a" may not write into namespace "default" (allowed: team-a, team-a-*): ConfigMap default/settings',
    ]);
  });

  it('checks the namespace the render defaulted from bundle.yaml', () => {
    const rendered = render({
      'bundles/web/bundle.yaml': 'namespace: monitoring\ntargets: [{ clusterSelector: {} }]\n',
      'bundles/web/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n',
    });
    expect(
      checkTenantRender(teamA, rendered, { ...CTX, namespace: 'monitoring' }).map(formatFleetError),
    ).toEqual([
      'bundles/web/cm.yaml:1: tenant "team-a" may not write into namespace "monitoring" (allowed: team-a, team-a-*): ConfigMap monitoring/settings',
    ]);
  });
});

describe('Namespace objects', () => {
  it('may be created when the kind is allowed and the name matches the globs', () => {
    expect(check([obj('v1', 'Namespace', 'team-a-dev')])).toEqual([]);
  });

  it('are refused when the name is outside the globs', () => {
    expect(check([obj('v1', 'Namespace', 'kube-public')])).toEqual([
      'bundles/web/bundle.yaml:1: tenant "team-a" may not create namespace "kube-public" (allowed: team-a, team-a-*): Namespace kube-public',
    ]);
  });

  it('are refused, even with a matching name, when the tenant may not create Namespaces', () => {
    const { tenants } = loadTenants([
      {
        path: 'tenants/t.yaml',
        content:
          'apiVersion: flotilla.dev/v1alpha1\nkind: Tenant\nmetadata: {name: t}\nspec:\n  namespaces: [t]\n  clusterSelector: {}\n',
      },
    ]);
    expect(check([obj('v1', 'Namespace', 't')], tenants.get('t') as Tenant)).toEqual([
      'bundles/web/bundle.yaml:1: tenant "t" may not create cluster-scoped Namespace (allowed: none): Namespace t',
    ]);
  });
});

describe('cluster-scoped kinds', () => {
  const crd = (scope: 'Cluster' | 'Namespaced', group = 'example.com', kind = 'Widget') =>
    obj('apiextensions.k8s.io/v1', 'CustomResourceDefinition', `widgets.${group}`, undefined, {
      spec: { group, names: { kind, plural: 'widgets' }, scope },
    });
  const widget = (ns?: string) => obj('example.com/v1', 'Widget', 'w1', ns);

  it('learns a custom resource’s scope from a CRD in the same render', () => {
    const cluster = check([crd('Cluster'), widget()], tenant('platform'));
    expect(cluster).toEqual([]);
    expect(check([widget('team-a')])).toEqual([]);
    // With its CRD saying Cluster, the same Widget is a cluster-scoped object the tenant may not create.
    const { tenants } = loadTenants([
      {
        path: 'tenants/t.yaml',
        content: TENANTS.split('---')[0]?.replace(
          '- {group: "", kind: Namespace}',
          '- {group: apiextensions.k8s.io, kind: CustomResourceDefinition}',
        ) as string,
      },
    ]);
    const withCrds = tenants.get('team-a') as Tenant;
    expect(check([crd('Cluster'), widget()], withCrds)).toEqual([
      'bundles/web/bundle.yaml:1: tenant "team-a" may not create cluster-scoped example.com/Widget (allowed: apiextensions.k8s.io/CustomResourceDefinition): example.com/Widget w1',
    ]);
    expect(check([crd('Namespaced'), widget('team-a')], withCrds)).toEqual([]);
  });

  it('learns it from the hub’s scope table (a CRD shipped by another bundle)', () => {
    const hub = (group: string, kind: string) => group === 'example.com' && kind === 'Widget';
    expect(check([widget()], teamA, { isClusterScoped: hub })).toEqual([
      'bundles/web/bundle.yaml:1: tenant "team-a" may not create cluster-scoped example.com/Widget (allowed: Namespace): example.com/Widget w1',
    ]);
  });

  it('is not fooled by a CRD that calls a cluster-scoped kind namespaced', () => {
    const fake = crd('Namespaced', 'rbac.authorization.k8s.io', 'ClusterRoleBinding');
    const crb = obj('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', 'sneaky', 'team-a');
    const errors = check([fake, crb]);
    expect(errors).toContain(
      'bundles/web/bundle.yaml:1: tenant "team-a" may not create cluster-scoped rbac.authorization.k8s.io/ClusterRoleBinding (allowed: Namespace): rbac.authorization.k8s.io/ClusterRoleBinding sneaky',
    );
  });
});

describe('RoleBinding subjects', () => {
  const binding = (subjects: object[], roleRef = { kind: 'ClusterRole', name: 'edit' }) =>
    obj('rbac.authorization.k8s.io/v1', 'RoleBinding', 'deployers', 'team-a', {
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', ...roleRef },
      subjects,
    });

  it('allows a ClusterRole bound in its namespace to its own service accounts and to people', () => {
    expect(
      check([
        binding([
          { kind: 'ServiceAccount', name: 'ci', namespace: 'team-a-dev' },
          { kind: 'ServiceAccount', name: 'ci' },
          { kind: 'User', name: 'alice@example.com', apiGroup: 'rbac.authorization.k8s.io' },
          { kind: 'Group', name: 'team-a-devs', apiGroup: 'rbac.authorization.k8s.io' },
          { kind: 'User', name: 'system:serviceaccount:team-a:builder' },
          { kind: 'Group', name: 'system:serviceaccounts:team-a-dev' },
        ]),
      ]),
    ).toEqual([]);
  });

  it('refuses a service account of another namespace, in each of its spellings', () => {
    expect(
      check([
        binding([
          { kind: 'ServiceAccount', name: 'default', namespace: 'kube-system' },
          { kind: 'User', name: 'system:serviceaccount:team-b:deployer' },
          { kind: 'Group', name: 'system:serviceaccounts:team-b' },
          { kind: 'Group', name: 'system:serviceaccounts' },
        ]),
      ]),
    ).toEqual([
      'bundles/web/bundle.yaml:1: tenant "team-a" may not bind service account "kube-system/default" of a namespace outside its own (allowed: team-a, team-a-*): rbac.authorization.k8s.io/RoleBinding team-a/deployers',
      'bundles/web/bundle.yaml:1: tenant "team-a" may not bind service account "team-b/deployer" of a namespace outside its own (allowed: team-a, team-a-*): rbac.authorization.k8s.io/RoleBinding team-a/deployers',
      'bundles/web/bundle.yaml:1: tenant "team-a" may not bind group "system:serviceaccounts:team-b" (service accounts of a namespace outside its own (allowed: team-a, team-a-*)): rbac.authorization.k8s.io/RoleBinding team-a/deployers',
      'bundles/web/bundle.yaml:1: tenant "team-a" may not bind the cluster\'s own identity Group "system:serviceaccounts": rbac.authorization.k8s.io/RoleBinding team-a/deployers',
    ]);
  });

  it('refuses the cluster’s own identities', () => {
    expect(
      check([
        binding([
          { kind: 'Group', name: 'system:masters' },
          { kind: 'Group', name: 'system:authenticated' },
          { kind: 'User', name: 'system:kube-controller-manager' },
        ]),
      ]),
    ).toHaveLength(3);
  });

  it('checks the subjects of a ClusterRoleBinding the tenant may create', () => {
    const crb = obj('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', 'view-all', undefined, {
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
      subjects: [{ kind: 'ServiceAccount', name: 'x', namespace: 'kube-system' }],
    });
    const { tenants } = loadTenants([
      {
        path: 'tenants/t.yaml',
        content:
          'apiVersion: flotilla.dev/v1alpha1\nkind: Tenant\nmetadata: {name: t}\nspec:\n  namespaces: [t]\n  clusterSelector: {}\n  clusterResources: [{group: rbac.authorization.k8s.io, kind: ClusterRoleBinding}]\n',
      },
    ]);
    expect(check([crb], tenants.get('t') as Tenant)).toEqual([
      'bundles/web/bundle.yaml:1: tenant "t" may not bind service account "kube-system/x" of a namespace outside its own (allowed: t): rbac.authorization.k8s.io/ClusterRoleBinding view-all',
    ]);
  });
});

describe('SOPS-encrypted objects', () => {
  const SOPS = `sops:
  age:
    - recipient: age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq
      enc: |
        -----BEGIN AGE ENCRYPTED FILE-----
        YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBhYmMK
        -----END AGE ENCRYPTED FILE-----
  lastmodified: "2026-12-07T00:00:00Z"
  mac: ENC[AES256_GCM,data:bWFj,iv:aXY=,tag:dGFn,type:str]
  version: 3.10.2
`;
  it('are checked by their identity', () => {
    const rendered = render({
      'bundles/web/bundle.yaml': BUNDLE,
      'bundles/web/secret.enc.yaml': `apiVersion: v1\nkind: Secret\nmetadata:\n  name: token\n  namespace: kube-system\nstringData:\n  t: ENC[AES256_GCM,data:c2VjcmV0,iv:aXY=,tag:dGFn,type:str]\n${SOPS}`,
    });
    expect(checkTenantRender(teamA, rendered, CTX).map(formatFleetError)).toEqual([
      'bundles/web/secret.enc.yaml:1: tenant "team-a" may not write into namespace "kube-system" (allowed: team-a, team-a-*): Secret kube-system/token',
    ]);
  });

  it('are refused when they are bindings, whose subjects the hub cannot read', () => {
    const rendered = render({
      'bundles/web/bundle.yaml': BUNDLE,
      'bundles/web/rb.enc.yaml': `apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: rb\nroleRef: ENC[AES256_GCM,data:eA==,iv:aXY=,tag:dGFn,type:str]\n${SOPS}`,
    });
    expect(checkTenantRender(teamA, rendered, CTX).map(formatFleetError)).toEqual([
      'bundles/web/rb.enc.yaml:1: tenant "team-a" may not apply an encrypted RoleBinding (the hub cannot read its subjects): rbac.authorization.k8s.io/RoleBinding team-a/rb',
    ]);
  });
});

describe('Helm chart repositories', () => {
  const at = { bundle: 'web', file: 'bundles/web/bundle.yaml' };
  const allowed = (chart: Parameters<typeof checkTenantChart>[1], t: Tenant = teamA) =>
    checkTenantChart(t, chart, at) === undefined;

  it('normalises trailing slashes and the case of scheme and host', () => {
    expect(allowed({ kind: 'repo', repo: 'HTTPS://Charts.Example.COM/', chart: 'web' })).toBe(true);
    expect(allowed('https://charts.example.com/stable/')).toBe(true);
  });

  it('matches an https repository by its URL or by repository/chart', () => {
    const { tenants } = loadTenants([
      {
        path: 'tenants/t.yaml',
        content:
          'apiVersion: flotilla.dev/v1alpha1\nkind: Tenant\nmetadata: {name: t}\nspec:\n  namespaces: [t]\n  clusterSelector: {}\n  helmRepositories: ["https://charts.example.com", "https://other.example.com/web"]\n',
      },
    ]);
    const t = tenants.get('t') as Tenant;
    expect(allowed({ kind: 'repo', repo: 'https://charts.example.com', chart: 'anything' }, t)).toBe(true);
    expect(allowed({ kind: 'repo', repo: 'https://other.example.com', chart: 'web' }, t)).toBe(true);
    expect(allowed({ kind: 'repo', repo: 'https://other.example.com', chart: 'db' }, t)).toBe(false);
    expect(allowed({ kind: 'repo', repo: 'https://charts.example.com/sub', chart: 'web' }, t)).toBe(false);
  });

  it('matches OCI references, within the path the glob names', () => {
    expect(allowed({ kind: 'oci', url: 'oci://registry.example.com/team-a/web' })).toBe(true);
    expect(allowed('oci://registry.example.com/team-a/web:1.2.3')).toBe(true);
    expect(allowed({ kind: 'oci', url: 'oci://registry.example.com/team-b/web' })).toBe(false);
    expect(allowed({ kind: 'oci', url: 'oci://registry.example.com/team-a/nested/web' })).toBe(false);
  });

  it('reads ** across path segments and *.domain as the subdomains of a host, never dot-dot', () => {
    const { tenants } = loadTenants([
      {
        path: 'tenants/t.yaml',
        content:
          'apiVersion: flotilla.dev/v1alpha1\nkind: Tenant\nmetadata: {name: t}\nspec:\n  namespaces: [t]\n  clusterSelector: {}\n  helmRepositories: ["oci://registry.example.com/team-t/**", "https://*.example.com/*"]\n',
      },
    ]);
    const t = tenants.get('t') as Tenant;
    expect(allowed({ kind: 'oci', url: 'oci://registry.example.com/team-t/a/b/web' }, t)).toBe(true);
    expect(allowed({ kind: 'oci', url: 'oci://registry.example.com/team-t/../team-u/web' }, t)).toBe(false);
    expect(allowed({ kind: 'oci', url: 'oci://registry.example.com/team-u/web' }, t)).toBe(false);
    expect(allowed({ kind: 'repo', repo: 'https://charts.example.com', chart: 'web' }, t)).toBe(true);
    expect(allowed({ kind: 'repo', repo: 'https://example.com', chart: 'web' }, t)).toBe(false);
    expect(allowed({ kind: 'repo', repo: 'https://charts.example.com.evil.example', chart: 'web' }, t)).toBe(
      false,
    );
  });

  it('does not let credentials or a look-alike host pass for an allowed host', () => {
    expect(allowed({ kind: 'repo', repo: 'https://charts.example.com@evil.example', chart: 'web' })).toBe(
      false,
    );
    expect(allowed({ kind: 'repo', repo: 'https://charts.example.com.evil.example', chart: 'web' })).toBe(
      false,
    );
    const refused = checkTenantChart(teamA, 'https://user:pw@charts.example.com/web', at);
    expect(refused && formatFleetError(refused)).toBe(
      'bundles/web/bundle.yaml:1: tenant "team-a" may not use Helm charts from "https://user:pw@charts.example.com/web": not a chart reference (repository URL/chart name, or oci://host/path/chart; without credentials, query or fragment)',
    );
  });

  it('always allows a chart in the fleet repo, and no repository chart without helmRepositories', () => {
    const { tenants } = loadTenants([
      {
        path: 'tenants/t.yaml',
        content:
          'apiVersion: flotilla.dev/v1alpha1\nkind: Tenant\nmetadata: {name: t}\nspec:\n  namespaces: [t]\n  clusterSelector: {}\n',
      },
    ]);
    const t = tenants.get('t') as Tenant;
    const local = {
      kind: 'path',
      dir: { path: 'bundles/web/chart', pos: { file: 'x', line: 1, column: 1 } },
    } as const;
    expect(allowed(local, t)).toBe(true);
    const refused = checkTenantChart(t, { kind: 'oci', url: 'oci://registry.example.com/t/web' }, at);
    expect(refused && formatFleetError(refused)).toBe(
      'bundles/web/bundle.yaml:1: tenant "t" may not use Helm charts from "oci://registry.example.com/t/web" (allowed: none)',
    );
  });
});

describe('source repositories', () => {
  it('are free without sourceRepositories and limited with them', () => {
    const pos = { file: 'sources/web.yaml', line: 4, column: 1 };
    expect(checkTenantSource(teamA, 'https://git.example.com/anything', pos)).toBeUndefined();
    const { tenants } = loadTenants([
      {
        path: 'tenants/t.yaml',
        content:
          'apiVersion: flotilla.dev/v1alpha1\nkind: Tenant\nmetadata: {name: t}\nspec:\n  namespaces: [t]\n  clusterSelector: {}\n  sourceRepositories: ["https://git.example.com/team-t/*"]\n',
      },
    ]);
    const t = tenants.get('t') as Tenant;
    expect(checkTenantSource(t, 'https://git.example.com/team-t/apps.git', pos)).toBeUndefined();
    const refused = checkTenantSource(t, 'https://git.example.com/team-u/apps.git', pos);
    expect(refused && formatFleetError(refused)).toBe(
      'sources/web.yaml:4: tenant "t" may not read the git repository "https://git.example.com/team-u/apps.git" (allowed: https://git.example.com/team-t/*)',
    );
  });
});
