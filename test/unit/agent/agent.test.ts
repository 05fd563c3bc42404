import { parseStatusReport } from '@flotilla/shared/hub';
import { describe, expect, it } from 'vitest';
import { AgentMetrics } from '../../../agent/src/metrics.ts';
import { Agent, type AgentIntervals } from '../../../agent/src/reconcile/agent.ts';
import {
  FakeCache,
  FakeClock,
  FakeCluster,
  FakeGenerations,
  FakeHub,
  FakeQueue,
  keys,
  memoryLogger,
  otherKeys,
  settle,
} from './fakes.ts';

const intervals: AgentIntervals = {
  pollMs: 30_000,
  resyncMs: 300_000,
  driftMs: 60_000,
  heartbeatMs: 60_000,
  requeueMs: 10_000,
  backoffMinMs: 1_000,
  backoffMaxMs: 60_000,
};

function setUp(opts: { queue?: boolean; generations?: FakeGenerations } = {}) {
  const generations = opts.generations ?? new FakeGenerations();
  const hub = new FakeHub();
  const cluster = new FakeCluster();
  const cache = new FakeCache();
  const clock = new FakeClock();
  const log = memoryLogger();
  const metrics = new AgentMetrics();
  const queue = opts.queue ? new FakeQueue(clock) : undefined;
  const agent = new Agent(
    { hub, cluster, cache, clock, log, metrics, queue, generations },
    { clusterId: 'edge-1', hubPublicKey: keys.publicKeyPem, agentVersion: '0.1.0', intervals },
  );
  return { hub, cluster, cache, clock, log, metrics, queue, agent, generations };
}

describe('Agent.sync: fetch, verify, reconcile, report', () => {
  it('verifies a new desired state, caches it, reconciles it, and reports a valid status', async () => {
    const { hub, cluster, cache, agent } = setUp();
    hub.publish('edge-1', 3, [{ name: 'base' }, { name: 'web', dependsOn: ['base'] }]);
    const result = await agent.sync();
    expect(result).toMatchObject({ kind: 'applied', generation: 3 });
    expect(cluster.calls).toEqual([{ generation: 3, detectDrift: false, bundles: ['base', 'web'] }]);
    expect(cache.saves).toBe(1);
    const report = parseStatusReport(hub.lastReport);
    expect(report.appliedGeneration).toBe(3);
    expect(report.agentVersion).toBe('0.1.0');
    expect(report.bundles?.map((b) => [b.name, b.state, b.generation])).toEqual([
      ['base', 'Ready', 3],
      ['web', 'Ready', 3],
    ]);
    // Before the apply, the hub heard that these bundles were being applied.
    expect(hub.reports[0]?.bundles?.map((b) => b.state)).toEqual(['Applying', 'Applying']);
  });

  it('asks with If-None-Match and does nothing when the desired state is unchanged', async () => {
    const { hub, cluster, agent } = setUp();
    hub.publish('edge-1', 1, [{ name: 'base' }]);
    await agent.sync();
    const result = await agent.sync();
    expect(result).toEqual({ kind: 'unchanged', outcome: undefined });
    expect(hub.calls.filter((c) => c.startsWith('desired-state'))).toEqual([
      'desired-state',
      'desired-state (if-none-match)',
    ]);
    expect(cluster.calls).toHaveLength(1);
  });

  it('fetches only the bundles it does not have yet', async () => {
    const { hub, agent } = setUp();
    hub.publish('edge-1', 1, [{ name: 'base' }, { name: 'web' }]);
    await agent.sync();
    hub.publish('edge-1', 2, [{ name: 'base' }, { name: 'web', objects: [] }]);
    hub.calls.length = 0;
    await agent.sync();
    expect(hub.calls.filter((c) => c.startsWith('bundle'))).toHaveLength(1);
  });

  it('a full resync reconciles again with drift detection even when nothing changed', async () => {
    const { hub, cluster, agent } = setUp();
    hub.publish('edge-1', 1, [{ name: 'base' }]);
    await agent.sync();
    await agent.sync({ detectDrift: true });
    expect(cluster.calls.map((c) => c.detectDrift)).toEqual([false, true]);
  });

  it('reconciles an explicitly empty desired state (which removes everything)', async () => {
    const { hub, cluster, agent } = setUp();
    hub.publish('edge-1', 1, [{ name: 'base' }]);
    await agent.sync();
    hub.publish('edge-1', 2, []);
    await agent.sync();
    expect(cluster.calls[1]).toEqual({ generation: 2, detectDrift: false, bundles: [] });
    expect(parseStatusReport(hub.lastReport).bundles).toEqual([]);
  });

  it('applies and prunes nothing when the hub has no desired state yet, and keeps what it had', async () => {
    const { hub, cluster, agent } = setUp();
    hub.publish('edge-1', 1, [{ name: 'base' }]);
    await agent.sync();
    hub.none = true;
    const result = await agent.sync();
    expect(result.kind).toBe('none');
    expect(cluster.calls).toHaveLength(1);
    expect(agent.current?.manifest.generation).toBe(1);
  });

  it('reports reconcile errors on every bundle instead of failing the loop', async () => {
    const { hub, cluster, agent } = setUp();
    cluster.fail = new Error('connect ECONNREFUSED 10.0.0.1:443');
    hub.publish('edge-1', 1, [{ name: 'base' }]);
    await agent.sync();
    const report = parseStatusReport(hub.lastReport);
    expect(report.bundles?.[0]).toMatchObject({
      state: 'Failed',
      message: 'reconcile failed: connect ECONNREFUSED 10.0.0.1:443',
    });
    expect(report.appliedGeneration).toBeUndefined();
  });
});

