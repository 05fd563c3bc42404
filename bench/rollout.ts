/**
 * `npm run bench:rollout`: how fast a progressive rollout moves on the whole product.
 *
 * The harness of `bench:e2e` (a local hub on DynamoDB Local and ElasticMQ, a fleet repo on
 * the bed's git server, spokes bootstrapped with `flotilla bootstrap --run-agent local`,
 * several per control plane, each in its own agent namespace, SQS notifications) with one
 * bundle in a four-wave rollout: canary, then rings 1-3, each wave baking `--bake`.
 *
 * - pushToFleetReadyMs: `git push` returning to the hub recording the rollout completed
 *   (every cluster reported the new revision Ready, wave after wave), median of the rounds.
 * - waveAdvance: per cluster of waves 2-4, from the end of the previous wave's bake (its
 *   last cluster done + bake, from the rollout's events) to the new revision on that
 *   cluster's API server (a watch sees it): notify, pull, verify, apply. Beyond the bake.
 * - failureToRevertMs: a canary that cannot become Ready (its Deployment's nodeSelector
 *   matches no node of the bed); from its progress deadline running out (its release +
 *   `--deadline`) to the previous revision back on its API server.
 *
 * Options: --spokes 12  --rounds 3  --bake 2s  --deadline 8s
 * Last line: {"bench":"rollout","clusters":N,"waves":4,"pushToFleetReadyMs":T,
 *             "waveAdvance":{"p50Ms":A,"p95Ms":B},"failureToRevertMs":R}
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import type { RolloutView } from '@flotilla/shared/hub';
import { repoRoot, startBed } from '../test/bed/src/bed.ts';
import { LocalFleet, type LocalSpoke } from '../test/support/local-fleet.ts';
import { MarkerWatch } from '../test/support/marker-watch.ts';
import { rolloutDrillFiles } from '../test/support/rollout-fleet.ts';

const { values } = parseArgs({
  options: {
    spokes: { type: 'string', default: '12' },
    rounds: { type: 'string', default: '3' },
    bake: { type: 'string', default: '2s' },
    deadline: { type: 'string', default: '8s' },
  },
});
const spokeCount = Number(values.spokes);
const rounds = Number(values.rounds);
const bakeMs = durationMs(values.bake, '--bake');
const deadlineMs = durationMs(values.deadline, '--deadline');
if (!Number.isInteger(spokeCount) || spokeCount < 4) throw new Error('--spokes: at least 4, one per wave');
const planes = ['ro-1', 'ro-2', 'ro-3'];
const marker = 'flotilla.dev/bench-rollout';
const log = (line: string) => process.stderr.write(`[bench:rollout] ${line}\n`);
const tag = `ro${Date.now().toString(36).slice(-5)}`;

function durationMs(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(text);
  if (!m) throw new Error(`${flag} "${text}": expected a duration such as 2s or 500ms`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000 }[m[2] as 'ms' | 's' | 'm'];
}

/** Wave of the i-th spoke: 2 canaries, the rest spread over rings 1-3. */
const waveNames = ['canary', 'ring1', 'ring2', 'ring3'] as const;
function ringOf(i: number): string {
  if (i < 2) return 'canary';
  return String(((i - 2) % 3) + 1);
}
const spokeName = (i: number) => `${tag}-${String(i + 1).padStart(2, '0')}`;
const badCanary = spokeName(0);

function fleetFiles(version: string, bad: boolean): Record<string, string> {
  return rolloutDrillFiles({
    version,
    selector: 'bench=rollout',
    badCanary,
    deployment: bad,
    bake: values.bake,
    deadline: values.deadline,
    marker,
  });
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}
const median = (xs: readonly number[]) =>
  percentile(
    [...xs].sort((a, b) => a - b),
    50,
  );
const at = (iso: string | null | undefined) => (iso ? Date.parse(iso) : Number.NaN);

