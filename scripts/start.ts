/**
 * `npm start`: the local Flotilla environment on this machine.
 *
 * Brings up the test bed (DynamoDB Local, ElasticMQ, a git server holding the
 * example fleet repo, and three spoke control planes), shows that every piece
 * answers, and keeps it running until Ctrl-C, which stops everything it started.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig, VersionApi } from '@kubernetes/client-node';
import { createBareRepo, repoRoot, startBed } from '../test/bed/src/bed.ts';

const spokes = ['spoke-eu-prod', 'spoke-us-prod', 'spoke-eu-staging'];
const log = (line: string) => process.stderr.write(`[flotilla] ${line}\n`);

const bed = await startBed({ dir: join(repoRoot, '.flotilla', 'local'), clusters: spokes, log });
let stopping = false;
async function stop(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    log('stopping the local environment …');
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
  process.stdout.write(`\n${table(rows)}\n`);
  process.stdout.write(`\nkubeconfigs: ${bed.state.clusters.map((c) => c.kubeconfigPath).join(' ')}\n`);
  process.stdout.write(`state: ${bed.stateFile}\nPress Ctrl-C to stop.\n`);
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
    const git = (...args: string[]) =>
      execFileSync('git', args, {
        cwd: work,
        stdio: 'pipe',
        env: {
          ...process.env,
          GIT_AUTHOR_NAME: 'Flotilla',
          GIT_AUTHOR_EMAIL: 'flotilla@localhost',
          GIT_COMMITTER_NAME: 'Flotilla',
          GIT_COMMITTER_EMAIL: 'flotilla@localhost',
        },
      });
    git('init', '--quiet', '--initial-branch=main');
    git('add', '.');
    git('commit', '--quiet', '--allow-empty', '-m', 'Example fleet');
    git('push', '--quiet', url, 'main');
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
