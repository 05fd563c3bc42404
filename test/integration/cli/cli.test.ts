/**
 * The `flotilla` CLI end to end: a local hub on the bed's DynamoDB Local, ElasticMQ and
 * git server, two real control planes bootstrapped with their agents running locally
 * (`--run-agent local`: kwok fakes pods, so the in-cluster Deployment never runs), and
 * every command run in-process exactly as `npx flotilla` runs it.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { AuthenticationV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ExitCode } from '../../../cli/src/core/exit-codes.ts';
import { type CliRun, runFlotilla } from '../../support/cli-run.ts';
import { FleetWorkingCopy } from '../../support/fleet-git.ts';
import { until } from '../../support/until.ts';
import { type ApiHub, startApiHub } from '../api/local-hub.ts';

const bed = inject('bed');
const id = `${process.pid % 1000}${Date.now().toString(36).slice(-5)}`;
/** The agents' namespace: unique, so this file shares the bed's clusters with other tests safely. */
const agentNs = `flotilla-cli-${id}`;
/** Where the test bundles put their objects. */
const appNs = `cli-app-${id}`;
const a = `cli-a-${id}`;
const b = `cli-b-${id}`;

let repo: FleetWorkingCopy;
let api: ApiHub;
let stateDir: string;
const fleetDir = mkdtempSync(join(tmpdir(), 'flotilla-cli-fleet-'));

function writeFleet(dir: string, webSize = 'small') {
  const files: Record<string, string> = {
    'bundles/config/bundle.yaml': `namespace: ${appNs}\ntargets:\n  - name: suite\n    clusterSelector: suite=${id}\n`,
    'bundles/config/namespace.yaml': `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${appNs}\n`,
    'bundles/config/info.yaml': [
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata:',
      '  name: cluster-info',
      'data:',
      '  cluster: ${cluster.name}',
      '  region: ${cluster.labels.region}',
      '',
    ].join('\n'),
    'bundles/web/bundle.yaml': [
      `namespace: ${appNs}`,
      'dependsOn: [config]',
      'targets:',
      '  - name: gold',
      `    clusterSelector: suite=${id},tier=gold`,
      'customizations:',
      '  - name: eu',
      '    clusterSelector: region=eu',
      '    values: { size: large }',
      'values:',
      `  size: ${webSize}`,
      '',
    ].join('\n'),
    'bundles/web/web.yaml':
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  size: "${values.size}"\n',
  };
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
}

type Run = CliRun;

/** `flotilla ...` in-process, as an admin unless `env` says otherwise. */
function flotilla(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  return runFlotilla({ hubUrl: api.url, adminKey: api.adminKey, stateDir }, args, env);
}

const spoke = (i: number) => {
  const cluster = bed.clusters[i];
  if (!cluster) throw new Error(`the bed has no cluster #${i}`);
  return cluster;
};

function core(i: number): CoreV1Api {
  const kc = new KubeConfig();
  kc.loadFromFile(spoke(i).kubeconfigPath);
  return kc.makeApiClient(CoreV1Api);
}

async function fetchLease(
  i: number,
): Promise<{ spec?: { holderIdentity?: string; leaseDurationSeconds?: number } } | undefined> {
  const kc = new KubeConfig();
  kc.loadFromFile(spoke(i).kubeconfigPath);
  const { CoordinationV1Api } = await import('@kubernetes/client-node');
  return kc
    .makeApiClient(CoordinationV1Api)
    .readNamespacedLease({ name: 'flotilla-agent-leader', namespace: agentNs })
    .catch(() => undefined);
}

async function agentSecret(i: number): Promise<Record<string, string>> {
  const secret = await core(i).readNamespacedSecret({ name: 'flotilla-agent', namespace: agentNs });
  return Object.fromEntries(
    Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]),
  );
}

/** Local agents report often, so waits stay short. */
const agentFlags = [
  '--run-agent',
  'local',
  '--namespace',
  agentNs,
  '--agent-env',
  'FLOTILLA_HEARTBEAT_INTERVAL=2s',
  '--agent-env',
  'FLOTILLA_LOG_LEVEL=debug',
  '--timeout',
  '60s',
];

beforeAll(async () => {
  expect(bed.clusters.length, 'the bed needs three spoke control planes').toBeGreaterThanOrEqual(3);
  stateDir = mkdtempSync(join(tmpdir(), 'flotilla-cli-state-'));
  writeFleet(fleetDir);
  repo = await FleetWorkingCopy.create(bed.git, `cli-${id}`, fleetDir);
  api = await startApiHub(bed, repo.url);
  const sync = await flotilla(['sync']);
  expect(sync.code, sync.stderr).toBe(0);
});

