import { describe, expect, it } from 'vitest';
import {
  LeaderElectionConfigError,
  LeaderElector,
  type LeaderElectorOptions,
} from '../../../agent/src/leader/leader-elector.ts';
import {
  type LeaderLock,
  type LeaderRecord,
  LeaseConflictError,
  type VersionedRecord,
} from '../../../agent/src/leader/lease-lock.ts';
import { silentLogger } from '../../../agent/src/log.ts';
import type { Clock } from '../../../agent/src/reconcile/ports.ts';

/** A Lease in memory, with resourceVersions as the API server keeps them; it can be made to fail. */
class FakeLock implements LeaderLock {
  readonly description = 'flotilla-system/flotilla-agent-leader';
  stored: VersionedRecord | undefined;
  #version = 0;
  failing = false;
  readonly writes: LeaderRecord[] = [];

  #store(record: LeaderRecord): VersionedRecord {
    this.stored = { record, raw: JSON.stringify(record), resourceVersion: String(++this.#version) };
    this.writes.push(record);
    return this.stored;
  }
  async get() {
    if (this.failing) throw new Error('connection refused');
    return this.stored;
  }
  async create(record: LeaderRecord) {
    if (this.failing) throw new Error('connection refused');
    if (this.stored) throw new LeaseConflictError('exists');
    return this.#store(record);
  }
  async update(record: LeaderRecord, resourceVersion: string) {
    if (this.failing) throw new Error('connection refused');
    if (this.stored?.resourceVersion !== resourceVersion) throw new LeaseConflictError('conflict');
    return this.#store(record);
  }
}

/** Time moves only when the code sleeps, or the test says so. */
class FakeClock implements Clock {
  t = 1_000_000;
  now() {
    return this.t;
  }
  random() {
    return 0;
  }
  async sleep(ms: number, signal?: AbortSignal) {
    if (signal?.aborted) return;
    this.t += ms;
    await new Promise((r) => setImmediate(r));
  }
}

function elector(lock: LeaderLock, clock: Clock, identity: string, more: Partial<LeaderElectorOptions> = {}) {
  return new LeaderElector({ lock, identity, clock, log: silentLogger, ...more });
}

describe('LeaderElector.tryAcquireOrRenew', () => {
  it('creates the Lease when there is none, and holds it', async () => {
    const lock = new FakeLock();
    const clock = new FakeClock();
    expect(await elector(lock, clock, 'pod-a').tryAcquireOrRenew()).toBe(true);
    expect(lock.stored?.record).toEqual({
      holderIdentity: 'pod-a',
      leaseDurationSeconds: 15,
      acquireTime: clock.t,
      renewTime: clock.t,
      leaseTransitions: 0,
    });
  });

  it('leaves a Lease held by another until it has not changed for a lease duration, by its own clock', async () => {
    const lock = new FakeLock();
    const clock = new FakeClock();
    const a = elector(lock, clock, 'pod-a');
    const b = elector(lock, clock, 'pod-b');
    await a.tryAcquireOrRenew();
    expect(await b.tryAcquireOrRenew()).toBe(false);
    // The leader renews every 2 s: the standby sees the record change, and waits on.
    for (let i = 0; i < 10; i++) {
      clock.t += 2_000;
      expect(await a.tryAcquireOrRenew()).toBe(true);
      expect(await b.tryAcquireOrRenew()).toBe(false);
    }
    // The leader dies: 14.999 s after b last saw a change, the Lease is still a's.
    clock.t += 14_999;
    expect(await b.tryAcquireOrRenew()).toBe(false);
    clock.t += 1;
    expect(await b.tryAcquireOrRenew()).toBe(true);
    expect(lock.stored?.record).toMatchObject({
      holderIdentity: 'pod-b',
      leaseTransitions: 1,
      acquireTime: clock.t,
    });
    expect(b.observedHolder).toBe('pod-b');
  });

  it('renews keeping its acquire time, and takes a released Lease at once', async () => {
    const lock = new FakeLock();
    const clock = new FakeClock();
    const a = elector(lock, clock, 'pod-a');
    await a.tryAcquireOrRenew();
    const acquired = clock.t;
    clock.t += 2_000;
    await a.tryAcquireOrRenew();
    expect(lock.stored?.record).toMatchObject({ acquireTime: acquired, renewTime: acquired + 2_000 });
    lock.stored = {
      ...(lock.stored as VersionedRecord),
      record: { ...(lock.stored?.record as LeaderRecord), holderIdentity: '' },
      raw: 'released',
    };
    expect(await elector(lock, clock, 'pod-b').tryAcquireOrRenew()).toBe(true);
  });

  it('of two replicas that read the same version, only one wins: the other gets a conflict', async () => {
    const lock = new FakeLock();
    const clock = new FakeClock();
    const a = elector(lock, clock, 'pod-a');
    const b = elector(lock, clock, 'pod-b');
    await a.tryAcquireOrRenew();
    lock.stored = {
      ...(lock.stored as VersionedRecord),
      record: { ...(lock.stored?.record as LeaderRecord), holderIdentity: '' },
      raw: 'released',
    };
    // Both read the released Lease before either writes.
    const original = lock.get.bind(lock);
    let reads = 0;
    let bothRead: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      bothRead = resolve;
    });
    lock.get = async () => {
      const r = await original();
      if (++reads === 2) bothRead();
      await gate;
      return r;
    };
    const results = await Promise.all([a.tryAcquireOrRenew(), b.tryAcquireOrRenew()]);
    expect(results.sort()).toEqual([false, true]);
    expect(lock.writes.filter((w) => w.holderIdentity !== '').length).toBe(2);
  });

