import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeClient } from '../../../agent/src/kube/client.ts';
import { failureMessage } from '../../../agent/src/reconcile/outcomes.ts';
import {
  tenantNamespaceAllowed,
  tenantNamespaces,
  tenantServiceAccount,
} from '../../../agent/src/reconcile/tenant-access.ts';
import { ResourceManager, tenantRefusal } from '../../../agent/src/ssa/resource-manager.ts';

/** A local HTTP server standing in for the API server: records each request's headers, answers 403 to PATCH. */
let server: Server;
let base: string;
const seen: { method: string; url: string; headers: IncomingHttpHeaders }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      if (req.method === 'PATCH') {
        res.statusCode = 403;
        res.end(
          JSON.stringify({
            kind: 'Status',
            status: 'Failure',
            reason: 'Forbidden',
            code: 403,
            message: `configmaps "x" is forbidden: User "${req.headers['impersonate-user'] ?? 'admin'}" cannot patch resource "configmaps" in API group "" in the namespace "kube-system"`,
          }),
        );
      } else if (req.url?.startsWith('/api/v1/namespaces/kube-system/configmaps')) {
        res.end(JSON.stringify({ kind: 'ConfigMapList', items: [], metadata: {} }));
      } else if (req.url === '/api/v1') {
        res.end(
          JSON.stringify({
            kind: 'APIResourceList',
            groupVersion: 'v1',
            resources: [{ name: 'configmaps', namespaced: true, kind: 'ConfigMap', verbs: ['get', 'patch'] }],
          }),
        );
      } else res.end(JSON.stringify({ kind: 'Status', code: 200 }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const connection = () => ({
  server: base,
  tls: {},
  token: () => 'agent-token',
  description: 'test',
});

describe('the impersonating client option', () => {
  it('sends Impersonate-User on every request, with the client credentials, and not from the original client', async () => {
    const client = new KubeClient(connection());
    const tenant = client.impersonating('system:serviceaccount:flotilla-system:flotilla-tenant-team-a');
    seen.length = 0;
    await client.request('GET', '/api/v1/namespaces/a/configmaps/one');
    await tenant.request('GET', '/api/v1/namespaces/a/configmaps/two');
    expect(seen.map((s) => s.headers['impersonate-user'])).toEqual([
      undefined,
      'system:serviceaccount:flotilla-system:flotilla-tenant-team-a',
    ]);
    expect(seen.map((s) => s.headers.authorization)).toEqual(['Bearer agent-token', 'Bearer agent-token']);
    expect(tenant.impersonate).toBe('system:serviceaccount:flotilla-system:flotilla-tenant-team-a');
    // The view shares the pool: closing it leaves the original working.
    tenant.close();
    await client.request('GET', '/api/v1/namespaces/a/configmaps/three');
    expect(seen).toHaveLength(3);
    client.close();
  });

  it('is a constructor option too', async () => {
    const client = new KubeClient(connection(), { impersonate: 'jane' });
    seen.length = 0;
    await client.request('GET', '/version');
    expect(seen[0]?.headers['impersonate-user']).toBe('jane');
    client.close();
  });
});

describe("a tenant's resource manager", () => {
  it('reads as the agent, writes as the tenant, and words a 403 as the tenant refusal', async () => {
    const client = new KubeClient(connection());
    const agent = new ResourceManager({ client });
    const user = 'system:serviceaccount:flotilla-system:flotilla-tenant-team-a';
    const manager = agent.forTenant('team-a', client.impersonating(user));
    expect(manager.tenant).toBe('team-a');
    expect(agent.tenant).toBeUndefined();
    seen.length = 0;
    const changes = await manager.applyAll([
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x', namespace: 'kube-system' }, data: {} },
    ]);
    const patches = seen.filter((s) => s.method === 'PATCH');
    const reads = seen.filter((s) => s.method === 'GET');
    expect(patches.length).toBeGreaterThan(0);
    expect(patches.every((s) => s.headers['impersonate-user'] === user)).toBe(true);
    expect(reads.every((s) => s.headers['impersonate-user'] === undefined)).toBe(true);
    expect(changes.failures).toHaveLength(1);
    const failure = changes.failures[0];
    expect(failure?.tenant).toBe('team-a');
    expect(failure?.message).toMatch(
      /^tenant "team-a" may not write ConfigMap kube-system\/x: forbidden by RBAC \(configmaps "x" is forbidden: User "system:serviceaccount:flotilla-system:flotilla-tenant-team-a" cannot patch/,
    );
    // The bundle's message is the refusal itself.
    expect(failureMessage(changes.failures, 'applying')).toBe(failure?.message);
    // The agent's own manager keeps the API server's message as it is.
    const own = await agent.applyAll([
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x', namespace: 'kube-system' }, data: {} },
    ]);
    expect(own.failures[0]?.tenant).toBeUndefined();
    expect(own.failures[0]?.message).toMatch(/^configmaps "x" is forbidden: User "admin"/);
    client.close();
  });

  it('names the group of the kind refused', () => {
    expect(
      tenantRefusal(
        'team-a',
        { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'kube-system', name: 'x' },
        'no',
      ),
    ).toBe('tenant "team-a" may not write apps/Deployment kube-system/x: forbidden by RBAC (no)');
    expect(
      tenantRefusal(
        'team-a',
        { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', namespace: '', name: 'admin' },
        'no',
      ),
    ).toBe(
      'tenant "team-a" may not write rbac.authorization.k8s.io/ClusterRole admin: forbidden by RBAC (no)',
    );
  });
});

describe("the tenant's namespaces", () => {
  it('match its globs within a name only', () => {
    const globs = ['team-a', 'team-a-*', 'lab-?'];
    expect(tenantNamespaceAllowed(globs, 'team-a')).toBe(true);
    expect(tenantNamespaceAllowed(globs, 'team-a-web')).toBe(true);
    expect(tenantNamespaceAllowed(globs, 'lab-1')).toBe(true);
    expect(tenantNamespaceAllowed(globs, 'lab-12')).toBe(false);
    expect(tenantNamespaceAllowed(globs, 'team-ab')).toBe(false);
    expect(tenantNamespaceAllowed(globs, 'kube-system')).toBe(false);
    expect(tenantNamespaceAllowed(globs, 'xteam-a')).toBe(false);
    expect(tenantNamespaceAllowed([], 'team-a')).toBe(false);
  });

  it('come from the desired state tenants section; an absent tenant has none', () => {
    const tenants = [{ name: 'team-a', namespaces: ['team-a-*'] }];
    expect(tenantNamespaces(tenants, 'team-a')).toEqual(['team-a-*']);
    expect(tenantNamespaces(tenants, 'team-b')).toBeUndefined();
    expect(tenantNamespaces(undefined, 'team-a')).toBeUndefined();
    expect(tenantServiceAccount('team-a')).toBe('flotilla-tenant-team-a');
  });
});