async function waitUntil<T>(what: string, timeoutMs: number, fn: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const bed = await startBed({ dir: join(repoRoot, '.flotilla', 'bench-rollout'), clusters: planes, log });
const stop = async (code: number) => {
  await bed.stop();
  process.exit(code);
};
process.on('SIGINT', () => void stop(130));

const source = mkdtempSync(join(tmpdir(), 'flotilla-bench-rollout-'));
let fleet: LocalFleet | undefined;
let watch: MarkerWatch | undefined;
try {
  for (const [path, content] of Object.entries(fleetFiles('v0', false))) {
    mkdirSync(dirname(join(source, path)), { recursive: true });
    writeFileSync(join(source, path), content);
  }
  const clusters = bed.state.clusters;
  const spokes: LocalSpoke[] = Array.from({ length: spokeCount }, (_, i) => ({
    name: spokeName(i),
    labels: { bench: 'rollout', ring: ringOf(i) },
    kubeconfigPath: clusters[i % clusters.length]?.kubeconfigPath ?? '',
  }));
  /** Index of each spoke's wave: the canary is 0, ring n is n. */
  const waveOf = new Map(spokes.map((s, i) => [s.name, ringOf(i) === 'canary' ? 0 : Number(ringOf(i))]));
  fleet = await LocalFleet.start({ bed: bed.state, repoName: tag, fleetFrom: source, prefix: tag });
  const f = fleet;
  watch = new MarkerWatch(
    clusters.map((c) => c.kubeconfigPath),
    { label: marker, key: 'version' },
  );
  const w = watch;
  log(`bootstrapping ${spokeCount} spokes on ${planes.length} control planes (SQS, 1 s heartbeats)`);
  for (let i = 0; i < spokes.length; i += 4) {
    await Promise.all(
      spokes.slice(i, i + 4).map((s) =>
        f.bootstrap([s], {
          namespace: `flotilla-${s.name}`,
          notify: 'sqs',
          agentEnv: { FLOTILLA_HEARTBEAT_INTERVAL: '1s' },
        }),
      ),
    );
  }
  await f.waitInSync({ timeoutMs: 300_000 });
  const status = async (): Promise<RolloutView> => {
    const r = await f.flotilla(['rollout', 'status', 'web', '-o', 'json']);
    if (r.code !== 0) throw new Error(`flotilla rollout status web: ${r.stderr}`);
    return JSON.parse(r.stdout) as RolloutView;
  };
  const push = async (version: string, bad: boolean) => {
    const p = await f.push(`web ${version}`, (repo) => {
      for (const [path, content] of Object.entries(fleetFiles(version, bad))) repo.write(path, content);
    });
    return p.pushedAt;
  };

  const fleetReady: number[] = [];
  const advance: number[] = [];
  for (let round = 1; round <= rounds; round++) {
    const version = `v${round}`;
    const pushedAt = await push(version, false);
    const view = await waitUntil(`round ${round} completed`, 180_000, async () => {
      const v = await status().catch(() => undefined);
      return v?.phase === 'completed' &&
        at(v.startedAt) >= pushedAt &&
        spokes.every((s) => w.current(s.name) === version)
        ? v
        : undefined;
    });
    fleetReady.push(at(view.finishedAt) - pushedAt);
    for (let i = 1; i < waveNames.length; i++) {
      const lastDone = Math.max(
        ...view.events
          .filter(
            (e) =>
              e.type === 'cluster-done' && e.revision === view.revision && e.waveName === waveNames[i - 1],
          )
          .map((e) => at(e.at)),
      );
      for (const s of spokes.filter((x) => waveOf.get(x.name) === i)) {
        const applied = w.firstAt(s.name, version, pushedAt);
        if (applied === undefined) throw new Error(`${s.name} never showed ${version}`);
        advance.push(applied - (lastDone + bakeMs));
      }
    }
    log(
      `round ${round}/${rounds}: push to fleet Ready ${fleetReady.at(-1)} ms; wave advance so far p50 ${median(advance)} ms`,
    );
  }

  // A bad revision: the canary that cannot become Ready misses its deadline and is reverted.
  const good = `v${rounds}`;
  const badPushedAt = await push('bad', true);
  await waitUntil(`${badCanary} reverted to ${good}`, 120_000, async () =>
    w.firstAt(badCanary, 'bad', badPushedAt) !== undefined && w.current(badCanary) === good
      ? true
      : undefined,
  );
  const revertedAt = w.history(badCanary).findLast((h) => h.value === good)?.at ?? Number.NaN;
  const view = await status();
  if (view.phase !== 'reverted') throw new Error(`the bad revision's rollout is ${view.phase}, not reverted`);
  const released = view.events.find(
    (e) => e.type === 'cluster-released' && e.revision === view.revision && e.cluster === badCanary,
  );
  const failureToRevertMs = Math.round(revertedAt - (at(released?.at) + deadlineMs));
  const others = spokes.filter((s) => s.name !== badCanary && w.everHeld(s.name, 'bad')).map((s) => s.name);
  if (others.length > 0) throw new Error(`the bad revision reached ${others.join(', ')}`);
  const failed = view.events.find(
    (e) => e.type === 'cluster-failed' && e.revision === view.revision && e.cluster === badCanary,
  );
  log(
    `bad canary: released ${released?.at}, failed ${failed?.at} (${failed?.reason}), back on ${good} on its API server ${new Date(revertedAt).toISOString()}: ${failureToRevertMs} ms after its deadline; no other spoke received it`,
  );

  const sorted = [...advance].sort((a, b) => a - b);
  const line = {
    bench: 'rollout',
    clusters: spokeCount,
    waves: waveNames.length,
    pushToFleetReadyMs: Math.round(median(fleetReady)),
    waveAdvance: { p50Ms: Math.round(percentile(sorted, 50)), p95Ms: Math.round(percentile(sorted, 95)) },
    failureToRevertMs,
  };
  log(
    `details: bake ${bakeMs} ms, deadline ${deadlineMs} ms, ${rounds} rounds, ${advance.length} wave-advance samples (max ${Math.round(sorted.at(-1) ?? Number.NaN)} ms), push to fleet Ready per round ${fleetReady.join(', ')} ms`,
  );
  process.stdout.write(`${JSON.stringify(line)}\n`);
  watch.stop();
  await fleet.stop();
  rmSync(source, { recursive: true, force: true });
  await stop(0);
} catch (err) {
  log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  watch?.stop();
  await fleet?.stop().catch(() => undefined);
  rmSync(source, { recursive: true, force: true });
  await stop(1);
}