describe('verification: a desired state that does not verify is refused, applied nowhere, and reported', () => {
  it('refuses a manifest signed with another key', async () => {
    const { hub, cluster, cache, agent, metrics, log } = setUp();
    hub.publish('edge-1', 1, [{ name: 'base' }]);
    await agent.sync();
    hub.publish('edge-1', 2, [{ name: 'base' }, { name: 'evil' }], otherKeys.privateKeyPem);
    const result = await agent.sync();
    expect(result.kind).toBe('refused');
    expect(cluster.calls).toHaveLength(1);
    expect(cache.saves).toBe(1);
    expect(agent.current?.manifest.generation).toBe(1);
    expect(metrics.refusals.value({ reason: 'verification' })).toBe(1);
    expect(log.lines.some((l) => l.level === 'error' && /refused/.test(l.message))).toBe(true);
    const report = parseStatusReport(hub.lastReport);
    expect(report.bundles?.map((b) => [b.name, b.state])).toEqual([
      ['base', 'Failed'],
      ['evil', 'Failed'],
    ]);
    expect(report.bundles?.[0]?.message).toMatch(
      /^desired state generation 2 refused: .*does not verify with the pinned hub key; still enforcing generation 1$/,
    );
    // The refusal stays in the reports while the agent enforces what it had.
    await agent.enforce({ detectDrift: true });
    expect(parseStatusReport(hub.lastReport).bundles?.[0]?.state).toBe('Failed');
  });

  it('refuses a manifest whose content was altered after signing', async () => {
    const { hub, cluster, agent } = setUp();
    hub.publish('edge-1', 1, [{ name: 'base' }]);
    (hub.signed as { manifest: { generation: number } }).manifest.generation = 9;
    expect((await agent.sync()).kind).toBe('refused');
    expect(cluster.calls).toEqual([]);
  });

  it('refuses a desired state meant for another cluster', async () => {
    const { hub, cluster, agent } = setUp();
    hub.publish('edge-2', 1, [{ name: 'base' }]);
    const result = await agent.sync();
    expect(result).toEqual({
      kind: 'refused',
      reason: 'the desired state is for cluster "edge-2", not for "edge-1"',
    });
    expect(cluster.calls).toEqual([]);
  });

  it('refuses the whole desired state when one bundle does not match its hash', async () => {
    const { hub, cluster, agent } = setUp();
    const manifest = hub.publish('edge-1', 1, [{ name: 'base' }, { name: 'web' }]);
    const web = manifest.bundles[1]?.hash as string;
    hub.bundles.set(web, (hub.bundles.get(web) as string).replace('web-config', 'evil-config'));
    const result = await agent.sync();
    expect(result.kind).toBe('refused');
    expect(result.kind === 'refused' && result.reason).toMatch(/rendered bundle hash mismatch/);
    expect(cluster.calls).toEqual([]);
  });

  it('refuses garbage without mistaking it for an empty desired state', async () => {
    const { hub, cluster, agent } = setUp();
    hub.publish('edge-1', 1, [{ name: 'base' }]);
    hub.signed = { unparseable: 'Unexpected end of JSON input' };
    expect((await agent.sync()).kind).toBe('refused');
    expect(cluster.calls).toEqual([]);
  });
});