afterAll(async () => {
  if (stateDir && api) await flotilla(['local-agent', 'stop', '--all']);
  for (const i of [0, 1, 2]) {
    for (const name of [agentNs, appNs, `${agentNs}-c`, `${agentNs}-d`, `${agentNs}-e`]) {
      await core(i)
        .deleteNamespace({ name })
        .catch(() => undefined);
    }
  }
  await api?.stop();
  repo?.dispose();
  rmSync(fleetDir, { recursive: true, force: true });
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

describe('flotilla bootstrap against two real control planes', () => {
  it('bootstraps one spoke with admin credentials and sees its first heartbeat', async () => {
    const run = await flotilla([
      'bootstrap',
      a,
      '--kubeconfig',
      spoke(0).kubeconfigPath,
      '--label',
      `suite=${id}`,
      '--label',
      'region=eu',
      '--label',
      'tier=gold',
      ...agentFlags,
      '-o',
      'json',
    ]);
    expect(run.code, run.stderr).toBe(0);
    const result = run.json<{
      registration: string;
      via: string;
      heartbeat: { at: string } | null;
      objects: { object: string; result: string }[];
      agent: { mode: string; pid: number };
    }>();
    expect(result.registration).toBe('registered');
    expect(result.via).toBe('admin');
    expect(result.heartbeat?.at).toBeTruthy();
    expect(result.objects.map((o) => o.object)).toEqual([
      `Namespace/${agentNs}`,
      `Secret/${agentNs}/flotilla-agent`,
      `ServiceAccount/${agentNs}/flotilla-agent`,
      `ClusterRole/flotilla-agent:${agentNs}`,
      `ClusterRoleBinding/flotilla-agent:${agentNs}`,
      `Role/${agentNs}/flotilla-agent-leader-election`,
      `RoleBinding/${agentNs}/flotilla-agent-leader-election`,
      `Deployment/${agentNs}/flotilla-agent`,
    ]);
    expect(run.stderr).toMatch(/waiting for the agent's first heartbeat/);
    // The token went into the cluster, not to the terminal.
    const secret = await agentSecret(0);
    expect(secret.FLOTILLA_TOKEN).toMatch(new RegExp(`^flt_${a}\\.`));
    expect(run.stdout + run.stderr).not.toContain(secret.FLOTILLA_TOKEN);
    expect(secret.FLOTILLA_HUB_PUBLIC_KEY).toBe(api.hub.signer.publicKeyPem);
    expect((await api.hub.clusters.get(a))?.lastHeartbeatAt).toBe(result.heartbeat?.at);
  });

  it("runs the local agent as its pod: the service account's TokenRequest token, in-cluster, no kubeconfig", async () => {
    const record = JSON.parse(readFileSync(join(stateDir, 'agents', `${a}.json`), 'utf8')) as {
      agentPid: number;
    };
    const environ = Object.fromEntries(
      readFileSync(`/proc/${record.agentPid}/environ`, 'utf8')
        .split('\0')
        .filter(Boolean)
        .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    );
    const saDir = join(stateDir, 'agents', `${a}.serviceaccount`);
    expect(environ).toMatchObject({
      KUBERNETES_SERVICE_HOST: '127.0.0.1',
      KUBERNETES_SERVICE_PORT: new URL(spoke(0).server).port,
      FLOTILLA_SERVICE_ACCOUNT_DIR: saDir,
    });
    expect(Object.keys(environ).filter((k) => /KUBECONFIG|KUBE_CONTEXT/.test(k))).toEqual([]);
    // The token the agent reads is its service account's, as the API server sees it.
    const kc = new KubeConfig();
    kc.loadFromFile(spoke(0).kubeconfigPath);
    const cluster = kc.getCurrentCluster();
    const asAgent = new KubeConfig();
    asAgent.loadFromOptions({
      clusters: [{ name: 'c', server: cluster?.server ?? '', caData: cluster?.caData }],
      users: [{ name: 'agent', token: readFileSync(join(saDir, 'token'), 'utf8') }],
      contexts: [{ name: 'c', cluster: 'c', user: 'agent' }],
      currentContext: 'c',
    });
    const review = await asAgent.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
    });
    expect(review.status?.userInfo?.username).toBe(`system:serviceaccount:${agentNs}:flotilla-agent`);
    // In a pod it elects itself leader on its Lease (the RBAC allows that Lease alone).
    const lease = await until('the agent holds its Lease', async () => {
      const res = await fetchLease(0);
      return res?.spec?.holderIdentity ? res : undefined;
    });
    expect(lease.spec?.leaseDurationSeconds).toBe(15);
  });

  it('bootstraps the other spoke with a one-time registration token and no admin credentials', async () => {
    const created = await flotilla([
      'token',
      'create',
      '--ttl',
      '10m',
      '--label',
      `suite=${id}`,
      '--label',
      'region=us',
    ]);
    expect(created.code, created.stderr).toBe(0);
    const token = created.stdout.trim();
    expect(token).toMatch(/^frt_/);
    const run = await flotilla(
      ['bootstrap', b, '--kubeconfig', spoke(1).kubeconfigPath, ...agentFlags, '-o', 'json'],
      {
        FLOTILLA_ADMIN_KEY: undefined,
        FLOTILLA_REGISTRATION_TOKEN: token,
      },
    );
    expect(run.code, run.stderr).toBe(0);
    expect(run.json()).toMatchObject({
      registration: 'registered',
      via: 'registration-token',
      labels: { suite: id, region: 'us' },
    });
    expect((run.json() as { heartbeat: unknown }).heartbeat).not.toBeNull();
  });

  it('shows both spokes online and, once their agents applied, in sync', async () => {
    const listed = await flotilla(['clusters', '-l', `suite=${id}`]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`${a}\\s+region=eu,suite=${id},tier=gold\\s+0\\.1\\.0`));
    expect(listed.stdout).toContain(b);
    const status = await until('both spokes in sync', async () => {
      const run = await flotilla(['status', '-l', `suite=${id}`, '-o', 'json']);
      const s = run.json<{
        clusters: { id: string; connection: string; inSync: boolean; bundles: { name: string }[] }[];
      }>();
      return s.clusters.length === 2 && s.clusters.every((c) => c.inSync) ? s : undefined;
    });
    expect(status.clusters.map((c) => [c.id, c.connection, c.bundles.map((x) => x.name)])).toEqual([
      [a, 'Online', ['config', 'web']],
      [b, 'Online', ['config']],
    ]);
    const table = await flotilla(['status', '-l', `suite=${id}`]);
    expect(table.stdout).toMatch(
      new RegExp(`${a}\\s+Online\\s+Ready\\s+yes\\s+1/1\\s+\\S+ ago\\s+Ready\\s+Ready`),
    );
    expect(table.stdout).toMatch(
      new RegExp(`${b}\\s+Online\\s+Ready\\s+yes\\s+1/1\\s+\\S+ ago\\s+Ready\\s+-`),
    );
    // The agent really applied the bundle into the real API server.
    const info = await core(0).readNamespacedConfigMap({ name: 'cluster-info', namespace: appNs });
    expect(info.data).toEqual({ cluster: a, region: 'eu' });
  });

  it('is idempotent: a rerun registers nothing, changes no object and keeps the agent', async () => {
    const before = await api.hub.clusters.get(a);
    const secretBefore = await core(0).readNamespacedSecret({ name: 'flotilla-agent', namespace: agentNs });
    const agentsBefore = (await flotilla(['local-agent', 'list', '-o', 'json'])).json<{
      agents: { cluster: string; pid: number }[];
    }>();
    const run = await flotilla([
      'bootstrap',
      a,
      '--kubeconfig',
      spoke(0).kubeconfigPath,
      '--label',
      `suite=${id}`,
      ...agentFlags,
      '-o',
      'json',
    ]);
    expect(run.code, run.stderr).toBe(0);
    const result = run.json<{
      registration: string;
      objects: { result: string }[];
      agent: { pid: number; started: boolean };
    }>();
    expect(result.registration).toBe('unchanged');
    expect(result.objects.map((o) => o.result)).toEqual(Array(8).fill('unchanged'));
    expect(result.agent.started).toBe(false);
    expect(result.agent.pid).toBe(agentsBefore.agents.find((x) => x.cluster === a)?.pid);
    const after = await api.hub.clusters.get(a);
    expect(after?.registeredAt).toBe(before?.registeredAt);
    expect(after?.tokenHash).toBe(before?.tokenHash);
    const secretAfter = await core(0).readNamespacedSecret({ name: 'flotilla-agent', namespace: agentNs });
    expect(secretAfter.metadata?.resourceVersion).toBe(secretBefore.metadata?.resourceVersion);
    expect(
      (await flotilla(['clusters', '-l', `suite=${id}`, '-o', 'json'])).json<{ clusters: unknown[] }>()
        .clusters,
    ).toHaveLength(2);

    // The registration-token spoke reruns with the token in its cluster: no new token needed.
    const rerunB = await flotilla(
      ['bootstrap', b, '--kubeconfig', spoke(1).kubeconfigPath, ...agentFlags, '-o', 'json'],
      {
        FLOTILLA_ADMIN_KEY: undefined,
      },
    );
    expect(rerunB.code, rerunB.stderr).toBe(0);
    expect(rerunB.json()).toMatchObject({ registration: 'unchanged', via: 'existing-token' });
  });

  it('refuses a name another cluster holds, and a cluster that already has another name', async () => {
    const taken = await flotilla([
      'bootstrap',
      a,
      '--kubeconfig',
      spoke(2).kubeconfigPath,
      '--namespace',
      agentNs,
      '--no-wait',
    ]);
    expect(taken.code).toBe(ExitCode.Conflict);
    expect(taken.stderr).toMatch(
      new RegExp(`the name "${a}" is already registered at the hub by another cluster`),
    );
    // Refused before anything was written there.
    await expect(core(2).readNamespace({ name: agentNs })).rejects.toThrow();
    const renamed = await flotilla([
      'bootstrap',
      `${a}-x`,
      '--kubeconfig',
      spoke(0).kubeconfigPath,
      '--namespace',
      agentNs,
      '--no-wait',
    ]);
    expect(renamed.code).toBe(ExitCode.Conflict);
    expect(renamed.stderr).toMatch(new RegExp(`already bootstrapped as cluster "${a}"`));
  });
});

