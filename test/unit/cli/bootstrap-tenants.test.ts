import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { agentManifests, resourceOfKind } from '../../../cli/src/bootstrap/manifests.ts';
import { tenantsOfCheckout } from '../../../cli/src/bootstrap/tenants.ts';
import { CliError } from '../../../cli/src/core/errors.ts';

type Obj = { kind: string; metadata: { name: string; namespace?: string }; rules?: Rule[] } & Record<
  string,
  unknown
>;
type Rule = { apiGroups?: string[]; resources?: string[]; resourceNames?: string[]; verbs: string[] };

const base = { clusterId: 'edge-1', namespace: 'flotilla-system', image: 'img', secretData: {} };
const find = (objs: Obj[], kind: string, name: string) =>
  objs.find((o) => o.kind === kind && o.metadata.name === name);

describe("the tenants' RBAC that bootstrap installs", () => {
  it('without tenants: no tenant objects, and the agent may impersonate no one', () => {
    const objs = agentManifests(base) as Obj[];
    expect(objs.some((o) => o.metadata.name.startsWith('flotilla-tenant-'))).toBe(false);
    const role = objs.find((o) => o.kind === 'ClusterRole') as Obj;
    expect(JSON.stringify(role.rules)).not.toContain('impersonate');
  });

  it('per tenant: a service account, its cluster-scoped kinds, its namespaced role, and impersonate by name', () => {
    const objs = agentManifests({
      ...base,
      tenants: [
        { name: 'team-b', clusterResources: [] },
        {
          name: 'team-a',
          clusterResources: [
            { group: '', kind: 'Namespace' },
            { group: 'networking.k8s.io', kind: 'IngressClass' },
          ],
        },
      ],
    }) as Obj[];
    const agentRole = objs.find(
      (o) => o.kind === 'ClusterRole' && !o.metadata.name.startsWith('flotilla-tenant'),
    );
    expect(agentRole?.rules).toContainEqual({
      apiGroups: [''],
      resources: ['serviceaccounts'],
      resourceNames: ['flotilla-tenant-team-a', 'flotilla-tenant-team-b'],
      verbs: ['impersonate'],
    });
    expect(agentRole?.rules).toContainEqual({
      apiGroups: ['rbac.authorization.k8s.io'],
      resources: ['clusterroles'],
      resourceNames: ['flotilla-tenant-team-a-namespaced', 'flotilla-tenant-team-b-namespaced'],
      verbs: ['bind'],
    });
    expect(find(objs, 'ServiceAccount', 'flotilla-tenant-team-a')?.metadata.namespace).toBe(
      'flotilla-system',
    );
    const cluster = find(objs, 'ClusterRole', 'flotilla-tenant-team-a') as Obj;
    expect(cluster.rules).toEqual([
      { apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list', 'watch'] },
      {
        apiGroups: [''],
        resources: ['namespaces'],
        verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
      },
      {
        apiGroups: ['networking.k8s.io'],
        resources: ['ingressclasses'],
        verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
      },
    ]);
    expect(find(objs, 'ClusterRole', 'flotilla-tenant-team-b')?.rules).toHaveLength(1);
    expect(find(objs, 'ClusterRoleBinding', 'flotilla-tenant-team-a')).toMatchObject({
      roleRef: { kind: 'ClusterRole', name: 'flotilla-tenant-team-a' },
      subjects: [{ kind: 'ServiceAccount', name: 'flotilla-tenant-team-a', namespace: 'flotilla-system' }],
    });
    expect(find(objs, 'ClusterRole', 'flotilla-tenant-team-a-namespaced')?.rules).toEqual([
      {
        apiGroups: ['*'],
        resources: ['*'],
        verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
      },
    ]);
    // No binding of the namespaced role: the agent binds it in each of the tenant's namespaces.
    expect(
      objs.some((o) => (o.roleRef as { name?: string } | undefined)?.name?.endsWith('-namespaced')),
    ).toBe(false);
    // Installed before the Deployment.
    expect(objs[objs.length - 1]?.kind).toBe('Deployment');
  });

  it('turns kinds into resources as Kubernetes names them', () => {
    expect(resourceOfKind('Namespace')).toBe('namespaces');
    expect(resourceOfKind('StorageClass')).toBe('storageclasses');
    expect(resourceOfKind('NetworkPolicy')).toBe('networkpolicies');
    expect(resourceOfKind('Gateway')).toBe('gateways');
    expect(resourceOfKind('*')).toBe('*');
  });

  it('reads the tenants of a fleet checkout, and refuses one with an error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'flotilla-tenants-'));
    expect(tenantsOfCheckout(dir, '/')).toEqual([]);
    mkdirSync(join(dir, 'tenants'));
    writeFileSync(
      join(dir, 'tenants', 'team-a.yaml'),
      `apiVersion: flotilla.dev/v1alpha1
kind: Tenant
metadata: { name: team-a }
spec:
  namespaces: ["team-a-*"]
  clusterResources: [{ group: "", kind: Namespace }]
  clusterSelector: {}
`,
    );
    expect(tenantsOfCheckout(dir, '/')).toEqual([
      { name: 'team-a', clusterResources: [{ group: '', kind: 'Namespace' }] },
    ]);
    writeFileSync(
      join(dir, 'tenants', 'team-b.yaml'),
      'apiVersion: flotilla.dev/v1alpha1\nkind: Tenant\nmetadata: { name: team-b }\nspec: { namespaces: [] }\n',
    );
    expect(() => tenantsOfCheckout(dir, '/')).toThrow(CliError);
    expect(() => tenantsOfCheckout(dir, '/')).toThrow(/tenants\/team-b.yaml:\d+/);
    expect(() => tenantsOfCheckout(join(dir, 'nope'), '/')).toThrow(/no such directory/);
  });
});