describe('autonomy: the cached desired state', () => {
  it('is verified again when loaded, then enforced without the hub', async () => {
    const first = setUp();
    first.hub.publish('edge-1', 4, [{ name: 'base' }]);
    await first.agent.sync();

    const second = setUp();
    second.cache.stored = first.cache.stored;
    second.hub.down = true;
    expect(await second.agent.loadCache()).toBe(true);
    expect(second.agent.current?.manifest.generation).toBe(4);
    const outcome = await second.agent.enforce({ detectDrift: true });
    expect(outcome?.bundles[0]?.state).toBe('Ready');
    expect(second.cluster.calls).toEqual([{ generation: 4, detectDrift: true, bundles: ['base'] }]);
    // The status could not be sent: it waits, and goes out once the hub is back.
    expect(second.agent.pendingStatus?.bundles?.[0]?.state).toBe('Ready');
    second.hub.down = false;
    expect(await second.agent.sendStatus()).toBe(true);
    expect(second.agent.pendingStatus).toBeUndefined();
    expect(second.hub.lastReport?.appliedGeneration).toBe(4);
  });

  it('ignores a cache that does not verify', async () => {
    const first = setUp();
    first.hub.publish('edge-1', 1, [{ name: 'base' }]);
    await first.agent.sync();
    const second = setUp();
    const stored = first.cache.stored as NonNullable<typeof first.cache.stored>;
    second.cache.stored = {
      ...stored,
      bundles: new Map([...stored.bundles].map(([h, c]) => [h, c.replace('base', 'evil')])),
    };
    expect(await second.agent.loadCache()).toBe(false);
    expect(second.agent.current).toBeUndefined();
    expect(second.log.lines.some((l) => l.level === 'error' && /does not verify/.test(l.message))).toBe(true);
  });

  it('keeps only the newest unsent report: each replaces the one before', async () => {
    const { hub, agent } = setUp();
    hub.publish('edge-1', 1, [{ name: 'base' }]);
    await agent.sync();
    hub.down = true;
    await agent.enforce({ detectDrift: true });
    await agent.enforce({ detectDrift: true });
    hub.down = false;
    const before = hub.reports.length;
    await agent.sendStatus();
    expect(hub.reports.length - before).toBe(1);
  });
});

