/**
 * Fleet events end to end: a local hub on the bed's DynamoDB Local and ElasticMQ with a
 * recording event sink, a fleet repo on its git server, and two spokes with real agents.
 * What people do (a hand edit on a spoke, an agent that stops, a broken commit) must come
 * out as exactly one event each, however many reports, ticks and syncs pass meanwhile, and
 * as exactly one notification: the events also go to the local hub's notifier, which
 * delivers them, per the fleet repo's notifications/, to a signed webhook served here.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { type EventSink, type FleetEvent, verifyWebhook } from '@flotilla/shared/notify';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { jsonLogger } from '../../../functions/src/http/log.ts';
import { type LocalNotifier, openLocalNotifier } from '../../../functions/src/local/notifier.ts';
import { describeStatus, LocalFleet, type LocalSpoke } from '../../support/local-fleet.ts';
import { until } from '../../support/until.ts';

const bed = inject('bed');
const id = `${process.pid % 1000}${Date.now().toString(36).slice(-4)}`;
const spokeA = `ev${id}-a`;
const spokeB = `ev${id}-b`;
const agentEnv = {
  FLOTILLA_HEARTBEAT_INTERVAL: '1s',
  FLOTILLA_DRIFT_INTERVAL: '2s',
  FLOTILLA_BACKOFF_MIN: '200ms',
  FLOTILLA_BACKOFF_MAX: '2s',
};
/** The lowest threshold the hub takes: a stopped agent is offline within seconds. */
const offlineAfterSeconds = 10;

/** Every event the hub emitted, in order. */
class RecordingSink implements EventSink {
  readonly events: FleetEvent[] = [];
  async publish(events: readonly FleetEvent[]) {
    this.events.push(...events);
  }
  of(type: string, cluster?: string): FleetEvent[] {
    return this.events.filter(
      (e) => e.type === type && (cluster === undefined || e.cluster?.name === cluster),
    );
  }
}

const notesYaml = `targets: [{clusterSelector: {matchLabels: {suite: "${id}"}}}]
driftPolicy: warn
`;
const notes = `apiVersion: v1
kind: Namespace
metadata:
  name: ev-\${cluster.name}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: notes
  namespace: ev-\${cluster.name}
data:
  text: hello
`;
const extraYaml = `targets: [{clusterSelector: {matchLabels: {suite: "${id}"}}}]
dependsOn: [notes]
`;
const extra = `apiVersion: v1
kind: ConfigMap
metadata:
  name: extra
  namespace: ev-\${cluster.name}
data:
  n: "1"
`;
/** Every event type the suite produces goes to one signed webhook. */
const alertsYaml = `providers:
  - {name: ops, type: webhook, secretRef: ops-hook}
alerts:
  - {name: everything, providers: [ops], eventTypes: ["bundle.*", "cluster.*", "fleet.*"]}
`;
const files: Record<string, string> = {
  'notifications/alerts.yaml': alertsYaml,
  'bundles/notes/bundle.yaml': notesYaml,
  'bundles/notes/notes.yaml': notes,
  'bundles/extra/bundle.yaml': extraYaml,
  'bundles/extra/extra.yaml': extra,
};

const sink = new RecordingSink();
const hmacKey = randomBytes(24).toString('hex');
/** What the webhook received: each delivery's event (or summary) and whether its signature held. */
const received: { signed: boolean; kind: string; event?: FleetEvent }[] = [];
let receiver: Server;
let receiverUrl = '';
/** The notifier's log lines: never a webhook URL or key. */
const notifierLog: string[] = [];
let notifier: LocalNotifier | undefined;
/** The hub's events go to the recorder and, once it is open, to the notifier. */
const events: EventSink = {
  async publish(e) {
    await sink.publish(e);
    await notifier?.publish(e);
  },
};
const delivered = (type: string, cluster?: string) =>
  received.filter(
    (r) => r.event?.type === type && (cluster === undefined || r.event.cluster?.name === cluster),
  );
let fleet: LocalFleet;
let spokes: LocalSpoke[];
const fleetDir = mkdtempSync(join(tmpdir(), 'flotilla-ev-e2e-fleet-'));

function core(spoke: LocalSpoke): CoreV1Api {
  const kc = new KubeConfig();
  kc.loadFromFile(spoke.kubeconfigPath);
  return kc.makeApiClient(CoreV1Api);
}

