/**
 * Fleet sources and tenants end to end: a platform repo on the bed's git server declaring
 * two tenants (team-a, bounded to `team-a-*` namespaces and clusters labelled
 * `team-a=enabled`; team-b) and their two app repos as sources, a local hub whose push
 * webhooks all three repos call, and two spokes with real agents. A commit in the platform
 * repo and one in team-a's repo reach the spokes; team-a commits that write into
 * kube-system or add a ClusterRoleBinding are held with their `file:line` errors and never
 * reach a spoke while team-a's good bundle keeps being delivered; a bundle targeting a
 * cluster outside team-a's selector is held on that cluster only; team-a's tenant key
 * reads team-a's status and is refused on team-b's routes and the platform's.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { buildDashboard } from '@flotilla/dashboard/build.ts';
import type { FleetStatus } from '@flotilla/shared/hub';
import { CoreV1Api, KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startDashboardServer } from '../../../cli/src/dashboard/server.ts';
import { HubClient } from '../../../cli/src/hub/hub-client.ts';
import { openBrowser } from '../../bed/src/browser.ts';
import { FleetWorkingCopy } from '../../support/fleet-git.ts';
import { describeStatus, LocalFleet, type LocalSpoke } from '../../support/local-fleet.ts';
import { until } from '../../support/until.ts';

const bed = inject('bed');
const id = `${process.pid % 1000}${Date.now().toString(36).slice(-4)}`;
const agentEnv = {
  FLOTILLA_HEARTBEAT_INTERVAL: '1s',
  FLOTILLA_BACKOFF_MIN: '200ms',
  FLOTILLA_BACKOFF_MAX: '2s',
};
/** team-a's spoke (its tenant's selector matches it) and a spoke team-a may not reach. */
const spokes: LocalSpoke[] = (
  [
    { name: `tn${id}-a`, labels: { suite: id, 'team-a': 'enabled' }, kubeconfigPath: '' },
    { name: `tn${id}-o`, labels: { suite: id }, kubeconfigPath: '' },
  ] as LocalSpoke[]
).map((s, i) => ({ ...s, kubeconfigPath: bed.clusters[i]?.kubeconfigPath ?? '' }));
const [teamASpoke, otherSpoke] = spokes as [LocalSpoke, LocalSpoke];
const ns = { platform: `platform-${id}`, a: `team-a-${id}`, b: `team-b-${id}` };
const repoNames = { a: `tn-team-a-${id}`, b: `tn-team-b-${id}` };

let fleet: LocalFleet;
/** team-a's key, once the key test made it. */
let teamAKey = '';
let teamA: FleetWorkingCopy;
let teamB: FleetWorkingCopy;
const folders: string[] = [];

function folder(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-tn-e2e-'));
  folders.push(dir);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}