describe('registration tokens', () => {
  it('refuses a used token and an expired one, with exit 6 and a clear message', async () => {
    const args = (name: string, suffix: string) => [
      'bootstrap',
      name,
      '--kubeconfig',
      spoke(2).kubeconfigPath,
      '--namespace',
      `${agentNs}-${suffix}`,
      '--no-wait',
    ];
    const created = await flotilla(['token', 'create', '--ttl', '5m', '-o', 'json']);
    const { token } = created.json<{ token: string }>();
    const first = await flotilla(args(`cli-c-${id}`, 'c'), {
      FLOTILLA_ADMIN_KEY: undefined,
      FLOTILLA_REGISTRATION_TOKEN: token,
    });
    expect(first.code, first.stderr).toBe(0);
    const reused = await flotilla(args(`cli-d-${id}`, 'd'), {
      FLOTILLA_ADMIN_KEY: undefined,
      FLOTILLA_REGISTRATION_TOKEN: token,
    });
    expect(reused.code).toBe(ExitCode.Unauthorized);
    expect(reused.stderr).toMatch(
      /the registration token was already used at .*; each token registers one cluster/,
    );
    expect(await api.hub.clusters.get(`cli-d-${id}`)).toBeUndefined();

    // A token past its expiry, stored as `token create` stores it (the shortest TTL is a minute).
    const expiredToken = `frt_${'e'.repeat(43)}`;
    const tokenHash = createHash('sha256').update(expiredToken).digest('hex');
    await api.hub.registrationTokens.create({
      tokenHash,
      id: tokenHash.slice(0, 12),
      labels: {},
      createdAt: new Date(Date.now() - 120_000).toISOString(),
      expiresAt: new Date(Date.now() - 60_000).toISOString(),
    });
    const expired = await flotilla(args(`cli-e-${id}`, 'e'), {
      FLOTILLA_ADMIN_KEY: undefined,
      FLOTILLA_REGISTRATION_TOKEN: expiredToken,
    });
    expect(expired.code).toBe(ExitCode.Unauthorized);
    expect(expired.stderr).toMatch(/the registration token expired at/);
    expect(await api.hub.clusters.get(`cli-e-${id}`)).toBeUndefined();

    const list = await flotilla(['token', 'list', '-o', 'json']);
    const states = list.json<{ registrationTokens: { id: string; state: string; usedBy: string | null }[] }>()
      .registrationTokens;
    expect(states.find((t) => t.id === tokenHash.slice(0, 12))?.state).toBe('expired');
    expect(states.find((t) => t.usedBy === `cli-c-${id}`)?.state).toBe('used');
    await flotilla(['cluster', 'remove', `cli-c-${id}`]);
    for (const ns of [`${agentNs}-d`, `${agentNs}-e`])
      await core(2)
        .deleteNamespace({ name: ns })
        .catch(() => undefined);
  });

  it('lets exactly one of two racing registrations use a token (DynamoDB conditional write)', async () => {
    const { token } = (await flotilla(['token', 'create', '--ttl', '5m', '-o', 'json'])).json<{
      token: string;
    }>();
    const names = [`cli-r1-${id}`, `cli-r2-${id}`, `cli-r3-${id}`];
    const answers = await Promise.all(
      names.map((name) =>
        api.call('/v1/register', {
          method: 'POST',
          token,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ name }),
        }),
      ),
    );
    expect(answers.map((r) => r.status).sort()).toEqual([201, 401, 401]);
    const registered = (await Promise.all(names.map((n) => api.hub.clusters.get(n)))).filter(Boolean);
    expect(registered).toHaveLength(1);
    for (const c of registered) await flotilla(['cluster', 'remove', c?.id ?? '']);
  });
});

