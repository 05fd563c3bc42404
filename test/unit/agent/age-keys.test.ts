/**
 * The cluster's age keys on the agent's side: the key file format and rotation list (pure),
 * and the agent reporting its recipients, rotating once per hub request, and leaving the
 * fields out for a hub older than them. The key store's Kubernetes side is tested against a
 * real API server in test/integration/agent/age-keys.test.ts.
 */
import type { AgeRecipient, ClusterStatusReport } from '@flotilla/shared/agent';
import { parseStatusReport } from '@flotilla/shared/hub';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { describe, expect, it } from 'vitest';
import { HubError } from '../../../agent/src/hub/hub-client.ts';
import { Agent, type AgentIntervals } from '../../../agent/src/reconcile/agent.ts';
import type { AgeKeysPort, StatusReceipt } from '../../../agent/src/reconcile/ports.ts';
import { parseIdentities, rotatedIdentities } from '../../../agent/src/secrets/age-key-store.ts';
import { FakeCache, FakeClock, FakeCluster, FakeHub, keys, memoryLogger, settle } from './fakes.ts';

const intervals: AgentIntervals = {
  pollMs: 30_000,
  resyncMs: 300_000,
  driftMs: 60_000,
  heartbeatMs: 60_000,
  requeueMs: 10_000,
  backoffMinMs: 1_000,
  backoffMaxMs: 60_000,
};

describe('the key file format', () => {
  it('reads identities as age-keygen writes them, skipping comments, and counts what it cannot read', () => {
    const text = [
      '# created: 2026-01-01T00:00:00Z',
      '# public key: age1…',
      'AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSQ0CUNPZ',
      '',
      '  AGE-SECRET-KEY-1ABC  ',
      'AGE-PLUGIN-YUBIKEY-1XYZ',
      'age-secret-key-1lowercase',
    ].join('\r\n');
    expect(parseIdentities(text)).toEqual({
      identities: [
        'AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSQ0CUNPZ',
        'AGE-SECRET-KEY-1ABC',
      ],
      unreadable: 2,
    });
  });

  it('keeps the new identity first and the newest old ones, up to keep', () => {
    expect(rotatedIdentities(['K2', 'K1', 'K0'], 'K3', 3)).toEqual(['K3', 'K2', 'K1']);
    expect(rotatedIdentities(['K1'], 'K2', 3)).toEqual(['K2', 'K1']);
    expect(rotatedIdentities(['K1'], 'K2', 1)).toEqual(['K2']);
    expect(rotatedIdentities(['K2', 'K1'], 'K2', 3)).toEqual(['K2', 'K1']);
  });
});

/** Keys in memory: a cluster key list (newest first) and group keys, as the store keeps them in Secrets. */
class FakeKeys implements AgeKeysPort {
  own: string[] = [];
  groups = new Map<string, string>();
  lastDone: string | undefined;
  rotations = 0;
  problems: { secret: string; message: string }[] = [];
  async identities() {
    return [...this.own, ...this.groups.values()];
  }
  async recipients(): Promise<AgeRecipient[]> {
    if (this.own.length === 0) this.own = [await generateIdentity()];
    const out = [{ name: 'cluster', recipient: await identityToRecipient(this.own[0] as string) }];
    for (const [name, id] of this.groups)
      out.push({ name: `group/${name}`, recipient: await identityToRecipient(id) });
    return out;
  }
  async rotate(requestId: string) {
    if (this.lastDone === requestId)
      return { recipient: await identityToRecipient(this.own[0] as string), rotated: false };
    this.rotations++;
    this.own = rotatedIdentities(this.own, await generateIdentity(), 3);
    this.lastDone = requestId;
    return { recipient: await identityToRecipient(this.own[0] as string), rotated: true };
  }
  async lastRotation() {
    return this.lastDone;
  }
}

function setUp(hub = new FakeHub(), secretKeys = new FakeKeys()) {
  const log = memoryLogger();
  const agent = new Agent(
    { hub, cluster: new FakeCluster(), cache: new FakeCache(), clock: new FakeClock(), log, secretKeys },
    { clusterId: 'edge-1', hubPublicKey: keys.publicKeyPem, agentVersion: '0.1.0', intervals },
  );
  return { hub, agent, keys: secretKeys, log };
}

/** Until the background rotation the answer started has reported. */
/** Waits for `probe` by wall time, not turns of the event loop: key generation is real crypto, slower under load. */
async function until(probe: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  expect(probe()).toBe(true);
}