/** Waits for the first event of `type` (about `cluster`), then a few more seconds for any duplicate. */
async function exactlyOne(type: string, cluster: string | undefined, settleMs = 4_000): Promise<FleetEvent> {
  await until(
    `a ${type} event${cluster ? ` about ${cluster}` : ''}`,
    async () => (sink.of(type, cluster).length > 0 ? true : undefined),
    { timeoutMs: 60_000, intervalMs: 200 },
  ).catch(async (err) => {
    throw new Error(
      `${(err as Error).message}\nevents: ${sink.events.map((e) => e.key).join(', ')}\n${describeStatus(await fleet.status())}`,
    );
  });
  await until(
    `the ${type} notification delivered`,
    async () => (delivered(type, cluster).length > 0 ? true : undefined),
    { timeoutMs: 30_000, intervalMs: 200 },
  );
  await new Promise((r) => setTimeout(r, settleMs));
  const found = sink.of(type, cluster);
  expect(
    found.map((e) => e.key),
    `${type} emitted once`,
  ).toHaveLength(1);
  const notified = delivered(type, cluster);
  expect(
    notified.map((r) => r.event?.key),
    `${type} notified once`,
  ).toEqual([found[0]?.key]);
  expect(notified[0]?.signed, 'the webhook signature holds').toBe(true);
  return found[0] as FleetEvent;
}

beforeAll(async () => {
  expect(bed.clusters.length, 'the bed needs two spoke control planes').toBeGreaterThanOrEqual(2);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(fleetDir, path)), { recursive: true });
    writeFileSync(join(fleetDir, path), content);
  }
  spokes = [spokeA, spokeB].map((name, i) => ({
    name,
    labels: { suite: id, site: i === 0 ? 'a' : 'b' },
    kubeconfigPath: bed.clusters[i]?.kubeconfigPath ?? '',
  }));
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const signed = verifyWebhook(
        hmacKey,
        {
          signature: req.headers['x-flotilla-signature'] as string | undefined,
          timestamp: req.headers['x-flotilla-timestamp'] as string | undefined,
        },
        body,
        Math.floor(Date.now() / 1000),
      );
      const payload = JSON.parse(body) as { kind: string; event?: FleetEvent };
      received.push({ signed, kind: payload.kind, ...(payload.event ? { event: payload.event } : {}) });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const address = receiver.address();
  if (!address || typeof address === 'string') throw new Error('receiver has no port');
  const secretsFile = join(fleetDir, '..', `flotilla-ev-secrets-${id}.json`);
  receiverUrl = `http://127.0.0.1:${address.port}/hook`;
  writeFileSync(secretsFile, JSON.stringify({ 'ops-hook': { address: receiverUrl, hmacKey } }), {
    mode: 0o600,
  });
  fleet = await LocalFleet.start({
    bed,
    repoName: `ev-e2e-${id}`,
    fleetFrom: fleetDir,
    prefix: `ev${id}`,
    events,
    hubEnv: { FLOTILLA_OFFLINE_AFTER_SECONDS: String(offlineAfterSeconds) },
  });
  // The notifier reads notifications/ from the fleet repo, as the notifier Lambda does.
  notifier = await openLocalNotifier(
    {
      FLOTILLA_PREFIX: `ev${id}`,
      AWS_REGION: bed.region,
      FLOTILLA_FLEET_REPO_URL: fleet.repo.url,
      FLOTILLA_NOTIFICATION_SECRETS_FILE: secretsFile,
    },
    jsonLogger((line) => notifierLog.push(line)),
  );
  await Promise.all(
    spokes.map((s) => fleet.bootstrap([s], { namespace: `flotilla-${s.name}`, notify: 'sqs', agentEnv })),
  );
  await fleet.waitInSync({ timeoutMs: 180_000 });
}, 300_000);

afterAll(async () => {
  await fleet?.stop();
  await notifier?.stop();
  receiver?.close();
  rmSync(fleetDir, { recursive: true, force: true });
  for (const s of spokes ?? []) {
    for (const ns of [`ev-${s.name}`, `flotilla-${s.name}`])
      await core(s)
        .deleteNamespace({ name: ns })
        .catch(() => undefined);
  }
}, 120_000);

