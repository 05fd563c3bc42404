import {
  type Clock,
  type FleetEvent,
  loadNotifications,
  MemoryDedupStore,
  Notifier,
  type OutboundMessage,
  type ProviderSpec,
  parseProviderSecret,
  type SendResult,
} from '@flotilla/shared/notify';
import { describe, expect, it } from 'vitest';
import {
  eventBridgeTransport,
  snsTransport,
} from '../../../functions/src/adapters/aws-notification-transports.ts';
import { staticNotificationConfig } from '../../../functions/src/notify/config-source.ts';
import { deliverRecords, parseFleetEvent } from '../../../functions/src/notify/deliver-records.ts';
import { loadNotifierConfig } from '../../../functions/src/notify-config.ts';

class FakeClock implements Clock {
  t = 1_000_000;
  now(): number {
    return this.t;
  }
  async sleep(ms: number): Promise<void> {
    this.t += ms;
  }
}

const quiet = { info: () => {}, warn: () => {}, error: () => {} };

const { config } = loadNotifications(
  new Map([
    [
      'notifications/n.yaml',
      `providers:
  - {name: chat, type: slack, secretRef: s, rateLimit: {messages: 2, per: 1m}}
  - {name: gone, type: slack, secretRef: g}
alerts:
  - {name: failed, providers: [chat], eventTypes: [bundle.failed]}
  - {name: offline, providers: [gone], eventTypes: [cluster.offline]}
`,
    ],
  ]),
);

function event(n: number, type: FleetEvent['type'] = 'bundle.failed'): FleetEvent {
  return { type, severity: 'error', key: `${type}/${n}`, at: '2026-12-07T00:00:00Z', message: `m${n}` };
}

function setup() {
  const clock = new FakeClock();
  const sent: { provider: string; message: OutboundMessage; at: number }[] = [];
  const transport = {
    async send(p: ProviderSpec, message: OutboundMessage): Promise<SendResult> {
      sent.push({ provider: p.name, message, at: clock.t });
      return p.name === 'gone' ? { ok: false, retryable: false, error: 'HTTP 404' } : { ok: true };
    },
  };
  const notifier = new Notifier({ transport, dedup: new MemoryDedupStore(), clock, log: quiet });
  return { clock, sent, deps: { notifier, config: staticNotificationConfig(config), clock, log: quiet } };
}

const records = (events: readonly (FleetEvent | string)[]) =>
  events.map((e, i) => ({ id: `r${i}`, body: typeof e === 'string' ? e : JSON.stringify(e) }));

describe('deliverRecords (the notifier Lambda use case)', () => {
  it('waits within the deadline for the summary of what the rate limit held', async () => {
    const { clock, sent, deps } = setup();
    const start = clock.t;
    const result = await deliverRecords(
      deps,
      records([event(1), event(2), event(3), event(4)]),
      start + 60_000,
    );
    // Two tokens: one single event, one summary of three.
    expect(sent.map((s) => s.message.kind)).toEqual(['event', 'summary']);
    expect(result).toMatchObject({ retry: [], delivered: 4, messages: 2 });
    // Later events in the same minute are held; the summary goes out when a token is back (30 s).
    const later = await deliverRecords(deps, records([event(5), event(6)]), clock.t + 60_000);
    expect(later.retry).toEqual([]);
    expect(sent.at(-1)?.message.kind).toBe('summary');
    expect((sent.at(-1)?.at ?? 0) - start).toBe(30_000);
  });

  it('reports held events as failed when the deadline comes first, and refused ones', async () => {
    const { deps } = setup();
    await deliverRecords(deps, records([event(1), event(2)]), 0);
    const result = await deliverRecords(
      deps,
      records([event(3), event(4, 'cluster.offline'), 'not json', '{"type": "bundle.exploded"}']),
      deps.clock.now() + 1000,
    );
    // r0 is held past the deadline, r1 refused (404); r2 and r3 are dropped, not retried.
    expect(result.retry.sort()).toEqual(['r0', 'r1']);
    // The held claim was released: the redelivery is not a duplicate.
    await deps.clock.sleep(60_000);
    const again = await deliverRecords(deps, records([event(3)]), deps.clock.now() + 1000);
    expect(again).toMatchObject({ retry: [], delivered: 1, duplicates: 0 });
  });
});

describe('parseFleetEvent', () => {
  it('takes fleet events and refuses anything else', () => {
    const e = { ...event(1), cluster: { name: 'c', labels: { env: 'prod' } } };
    expect(parseFleetEvent(JSON.stringify(e))).toEqual(e);
    for (const body of [
      '',
      'null',
      '[]',
      JSON.stringify({ ...e, type: 'bundle.exploded' }),
      JSON.stringify({ ...e, severity: 'fatal' }),
      JSON.stringify({ ...e, key: 1 }),
      JSON.stringify({ ...e, cluster: { name: 'c' } }),
    ]) {
      expect(parseFleetEvent(body)).toBeUndefined();
    }
  });
});

