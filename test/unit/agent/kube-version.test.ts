/**
 * The agent reports its cluster's Kubernetes version: read from the API server at start and
 * every `kubeVersionMs`, sent with every status report, left out for a hub that does not
 * take it.
 */
import type { ClusterStatusReport } from '@flotilla/shared/agent';
import { parseStatusReport } from '@flotilla/shared/hub';
import { describe, expect, it } from 'vitest';
import { HubError } from '../../../agent/src/hub/hub-client.ts';
import { Agent, type AgentIntervals, defaultKubeVersionMs } from '../../../agent/src/reconcile/agent.ts';
import type { StatusReceipt } from '../../../agent/src/reconcile/ports.ts';
import { FakeCache, FakeClock, FakeCluster, FakeHub, keys, memoryLogger } from './fakes.ts';

const intervals: AgentIntervals = {
  pollMs: 30_000,
  resyncMs: 300_000,
  driftMs: 60_000,
  heartbeatMs: 60_000,
  requeueMs: 10_000,
  backoffMinMs: 1_000,
  backoffMaxMs: 60_000,
};

/** A hub from before `kubeVersion`: it refuses the field as unknown, as the hub's strict validation does. */
class OlderHub extends FakeHub {
  refused = 0;
  override async postStatus(report: ClusterStatusReport, signal?: AbortSignal): Promise<StatusReceipt> {
    if (report.kubeVersion !== undefined) {
      this.refused++;
      throw new HubError('status: HTTP 400 invalid_request: kubeVersion: unknown field', {
        status: 400,
        code: 'invalid_request',
        retryable: false,
        fields: ['kubeVersion'],
      });
    }
    return super.postStatus(report, signal);
  }
}

function setUp(opts: { hub?: FakeHub; versions?: (string | Error)[]; withoutPort?: boolean } = {}) {
  const hub = opts.hub ?? new FakeHub();
  const clock = new FakeClock();
  const log = memoryLogger();
  const versions = opts.versions ?? ['v1.33.2'];
  const reads: number[] = [];
  const kubeVersion = async () => {
    reads.push(clock.now());
    const next = versions.length > 1 ? versions.shift() : versions[0];
    if (next instanceof Error) throw next;
    return next as string;
  };
  const agent = new Agent(
    {
      hub,
      cluster: new FakeCluster(),
      cache: new FakeCache(),
      clock,
      log,
      ...(opts.withoutPort ? {} : { kubeVersion }),
    },
    { clusterId: 'edge-1', hubPublicKey: keys.publicKeyPem, agentVersion: '0.1.0', intervals },
  );
  return { hub, clock, log, agent, reads };
}