describe('targets and render agree with what the hub stores', () => {
  it('for the synced commit: same bundles, hashes, targets, customizations and objects', async () => {
    const targets = await flotilla(['targets', '--repo', repo.dir, '-l', `suite=${id}`, '-o', 'json']);
    expect(targets.code, targets.stderr).toBe(0);
    const preview = targets.json<{
      clusters: {
        name: string;
        bundles: {
          name: string;
          hash: string;
          target: { name: string };
          customization: { name: string } | null;
        }[];
      }[];
    }>();
    for (const name of [a, b]) {
      const stored = await api.hub.desiredStates.current(name);
      const manifest = JSON.parse(stored?.manifest ?? '{}') as {
        commit: string;
        bundles: { name: string; hash: string }[];
      };
      expect(manifest.commit).toBe(repo.git('rev-parse', 'HEAD'));
      const local = preview.clusters.find((c) => c.name === name);
      expect(local?.bundles.map((x) => [x.name, x.hash])).toEqual(
        manifest.bundles.map((x) => [x.name, x.hash]),
      );
    }
    const web = preview.clusters.find((c) => c.name === a)?.bundles.find((x) => x.name === 'web');
    expect(web?.target.name).toBe('gold');
    expect(web?.customization?.name).toBe('eu');

    const table = await flotilla(['targets', '--repo', repo.dir, '-l', `suite=${id}`, '--bundle', 'web']);
    expect(table.stdout).toMatch(
      new RegExp(
        `web\\s+${a}\\s+targeted\\s+gold \\(clusterSelector\\)\\s+eu \\(clusterSelector\\)\\s+[0-9a-f]{12}`,
      ),
    );

    const render = await flotilla(['render', a, '--repo', repo.dir, '-o', 'json']);
    expect(render.code, render.stderr).toBe(0);
    const rendered = render.json<{ bundles: { name: string; hash: string; objects: unknown[] }[] }>();
    for (const bundle of rendered.bundles) {
      const bytes = await api.hub.bundles.get(bundle.hash);
      const stored = JSON.parse(Buffer.from(bytes ?? new Uint8Array()).toString('utf8')) as {
        objects: unknown[];
      };
      expect(bundle.objects).toEqual(stored.objects);
    }
    const yaml = await flotilla(['render', a, '--repo', repo.dir, '--bundle', 'web']);
    expect(yaml.stdout).toMatch(
      /^---\n# bundle web \(sha256:[0-9a-f]{64}\): target gold \(clusterSelector\), customization eu \(clusterSelector\)\n/,
    );
    expect(yaml.stdout).toMatch(/size: large/);
  });

  it('previews an uncommitted change locally, then matches the hub again after it is pushed and synced', async () => {
    writeFleet(repo.dir, 'medium');
    const before = (await api.hub.desiredStates.current(b))?.etag;
    // b is not gold yet; label it, and web (with the default size) moves onto it at once.
    const labelled = await flotilla(['label', b, 'tier=gold']);
    expect(labelled.code, labelled.stderr).toBe(0);
    expect(labelled.stdout).toMatch(/its desired state moved to generation 2/);
    const local = (
      await flotilla(['targets', '--repo', repo.dir, '--bundle', 'web', '-l', `suite=${id}`, '-o', 'json'])
    ).json<{
      clusters: { name: string; bundles: { hash: string }[] }[];
    }>();
    const hubSide = (await flotilla(['targets', '--bundle', 'web', '-l', `suite=${id}`, '-o', 'json'])).json<{
      clusters: { name: string; bundles: { hash: string }[] }[];
    }>();
    const hashOf = (p: typeof local, name: string) =>
      p.clusters.find((c) => c.name === name)?.bundles[0]?.hash;
    expect(hashOf(local, b)).not.toBe(hashOf(hubSide, b)); // size medium here, small at the hub
    expect(hashOf(local, a)).toBe(hashOf(hubSide, a)); // the eu customization wins either way
    repo.commit('web: medium by default');
    const sync = await flotilla(['sync', '-o', 'json']);
    expect(sync.code, sync.stderr).toBe(0);
    expect(sync.json<{ changed: { clusterId: string }[] }>().changed.map((c) => c.clusterId)).toContain(b);
    const stored = JSON.parse((await api.hub.desiredStates.current(b))?.manifest ?? '{}') as {
      bundles: { name: string; hash: string }[];
    };
    expect(stored.bundles.find((x) => x.name === 'web')?.hash).toBe(hashOf(local, b));
    expect((await api.hub.desiredStates.current(b))?.etag).not.toBe(before);
  });

  it('exits 10 and names file and line when the checkout has errors', async () => {
    const broken = mkdtempSync(join(tmpdir(), 'flotilla-cli-broken-'));
    writeFleet(broken);
    writeFileSync(
      join(broken, 'bundles/web/bundle.yaml'),
      'targets:\n  - clusterSelector: tier=gold\nreplica: 3\n',
    );
    const run = await flotilla([
      'targets',
      '--repo',
      broken,
      '--cluster',
      `x=suite=${id},tier=gold,region=eu`,
    ]);
    expect(run.code).toBe(ExitCode.FleetErrors);
    expect(run.stderr).toMatch(/bundles\/web\/bundle\.yaml:3: unknown field "replica"/);
    expect(run.stdout).toMatch(/config\s+x\s+targeted/);
    rmSync(broken, { recursive: true, force: true });
  });
});

