/**
 * `npm start`: the local Flotilla environment on this machine.
 *
 * Brings up the test bed (DynamoDB Local, ElasticMQ, a git server holding the
 * example fleet repo, and three spoke control planes), starts the local hub on it,
 * registers the three spokes with different labels, syncs the fleet repo and shows
 * what each cluster is to run. Keeps running until Ctrl-C, which stops everything
 * it started.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { generateSigningKeyPair } from '@flotilla/shared';
import { CoreV1Api, KubeConfig, VersionApi } from '@kubernetes/client-node';
import { loadConfig } from '../functions/src/config.ts';
import { startLocalHub } from '../functions/src/local/server.ts';
import { createBareRepo, repoRoot, startBed } from '../test/bed/src/bed.ts';

const spokeLabels: Record<string, Record<string, string>> = {
  'spoke-eu-prod': { env: 'prod', region: 'eu' },
  'spoke-us-prod': { env: 'prod', region: 'us' },
  'spoke-eu-staging': { env: 'staging', region: 'eu' },
};
const spokes = Object.keys(spokeLabels);
const log = (line: string) => process.stderr.write(`[flotilla] ${line}\n`);

const bed = await startBed({ dir: join(repoRoot, '.flotilla', 'local'), clusters: spokes, log });
let stopping = false;
let stopHub: (() => Promise<void>) | undefined;
async function stop(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    log('stopping the local environment …');
    await stopHub?.().catch(() => undefined);
    await bed.stop();
    log('stopped; no process left behind');
  }
  process.exit(code);
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

try {
  const fleetUrl = await publishExampleFleetRepo(bed.state.git.reposDir, bed.state.git.url);
  const rows: string[][] = [['COMPONENT', 'VERSION', 'ENDPOINT', 'STATE']];
  rows.push(['dynamodb-local', bed.state.dynamodb.version, bed.state.dynamodb.endpoint, 'ready']);
  rows.push(['elasticmq (sqs)', bed.state.sqs.version, bed.state.sqs.endpoint, `ready, ${bed.state.region}`]);
  rows.push(['git (smart http)', bed.state.git.version, fleetUrl, 'ready']);
  for (const cluster of bed.state.clusters) {
    const kc = new KubeConfig();
    kc.loadFromFile(cluster.kubeconfigPath);
    const version = await kc.makeApiClient(VersionApi).getCode();
    const nodes = await kc.makeApiClient(CoreV1Api).listNode();
    const ready = nodes.items.filter((n) =>
      n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    );
    rows.push([
      cluster.name,
      version.gitVersion,
      cluster.server,
      `${ready.length}/${nodes.items.length} nodes Ready`,
    ]);
  }
  // The hub: the same handlers as in Lambda, behind a local HTTP server.
  const { privateKeyPem } = generateSigningKeyPair();
  const adminKey = randomBytes(24).toString('base64url');
  const config = loadConfig({
    AWS_REGION: bed.state.region,
    FLOTILLA_DYNAMODB_ENDPOINT: bed.state.dynamodb.endpoint,
    FLOTILLA_SQS_ENDPOINT: bed.state.sqs.endpoint,
    FLOTILLA_FLEET_REPO_URL: fleetUrl,
    FLOTILLA_SIGNING_KEY: privateKeyPem,
    FLOTILLA_ADMIN_KEY_SHA256: createHash('sha256').update(adminKey).digest('hex'),
    FLOTILLA_GIT_CACHE_DIR: join(bed.state.dir, 'hub-git-cache'),
  });
  const hub = await startLocalHub({
    config,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    log: { info: () => {}, warn: (m) => log(`hub: ${m}`), error: (m) => log(`hub: ${m}`) },
  });
  stopHub = hub.stop;
  rows.push(['hub (local)', 'same handlers as Lambda', hub.url, 'ready']);
  process.stdout.write(`\n${table(rows)}\n\n`);

  const admin = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${hub.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const json = (await res.json()) as Record<string, unknown>;
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  const sync = (await admin('POST', '/v1/admin/sync')) as { commit?: string; errors: unknown[] };
  log(`synced ${fleetUrl} at ${sync.commit?.slice(0, 12)} (${sync.errors.length} errors)`);
  const tokens: Record<string, string> = {};
  for (const [name, labels] of Object.entries(spokeLabels)) {
    const reg = (await admin('POST', '/v1/admin/clusters', { name, labels })) as { token: string };
    tokens[name] = reg.token;
    log(
      `registered ${name} (${Object.entries(labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(',')})`,
    );
  }
  // Tokens are secrets: they go to a file only the owner can read, never to the terminal.
  writeFileSync(join(bed.state.dir, 'spoke-tokens.json'), `${JSON.stringify(tokens, null, 2)}\n`, {
    mode: 0o600,
  });

  const status = (await admin('GET', '/v1/admin/status')) as {
    clusters: { id: string; desired?: { generation: number }; bundles: { name: string; state: string }[] }[];
  };
  const fleetRows = [['CLUSTER', 'GENERATION', 'BUNDLES (state)']];
  for (const c of status.clusters) {
    fleetRows.push([
      c.id,
      String(c.desired?.generation ?? '-'),
      c.bundles.map((b) => `${b.name} (${b.state})`).join(', '),
    ]);
  }
  process.stdout.write(`${table(fleetRows)}\n\n`);
  process.stdout.write('Bundles stay Pending until a spoke agent applies them.\n');
  process.stdout.write(
    `hub: ${hub.url}   admin key: in memory only   spoke tokens: ${join(bed.state.dir, 'spoke-tokens.json')}\n`,
  );
  process.stdout.write(`kubeconfigs: ${bed.state.clusters.map((c) => c.kubeconfigPath).join(' ')}\n`);
  process.stdout.write('Press Ctrl-C to stop.\n');
} catch (err) {
  log(`failed: ${err instanceof Error ? err.message : String(err)}`);
  await stop(1);
}
// The git server lives in this process; stay up until Ctrl-C.
setInterval(() => {}, 60_000);

/** Pushes examples/fleet-repo as the first commit of a `fleet` repository on the bed's git server. */
async function publishExampleFleetRepo(reposDir: string, gitUrl: string): Promise<string> {
  await createBareRepo(reposDir, 'fleet');
  const url = `${gitUrl}/fleet.git`;
  const work = mkdtempSync(join(tmpdir(), 'flotilla-fleet-'));
  try {
    cpSync(join(repoRoot, 'examples', 'fleet-repo'), work, { recursive: true });
    // Asynchronous on purpose: the git server answering this push runs in this process.
    const git = (...args: string[]) =>
      promisify(execFile)('git', args, {
        cwd: work,
        env: {
          ...process.env,
          GIT_AUTHOR_NAME: 'Flotilla',
          GIT_AUTHOR_EMAIL: 'flotilla@localhost',
          GIT_COMMITTER_NAME: 'Flotilla',
          GIT_COMMITTER_EMAIL: 'flotilla@localhost',
        },
      });
    await git('init', '--quiet', '--initial-branch=main');
    await git('add', '.');
    await git('commit', '--quiet', '--allow-empty', '-m', 'Example fleet');
    await git('push', '--quiet', url, 'main');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return url;
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