describe('provider secrets', () => {
  it('reads a URL or {address} for chat providers and requires an HMAC key for webhooks', () => {
    expect(parseProviderSecret('slack', 's', ' https://hooks.slack.com/services/T/B/X\n')).toEqual({
      address: 'https://hooks.slack.com/services/T/B/X',
    });
    expect(parseProviderSecret('msteams', 't', '{"address": "https://x.example/w"}')).toEqual({
      address: 'https://x.example/w',
    });
    expect(
      parseProviderSecret(
        'webhook',
        'w',
        '{"address": "https://x.example/h", "hmacKey": "0123456789abcdef"}',
      ),
    ).toEqual({
      address: 'https://x.example/h',
      hmacKey: '0123456789abcdef',
    });
    // Errors name the secret, never its value.
    const attempts: [Parameters<typeof parseProviderSecret>, string][] = [
      [
        ['slack', 's', 'ftp://secret-value'],
        'secret "s" must hold an http(s) URL or {"address": "<http(s) URL>"}',
      ],
      [['slack', 's', '{secret-value'], 'secret "s" is not valid JSON'],
      [
        ['webhook', 'w', '{"address": "https://x.example/h", "hmacKey": "short-secret"}'],
        'secret "w" must hold {"address": "<url>", "hmacKey": "<at least 16 characters>"}',
      ],
    ];
    for (const [args, message] of attempts) {
      expect(() => parseProviderSecret(...args)).toThrow(message);
      try {
        parseProviderSecret(...args);
      } catch (err) {
        expect((err as Error).message).not.toContain('secret-value');
        expect((err as Error).message).not.toContain('short-secret');
      }
    }
  });
});

describe('loadNotifierConfig', () => {
  const base = { AWS_REGION: 'eu-west-1', FLOTILLA_FLEET_REPO_URL: 'https://git.acme.test/fleet.git' };

  it('fills in the defaults', () => {
    expect(loadNotifierConfig(base)).toMatchObject({
      prefix: 'flotilla',
      fleetRepo: {
        url: base.FLOTILLA_FLEET_REPO_URL,
        ref: 'main',
        auth: undefined,
        credentialsSecretId: undefined,
      },
      secrets: { kind: 'secrets-manager', prefix: 'flotilla/notifications/' },
      dedupWindowMs: 600_000,
      configTtlMs: 60_000,
    });
    expect(
      loadNotifierConfig({ ...base, FLOTILLA_NOTIFICATION_SECRETS_FILE: '/etc/n.json' }).secrets,
    ).toEqual({
      kind: 'file',
      path: '/etc/n.json',
    });
  });

  it('reports every problem at once', () => {
    expect(() =>
      loadNotifierConfig({ FLOTILLA_PREFIX: 'Bad', FLOTILLA_NOTIFY_DEDUP_WINDOW: 'ten minutes' }),
    ).toThrow(
      [
        'invalid notifier configuration:',
        `  - FLOTILLA_PREFIX must be 1-20 lowercase letters, digits or '-', got "Bad"`,
        '  - AWS_REGION is required',
        '  - FLOTILLA_FLEET_REPO_URL is required',
        '  - FLOTILLA_NOTIFY_DEDUP_WINDOW must be a duration such as 30s or 10m, got "ten minutes"',
      ].join('\n'),
    );
  });
});

describe('SNS and EventBridge transports (the commands they send)', () => {
  const [sns, bus] = loadNotifications(
    new Map([
      [
        'notifications/aws.yaml',
        `providers:
  - {name: topic, type: sns, topicArn: "arn:aws:sns:eu-west-1:123456789012:fleet"}
  - {name: bus, type: eventbridge, eventBus: platform}
`,
      ],
    ]),
  ).config.providers as [ProviderSpec, ProviderSpec];
  const message: OutboundMessage = { kind: 'event', event: { ...event(1), bundle: 'web' } };

  it('publishes the webhook JSON with type and severity attributes', async () => {
    const inputs: unknown[] = [];
    const t = snsTransport({ send: async (cmd: { input: unknown }) => void inputs.push(cmd.input) } as never);
    expect(await t.send(sns, message)).toEqual({ ok: true });
    expect(inputs).toEqual([
      {
        TopicArn: 'arn:aws:sns:eu-west-1:123456789012:fleet',
        Subject: 'bundle.failed: web',
        Message: JSON.stringify({
          kind: 'event',
          event: message.kind === 'event' ? message.event : undefined,
        }),
        MessageAttributes: {
          type: { DataType: 'String', StringValue: 'bundle.failed' },
          severity: { DataType: 'String', StringValue: 'error' },
        },
      },
    ]);
  });

  it('retries throttling and 5xx, not access denied; reads PutEvents entry failures', async () => {
    const fail = (name: string, status: number) =>
      snsTransport({
        send: async () => {
          throw Object.assign(new Error('x'), { name, $metadata: { httpStatusCode: status } });
        },
      } as never);
    expect(await fail('ThrottlingException', 400).send(sns, message)).toEqual({
      ok: false,
      retryable: true,
      error: 'ThrottlingException (HTTP 400)',
    });
    expect(await fail('InternalError', 500).send(sns, message)).toMatchObject({ retryable: true });
    expect(await fail('AuthorizationErrorException', 403).send(sns, message)).toMatchObject({
      retryable: false,
    });

    const inputs: { Entries: { EventBusName: string; Source: string; DetailType: string }[] }[] = [];
    const eb = eventBridgeTransport({
      send: async (cmd: { input: (typeof inputs)[number] }) => {
        inputs.push(cmd.input);
        return { FailedEntryCount: 1, Entries: [{ ErrorCode: 'ThrottlingException' }] };
      },
    } as never);
    expect(await eb.send(bus, message)).toEqual({
      ok: false,
      retryable: true,
      error: 'PutEvents: ThrottlingException',
    });
    expect(inputs[0]?.Entries[0]).toMatchObject({
      EventBusName: 'platform',
      Source: 'flotilla',
      DetailType: 'bundle.failed',
    });
  });
});