describe('cluster credentials', () => {
  it('rotates a token into the cluster: the old one is refused, the agent carries on with the new one', async () => {
    const old = (await agentSecret(1)).FLOTILLA_TOKEN ?? '';
    const heartbeatBefore = (await api.hub.clusters.get(b))?.lastHeartbeatAt ?? '';
    const run = await flotilla([
      'cluster',
      'rotate-token',
      b,
      '--kubeconfig',
      spoke(1).kubeconfigPath,
      '--namespace',
      agentNs,
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/Secret .*flotilla-agent updated, local agent restarted/);
    expect(run.stdout + run.stderr).not.toMatch(/flt_/);
    const fresh = (await agentSecret(1)).FLOTILLA_TOKEN ?? '';
    expect(fresh).not.toBe(old);
    expect((await api.call(`/v1/clusters/${b}/desired-state`, { token: old })).status).toBe(401);
    expect((await api.call(`/v1/clusters/${b}/desired-state`, { token: fresh })).status).toBe(200);
    await until('a heartbeat with the new token', async () => {
      const at = (await api.hub.clusters.get(b))?.lastHeartbeatAt;
      return at && at > heartbeatBefore ? at : undefined;
    });
  });

  it('removes a cluster: its token is refused at once, and --uninstall takes the agent out', async () => {
    const token = (await agentSecret(0)).FLOTILLA_TOKEN ?? '';
    expect((await api.call(`/v1/clusters/${a}/desired-state`, { token })).status).toBe(200);
    const run = await flotilla([
      'cluster',
      'remove',
      a,
      '--uninstall',
      '--kubeconfig',
      spoke(0).kubeconfigPath,
      '--namespace',
      agentNs,
      '-o',
      'json',
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect((await api.call(`/v1/clusters/${a}/desired-state`, { token })).status).toBe(401);
    expect((await api.call(`/v1/clusters/${a}`, { token })).status).toBe(401);
    expect(run.json()).toMatchObject({ deregistered: true, uninstalled: true, localAgentStopped: true });
    expect(run.json<{ objects: { result: string }[] }>().objects.map((o) => o.result)).toEqual([
      'deleted',
      'deleted',
      'deleted',
      'deleted',
    ]);
    const agents = (await flotilla(['local-agent', 'list', '-o', 'json'])).json<{
      agents: { cluster: string }[];
    }>().agents;
    expect(agents.map((x) => x.cluster)).not.toContain(a);
    const gone = await flotilla(['cluster', 'get', a]);
    expect(gone.code).toBe(ExitCode.NotFound);
  });
});
