/**
 * The HTTP providers against a real HTTP receiver (node:http in this process): the
 * webhook's HMAC signature and timestamp, the Slack and Teams payload shapes, retries
 * after 500s, no retry after a 404, de-duplication, and a burst of 1,000 events.
 */
import {
  type FleetEvent,
  httpTransport,
  loadNotifications,
  MemoryDedupStore,
  Notifier,
  staticSecretResolver,
  systemClock,
  verifyWebhook,
} from '@flotilla/shared/notify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LocalNotifier } from '../../../functions/src/local/notifier.ts';
import { staticNotificationConfig } from '../../../functions/src/notify/config-source.ts';
import { HttpReceiver } from '../../support/http-receiver.ts';

const receiver = new HttpReceiver();
const hmacKey = 'k3y-for-the-webhook-0123456789';
const logs: string[] = [];
const log = {
  info: (m: string, f?: Record<string, unknown>) => logs.push(JSON.stringify({ m, ...f })),
  warn: (m: string, f?: Record<string, unknown>) => logs.push(JSON.stringify({ m, ...f })),
  error: (m: string, f?: Record<string, unknown>) => logs.push(JSON.stringify({ m, ...f })),
};

const { config, errors } = loadNotifications(
  new Map([
    [
      'notifications/team.yaml',
      `providers:
  - {name: slack, type: slack, secretRef: slack-url, channel: "#fleet"}
  - {name: teams, type: msteams, secretRef: teams-url}
  - {name: hook, type: webhook, secretRef: hook}
  - {name: flaky, type: webhook, secretRef: flaky}
  - {name: gone, type: slack, secretRef: gone-url}
  - {name: burst, type: slack, secretRef: burst-url}
alerts:
  - {name: failures, providers: [slack, teams, hook], eventTypes: [bundle.failed], clusterSelector: env=prod}
  - {name: offline, providers: [flaky], eventTypes: [cluster.offline]}
  - {name: drift, providers: [gone], eventTypes: [bundle.drifted]}
  - {name: recovered, providers: [burst], eventTypes: [bundle.recovered]}
`,
    ],
  ]),
);

let seq = 0;
function event(type: FleetEvent['type'], cluster = 'prod-eu-1'): FleetEvent {
  seq++;
  return {
    type,
    severity: type === 'bundle.recovered' ? 'info' : 'error',
    key: `${type}/${cluster}/web/${seq}`,
    at: new Date().toISOString(),
    message: `web: ${type} on ${cluster} <Deployment "web/storefront"> & more`,
    cluster: { name: cluster, labels: { env: 'prod' } },
    bundle: 'web',
    commit: 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
    details: { reason: 'ImagePullBackOff' },
  };
}

let notifier: Notifier;

beforeAll(async () => {
  expect(errors).toEqual([]);
  await receiver.start();
});
afterAll(async () => {
  await receiver.stop();
});
beforeEach(() => {
  receiver.requests.length = 0;
  const secrets = staticSecretResolver(
    new Map([
      ['slack-url', `${receiver.url}/slack/T000/B000/XXXXSECRET`],
      ['teams-url', JSON.stringify({ address: `${receiver.url}/teams/workflow?sig=SECRETSIG` })],
      ['hook', JSON.stringify({ address: `${receiver.url}/hook`, hmacKey })],
      ['flaky', JSON.stringify({ address: `${receiver.url}/flaky`, hmacKey })],
      ['gone-url', `${receiver.url}/gone`],
      ['burst-url', `${receiver.url}/burst`],
    ]),
  );
  notifier = new Notifier(
    { transport: httpTransport({ secrets }), dedup: new MemoryDedupStore(), clock: systemClock, log },
    { retry: { attempts: 4, baseDelayMs: 50, maxDelayMs: 200, maxRetryAfterMs: 5000 } },
  );
  notifier.configure(config);
});

