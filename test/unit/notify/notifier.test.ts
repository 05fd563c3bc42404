import {
  type Clock,
  DEFAULT_RETRY_POLICY,
  type FleetEvent,
  loadNotifications,
  MemoryDedupStore,
  type NotificationConfig,
  Notifier,
  type OutboundMessage,
  type ProviderSpec,
  type ProviderTransport,
  parseRetryAfter,
  type SendResult,
  sendWithRetry,
  summarize,
  summaryText,
  TokenBucket,
} from '@flotilla/shared/notify';
import { describe, expect, it } from 'vitest';

/** A clock that only moves when something sleeps (or the test says so). */
class FakeClock implements Clock {
  t = Date.parse('2026-12-07T00:00:00Z');
  readonly sleeps: number[] = [];
  now(): number {
    return this.t;
  }
  async sleep(ms: number): Promise<void> {
    this.sleeps.push(ms);
    this.t += ms;
  }
}

class RecordingTransport implements ProviderTransport {
  readonly sent: { provider: string; message: OutboundMessage }[] = [];
  readonly script: SendResult[] = [];
  async send(provider: ProviderSpec, message: OutboundMessage): Promise<SendResult> {
    this.sent.push({ provider: provider.name, message });
    return this.script.shift() ?? { ok: true };
  }
}

const quiet = { info: () => {}, warn: () => {} };

function configOf(yaml: string): NotificationConfig {
  const { config, errors } = loadNotifications(new Map([['notifications/n.yaml', yaml]]));
  expect(errors).toEqual([]);
  return config;
}

const yaml = `providers:
  - {name: slack, type: slack, secretRef: s}
  - {name: hook, type: webhook, secretRef: h}
alerts:
  - name: prod-bundles
    providers: [slack]
    eventTypes: ["bundle.*"]
    severity: warning
    bundles: [web]
    clusterSelector: env=prod
  - name: offline
    providers: [slack, hook]
    eventTypes: [cluster.offline]
`;

let seq = 0;
function event(
  over: Partial<Omit<FleetEvent, 'cluster'>> & { cluster?: string; env?: string } = {},
): FleetEvent {
  const { cluster = 'prod-eu-1', env = 'prod', ...rest } = over;
  seq++;
  return {
    type: 'bundle.failed',
    severity: 'error',
    key: `bundle.failed/${cluster}/web/${seq}`,
    at: '2026-12-07T00:00:00.000Z',
    message: `web failed on ${cluster}`,
    cluster: { name: cluster, labels: { env } },
    bundle: 'web',
    ...rest,
  };
}

function setup(config = configOf(yaml)) {
  const clock = new FakeClock();
  const transport = new RecordingTransport();
  const notifier = new Notifier(
    { transport, dedup: new MemoryDedupStore(), clock, log: quiet, random: () => 0.5 },
    {},
  );
  notifier.configure(config);
  return { clock, transport, notifier };
}

describe('matching', () => {
  it('chooses providers by type glob, severity, bundle and cluster selector', async () => {
    const { transport, notifier } = setup();
    await notifier.handle([
      event(), // slack
      event({ severity: 'info', type: 'bundle.recovered' }), // below warning
      event({ env: 'staging' }), // selector
      event({ bundle: 'api' }), // bundle
      event({ type: 'sync.failed', cluster: undefined as never, bundle: undefined }), // no alert
      { ...event({ type: 'cluster.offline', severity: 'warning' }), bundle: undefined }, // slack and hook
    ]);
    const sent = transport.sent.map(
      (s) => `${s.provider}:${s.message.kind === 'event' ? s.message.event.type : ''}`,
    );
    // Providers are served in parallel: order within a provider only.
    expect(sent.sort()).toEqual(['hook:cluster.offline', 'slack:bundle.failed', 'slack:cluster.offline']);
  });

  it('an alert with a cluster selector does not take events about no cluster', async () => {
    const { transport, notifier } = setup();
    const { cluster: _c, ...noCluster } = event();
    await notifier.handle([noCluster]);
    expect(transport.sent).toEqual([]);
  });
});

describe('de-duplication', () => {
  it('delivers the same key once within the window and again after it', async () => {
    const { clock, transport, notifier } = setup();
    const e = event();
    const first = await notifier.handle([e, e]);
    expect(first.delivered).toEqual([e.key]);
    expect(first.duplicates).toEqual([e.key]);
    clock.t += 9 * 60_000;
    expect((await notifier.handle([e])).duplicates).toEqual([e.key]);
    clock.t += 2 * 60_000;
    expect((await notifier.handle([e])).delivered).toEqual([e.key]);
    expect(transport.sent).toHaveLength(2);
  });

  it('releases the claim when delivery fails, so a redelivery is sent', async () => {
    const { transport, notifier } = setup();
    transport.script.push({ ok: false, retryable: false, error: 'HTTP 404' });
    const e = event();
    const report = await notifier.handle([e]);
    expect(report.failed).toEqual([{ key: e.key, provider: 'slack', error: 'HTTP 404' }]);
    expect((await notifier.handle([e])).delivered).toEqual([e.key]);
  });
});

