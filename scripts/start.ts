/**
 * `npm start`: Flotilla doing its whole job on this machine.
 *
 * Brings up the test bed (DynamoDB Local, ElasticMQ, a git server holding the example
 * fleet repo, three spoke control planes), starts the local hub on it, bootstraps each
 * spoke with `flotilla bootstrap` (its agent running as a local process), shows the
 * clusters converging, then commits a change for env=prod only and shows that only the
 * prod clusters change, with push-to-applied times, then a SOPS-encrypted Secret that only
 * the prod clusters' agents decrypt, then a :latest image that the fleet repo's policy holds at
 * the hub. The fleet dashboard runs against the local hub from the start (its address is
 * printed as soon as it listens, and again once the spokes converge). Stays up until
 * Ctrl-C, which stops everything it started.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FleetStatus } from '@flotilla/shared/hub';
import { AppsV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { runCli } from '../cli/src/cli.ts';
import { formatTable } from '../cli/src/core/output.ts';
import { parseDashboardPort, serveDashboard } from '../cli/src/dashboard/serve.ts';
import type { DashboardServer } from '../cli/src/dashboard/server.ts';
import { HubClient } from '../cli/src/hub/hub-client.ts';
import { repoRoot, startBed } from '../test/bed/src/bed.ts';
import { LocalFleet, type LocalSpoke } from '../test/support/local-fleet.ts';

/** The example fleet repo declares these clusters' labels in clusters/; bootstrap registers the same. */
const spokeLabels: Record<string, Record<string, string>> = {
  'prod-eu-1': { env: 'prod', region: 'eu' },
  'prod-us-1': { env: 'prod', region: 'us' },
  'staging-eu-1': { env: 'staging', region: 'eu' },
};
const WEB_SECRETS_BUNDLE = `description: Credentials the storefront reads, SOPS-encrypted for the prod clusters
namespace: web
targets:
  - clusterSelector: env=prod
`;
const names = Object.keys(spokeLabels);
const cliStateDir = join(repoRoot, '.flotilla', 'local-cli');
const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s`;
const log = (line: string) => process.stderr.write(`[flotilla] ${line}\n`);
const say = (line = '') => process.stdout.write(`${line}\n`);
// 0 (unset) picks a free port; set it to keep a bookmark working from one run to the next.
const dashboardPort = (() => {
  try {
    return parseDashboardPort(process.env.FLOTILLA_DASHBOARD_PORT || '0', 'FLOTILLA_DASHBOARD_PORT');
  } catch (err) {
    log(`failed: ${(err as Error).message}`);
    process.exit(2);
  }
})();

// Agents of an earlier run that was killed rather than stopped.
mkdirSync(cliStateDir, { recursive: true, mode: 0o700 });
await runCli(['local-agent', 'stop', '--all', '--quiet'], {
  stdout: () => {},
  stderr: () => {},
  env: { PATH: process.env.PATH, HOME: process.env.HOME, FLOTILLA_STATE_DIR: cliStateDir },
  cwd: process.cwd(),
  homeDir: cliStateDir,
});

const bed = await startBed({ dir: join(repoRoot, '.flotilla', 'local'), clusters: names, log });
let fleet: LocalFleet | undefined;
let dashboard: DashboardServer | undefined;
let stopping = false;
async function stop(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    log('stopping: dashboard, agents, hub, clusters, services …');
    await dashboard?.close().catch(() => undefined);
    await fleet?.stop().catch(() => undefined);
    await bed.stop();
    log('stopped; no process left behind');
  }
  process.exit(code);
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));
process.on('SIGHUP', () => void stop(0));

try {
  const spokes: LocalSpoke[] = bed.state.clusters.map((c) => ({
    name: c.name,
    labels: spokeLabels[c.name] ?? {},
    kubeconfigPath: c.kubeconfigPath,
  }));
  fleet = await LocalFleet.start({
    bed: bed.state,
    repoName: 'fleet',
    stateDir: cliStateDir,
    hubLog: {
      info: () => {},
      warn: (m, fields) => log(`hub: ${m} ${JSON.stringify(fields ?? {})}`),
      error: (m, fields) => log(`hub: ${m} ${JSON.stringify(fields ?? {})}`),
    },
  });
  const adminKeyFile = join(cliStateDir, 'admin-key');
  writeFileSync(adminKeyFile, `${fleet.adminKey}\n`, { mode: 0o600 });
  // The same server `flotilla dashboard` runs, in this process, with the local admin key.
  dashboard = await serveDashboard({
    hub: new HubClient({ baseUrl: fleet.hubUrl, admin: { kind: 'key', key: fleet.adminKey } }),
    port: dashboardPort,
    portSource: 'FLOTILLA_DASHBOARD_PORT',
    progress: log,
  });

  say();
  say(
    formatTable(
      ['component', 'version', 'endpoint'],
      [
        ['dynamodb-local', bed.state.dynamodb.version, bed.state.dynamodb.endpoint],
        ['elasticmq (sqs)', bed.state.sqs.version, bed.state.sqs.endpoint],
        ['git (smart http)', bed.state.git.version, fleet.repo.url],
        ...bed.state.clusters.map((c) => [
          `${c.name} (kube-apiserver)`,
          bed.state.kubernetes.kubernetes,
          c.server,
        ]),
        ['hub (Lambda handlers, local server)', 'flotilla', fleet.hubUrl],
        ['dashboard (flotilla dashboard)', 'flotilla', dashboard.url],
      ],
    ).trimEnd(),
  );
  say();
  say(`Dashboard: ${dashboard.url}   (open it now to watch the spokes converge)`);
  say();

  // 1. Bootstrap: one command per spoke, run for the three at once.
  say(`${elapsed()}  bootstrapping ${names.join(', ')} with \`flotilla bootstrap --run-agent local\``);
  const watch = watchConvergence(fleet);
  await fleet.bootstrap(spokes, {
    progress: (cluster, line) => say(`${elapsed()}  ${cluster.padEnd(13)} ${line.trim()}`),
  });
  const converged = await fleet.waitInSync({ timeoutMs: 300_000 });
  watch.stop();
  say(`${elapsed()}  every cluster applied its desired state and reports Ready`);
  say();
  say(await cli(fleet, ['status']));
  say();
  say(`Dashboard: ${dashboard.url}`);
  say();
  say('What the Helm chart (bundle ingress) and the kustomizations (bundle shop) became on each spoke:');
  const rendered: string[][] = [];
  for (const spoke of spokes) rendered.push([spoke.name, ...(await engineBundlesOn(spoke.kubeconfigPath))]);
  say(
    formatTable(
      [
        'cluster',
        'ingress: chart',
        'replicas (values)',
        'region (from the cluster label)',
        'shop: orders replicas (overlay)',
      ],
      rendered,
    ).trimEnd(),
  );
  say();

  // 2. A change for env=prod only: a new image tag in the web bundle's prod customizations.
  const before = generations(converged);
  const tag = '1.27.4-alpine';
  say(`${elapsed()}  committing: web image tag ${tag} for env=prod only (customizations prod-eu and prod)`);
  const push = await fleet.push(`web: ${tag} in production`, (repo) => {
    const path = 'bundles/web/bundle.yaml';
    const text = readRepoFile(repo.dir, path);
    const next = text
      .replace(
        '      replicas: 6\n      domain: eu.shop.example.com\n',
        `      replicas: 6\n      domain: eu.shop.example.com\n      image: { tag: "${tag}" }\n`,
      )
      .replace('      replicas: 4\n', `      replicas: 4\n      image: { tag: "${tag}" }\n`);
    if (next === text) throw new Error(`${path} is not what the demo expects`);
    repo.write(path, next);
  });
  say(`${elapsed()}  pushed ${push.commit.slice(0, 12)}; the git server calls the hub's webhook`);
  const watching = { active: true };
  const applied = new Map<string, number>();
  const imageWatches = spokes.map(async (spoke) => {
    while (watching.active) {
      if ((await webImage(spoke.kubeconfigPath)).endsWith(`:${tag}`)) {
        applied.set(spoke.name, Date.now() - push.pushedAt);
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  const done = new Map<string, number>();
  const after = await fleet.waitFor(
    'the prod clusters to apply the change',
    (s) => {
      if (s.sync?.commit !== push.commit) return false;
      const changed = s.clusters.filter((c) => c.desired?.commit === push.commit);
      for (const c of changed) if (c.inSync && !done.has(c.id)) done.set(c.id, Date.now() - push.pushedAt);
      return changed.length > 0 && changed.every((c) => c.inSync);
    },
    { timeoutMs: 120_000, intervalMs: 100 },
  );
  watching.active = false;
  await Promise.all(imageWatches);
  say();
  const seconds = (ms: number | undefined) => (ms === undefined ? '-' : `${(ms / 1000).toFixed(2)} s`);
  const rows: string[][] = [];
  for (const c of after.clusters) {
    const spoke = spokes.find((s) => s.name === c.id);
    const image = spoke ? await webImage(spoke.kubeconfigPath) : '?';
    const ready = done.get(c.id);
    rows.push([
      c.id,
      `${before.get(c.id) ?? '-'} → ${c.desired?.generation ?? '-'}`,
      image,
      ready === undefined ? 'unchanged (not targeted)' : seconds(applied.get(c.id)),
      ready === undefined ? '-' : seconds(ready),
    ]);
  }
  const headers = [
    'cluster',
    'generation',
    'web image on the spoke',
    'push to applied',
    'push to ready (reported)',
  ];
  say(formatTable(headers, rows).trimEnd());
  say();
  say(await cli(fleet, ['status']));
  say();

  // 3. A secret only the prod clusters can read: SOPS-encrypted to the age keys their agents made.
  say(
    `${elapsed()}  encrypting a database password for bundle web-secrets (env=prod) with \`flotilla secrets encrypt\``,
  );
  say(await cli(fleet, ['secrets', 'recipients']));
  const password = randomBytes(12).toString('base64url');
  const secretPath = 'bundles/web-secrets/db-credentials.sops.yaml';
  fleet.repo.write('bundles/web-secrets/bundle.yaml', WEB_SECRETS_BUNDLE);
  fleet.repo.write(secretPath, dbCredentials(password));
  await cli(fleet, [
    'secrets',
    'encrypt',
    join(fleet.repo.dir, secretPath),
    '--for',
    'web-secrets',
    '--repo',
    fleet.repo.dir,
    '-i',
  ]);
  const sealed = readRepoFile(fleet.repo.dir, secretPath);
  if (sealed.includes(password)) throw new Error(`${secretPath} still holds the password in clear`);
  say(`${elapsed()}  ${secretPath}, as committed (values encrypted, identity in clear):`);
  say(
    sealed
      .split('\n')
      .slice(0, 8)
      .map((l) => `    ${l.length > 96 ? `${l.slice(0, 93)}...` : l}`)
      .join('\n'),
  );
  const secretPush = await fleet.push('web: database credentials for production (SOPS)', () => {});
  await fleet.waitInSync({ commit: secretPush.commit, timeoutMs: 120_000 });
  const secretRows: string[][] = [];
  for (const spoke of spokes) {
    const got = await dbPassword(spoke.kubeconfigPath);
    secretRows.push([
      spoke.name,
      got === undefined ? '(none: not targeted)' : got === password ? 'decrypted, matches' : 'MISMATCH',
    ]);
  }
  say(`${elapsed()}  applied; the hub only ever held the ciphertext:`);
  say(formatTable(['cluster', 'Secret web/db-credentials on the spoke'], secretRows).trimEnd());
  say();

  // 4. The policy gate: a :latest image for staging is held at the hub by policies/no-latest.yaml.
  say(
    `${elapsed()}  committing: web image tag "latest" for env=staging (policies/no-latest.yaml denies :latest)`,
  );
  const heldPush = await fleet.push('web: latest in staging', (repo) => {
    const path = 'bundles/web/bundle.yaml';
    const text = readRepoFile(repo.dir, path);
    const next = text.replace(
      '      logLevel: debug\n',
      '      logLevel: debug\n      image: { tag: latest }\n',
    );
    if (next === text) throw new Error(`${path} is not what the demo expects`);
    repo.write(path, next);
  });
  const held = await fleet.waitFor(
    'the hub to sync the :latest commit',
    (s) => s.sync?.commit === heldPush.commit,
    {
      timeoutMs: 60_000,
    },
  );
  const heldErrors = held.sync?.errors.filter((e) => e.file.startsWith('policies/')) ?? [];
  say(
    `${elapsed()}  held at the hub, before anything reached staging-eu-1 (it keeps ${await webImage(spokes[2]?.kubeconfigPath ?? '')}):`,
  );
  for (const e of heldErrors) say(`    ${e.text}`);
  say(
    `${elapsed()}  \`flotilla policy check --repo <checkout>\` finds the same before a push (exit 10 on a Deny)`,
  );
  const undo = await fleet.push('web: back to the pinned tag in staging', (repo) => {
    const path = 'bundles/web/bundle.yaml';
    repo.write(path, readRepoFile(repo.dir, path).replace('      image: { tag: latest }\n', ''));
  });
  await fleet.waitInSync({ commit: undo.commit, timeoutMs: 60_000 });
  say(`${elapsed()}  reverted; every cluster in sync again`);
  say();

  say('Try it yourself (another terminal, from this directory):');
  say(`  the dashboard: ${dashboard.url}   (\`flotilla dashboard\` with the exports below serves another)`);
  say(`  export FLOTILLA_HUB_URL=${fleet.hubUrl} FLOTILLA_ADMIN_KEY_FILE=${adminKeyFile}`);
  say(`  export FLOTILLA_STATE_DIR=${cliStateDir}`);
  say(
    '  sh scripts/run.sh flotilla status --bundles     (also: flotilla clusters, flotilla local-agent list)',
  );
  say(`  ${bed.state.kubernetes.kubectl} --kubeconfig ${spokes[0]?.kubeconfigPath} -n web get deploy,cm`);
  say(`  the fleet repo: git clone ${fleet.repo.url}   (pushes sync the hub through its webhook)`);
  say();
  say('Press Ctrl-C to stop.');
} catch (err) {
  log(`failed: ${err instanceof Error ? err.message : String(err)}`);
  const hint = (err as { hint?: string }).hint;
  if (hint) log(`hint: ${hint}`);
  await stop(1);
}
// The git server lives in this process; stay up until Ctrl-C.
setInterval(() => {}, 60_000);

async function cli(f: LocalFleet, args: string[]): Promise<string> {
  const run = await f.flotilla(args);
  if (run.code !== 0) throw new Error(`flotilla ${args.join(' ')}: ${run.stderr.trim()}`);
  return run.stdout.trimEnd();
}

function generations(s: FleetStatus): Map<string, number> {
  return new Map(s.clusters.map((c) => [c.id, c.desired?.generation ?? 0]));
}

/** Prints each bundle's state change on each cluster as the agents report them. */
function watchConvergence(f: LocalFleet): { stop(): void } {
  const seen = new Map<string, string>();
  let active = true;
  const loop = async () => {
    while (active) {
      const s = await f.status().catch(() => undefined);
      for (const c of s?.clusters ?? []) {
        for (const b of c.bundles) {
          const key = `${c.id}/${b.name}`;
          const state = b.upToDate ? b.state : 'Pending';
          if (seen.get(key) !== state) {
            seen.set(key, state);
            say(
              `${elapsed()}  ${c.id.padEnd(13)} ${b.name.padEnd(17)} ${state}${b.message ? `: ${b.message}` : ''}`,
            );
          }
        }
      }
      await new Promise((r) => setTimeout(r, 300));
    }
  };
  void loop();
  return {
    stop: () => {
      active = false;
    },
  };
}

async function webImage(kubeconfigPath: string): Promise<string> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  try {
    const d = await kc
      .makeApiClient(AppsV1Api)
      .readNamespacedDeployment({ name: 'storefront', namespace: 'web' });
    return d.spec?.template.spec?.containers[0]?.image ?? '?';
  } catch {
    return '(none)';
  }
}

/** The ingress chart's Deployment and ConfigMap, and the shop kustomization's Deployment, as a spoke holds them. */
async function engineBundlesOn(kubeconfigPath: string): Promise<string[]> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const apps = kc.makeApiClient(AppsV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const or = async <T>(read: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await read();
    } catch {
      return undefined;
    }
  };
  const proxy = await or(() =>
    apps.readNamespacedDeployment({ name: 'ingress-edge-proxy', namespace: 'ingress' }),
  );
  const config = await or(() =>
    core.readNamespacedConfigMap({ name: 'ingress-edge-proxy', namespace: 'ingress' }),
  );
  const orders = await or(() => apps.readNamespacedDeployment({ name: 'orders', namespace: 'shop' }));
  return [
    proxy?.metadata?.labels?.['helm.sh/chart'] ?? '(none)',
    String(proxy?.spec?.replicas ?? '-'),
    config?.data?.region ?? '-',
    String(orders?.spec?.replicas ?? '-'),
  ];
}

function dbCredentials(password: string): string {
  return `apiVersion: v1
kind: Secret
metadata:
  name: db-credentials
type: Opaque
stringData:
  username: storefront
  password: ${password}
`;
}

/** The password in the spoke's web/db-credentials Secret, if it has one. */
async function dbPassword(kubeconfigPath: string): Promise<string | undefined> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  try {
    const s = await kc
      .makeApiClient(CoreV1Api)
      .readNamespacedSecret({ name: 'db-credentials', namespace: 'web' });
    const b64 = s.data?.password;
    return b64 === undefined ? undefined : Buffer.from(b64, 'base64').toString('utf8');
  } catch {
    return undefined;
  }
}

function readRepoFile(dir: string, path: string): string {
  return readFileSync(join(dir, path), 'utf8');
}
