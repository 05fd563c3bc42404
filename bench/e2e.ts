/**
 * `npm run bench:e2e`: push-to-applied latency of the whole product on the test bed.
 *
 * A local hub (the Lambda handlers) on DynamoDB Local and ElasticMQ, a fleet repo on the
 * bed's git server that calls the hub's push webhook, and spokes bootstrapped with
 * `flotilla bootstrap --run-agent local`. Each of 20 commits changes a value that every
 * cluster renders into a ConfigMap; the latency of one cluster for one commit runs from
 * `git push` returning to the new ConfigMap appearing on that cluster's API server (a
 * watch sees it): webhook, fetch, render, store, notify, pull, verify, apply.
 *
 * Run once with SQS notifications and once with HTTPS polling (`--poll-interval`), on the
 * bed's three control planes, then with `--simulated` spokes (several agents per control
 * plane, each with its own namespace) if asked. One JSON line per fleet; the last line is
 * the headline: {"bench":"e2e","spokes":S,"commits":20,"sqs":{...},"https":{...}}.
 *
 * Pushes come one at a time, each once the last is applied everywhere, after a pause
 * random over one poll interval (so they land anywhere in a polling agent's cycle).
 *
 * Options: --commits 20  --poll-interval 5s  --simulated 20 (0 to skip)
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type Bed, repoRoot, startBed } from '../test/bed/src/bed.ts';
import { LocalFleet, type LocalSpoke } from '../test/support/local-fleet.ts';
import { MarkerWatch } from '../test/support/marker-watch.ts';

const { values } = parseArgs({
  options: {
    commits: { type: 'string', default: '20' },
    'poll-interval': { type: 'string', default: '5s' },
    simulated: { type: 'string', default: '20' },
  },
});
const commits = Number(values.commits);
const pollInterval = values['poll-interval'];
const simulated = Number(values.simulated);
const pollIntervalMs = durationMs(pollInterval);
const planes = ['e2e-1', 'e2e-2', 'e2e-3'];
const log = (line: string) => process.stderr.write(`[bench:e2e] ${line}\n`);

function durationMs(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(text);
  if (!m) throw new Error(`--poll-interval "${text}": expected a duration such as 5s or 500ms`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000 }[m[2] as 'ms' | 's' | 'm'];
}

interface Latencies {
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly maxMs: number;
  readonly samples: number;
}

const markerLabel = 'flotilla.dev/bench-marker';

/** One bundle for every cluster: its own namespace and a ConfigMap carrying the commit's round. */
function writeFleet(dir: string): void {
  const files: Record<string, string> = {
    'bundles/marker/bundle.yaml': 'targets:\n  - clusterSelector: {}\nvalues:\n  round: "0"\n',
    'bundles/marker/marker.yaml': [
      'apiVersion: v1',
      'kind: Namespace',
      'metadata:',
      '  name: bench-${cluster.name}',
      '---',
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata:',
      '  name: marker',
      '  namespace: bench-${cluster.name}',
      '  labels:',
      `    ${markerLabel}: "true"`,
      'data:',
      '  cluster: ${cluster.name}',
      '  round: "${values.round}"',
      '',
    ].join('\n'),
  };
  mkdirSync(join(dir, 'bundles', 'marker'), { recursive: true });
  for (const [path, content] of Object.entries(files)) writeFileSync(join(dir, path), content);
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

function summarize(samples: number[]): Latencies {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    p50Ms: Math.round(percentile(sorted, 50)),
    p95Ms: Math.round(percentile(sorted, 95)),
    maxMs: Math.round(sorted.at(-1) ?? Number.NaN),
    samples: sorted.length,
  };
}

interface RunResult extends Latencies {
  /** Push to the hub's sync done (webhook, fetch, render, store, notify): the hub's share. */
  readonly hubSync: Latencies;
}