const configMap = (name: string, namespace: string, value: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n  namespace: ${namespace}\ndata:\n  value: "${value}"\n`;
const teamBundle = (namespace: string, selector: string) =>
  `namespace: ${namespace}\ndependsOn: [base]\ntargets:\n  - clusterSelector: ${selector}\n`;
const tenant = (name: string, selector: string) =>
  `apiVersion: flotilla.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: ${name}\nspec:\n  namespaces: ["${name}-*"]\n  clusterSelector: ${selector}\n`;
const source = (name: string, url: string) =>
  `apiVersion: flotilla.dev/v1alpha1\nkind: FleetSource\nmetadata:\n  name: ${name}\nspec:\n  repo: ${url}\n  ref: { branch: main }\n  tenant: ${name}\n  interval: 10s\n`;
const crb = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: team-a-${id}-admin
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: cluster-admin
subjects:
  - kind: ServiceAccount
    name: default
    namespace: ${ns.a}
`;

function kube(s: LocalSpoke): { core: CoreV1Api; rbac: RbacAuthorizationV1Api } {
  const kc = new KubeConfig();
  kc.loadFromFile(s.kubeconfigPath);
  return { core: kc.makeApiClient(CoreV1Api), rbac: kc.makeApiClient(RbacAuthorizationV1Api) };
}

/** The `value` of a ConfigMap on a spoke's API server, or undefined when it is not there. */
async function value(s: LocalSpoke, namespace: string, name: string): Promise<string | undefined> {
  try {
    return (await kube(s).core.readNamespacedConfigMap({ name, namespace })).data?.value;
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined;
    throw err;
  }
}

async function cli(args: string[], env?: Record<string, string>) {
  return fleet.flotilla(args, env ? { env } : {});
}

/** Waits until the hub has read `commit` of a source and every spoke is in sync with it. */
function waitSource(name: string, commit: string): Promise<FleetStatus> {
  return fleet.waitFor(
    `source ${name} at ${commit.slice(0, 12)} and every cluster in sync`,
    (s) =>
      s.sync?.sources?.[name]?.commit === commit &&
      s.clusters.length === 2 &&
      s.clusters.every((c) => c.inSync),
    { timeoutMs: 90_000 },
  );
}

const bundlesOn = (s: FleetStatus, spoke: LocalSpoke) =>
  (s.clusters.find((c) => c.id === spoke.name)?.bundles ?? []).map((b) => `${b.name}=${b.state}`).sort();

beforeAll(async () => {
  expect(bed.clusters.length, 'the bed needs two spoke control planes').toBeGreaterThanOrEqual(2);
  teamA = await FleetWorkingCopy.create(
    bed.git,
    repoNames.a,
    folder({
      'bundles/web/bundle.yaml': teamBundle(ns.a, `suite=${id},team-a=enabled`),
      'bundles/web/cm.yaml': configMap('web', ns.a, 'v1'),
    }),
  );
  teamB = await FleetWorkingCopy.create(
    bed.git,
    repoNames.b,
    folder({
      'bundles/tool/bundle.yaml': teamBundle(ns.b, `suite=${id}`),
      'bundles/tool/cm.yaml': configMap('tool', ns.b, 'v1'),
    }),
  );
  const platform = folder({
    'tenants/team-a.yaml': tenant('team-a', '{ matchLabels: { team-a: enabled } }'),
    'tenants/team-b.yaml': tenant('team-b', '{}'),
    'sources/team-a.yaml': source('team-a', teamA.url),
    'sources/team-b.yaml': source('team-b', teamB.url),
    'bundles/base/bundle.yaml': `namespace: ${ns.platform}\ntargets:\n  - clusterSelector: suite=${id}\n`,
    'bundles/base/namespaces.yaml': [ns.platform, ns.a, ns.b]
      .map((n) => `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${n}\n`)
      .join('---\n'),
    'bundles/base/cm.yaml': configMap('base', ns.platform, 'p1'),
  });
  fleet = await LocalFleet.start({
    bed,
    repoName: `tn-platform-${id}`,
    fleetFrom: platform,
    prefix: `tn${id}`,
  });
  fleet.addSourceWebhook(repoNames.a, 'team-a');
  fleet.addSourceWebhook(repoNames.b, 'team-b');
  // With the tenants of the platform repo: the agents write team-a's and team-b's bundles
  // as their tenants' service accounts, which bootstrap installs.
  await fleet.bootstrap(spokes, { namespace: `flotilla-tn-${id}`, notify: 'sqs', agentEnv, tenants: true });
}, 300_000);

afterAll(async () => {
  await fleet?.stop();
  for (const copy of [teamA, teamB]) copy?.dispose();
  for (const dir of folders) rmSync(dir, { recursive: true, force: true });
  await Promise.all(
    spokes.map(async (s) => {
      const { core, rbac } = kube(s);
      for (const name of Object.values(ns)) await core.deleteNamespace({ name }).catch(() => undefined);
      await rbac.deleteClusterRoleBinding({ name: `team-a-${id}-admin` }).catch(() => undefined);
      await core.deleteNamespace({ name: `flotilla-tn-${id}` }).catch(() => undefined);
    }),
  );
}, 120_000);

describe('fleet sources and tenants (local hub, git server webhooks, real agents on two spokes)', () => {
  it("delivers the platform's and the teams' bundles, each team's only where its tenant allows", async () => {
    const s = await fleet.waitInSync({ timeoutMs: 120_000 });
    expect(bundlesOn(s, teamASpoke)).toEqual(['base=Ready', 'team-a/web=Ready', 'team-b/tool=Ready']);
    expect(bundlesOn(s, otherSpoke)).toEqual(['base=Ready', 'team-b/tool=Ready']);
    expect(s.sync?.errors).toEqual([]);
    expect(await value(teamASpoke, ns.a, 'web')).toBe('v1');
    expect(await value(otherSpoke, ns.a, 'web')).toBeUndefined();
    for (const spoke of spokes) {
      expect(await value(spoke, ns.platform, 'base')).toBe('p1');
      expect(await value(spoke, ns.b, 'tool')).toBe('v1');
    }
  });

  it('takes one commit in the platform repo and one in team-a’s repo to the spokes', async () => {
    const p = await fleet.push('base p2', (r) =>
      r.write('bundles/base/cm.yaml', configMap('base', ns.platform, 'p2')),
    );
    await fleet.waitInSync({ commit: p.commit, timeoutMs: 90_000 });
    for (const spoke of spokes) expect(await value(spoke, ns.platform, 'base')).toBe('p2');

    teamA.write('bundles/web/cm.yaml', configMap('web', ns.a, 'v2'));
    const commit = await teamA.commitAsync('web v2');
    const s = await waitSource('team-a', commit);
    // The desired state's commit stays the platform's; the team's commit is the source's.
    expect(s.sync?.commit).toBe(p.commit);
    expect(await value(teamASpoke, ns.a, 'web')).toBe('v2');
    expect(await value(otherSpoke, ns.a, 'web')).toBeUndefined();
  });

  it('holds team-a’s bundles that write into kube-system or bind cluster-admin, and keeps delivering its good one', async () => {
    teamA
      .write('bundles/web/cm.yaml', configMap('web', ns.a, 'v3'))
      .write('bundles/evil/bundle.yaml', teamBundle(ns.a, `suite=${id},team-a=enabled`))
      .write('bundles/evil/cm.yaml', configMap(`evil-${id}`, 'kube-system', 'x'))
      .write('bundles/admin/bundle.yaml', teamBundle(ns.a, `suite=${id},team-a=enabled`))
      .write('bundles/admin/crb.yaml', crb);
    const commit = await teamA.commitAsync('evil and admin');
    await waitSource('team-a', commit);
    await until('web v3 on team-a’s spoke', async () =>
      (await value(teamASpoke, ns.a, 'web')) === 'v3' ? true : undefined,
    );

    const status = await cli(['status']);
    expect(status.code, status.stderr).toBe(10);
    expect(status.stderr).toContain(
      `team-a:bundles/evil/cm.yaml:1: tenant "team-a" may not write into namespace "kube-system" (allowed: team-a-*): ConfigMap kube-system/evil-${id}`,
    );
    expect(status.stderr).toContain(
      `team-a:bundles/admin/crb.yaml:1: tenant "team-a" may not create cluster-scoped rbac.authorization.k8s.io/ClusterRoleBinding (allowed: none): rbac.authorization.k8s.io/ClusterRoleBinding team-a-${id}-admin`,
    );
    const json = (await fleet.status()) as FleetStatus;
    expect(json.sync?.errors.map((e) => e.text).sort()).toEqual(
      status.stderr
        .split('\n')
        .filter((l) => l.startsWith('  '))
        .map((l) => l.trim())
        .sort(),
    );
    expect(bundlesOn(json, teamASpoke)).toEqual(['base=Ready', 'team-a/web=Ready', 'team-b/tool=Ready']);
    // Never on a spoke.
    expect(await value(teamASpoke, 'kube-system', `evil-${id}`)).toBeUndefined();
    await expect(
      kube(teamASpoke).rbac.readClusterRoleBinding({ name: `team-a-${id}-admin` }),
    ).rejects.toMatchObject({
      code: 404,
    });
  });

  it('gives team-a’s key team-a’s status, and refuses it team-b’s routes and the platform’s', async () => {
    const created = await cli(['tenant', 'key', 'create', 'team-a', '--description', 'team-a e2e']);
    expect(created.code, created.stderr).toBe(0);
    const key = created.stdout.trim();
    expect(key).toMatch(/^flt_t_team-a\./);
    teamAKey = key;

    const mine = await cli(['status', '-o', 'json'], { FLOTILLA_ADMIN_KEY: key });
    expect(mine.code).toBe(10); // team-a's own held bundles are its errors
    const view = JSON.parse(mine.stdout) as FleetStatus;
    expect(view.clusters.map((c) => c.id)).toEqual([teamASpoke.name]);
    expect(view.clusters[0]?.bundles.map((b) => b.name)).toEqual(['team-a/web']);
    expect(view.sync?.errors.every((e) => e.text.startsWith('team-a:'))).toBe(true);
    expect(view.sync?.errors).toHaveLength(2);

    const call = (path: string) =>
      fetch(`${fleet.hubUrl}${path}`, { headers: { authorization: `Bearer ${key}` } });
    const other = await call('/v1/tenants/team-b/status');
    expect(other.status).toBe(403);
    expect(((await other.json()) as { error: { message: string } }).error.message).toBe(
      'tenant "team-a" may not act on tenant "team-b"',
    );
    const admin = await call('/v1/admin/status');
    expect(admin.status).toBe(403);
    expect(((await admin.json()) as { error: { message: string } }).error.message).toBe(
      'tenant "team-a" may not call GET /v1/admin/status: it is a platform admin route (a tenant\'s routes are under /v1/tenants/team-a/)',
    );
    expect((await call('/v1/tenants/team-a/status')).status).toBe(200);
  });

  it("shows team-a's dashboard only team-a's clusters and bundles, and its rendered objects", async () => {
    expect(teamAKey).not.toBe('');
    const hub = new HubClient({
      baseUrl: fleet.hubUrl,
      admin: { kind: 'key', key: teamAKey },
      tenant: 'team-a',
    });
    const server = await startDashboardServer({ hub, assets: await buildDashboard() });
    const browser = await openBrowser();
    try {
      const page = await browser.newPage();
      await page.goto(server.url);
      const header = page.locator('header');
      await expect.poll(() => header.textContent(), { timeout: 20_000 }).toContain('tenant team-a');
      const rows = page.locator('.matrix tbody th[scope=row] a');
      await expect.poll(() => rows.allTextContents(), { timeout: 20_000 }).toEqual([teamASpoke.name]);
      const columns = await page.locator('.matrix thead th a').allTextContents();
      expect(columns).toEqual(['team-a/web']);
      // The bundle's page: its cluster and the objects rendered for it, from team-a's own routes.
      await page.goto(`${server.url}#/bundles/${encodeURIComponent('team-a/web')}`);
      const main = page.locator('main');
      await expect
        .poll(() => main.textContent(), { timeout: 20_000 })
        .toContain(`Rendered for ${teamASpoke.name}`);
      await expect.poll(() => main.textContent(), { timeout: 20_000 }).toMatch(/ConfigMap team-a-/);
      expect(await page.locator('[role="alert"]').count()).toBe(0);
      await page.close();
    } finally {
      await browser.close();
      await server.close();
    }
  }, 90_000);

  it('holds a team-a bundle on a cluster outside its selector only', async () => {
    teamA
      .write('bundles/wide/bundle.yaml', teamBundle(ns.a, `suite=${id}`))
      .write('bundles/wide/cm.yaml', configMap('wide', ns.a, 'w1'));
    const commit = await teamA.commitAsync('wide');
    await waitSource('team-a', commit);
    await until('wide on team-a’s spoke', async () =>
      (await value(teamASpoke, ns.a, 'wide')) === 'w1' ? true : undefined,
    );
    const s = await fleet.status();
    expect(s.sync?.errors.map((e) => e.text)).toContainEqual(
      `team-a:bundles/wide/bundle.yaml:4: tenant "team-a" may not target cluster "${otherSpoke.name}" (allowed: clusters matching team-a=enabled)`,
    );
    expect(bundlesOn(s, teamASpoke)).toContain('team-a/wide=Ready');
    expect(bundlesOn(s, otherSpoke)).toEqual(['base=Ready', 'team-b/tool=Ready']);
    expect(await value(otherSpoke, ns.a, 'wide')).toBeUndefined();
    expect(describeStatus(s)).toContain(otherSpoke.name);
  });
});