describe('fleet events from a running fleet', () => {
  it('starts quiet: bootstrapping and the first sync are not news', () => {
    expect(sink.events.map((e) => e.key)).toEqual([]);
  });

  it('turns a hand edit under driftPolicy warn into exactly one bundle.drifted, naming the field', async () => {
    const spoke = spokes[0] as LocalSpoke;
    const api = core(spoke);
    const live = await api.readNamespacedConfigMap({ name: 'notes', namespace: `ev-${spoke.name}` });
    await api.replaceNamespacedConfigMap({
      name: 'notes',
      namespace: `ev-${spoke.name}`,
      body: { ...live, data: { text: 'edited by hand' } },
    });
    // Several drift intervals and heartbeats pass while the edit stays: still one event.
    const event = await exactlyOne('bundle.drifted', spoke.name, 8_000);
    expect(event).toMatchObject({
      severity: 'warning',
      bundle: 'notes',
      cluster: { name: spoke.name, labels: { suite: id, site: 'a' } },
    });
    expect(event.details?.drift).toEqual([
      expect.objectContaining({
        object: expect.stringContaining('notes'),
        fields: expect.arrayContaining([expect.stringContaining('text')]),
      }),
    ]);
    expect(event.message).toContain(`notes drifted on ${spoke.name}`);
    expect(sink.of('bundle.drifted', spokeB)).toEqual([]);
  });

  it('turns a stopped agent into exactly one cluster.offline, and its return into one cluster.online', async () => {
    const spoke = spokes[1] as LocalSpoke;
    const stopped = await fleet.flotilla(['local-agent', 'stop', spoke.name, '--quiet']);
    expect(stopped.code, stopped.stderr).toBe(0);
    const stoppedAt = Date.now();
    const offline = await exactlyOne('cluster.offline', spoke.name, 5_000);
    expect(Date.parse(offline.at) - stoppedAt).toBeGreaterThanOrEqual((offlineAfterSeconds - 2) * 1000);
    expect(offline).toMatchObject({
      severity: 'warning',
      cluster: { name: spoke.name, labels: { suite: id, site: 'b' } },
      details: { offlineAfterSeconds },
    });
    expect(sink.of('cluster.offline', spokeA)).toEqual([]);

    // The same bootstrap again finds the cluster and starts its agent.
    await fleet.bootstrap([spoke], { namespace: `flotilla-${spoke.name}`, notify: 'sqs', agentEnv });
    const online = await exactlyOne('cluster.online', spoke.name, 5_000);
    expect(online).toMatchObject({ severity: 'info', details: { offlineAt: expect.any(String) } });
    expect(sink.of('cluster.offline', spoke.name)).toHaveLength(1);
  });

  it('turns a commit with a broken bundle.yaml into one fleet.errors with file:line, and its fix into one fleet.errors-cleared', async () => {
    const broken = await fleet.push('break extra', (repo) => {
      repo.write('bundles/extra/bundle.yaml', `${extraYaml}paused: sometimes\n`);
    });
    const event = await exactlyOne('fleet.errors', undefined);
    expect(event).toMatchObject({ severity: 'error', commit: broken.commit, bundle: 'extra' });
    expect(event.details?.errors).toEqual([
      expect.objectContaining({
        file: 'bundles/extra/bundle.yaml',
        line: 3,
        text: expect.stringMatching(/^bundles\/extra\/bundle\.yaml:3: paused/),
      }),
    ]);

    const fixed = await fleet.push('fix extra', (repo) => {
      repo.write('bundles/extra/bundle.yaml', extraYaml);
    });
    const cleared = await exactlyOne('fleet.errors-cleared', undefined);
    expect(cleared).toMatchObject({ severity: 'info', commit: fixed.commit });
    expect(sink.of('fleet.errors')).toHaveLength(1);
  });

  it('delivered nothing else, each notification signed', () => {
    expect(received.every((r) => r.signed)).toBe(true);
    const log = notifierLog.join('\n');
    expect(log).not.toContain(hmacKey);
    expect(log).not.toContain(receiverUrl);
    expect(received.map((r) => r.event?.key).sort()).toEqual(sink.events.map((e) => e.key).sort());
  });

  it('emitted nothing else', () => {
    expect(sink.events.map((e) => `${e.type} ${e.cluster?.name ?? ''}`.trim()).sort()).toEqual(
      [
        `bundle.drifted ${spokeA}`,
        `cluster.offline ${spokeB}`,
        `cluster.online ${spokeB}`,
        'fleet.errors',
        'fleet.errors-cleared',
      ].sort(),
    );
  });
});