describe('Agent.run: the loop', () => {
  it('polls with If-None-Match, looks for drift, and sends heartbeats on their intervals', async () => {
    const { hub, cluster, clock, agent } = setUp();
    hub.publish('edge-1', 1, [{ name: 'base' }]);
    const stop = new AbortController();
    const running = agent.run(stop.signal);
    await clock.advance(0);
    expect(cluster.calls).toHaveLength(1);
    await clock.advance(intervals.pollMs * 1.2);
    expect(hub.calls).toContain('desired-state (if-none-match)');
    await clock.advance(intervals.driftMs);
    expect(cluster.calls.some((c) => c.detectDrift)).toBe(true);
    hub.publish('edge-1', 2, [{ name: 'base' }, { name: 'web' }]);
    await clock.advance(intervals.pollMs * 1.2);
    expect(cluster.calls.at(-1)).toMatchObject({ generation: 2 });
    stop.abort();
    await clock.advance(0);
    await running;
  });

  it('backs off exponentially while the hub is down, and keeps enforcing drift meanwhile', async () => {
    const { hub, cluster, clock, agent } = setUp();
    hub.publish('edge-1', 1, [{ name: 'base' }]);
    const stop = new AbortController();
    const running = agent.run(stop.signal);
    await clock.advance(0);
    hub.down = true;
    const fetchTimes: number[] = [];
    const t0 = clock.now();
    const original = hub.fetchDesiredState.bind(hub);
    hub.fetchDesiredState = async (etag) => {
      fetchTimes.push(clock.now() - t0);
      return original(etag);
    };
    await clock.advance(10 * 60_000);
    // With random() = 0.5 each delay is halfway between 1 s and a ceiling that doubles: 1, 2, 4, 8, 16 s.
    const gaps = fetchTimes.slice(1).map((t, i) => t - (fetchTimes[i] as number));
    expect(gaps.slice(0, 6)).toEqual([1_000, 1_500, 2_500, 4_500, 8_500, 16_500]);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(60_000);
    const driftPasses = cluster.calls.filter((c) => c.detectDrift).length;
    expect(driftPasses).toBeGreaterThanOrEqual(9);
    // The hub comes back: the agent catches up.
    hub.down = false;
    hub.publish('edge-1', 2, [{ name: 'base' }]);
    await clock.advance(60_000);
    expect(cluster.calls.at(-1)?.generation).toBe(2);
    stop.abort();
    await clock.advance(0);
    await running;
  });

  it('starts by enforcing the cached desired state when the hub is down', async () => {
    const first = setUp();
    first.hub.publish('edge-1', 7, [{ name: 'base' }]);
    await first.agent.sync();
    const { hub, cache, cluster, clock, agent } = setUp();
    cache.stored = first.cache.stored;
    hub.down = true;
    const stop = new AbortController();
    const running = agent.run(stop.signal);
    await clock.advance(0);
    expect(cluster.calls[0]).toEqual({ generation: 7, detectDrift: true, bundles: ['base'] });
    stop.abort();
    await clock.advance(0);
    await running;
  });

  it('requeues soon while bundles are not ready', async () => {
    const { hub, cluster, clock, agent } = setUp();
    cluster.states.set('base', 'NotReady');
    hub.publish('edge-1', 1, [{ name: 'base' }]);
    const stop = new AbortController();
    const running = agent.run(stop.signal);
    await clock.advance(0);
    cluster.states.set('base', 'Ready');
    await clock.advance(intervals.requeueMs);
    expect(cluster.calls).toHaveLength(2);
    expect(cluster.calls[1]?.detectDrift).toBe(false);
    expect(hub.lastReport?.bundles?.[0]?.state).toBe('Ready');
    stop.abort();
    await clock.advance(0);
    await running;
  });

  it('fetches at once when a status answer says the hub has a newer desired state', async () => {
    const { hub, cluster, clock, agent } = setUp();
    hub.publish('edge-1', 1, [{ name: 'base' }]);
    const stop = new AbortController();
    const running = agent.run(stop.signal);
    await clock.advance(0);
    // A newer generation whose notification was missed; the next heartbeat tells.
    hub.publish('edge-1', 2, [{ name: 'base' }, { name: 'web' }]);
    const callsBefore = cluster.calls.length;
    await clock.advance(intervals.heartbeatMs + 1);
    expect(cluster.calls.length).toBeGreaterThan(callsBefore);
    expect(cluster.calls.at(-1)?.generation).toBe(2);
    stop.abort();
    await clock.advance(0);
    await running;
  });
});