describe('rate limit and summary', () => {
  it('a burst of 1,000 events is 19 messages and one summary; later events wait for a token', async () => {
    const { clock, transport, notifier } = setup();
    const burst = Array.from({ length: 1000 }, (_, i) => event({ cluster: `c-${i}` }));
    burst.push({
      ...event({ type: 'cluster.offline', severity: 'warning', cluster: 'c-1' }),
      bundle: undefined,
    });
    const report = await notifier.handle(burst);
    const slack = transport.sent.filter((s) => s.provider === 'slack');
    expect(slack).toHaveLength(20);
    expect(slack.slice(0, 19).every((s) => s.message.kind === 'event')).toBe(true);
    const summary = slack[19]?.message;
    expect(summary?.kind).toBe('summary');
    if (summary?.kind !== 'summary') throw new Error('no summary');
    expect(summary.text).toBe(
      '982 more events: 981 bundle.failed (web on 981 clusters), 1 cluster.offline (1 cluster)',
    );
    expect(report.delivered).toHaveLength(1001 + 1); // the offline event went to the hook too
    expect(report.held).toEqual([]);

    // The bucket is empty: the next events are held until a token is back (60 s / 20 = 3 s).
    const later = [event({ cluster: 'x-1' }), event({ cluster: 'x-2' })];
    const held = await notifier.handle(later);
    expect(held.held).toEqual(later.map((e) => e.key));
    expect(notifier.nextFlushAt()).toBe(clock.t + 3000);
    expect((await notifier.flush()).messages).toEqual([]);
    clock.t += 3000;
    const flushed = await notifier.flush();
    expect(flushed.messages).toEqual([{ provider: 'slack', kind: 'summary', events: 2 }]);
    expect(flushed.delivered).toEqual(later.map((e) => e.key));
    expect(notifier.nextFlushAt()).toBeUndefined();
  });

  it('abandoning held events releases their claims', async () => {
    const { transport, notifier } = setup(
      configOf(`providers:
  - {name: slack, type: slack, secretRef: s, rateLimit: {messages: 1, per: 1h}}
alerts:
  - {name: all, providers: [slack]}
`),
    );
    await notifier.handle([event()]);
    const e = event();
    expect((await notifier.handle([e])).held).toEqual([e.key]);
    expect(await notifier.abandonHeld()).toEqual([e.key]);
    expect(notifier.heldKeys()).toEqual([]);
    expect(transport.sent).toHaveLength(1);
  });

  it('summaries count by type, bundle and cluster', () => {
    const s = summarize([
      event({ cluster: 'a' }),
      event({ cluster: 'b' }),
      event({ cluster: 'a', bundle: 'api' }),
      { ...event({ type: 'cluster.offline', cluster: 'z' }), bundle: undefined },
    ]);
    expect(summaryText(s)).toBe(
      '4 more events: 3 bundle.failed (web on 2 clusters, api on 1 cluster), 1 cluster.offline (1 cluster)',
    );
  });

  it('the token bucket refills evenly', () => {
    const b = new TokenBucket({ messages: 2, perMs: 1000 }, 0);
    expect([b.take(0), b.take(0), b.take(0)]).toEqual([true, true, false]);
    expect(b.nextTokenAt(0)).toBe(500);
    expect(b.take(499)).toBe(false);
    expect(b.take(500)).toBe(true);
    expect(b.available(10_000)).toBe(2);
  });
});

describe('retries', () => {
  const provider = configOf(yaml).providers[0] as ProviderSpec;
  const message: OutboundMessage = { kind: 'event', event: event() };

  it('retries 5xx, 429 and network errors with exponential backoff and full jitter', async () => {
    const clock = new FakeClock();
    const t = new RecordingTransport();
    t.script.push(
      { ok: false, retryable: true, error: 'HTTP 500' },
      { ok: false, retryable: true, error: 'network error: ECONNRESET' },
      { ok: false, retryable: true, error: 'HTTP 503' },
    );
    const out = await sendWithRetry(t, provider, message, DEFAULT_RETRY_POLICY, clock, () => 0.5);
    expect(out).toEqual({ delivered: true, attempts: 4 });
    expect(clock.sleeps).toEqual([500, 1000, 2000]);
  });

  it('honours Retry-After, and gives up on one longer than the policy allows', async () => {
    const clock = new FakeClock();
    const t = new RecordingTransport();
    t.script.push({ ok: false, retryable: true, retryAfterMs: 7000, error: 'HTTP 429' });
    expect(await sendWithRetry(t, provider, message, DEFAULT_RETRY_POLICY, clock, () => 0.1)).toEqual({
      delivered: true,
      attempts: 2,
    });
    expect(clock.sleeps).toEqual([7000]);
    t.script.push({ ok: false, retryable: true, retryAfterMs: 600_000, error: 'HTTP 429' });
    expect(await sendWithRetry(t, provider, message, DEFAULT_RETRY_POLICY, clock, () => 0.1)).toEqual({
      delivered: false,
      attempts: 1,
      error: 'HTTP 429 (Retry-After 600s)',
    });
  });

  it('does not retry other 4xx, and stops after the last attempt', async () => {
    const clock = new FakeClock();
    const t = new RecordingTransport();
    t.script.push({ ok: false, retryable: false, error: 'HTTP 400' });
    expect(await sendWithRetry(t, provider, message, DEFAULT_RETRY_POLICY, clock, () => 0.5)).toEqual({
      delivered: false,
      attempts: 1,
      error: 'HTTP 400',
    });
    for (let i = 0; i < 5; i++) t.script.push({ ok: false, retryable: true, error: 'HTTP 502' });
    const out = await sendWithRetry(t, provider, message, DEFAULT_RETRY_POLICY, clock, () => 0.999);
    expect(out).toEqual({ delivered: false, attempts: 5, error: 'HTTP 502' });
    // Capped at 30 s per wait.
    expect(clock.sleeps).toEqual([999, 1998, 3996, 7992]);
  });

  it('parses Retry-After as seconds or a date', () => {
    const now = Date.parse('2026-12-07T00:00:00Z');
    expect(parseRetryAfter('12', now)).toBe(12_000);
    expect(parseRetryAfter('Mon, 07 Dec 2026 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });
});