async function run(bed: Bed, spokeCount: number, notify: 'sqs' | 'poll', tag: string): Promise<RunResult> {
  const source = mkdtempSync(join(tmpdir(), 'flotilla-bench-e2e-'));
  const clusters = bed.state.clusters;
  const spokes: LocalSpoke[] = Array.from({ length: spokeCount }, (_, i) => ({
    name: `${tag}-${String(i + 1).padStart(2, '0')}`,
    labels: { bench: 'e2e' },
    kubeconfigPath: clusters[i % clusters.length]?.kubeconfigPath ?? '',
  }));
  writeFleet(source);
  const fleet = await LocalFleet.start({ bed: bed.state, repoName: tag, fleetFrom: source, prefix: tag });
  const watch = new MarkerWatch(
    clusters.map((c) => c.kubeconfigPath),
    { label: markerLabel, key: 'round' },
  );
  try {
    log(
      `${tag}: bootstrapping ${spokeCount} spoke(s), notifications ${notify === 'sqs' ? 'SQS' : `HTTPS polling every ${pollInterval}`}`,
    );
    // Each spoke its own agent namespace: several share a control plane when simulated.
    for (let i = 0; i < spokes.length; i += 5) {
      await Promise.all(
        spokes.slice(i, i + 5).map((s) =>
          fleet.bootstrap([s], {
            namespace: `flotilla-${s.name}`,
            notify,
            ...(notify === 'poll' ? { agentEnv: { FLOTILLA_POLL_INTERVAL: pollInterval } } : {}),
          }),
        ),
      );
    }
    await fleet.waitInSync({ timeoutMs: 300_000 });
    const samples: number[] = [];
    const hubSamples: number[] = [];
    for (let round = 1; round <= commits; round++) {
      const value = String(round);
      const push = await fleet.push(`round ${round}`, (repo) =>
        repo.write(
          'bundles/marker/bundle.yaml',
          `targets:\n  - clusterSelector: {}\nvalues:\n  round: "${value}"\n`,
        ),
      );
      const deadline = push.pushedAt + 120_000;
      for (;;) {
        const times = spokes.map((s) => watch.firstAt(s.name, value, push.pushedAt));
        if (times.every((t) => t !== undefined)) {
          const latencies = times.map((t) => (t as number) - push.pushedAt);
          samples.push(...latencies);
          const synced = (await fleet.status()).sync;
          if (synced?.commit === push.commit) hubSamples.push(Date.parse(synced.syncedAt) - push.pushedAt);
          log(
            `${tag}: commit ${round}/${commits} applied on ${spokes.length} spoke(s): max ${Math.max(...latencies)} ms`,
          );
          break;
        }
        if (Date.now() > deadline) {
          const missing = spokes
            .filter((s) => watch.firstAt(s.name, value, push.pushedAt) === undefined)
            .map((s) => s.name);
          throw new Error(`${tag}: commit ${round} not applied within 120 s on ${missing.join(', ')}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      // A pause between pushes, random over a poll interval: pushes come at any moment of a
      // polling agent's cycle, not just after its last poll.
      await new Promise((r) => setTimeout(r, 500 + Math.random() * pollIntervalMs));
    }
    return { ...summarize(samples), hubSync: summarize(hubSamples) };
  } finally {
    watch.stop();
    await fleet.stop();
    rmSync(source, { recursive: true, force: true });
  }
}

const bed = await startBed({ dir: join(repoRoot, '.flotilla', 'bench-e2e'), clusters: planes, log });
const stop = async (code: number) => {
  await bed.stop();
  process.exit(code);
};
process.on('SIGINT', () => void stop(130));
try {
  const fleets = [3, ...(simulated > 3 ? [simulated] : [])];
  for (const spokes of fleets) {
    const sqs = await run(bed, spokes, 'sqs', `sqs${spokes}`);
    log(`${spokes} spokes, SQS: ${JSON.stringify(sqs)}`);
    const https = await run(bed, spokes, 'poll', `https${spokes}`);
    log(`${spokes} spokes, HTTPS polling: ${JSON.stringify(https)}`);
    const line = {
      bench: 'e2e',
      spokes,
      commits,
      ...(spokes > planes.length ? { controlPlanes: planes.length } : {}),
      sqs,
      https: { ...https, pollInterval },
    };
    process.stdout.write(`${JSON.stringify(line)}\n`);
  }
  await stop(0);
} catch (err) {
  log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  await stop(1);
}