describe('Agent.run with SQS notifications', () => {
  it('fetches on a notification and deletes the message only after a successful reconcile', async () => {
    const { hub, cluster, clock, queue, agent } = setUp({ queue: true });
    if (!queue) throw new Error('no queue');
    hub.publish('edge-1', 1, [{ name: 'base' }]);
    const stop = new AbortController();
    const running = agent.run(stop.signal);
    await clock.advance(0);
    expect(cluster.calls).toHaveLength(1);

    // Without notifications, nothing is fetched until the resync.
    const fetches = () => hub.calls.filter((c) => c.startsWith('desired-state')).length;
    const before = fetches();
    await clock.advance(intervals.pollMs * 2);
    expect(fetches()).toBe(before);

    const m = hub.publish('edge-1', 2, [{ name: 'base' }, { name: 'web' }]);
    hub.down = true;
    queue.put({
      kind: 'desired-state-changed',
      clusterId: 'edge-1',
      generation: m.generation,
      etag: hub.etag,
    });
    await clock.advance(1_500);
    expect(queue.deleted).toEqual([]);
    // Not deleted: SQS shows it again later; meanwhile the backoff retries the fetch.
    hub.down = false;
    queue.put({
      kind: 'desired-state-changed',
      clusterId: 'edge-1',
      generation: m.generation,
      etag: hub.etag,
    });
    await clock.advance(5_000);
    expect(cluster.calls.at(-1)?.generation).toBe(2);
    expect(queue.deleted).toEqual(['m1']);

    // A duplicate of what is applied is deleted without asking the hub.
    const fetched = fetches();
    queue.put({
      kind: 'desired-state-changed',
      clusterId: 'edge-1',
      generation: m.generation,
      etag: hub.etag,
    });
    await clock.advance(2_000);
    expect(queue.deleted).toEqual(['m1', 'm2']);
    expect(fetches()).toBe(fetched);
    stop.abort();
    await clock.advance(0);
    await running;
  });

  it('polls the hub while the queue cannot be read', async () => {
    const { hub, clock, queue, agent, log } = setUp({ queue: true });
    if (!queue) throw new Error('no queue');
    queue.failing = true;
    hub.publish('edge-1', 1, [{ name: 'base' }]);
    const stop = new AbortController();
    const running = agent.run(stop.signal);
    await clock.advance(intervals.pollMs * 3);
    expect(hub.calls.filter((c) => c === 'desired-state (if-none-match)').length).toBeGreaterThanOrEqual(2);
    expect(log.lines.some((l) => /cannot read the SQS queue/.test(l.message))).toBe(true);
    stop.abort();
    await settle();
    await clock.advance(60_000);
    await running;
  });
});

describe('replay: generations only go up', () => {
  it('refuses a validly signed older generation, counts it, reports it, and prunes nothing', async () => {
    const { hub, cluster, agent, metrics } = setUp();
    hub.publish('edge-1', 1, [{ name: 'base' }]);
    const old = { signed: structuredClone(hub.signed), etag: hub.etag };
    hub.publish('edge-1', 2, [{ name: 'base' }, { name: 'web' }]);
    await agent.sync();
    expect(agent.highestGeneration).toBe(2);
    // Something between the agent and the hub serves generation 1 again.
    hub.signed = old.signed;
    hub.etag = old.etag;
    const result = await agent.sync();
    expect(result.kind).toBe('refused');
    expect(result.kind === 'refused' && result.reason).toBe(
      'generation 1 is older than generation 2, the newest this agent has verified (a replayed or stale desired state; the hub orders rollbacks as new generations)',
    );
    expect(cluster.calls.map((c) => c.generation)).toEqual([2]);
    expect(agent.current?.manifest.generation).toBe(2);
    expect(metrics.refusals.value({ reason: 'replay' })).toBe(1);
    expect(parseStatusReport(hub.lastReport).bundles?.[0]?.message).toMatch(
      /^desired state generation 1 refused: generation 1 is older than generation 2.*; still enforcing generation 2$/,
    );
  });

  it('refuses the same generation with other content', async () => {
    const { hub, agent } = setUp();
    hub.publish('edge-1', 3, [{ name: 'base' }]);
    await agent.sync();
    hub.publish('edge-1', 3, [{ name: 'base' }, { name: 'web' }]);
    const result = await agent.sync();
    expect(result.kind === 'refused' && result.reason).toMatch(
      /^generation 3 was already verified with other content/,
    );
  });

  it('takes a rollback ordered by the hub: a higher generation pointing at older bundles', async () => {
    const { hub, cluster, agent } = setUp();
    hub.publish('edge-1', 1, [{ name: 'base' }]);
    await agent.sync();
    hub.publish('edge-1', 2, [{ name: 'base', objects: [] }]);
    await agent.sync();
    hub.publish('edge-1', 3, [{ name: 'base' }]);
    expect((await agent.sync()).kind).toBe('applied');
    expect(cluster.calls.map((c) => c.generation)).toEqual([1, 2, 3]);
  });

  it('remembers the highest generation across restarts, and refuses an older one then too', async () => {
    const generations = new FakeGenerations();
    const first = setUp({ generations });
    first.hub.publish('edge-1', 1, [{ name: 'base' }]);
    const old = structuredClone(first.hub.signed);
    first.hub.publish('edge-1', 5, [{ name: 'base' }]);
    await first.agent.sync();
    expect(generations.mark?.generation).toBe(5);

    // A new process, with no cache: the hub (or a proxy) serves generation 1.
    const second = setUp({ generations });
    second.hub.publish('edge-1', 1, [{ name: 'base' }]);
    second.hub.signed = old;
    expect(await second.agent.loadCache()).toBe(false);
    expect((await second.agent.sync()).kind).toBe('refused');
    expect(second.cluster.calls).toEqual([]);
  });

  it('ignores a cached desired state older than the highest generation verified', async () => {
    const generations = new FakeGenerations();
    const first = setUp({ generations });
    first.hub.publish('edge-1', 1, [{ name: 'base' }]);
    await first.agent.sync();
    const stale = first.cache.stored;
    first.hub.publish('edge-1', 2, [{ name: 'base' }]);
    await first.agent.sync();

    const second = setUp({ generations });
    second.cache.stored = stale;
    expect(await second.agent.loadCache()).toBe(false);
    expect(second.agent.current).toBeUndefined();
    expect(second.metrics.refusals.value({ reason: 'replay' })).toBe(1);
  });
});