describe('HTTP providers against a real receiver', () => {
  it('signs webhooks with HMAC-SHA256 over timestamp.body and sends the event as JSON', async () => {
    const e = event('bundle.failed');
    const report = await notifier.handle([e]);
    expect(report.failed).toEqual([]);
    const [req] = receiver.on('/hook');
    if (!req) throw new Error('the webhook got nothing');
    expect(req.headers['content-type']).toBe('application/json');
    const signature = req.headers['x-flotilla-signature'] as string;
    const timestamp = req.headers['x-flotilla-timestamp'] as string;
    expect(signature).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(Math.abs(Number(timestamp) - Date.now() / 1000)).toBeLessThan(5);
    const now = Math.floor(Date.now() / 1000);
    expect(verifyWebhook(hmacKey, { signature, timestamp }, req.body, now)).toBe(true);
    // A changed body, another key or an old timestamp do not verify.
    expect(verifyWebhook(hmacKey, { signature, timestamp }, `${req.body} `, now)).toBe(false);
    expect(verifyWebhook('another-key-0123456789', { signature, timestamp }, req.body, now)).toBe(false);
    expect(verifyWebhook(hmacKey, { signature, timestamp }, req.body, now + 301)).toBe(false);
    expect(JSON.parse(req.body)).toEqual({ kind: 'event', event: e });
  });

  it('sends Slack blocks with a text fallback, and a Teams Adaptive Card', async () => {
    await notifier.handle([event('bundle.failed')]);
    const slack = JSON.parse(receiver.on('/slack/T000/B000/XXXXSECRET')[0]?.body ?? '{}');
    expect(slack.channel).toBe('#fleet');
    expect(slack.text).toMatch(/^bundle\.failed: web on prod-eu-1: web: bundle\.failed on prod-eu-1/);
    expect(slack.blocks.map((b: { type: string }) => b.type)).toEqual(['section', 'context']);
    expect(slack.blocks[0].text.type).toBe('mrkdwn');
    // Slack's control characters are escaped in mrkdwn.
    expect(slack.blocks[0].text.text).toContain('&lt;Deployment "web/storefront"&gt; &amp; more');
    expect(slack.blocks[1].elements[0].text).toContain('*Cluster:* prod-eu-1');

    const teams = JSON.parse(receiver.on('/teams/workflow?sig=SECRETSIG')[0]?.body ?? '{}');
    expect(teams.type).toBe('message');
    const [attachment] = teams.attachments;
    expect(attachment.contentType).toBe('application/vnd.microsoft.card.adaptive');
    expect(attachment.content.type).toBe('AdaptiveCard');
    expect(attachment.content.version).toBe('1.4');
    expect(attachment.content.body.map((b: { type: string }) => b.type)).toEqual([
      'TextBlock',
      'TextBlock',
      'FactSet',
    ]);
    expect(attachment.content.body[0].color).toBe('Attention');
    expect(attachment.content.body[2].facts).toContainEqual({ title: 'Bundle', value: 'web' });
  });

  it('retries after two 500s and delivers once; does not retry a 404', async () => {
    receiver.script.set('/flaky', [{ status: 500 }, { status: 500 }]);
    const e = event('cluster.offline');
    const report = await notifier.handle([e]);
    expect(report.delivered).toEqual([e.key]);
    expect(receiver.on('/flaky').map((r) => r.body)).toHaveLength(3);
    // Every attempt carries the same body, signed afresh.
    const bodies = new Set(receiver.on('/flaky').map((r) => r.body));
    expect(bodies.size).toBe(1);

    receiver.script.set('/gone', [{ status: 404 }]);
    const d = event('bundle.drifted');
    const gone = await notifier.handle([d]);
    expect(gone.failed).toEqual([{ key: d.key, provider: 'gone', error: 'HTTP 404 Not Found' }]);
    expect(receiver.on('/gone')).toHaveLength(1);
  });

  it('honours Retry-After on a 429', async () => {
    receiver.script.set('/flaky', [{ status: 429, headers: { 'retry-after': '1' } }]);
    const report = await notifier.handle([event('cluster.offline')]);
    expect(report.failed).toEqual([]);
    const [first, second] = receiver.on('/flaky');
    expect((second?.at ?? 0) - (first?.at ?? 0)).toBeGreaterThanOrEqual(950);
  });

  it('a burst of 1,000 events is a few messages and one summary, and a repeat of it nothing', async () => {
    const burst = Array.from({ length: 1000 }, (_, i) => event('bundle.recovered', `c-${i}`));
    const report = await notifier.handle(burst);
    expect(report.failed).toEqual([]);
    const got = receiver.on('/burst').map((r) => JSON.parse(r.body).text as string);
    expect(got).toHaveLength(20);
    expect(got[19]).toBe(
      'Flotilla summary (rate limit reached): 981 more events: 981 bundle.recovered (web on 981 clusters)',
    );
    // The same events again (a redelivery) are duplicates within the window.
    const again = await notifier.handle(burst);
    expect(again.duplicates).toHaveLength(1000);
    expect(receiver.on('/burst')).toHaveLength(20);
  });

  it('never logs webhook URLs or keys', async () => {
    receiver.script.set('/gone', [{ status: 404 }]);
    receiver.script.set('/flaky', [{ status: 503 }, { status: 503 }, { status: 503 }, { status: 503 }]);
    await notifier.handle([event('bundle.drifted'), event('cluster.offline')]);
    expect(logs.length).toBeGreaterThan(0);
    const all = logs.join('\n');
    for (const secret of ['XXXXSECRET', 'SECRETSIG', hmacKey, receiver.url, '/gone', '/flaky']) {
      expect(all).not.toContain(secret);
    }
    expect(all).toContain('"provider":"flaky"');
  });
});

describe('the local hub notifier', () => {
  it('takes events without waiting and delivers them with the same engine', async () => {
    const local = new LocalNotifier(
      { notifier, config: staticNotificationConfig(config), clock: systemClock, log },
      { redeliverAfterMs: 100 },
    );
    receiver.script.set('/flaky', [{ status: 500 }, { status: 500 }, { status: 500 }, { status: 500 }]);
    const offline = event('cluster.offline');
    const failed = event('bundle.failed');
    await local.publish([offline, failed]);
    await local.idle();
    // Four 500s used the first round's attempts; the redelivery round gets the 200.
    await new Promise((r) => setTimeout(r, 300));
    await local.idle();
    expect(receiver.on('/flaky')).toHaveLength(5);
    expect(receiver.on('/hook').map((r) => JSON.parse(r.body).event.key)).toEqual([failed.key]);
    await local.stop();
  });
});