  it('refuses timings where a leader could not step down before another takes over', () => {
    const lock = new FakeLock();
    const clock = new FakeClock();
    const timing = (leaseDurationMs: number, renewDeadlineMs: number, retryPeriodMs: number) => () =>
      elector(lock, clock, 'a', { timing: { leaseDurationMs, renewDeadlineMs, retryPeriodMs } });
    expect(timing(10_000, 10_000, 2_000)).toThrow(LeaderElectionConfigError);
    expect(timing(15_000, 2_000, 2_000)).toThrow(LeaderElectionConfigError);
    expect(timing(15_000, 10_000, 2_000)).not.toThrow();
  });
});

describe('LeaderElector.run', () => {
  it('runs the work only while leading; a renewal failing past the deadline stops it, and it campaigns again', async () => {
    const lock = new FakeLock();
    const clock = new FakeClock();
    const events: string[] = [];
    const a = elector(lock, clock, 'pod-a', {
      onLeadingChange: (l) => events.push(l ? 'leading' : 'stopped'),
    });
    const shutdown = new AbortController();
    let leads = 0;
    let lostAt = 0;
    let failedAt = 0;
    let secondLead: () => void = () => {};
    const ledAgain = new Promise<void>((resolve) => {
      secondLead = resolve;
    });
    const running = a.run(shutdown.signal, async (leading) => {
      leads++;
      if (leads === 2) secondLead();
      if (leads === 1) {
        // Lead for a while, then the API server goes away.
        await clock.sleep(5_000);
        lock.failing = true;
        failedAt = clock.t;
      }
      await new Promise<void>((resolve) =>
        leading.addEventListener('abort', () => resolve(), { once: true }),
      );
      if (leads === 1) {
        lostAt = clock.t;
        lock.failing = false;
      }
    });
    await ledAgain;
    shutdown.abort();
    await running;
    // Stepped down once the last renewal was more than the renew deadline (10 s) ago,
    // before the lease duration (15 s) lets a standby take over.
    expect(lostAt - failedAt).toBeGreaterThanOrEqual(8_000);
    expect(lostAt - failedAt).toBeLessThanOrEqual(12_000);
    expect(events).toEqual(['leading', 'stopped', 'leading', 'stopped']);
    // Released on shutdown: no holder, so a standby need not wait.
    expect(lock.stored?.record.holderIdentity).toBe('');
  });

  it('stands by while another leads, and never runs the work', async () => {
    const lock = new FakeLock();
    const clock = new FakeClock();
    const a = elector(lock, clock, 'pod-a');
    const b = elector(lock, clock, 'pod-b');
    await a.tryAcquireOrRenew();
    const shutdown = new AbortController();
    let ran = false;
    const running = b.run(shutdown.signal, async () => {
      ran = true;
    });
    // a keeps renewing while b campaigns for a minute of fake time.
    const start = clock.t;
    while (clock.t - start < 60_000) {
      await a.tryAcquireOrRenew();
      await new Promise((r) => setImmediate(r));
    }
    shutdown.abort();
    await running;
    expect(ran).toBe(false);
    expect(b.leading).toBe(false);
    expect(lock.stored?.record.holderIdentity).toBe('pod-a');
    expect(b.liveness.lockAnswered).toBe(true);
  });

  it('hands the Lease over when the work fails by itself, so another replica gets its turn', async () => {
    const lock = new FakeLock();
    const clock = new FakeClock();
    const a = elector(lock, clock, 'pod-a');
    const b = elector(lock, clock, 'pod-b');
    const shutdown = new AbortController();
    let failed = false;
    const running = a.run(shutdown.signal, async () => {
      failed = true;
      throw new Error('the agent loop crashed');
    });
    while (!failed) await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    // Released: b takes it at once, without waiting for the lease to expire.
    expect(lock.stored?.record.holderIdentity).toBe('');
    expect(await b.tryAcquireOrRenew()).toBe(true);
    shutdown.abort();
    await running;
    expect(lock.stored?.record.holderIdentity).toBe('pod-b');
  });
});