describe('Agent.run: nothing blocks the loop', () => {
  it('keeps looking for drift while the hub accepts connections and never answers', async () => {
    const { hub, cluster, clock, agent } = setUp();
    hub.publish('edge-1', 1, [{ name: 'base' }]);
    const stop = new AbortController();
    const running = agent.run(stop.signal);
    await clock.advance(0);
    hub.hang = true;
    const before = cluster.calls.length;
    await clock.advance(intervals.pollMs + 3 * intervals.driftMs);
    // The poll is stuck on the hub; drift checks went on all the same.
    expect(hub.calls.at(-1)).toMatch(/^(desired-state|status)/);
    expect(cluster.calls.slice(before).filter((c) => c.detectDrift).length).toBeGreaterThanOrEqual(3);
    stop.abort();
    await clock.advance(0);
    await running;
  });

  it('reports each bundle as it settles, and sends heartbeats during a long reconcile', async () => {
    const { hub, cluster, clock, agent } = setUp();
    hub.publish('edge-1', 1, [{ name: 'base' }]);
    cluster.slow = { clock, ms: 3 * intervals.heartbeatMs };
    const stop = new AbortController();
    const running = agent.run(stop.signal);
    const sentAt: number[] = [];
    const t0 = clock.now();
    const post = hub.postStatus.bind(hub);
    hub.postStatus = async (report, signal) => {
      sentAt.push(clock.now() - t0);
      return post(report, signal);
    };
    await clock.advance(3 * intervals.heartbeatMs + 1);
    const gaps = sentAt.slice(1).map((t, i) => t - (sentAt[i] as number));
    expect(sentAt.length).toBeGreaterThanOrEqual(4);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(intervals.heartbeatMs);
    expect(hub.lastReport?.bundles?.[0]?.state).toBe('Ready');
    stop.abort();
    await clock.advance(3 * intervals.heartbeatMs);
    await running;
  });

  it('looks again at a bundle that is not ready after 1 s, then less often while nothing changes', async () => {
    const { hub, cluster, clock, agent } = setUp();
    cluster.states.set('base', 'NotReady');
    hub.publish('edge-1', 1, [{ name: 'base' }]);
    const stop = new AbortController();
    const running = agent.run(stop.signal);
    const t0 = clock.now();
    const at: number[] = [];
    const reconcile = cluster.reconcile.bind(cluster);
    cluster.reconcile = async (state, opts) => {
      at.push(clock.now() - t0);
      return reconcile(state, opts);
    };
    await clock.advance(40_000);
    expect(at.slice(0, 7)).toEqual([0, 1_000, 3_000, 7_000, 15_000, 25_000, 35_000]);
    stop.abort();
    await clock.advance(0);
    await running;
  });
});