describe('the agent reports its age recipients', () => {
  it('reads them (making the key), reports them at once, and again only when they change', async () => {
    const { hub, agent, keys: k, log } = setUp();
    const first = await agent.checkRecipients();
    expect(first?.map((r) => r.name)).toEqual(['cluster']);
    expect(hub.reports).toHaveLength(1);
    expect(parseStatusReport(hub.lastReport).recipients).toEqual(first);
    await agent.checkRecipients();
    expect(hub.reports).toHaveLength(1);
    // An operator installs a group key: reported at the next read.
    k.groups.set('prod', await generateIdentity());
    await agent.checkRecipients();
    expect(hub.reports).toHaveLength(2);
    expect(hub.lastReport?.recipients?.map((r) => r.name)).toEqual(['cluster', 'group/prod']);
    // Heartbeats carry them too.
    await agent.sendStatus();
    expect(hub.lastReport?.recipients).toHaveLength(2);
    // Recipients are logged (public); identities never are, nor sent.
    const everything = JSON.stringify([hub.reports, log.lines]);
    expect(everything).toContain('age1');
    expect(everything).not.toMatch(/AGE-SECRET-KEY/i);
  });

  it('rotates once per request id the hub answers with, and reports the new recipient with the id', async () => {
    const hub = new FakeHub();
    const { agent, keys: k } = setUp(hub);
    const before = (await agent.checkRecipients())?.[0]?.recipient;
    hub.receipt = { desired: null, rotateKey: { id: 'rot_000000000001' } } as StatusReceipt;
    await agent.sendStatus();
    await until(() => hub.lastReport?.keyRotation === 'rot_000000000001');
    const report = hub.lastReport as ClusterStatusReport;
    expect(report.recipients?.[0]?.recipient).not.toBe(before);
    expect(k.own).toHaveLength(2);
    // The hub asks again before it read the report: no second rotation.
    await agent.sendStatus();
    await agent.sendStatus();
    for (let i = 0; i < 20; i++) await settle();
    expect(k.rotations).toBe(1);
    // A new request: a new key, the two before it kept.
    hub.receipt = { desired: null, rotateKey: { id: 'rot_000000000002' } } as StatusReceipt;
    await agent.sendStatus();
    await until(() => hub.lastReport?.keyRotation === 'rot_000000000002');
    expect(k.rotations).toBe(2);
    expect(k.own).toHaveLength(3);
  });

  it('does not rotate again after a restart for a request done before it', async () => {
    const hub = new FakeHub();
    const k = new FakeKeys();
    await k.recipients();
    await k.rotate('rot_000000000001');
    const { agent } = setUp(hub, k);
    await agent.checkRecipients();
    expect(hub.lastReport?.keyRotation).toBe('rot_000000000001');
    hub.receipt = { desired: null, rotateKey: { id: 'rot_000000000001' } } as StatusReceipt;
    await agent.sendStatus();
    for (let i = 0; i < 20; i++) await settle();
    expect(k.rotations).toBe(1);
  });
});

/** A hub from before the recipients: it refuses them as unknown fields, as its strict validation does. */
class OlderHub extends FakeHub {
  refused = 0;
  override async postStatus(report: ClusterStatusReport, signal?: AbortSignal): Promise<StatusReceipt> {
    if (report.recipients !== undefined) {
      this.refused++;
      throw new HubError('status: HTTP 400 invalid_request: recipients: unknown field', {
        status: 400,
        code: 'invalid_request',
        retryable: false,
        fields: ['recipients'],
      });
    }
    return super.postStatus(report, signal);
  }
}

describe('a hub older than the recipients', () => {
  it('gets the report without them, and they are offered again at the next read', async () => {
    const hub = new OlderHub();
    const { agent, log } = setUp(hub);
    await agent.checkRecipients();
    expect(hub.refused).toBe(1);
    expect(hub.reports).toHaveLength(1);
    expect(hub.lastReport).not.toHaveProperty('recipients');
    expect(log.lines.some((l) => l.message.includes('does not take the age recipients'))).toBe(true);
    await agent.sendStatus();
    expect(hub.refused).toBe(1);
    await agent.checkRecipients();
    expect(hub.refused).toBe(2);
    expect(log.lines.filter((l) => l.message.includes('does not take the age recipients'))).toHaveLength(1);
  });
});
