import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  refreshTime,
  type ServiceAccountToken,
  ServiceAccountTokenProjector,
} from '../../../cli/src/bootstrap/service-account-token.ts';

const hour = 3_600_000;

describe('refreshTime', () => {
  it('is at 80% of the lifetime, as the kubelet refreshes projected tokens', () => {
    expect(refreshTime(0, hour)).toBe(0.8 * hour);
    expect(refreshTime(1_000, 1_000 + 600_000)).toBe(1_000 + 480_000);
  });

  it('is never later than 24 hours after issue', () => {
    expect(refreshTime(0, 48 * hour)).toBe(24 * hour);
  });
});

describe('ServiceAccountTokenProjector', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  /** A projector on a fake clock and timer; tokens come from `answers`, in turn. */
  function setup(answers: (() => ServiceAccountToken)[]) {
    const dir = mkdtempSync(join(tmpdir(), 'flotilla-sa-'));
    dirs.push(dir);
    let now = 1_000_000;
    const timers: { at: number; fn: () => void }[] = [];
    const errors: unknown[] = [];
    let calls = 0;
    const projector = new ServiceAccountTokenProjector({
      dir: join(dir, 'sa'),
      ca: Buffer.from('CA PEM'),
      clock: () => now,
      schedule: (fn, ms) => {
        const timer = { at: now + ms, fn };
        timers.push(timer);
        return () => timers.splice(timers.indexOf(timer), 1);
      },
      retryMs: 10_000,
      request: async () => {
        const answer = answers[Math.min(calls++, answers.length - 1)];
        if (!answer) throw new Error('no answer');
        return answer();
      },
      onError: (e) => errors.push(e),
    });
    const token = () => readFileSync(join(dir, 'sa', 'token'), 'utf8');
    /** Moves the clock to the next timer and runs it. */
    const tick = async () => {
      timers.sort((a, b) => a.at - b.at);
      const next = timers.shift();
      if (!next) throw new Error('nothing scheduled');
      now = next.at;
      next.fn();
      await new Promise((r) => setImmediate(r));
    };
    return { projector, token, tick, errors, at: () => now, dir, pending: () => timers.length };
  }

  it('writes the token and CA, then requests a new token at 80% of its lifetime, before the old one expires', async () => {
    let issued = 0;
    const s = setup([() => ({ token: `token-${++issued}`, expiresAt: s.at() + hour })]);
    await s.projector.start();
    expect(s.token()).toBe('token-1');
    expect(readFileSync(join(s.dir, 'sa', 'ca.crt'), 'utf8')).toBe('CA PEM');
    const start = s.at();
    await s.tick();
    expect(s.at() - start).toBe(0.8 * hour);
    expect(s.token()).toBe('token-2');
    await s.tick();
    expect(s.at() - start).toBe(1.6 * hour);
    expect(s.token()).toBe('token-3');
  });

  it('keeps the token on disk through a failed refresh and tries again soon', async () => {
    const s = setup([
      () => ({ token: 'first', expiresAt: s.at() + hour }),
      () => {
        throw new Error('API server down');
      },
      () => ({ token: 'second', expiresAt: s.at() + hour }),
    ]);
    await s.projector.start();
    await s.tick();
    expect(s.errors.map((e) => (e as Error).message)).toEqual(['API server down']);
    expect(s.token()).toBe('first');
    const failedAt = s.at();
    await s.tick();
    expect(s.at() - failedAt).toBe(10_000);
    expect(s.token()).toBe('second');
  });

  it('stops refreshing when stopped', async () => {
    const s = setup([() => ({ token: 't', expiresAt: s.at() + hour })]);
    await s.projector.start();
    expect(s.pending()).toBe(1);
    s.projector.stop();
    expect(s.pending()).toBe(0);
  });
});
