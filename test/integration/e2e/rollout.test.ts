/**
 * The rollout drill end to end: a local hub on the bed's DynamoDB Local and ElasticMQ,
 * a fleet repo on its git server, and ten spokes with real agents (several per control
 * plane, each in its own agent namespace) in a four-wave rollout: canary, then rings 1-3.
 * What each spoke holds is read from its API server by a watch, so every claim about who
 * got which revision when is a claim about the spokes, not only the hub's bookkeeping.
 */

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { ClusterHistory, RolloutView } from '@flotilla/shared/hub';
import { AppsV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { describeStatus, LocalFleet, type LocalSpoke } from '../../support/local-fleet.ts';
import { MarkerWatch } from '../../support/marker-watch.ts';
import { rolloutDrillFiles } from '../../support/rollout-fleet.ts';
import { until } from '../../support/until.ts';

const bed = inject('bed');
const id = `${process.pid % 1000}${Date.now().toString(36).slice(-4)}`;
const marker = 'flotilla.dev/rollout-drill';
const bakeMs = 2_000;
const waves = [
  { name: 'canary', ring: 'canary', members: ['c1', 'c2'] },
  { name: 'ring1', ring: '1', members: ['a1', 'a2', 'a3'] },
  { name: 'ring2', ring: '2', members: ['b1', 'b2', 'b3'] },
  { name: 'ring3', ring: '3', members: ['d1', 'd2'] },
] as const;
const spokeName = (member: string) => `ro${id}-${member}`;
/** The canary whose nodes lack what the bad revision's Deployment asks for. */
const badCanary = spokeName('c1');
/** The spoke whose agent talks to the hub through a proxy that can replay old answers. */
const replayed = spokeName('d2');
/**
 * 1 s heartbeats: the local hub has no schedule, so once a bake or deadline runs out it is the
 * next status report of a cluster in the rollout that steps it (as the scheduled sync would).
 */
const agentEnv = {
  FLOTILLA_HEARTBEAT_INTERVAL: '1s',
  FLOTILLA_BACKOFF_MIN: '200ms',
  FLOTILLA_BACKOFF_MAX: '2s',
};

function fleetFiles(version: string, opts: { deployment?: boolean } = {}): Record<string, string> {
  return rolloutDrillFiles({
    version,
    selector: `suite=${id}`,
    badCanary,
    deployment: opts.deployment ?? false,
    bake: `${bakeMs / 1000}s`,
    deadline: '12s',
    marker,
  });
}

let fleet: LocalFleet;
let spokes: LocalSpoke[];
let watch: MarkerWatch;
let proxy: Server;
const fleetDir = mkdtempSync(join(tmpdir(), 'flotilla-ro-e2e-fleet-'));
/** The first desired state the proxy passed to the replayed spoke's agent, and whether to replay it. */
let recorded: { status: number; headers: Record<string, string>; body: Buffer } | undefined;
let replaying = false;

async function push(version: string, opts: { deployment?: boolean } = {}): Promise<number> {
  const p = await fleet.push(`web ${version}`, (repo) => {
    for (const [path, content] of Object.entries(fleetFiles(version, opts))) repo.write(path, content);
  });
  await fleet.waitFor(`the hub synced ${version}`, (s) => s.sync?.commit === p.commit, { timeoutMs: 30_000 });
  return p.pushedAt;
}

async function rollout(): Promise<RolloutView> {
  const r = await fleet.flotilla(['rollout', 'status', 'web', '-o', 'json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as RolloutView;
}

async function cli(args: string[]): Promise<string> {
  const r = await fleet.flotilla(args);
  expect(r.code, `flotilla ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

function holding(version: string, members: readonly string[], timeoutMs = 30_000): Promise<true> {
  return until(
    `${members.join(', ')} holding ${version}`,
    async () => (members.every((m) => watch.current(spokeName(m)) === version) ? true : undefined),
    { timeoutMs, intervalMs: 100 },
  ).catch(async (err) => {
    throw new Error(`${(err as Error).message}\n${describeStatus(await fleet.status())}`);
  });
}

const members = (from: number, to = waves.length) => waves.slice(from, to).flatMap((w) => [...w.members]);
const ms = (iso: string | null | undefined) => (iso ? Date.parse(iso) : Number.NaN);

async function startReplayProxy(target: string): Promise<string> {
  proxy = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      try {
        const isDesired = req.method === 'GET' && /\/desired-state$/.test(req.url ?? '');
        if (isDesired && replaying && recorded) {
          res.writeHead(recorded.status, recorded.headers).end(recorded.body);
          return;
        }
        const headers = Object.fromEntries(
          Object.entries(req.headers).flatMap(([k, v]) =>
            k === 'host' || k === 'content-length' || v === undefined ? [] : [[k, String(v)]],
          ),
        );
        const upstream = await fetch(`${target}${req.url}`, {
          method: req.method ?? 'GET',
          headers,
          ...(chunks.length > 0 ? { body: Buffer.concat(chunks) } : {}),
        });
        const body = Buffer.from(await upstream.arrayBuffer());
        const out: Record<string, string> = {};
        upstream.headers.forEach((v, k) => {
          if (k !== 'content-length' && k !== 'content-encoding' && k !== 'transfer-encoding') out[k] = v;
        });
        if (isDesired && upstream.status === 200 && !recorded) recorded = { status: 200, headers: out, body };
        res.writeHead(upstream.status, out).end(body);
      } catch (err) {
        res.writeHead(502).end(String(err));
      }
    });
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  const address = proxy.address();
  if (!address || typeof address === 'string') throw new Error('proxy has no port');
  return `http://127.0.0.1:${address.port}`;
}

beforeAll(async () => {
  expect(bed.clusters.length, 'the bed needs three spoke control planes').toBeGreaterThanOrEqual(3);
  for (const [path, content] of Object.entries(fleetFiles('v1'))) {
    mkdirSync(dirname(join(fleetDir, path)), { recursive: true });
    writeFileSync(join(fleetDir, path), content);
  }
  spokes = waves
    .flatMap((w) => w.members.map((m) => ({ member: m, ring: w.ring })))
    .map(({ member, ring }, i) => ({
      name: spokeName(member),
      labels: { suite: id, ring },
      kubeconfigPath: bed.clusters[i % 3]?.kubeconfigPath ?? '',
    }));
  fleet = await LocalFleet.start({ bed, repoName: `ro-e2e-${id}`, fleetFrom: fleetDir, prefix: `ro${id}` });
  watch = new MarkerWatch(
    spokes.map((s) => s.kubeconfigPath),
    { label: marker, key: 'version' },
  );
  const proxyUrl = await startReplayProxy(fleet.hubUrl);
  // Each spoke its own agent namespace, a few at a time: ten agents starting at once are heavy.
  for (let i = 0; i < spokes.length; i += 4) {
    await Promise.all(
      spokes.slice(i, i + 4).map((s) =>
        fleet.bootstrap([s], {
          namespace: `flotilla-${s.name}`,
          notify: 'sqs',
          agentEnv,
          ...(s.name === replayed ? { agentHubUrl: proxyUrl } : {}),
        }),
      ),
    );
  }
  await fleet.waitInSync({ timeoutMs: 180_000 });
  await holding('v1', members(0));
}, 400_000);

afterAll(async () => {
  watch?.stop();
  await fleet?.stop();
  proxy?.close();
  rmSync(fleetDir, { recursive: true, force: true });
  for (const s of spokes ?? []) {
    const kc = new KubeConfig();
    kc.loadFromFile(s.kubeconfigPath);
    const core = kc.makeApiClient(CoreV1Api);
    for (const ns of [`ro-${s.name}`, `flotilla-${s.name}`])
      await core.deleteNamespace({ name: ns }).catch(() => undefined);
  }
}, 120_000);

describe('a four-wave rollout over ten spokes with real agents', () => {
  it('walks a good revision through every wave in order, each only after the one before baked', async () => {
    const pushedAt = await push('v2');
    await holding('v2', members(0), 90_000);
    const view = await until(
      'the rollout completed',
      async () => {
        const v = await rollout();
        return v.phase === 'completed' ? v : undefined;
      },
      { timeoutMs: 30_000 },
    );
    expect(view.waves.map((w) => [w.name, w.clusters, w.done])).toEqual(
      waves.map((w) => [w.name, w.members.length, w.members.length]),
    );
    for (let i = 1; i < waves.length; i++) {
      const before = waves[i - 1] as (typeof waves)[number];
      const wave = waves[i] as (typeof waves)[number];
      const lastDone = Math.max(
        ...view.events
          .filter(
            (e) => e.type === 'cluster-done' && e.revision === view.revision && e.waveName === before.name,
          )
          .map((e) => ms(e.at)),
      );
      const baked = ms(view.waves[i - 1]?.bakedAt);
      const opened = ms(view.waves[i]?.openedAt);
      expect(
        baked - lastDone,
        `${before.name} baked ${bakeMs} ms after its last cluster was done`,
      ).toBeGreaterThanOrEqual(bakeMs);
      expect(opened, `${wave.name} opened after ${before.name} baked`).toBeGreaterThanOrEqual(baked);
      // On the spokes: nobody in this wave held v2 before the wave before it had baked.
      for (const m of wave.members) {
        const got = watch.firstAt(spokeName(m), 'v2', pushedAt) as number;
        expect(got, `${m} got v2 only after ${before.name} baked`).toBeGreaterThanOrEqual(baked);
        expect(got).toBeGreaterThanOrEqual(lastDone + bakeMs);
      }
      process.stderr.write(
        `[rollout drill] ${wave.name} opened ${opened - (lastDone + bakeMs)} ms beyond ${before.name}'s bake\n`,
      );
    }
  }, 150_000);

  it('rolls back one spoke to an earlier generation and back, applied by its agent', async () => {
    const cluster = spokeName('d1');
    const history = JSON.parse(await cli(['history', cluster, '-o', 'json'])) as ClusterHistory;
    const current = history.generations.find((g) => g.current);
    const older = history.generations.find((g) => !g.current && g.bundles.some((b) => b.name === 'web'));
    expect(current && older, JSON.stringify(history)).toBeTruthy();
    await cli(['rollback', cluster, '--to-generation', String(older?.generation)]);
    await holding('v1', ['d1']);
    const pinned = (await fleet.status()).clusters.find((c) => c.id === cluster);
    expect(pinned?.pins.map((p) => p.bundle)).toEqual(['web']);
    await cli(['rollback', cluster, '--clear']);
    await holding('v2', ['d1']);
    await fleet.waitInSync({ clusters: [cluster], timeoutMs: 30_000 });
  }, 90_000);

  it('reverts a canary that cannot become Ready; no later wave ever receives the bad revision', async () => {
    const pushedAt = await push('v3', { deployment: true });
    await holding('v3', ['c1']);
    // Past the 12 s deadline, the canary fails, the rollout reverts it, its agent applies v2 again.
    await holding('v2', ['c1'], 60_000);
    const revertedAt = watch.firstAt(badCanary, 'v2', pushedAt) as number;
    const view = await rollout();
    expect(view.phase).toBe('reverted');
    expect(view.revertReason).toBe('failures');
    const failed = view.events.find(
      (e) => e.type === 'cluster-failed' && e.revision === view.revision && e.cluster === badCanary,
    );
    expect(failed?.reason).toBe('deadline');
    const released = view.events.find(
      (e) => e.type === 'cluster-released' && e.revision === view.revision && e.cluster === badCanary,
    );
    // Failed no earlier than its deadline: the hub never fails a cluster early.
    expect(ms(failed?.at) - ms(released?.at)).toBeGreaterThanOrEqual(12_000);
    process.stderr.write(
      `[rollout drill] deadline miss to revert applied: ${revertedAt - (ms(released?.at) + 12_000)} ms\n`,
    );
    // Nobody but the bad canary ever held v3, and the Deployment was pruned with the revert.
    for (const m of members(0).filter((x) => x !== 'c1'))
      expect(watch.everHeld(spokeName(m), 'v3'), m).toBe(false);
    const c1 = spokes.find((s) => s.name === badCanary) as LocalSpoke;
    const kc = new KubeConfig();
    kc.loadFromFile(c1.kubeconfigPath);
    const deployments = await kc
      .makeApiClient(AppsV1Api)
      .listNamespacedDeployment({ namespace: `ro-${badCanary}` });
    expect(deployments.items).toEqual([]);
    await fleet.waitInSync({ timeoutMs: 30_000 });
  }, 120_000);

  it('is paused, resumed, promoted and aborted from the CLI', async () => {
    const pushedAt = await push('v4');
    expect(await cli(['rollout', 'pause', 'web'])).toContain('paused');
    // The canaries may have been released before the pause landed; no later wave is while paused.
    await new Promise((r) => setTimeout(r, bakeMs + 3_000));
    expect((await rollout()).phase).toBe('paused');
    for (const m of members(1)) expect(watch.everHeld(spokeName(m), 'v4'), m).toBe(false);
    await cli(['rollout', 'resume', 'web']);
    await holding('v4', waves[0].members);
    await cli(['rollout', 'abort', 'web']);
    const aborted = await rollout();
    expect(aborted.phase).toBe('reverted');
    expect(aborted.revertReason).toBe('abort');
    // Every spoke released so far goes back; the last waves never saw v4.
    await holding('v2', members(0), 60_000);
    for (const m of members(2)) expect(watch.firstAt(spokeName(m), 'v4', pushedAt), m).toBeUndefined();
    expect((await fleet.flotilla(['rollout', 'resume', 'web'])).code).toBe(5);

    // Promote, on a fresh revision: ring 1 opens at once, without waiting for the canaries or
    // their bake; paused right after, ring 2 never opens (a promoted wave does not bake).
    const promotedAt = await push('v5');
    await cli(['rollout', 'promote', 'web']);
    await cli(['rollout', 'pause', 'web']);
    await holding('v5', waves[1].members);
    for (const m of members(2)) expect(watch.firstAt(spokeName(m), 'v5', promotedAt), m).toBeUndefined();
    await cli(['rollout', 'abort', 'web']);
    await holding('v2', [...waves[0].members, ...waves[1].members], 60_000);
    for (const m of members(2)) expect(watch.firstAt(spokeName(m), 'v5', promotedAt), m).toBeUndefined();
  }, 150_000);

  it('has its agent refuse a replayed older desired state, and apply the hub’s own answer after', async () => {
    expect(recorded, 'the proxy saw the first desired state').toBeDefined();
    const before = (await fleet.status()).clusters.find((c) => c.id === replayed);
    const history = JSON.parse(await cli(['history', replayed, '-o', 'json'])) as ClusterHistory;
    const older = history.generations.find((g) => !g.current && g.bundles.some((b) => b.name === 'web'));
    replaying = true;
    // A new generation the agent is notified of; what it fetches is generation 1, replayed.
    await cli(['rollback', replayed, '--to-generation', String(older?.generation)]);
    const refused = await until(
      'the hub hearing of the refusal',
      async () => {
        const c = (await fleet.status()).clusters.find((x) => x.id === replayed);
        const msg = c?.bundles.find((b) => b.name === 'web')?.message;
        return msg && /refused/.test(msg) ? msg : undefined;
      },
      { timeoutMs: 30_000 },
    );
    expect(refused).toMatch(/^desired state generation 1 refused: generation 1 is older than generation \d+/);
    expect(watch.current(replayed)).toBe('v2');
    expect(watch.everHeld(replayed, 'v1')).toBe(true);
    expect(watch.history(replayed).at(-1)?.value).toBe('v2');
    replaying = false;
    await cli(['rollback', replayed, '--clear']);
    const synced = await fleet.waitInSync({ clusters: [replayed], timeoutMs: 30_000 });
    const after = synced.clusters.find((c) => c.id === replayed);
    expect(after?.appliedGeneration).toBeGreaterThan(before?.appliedGeneration ?? 0);
    expect(watch.current(replayed)).toBe('v2');
  }, 90_000);
});