describe('the agent reports the Kubernetes version', () => {
  it('reads it, reports it at once, and sends it with every report after', async () => {
    const { hub, agent } = setUp();
    expect(await agent.checkKubeVersion()).toBe('v1.33.2');
    expect(hub.reports).toHaveLength(1);
    expect(parseStatusReport(hub.lastReport).kubeVersion).toBe('v1.33.2');
    await agent.sendStatus();
    expect(hub.lastReport?.kubeVersion).toBe('v1.33.2');
    // The same version again: nothing extra is sent.
    await agent.checkKubeVersion();
    expect(hub.reports).toHaveLength(2);
  });

  it('sends none without a way to read it, and none before the first read', async () => {
    const without = setUp({ withoutPort: true });
    expect(await without.agent.checkKubeVersion()).toBeUndefined();
    await without.agent.sendStatus();
    expect(without.hub.lastReport).not.toHaveProperty('kubeVersion');
    const before = setUp();
    await before.agent.sendStatus();
    expect(before.hub.lastReport).not.toHaveProperty('kubeVersion');
  });

  it('keeps the last version when a read fails, and leaves out one the hub would refuse', async () => {
    const { hub, agent, log } = setUp({
      versions: ['v1.33.2', new Error('connect ECONNREFUSED'), 'v1.34', 'v1.34', 'v1.34.0'],
    });
    await agent.checkKubeVersion();
    expect(await agent.checkKubeVersion()).toBe('v1.33.2');
    expect(log.lines.some((l) => l.message.startsWith('cannot read the Kubernetes version'))).toBe(true);
    expect(await agent.checkKubeVersion()).toBeUndefined();
    expect(await agent.checkKubeVersion()).toBeUndefined();
    expect(log.lines.filter((l) => l.message.includes('a version the hub would refuse'))).toHaveLength(1);
    await agent.sendStatus();
    expect(hub.lastReport).not.toHaveProperty('kubeVersion');
    expect(await agent.checkKubeVersion()).toBe('v1.34.0');
    expect(hub.lastReport?.kubeVersion).toBe('v1.34.0');
  });

  it('reads it at start and every kubeVersionMs while running, and reports a change as soon as it is read', async () => {
    const { hub, clock, agent, reads } = setUp({ versions: ['v1.33.2', 'v1.33.2', 'v1.34.1'] });
    hub.publish('edge-1', 1, [{ name: 'base' }]);
    const sentAt: [number, string | undefined][] = [];
    const post = hub.postStatus.bind(hub);
    hub.postStatus = (report, signal) => {
      sentAt.push([clock.now(), report.kubeVersion]);
      return post(report, signal);
    };
    const t0 = clock.now();
    const stop = new AbortController();
    const running = agent.run(stop.signal);
    await clock.advance(0);
    expect(reads).toEqual([t0]);
    expect(hub.reports.some((r) => r.kubeVersion === 'v1.33.2')).toBe(true);
    await clock.advance(defaultKubeVersionMs);
    expect(reads).toEqual([t0, t0 + defaultKubeVersionMs]);
    await clock.advance(defaultKubeVersionMs);
    expect(reads).toHaveLength(3);
    // The control plane was upgraded: the hub hears of it with the read, not a heartbeat later.
    const upgradeReadAt = reads[2] as number;
    expect(sentAt.find(([, v]) => v === 'v1.34.1')?.[0]).toBe(upgradeReadAt);
    expect(sentAt.filter(([at]) => at < upgradeReadAt).every(([, v]) => v === 'v1.33.2')).toBe(true);
    stop.abort();
    await clock.advance(0);
    await running;
  });
});

describe('a hub older than kubeVersion', () => {
  it('gets the same report without it, and the field is offered again at the next read', async () => {
    const hub = new OlderHub();
    const { agent, log } = setUp({ hub });
    await agent.checkKubeVersion();
    expect(hub.refused).toBe(1);
    expect(hub.reports).toHaveLength(1);
    expect(hub.lastReport).not.toHaveProperty('kubeVersion');
    expect(log.lines.some((l) => l.message.startsWith('the hub does not take the Kubernetes version'))).toBe(
      true,
    );
    expect(log.lines.some((l) => l.message.includes('dropping it'))).toBe(false);
    // Heartbeats go on without it, and without another refusal.
    await agent.sendStatus();
    await agent.sendStatus();
    expect(hub.refused).toBe(1);
    expect(hub.reports).toHaveLength(3);
    // The next read offers it again (the hub may have been upgraded); still refused, still reported.
    await agent.checkKubeVersion();
    expect(hub.refused).toBe(2);
    expect(hub.reports).toHaveLength(4);
    expect(log.lines.filter((l) => l.message.startsWith('the hub does not take'))).toHaveLength(1);
  });

  it('is told of a report it refuses for another field as before: dropped, with the reason logged', async () => {
    const hub = new FakeHub();
    hub.postStatus = async () => {
      throw new HubError('status: HTTP 400 invalid_request: observedAt: bad', {
        status: 400,
        retryable: false,
        fields: ['observedAt'],
      });
    };
    const { agent, log } = setUp({ hub });
    await agent.checkKubeVersion();
    expect(log.lines.some((l) => l.message === 'the hub refused the status report; dropping it')).toBe(true);
  });
});
