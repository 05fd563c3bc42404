/**
 * Rollout wakes over the real SQS protocol (ElasticMQ): once the canary reports Ready and
 * nothing else happens (no reports, no schedule, no local ticker), the delayed message the
 * hub armed for the bake's end is what opens the next wave, on time.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateQueueCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { DesiredState } from '@flotilla/shared';
import {
  parseStatusReport,
  type RolloutTimer,
  readRollout,
  recordClusterStatus,
  registerCluster,
  STATUS_API_VERSION,
  syncFleet,
} from '@flotilla/shared/hub';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { SqsRolloutTimer } from '../../../functions/src/adapters/sqs-rollout-timer.ts';
import { SqsSyncWorkQueue } from '../../../functions/src/adapters/sqs-sync-work-queue.ts';
import { syncWork } from '../../../functions/src/http/sync-work.ts';
import { FleetWorkingCopy } from '../../support/fleet-git.ts';
import { createTestHub } from '../../support/hub.ts';
import { until } from '../../support/until.ts';

const bed = inject('bed');
const bakeMs = 3_000;
const bundleYaml = `namespace: web
targets: [{clusterSelector: {}}]
rollout:
  waves:
    - {name: canary, clusterName: [wake-a], bake: 3s}
    - {name: rest}
  progressDeadline: 10m
`;
const configMap = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  tag: v1\n';

let repo: FleetWorkingCopy;
let hub: Awaited<ReturnType<typeof createTestHub>>;
let queue: SqsSyncWorkQueue;
/** The wakes the hub armed (their times), on the way to SQS. */
const armed: string[] = [];
let timer: RolloutTimer;
const silentLog = { info: () => {}, warn: () => {}, error: () => {} };

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-wake-fleet-'));
  mkdirSync(join(dir, 'bundles/web'), { recursive: true });
  writeFileSync(join(dir, 'bundles/web/bundle.yaml'), bundleYaml);
  writeFileSync(join(dir, 'bundles/web/config.yaml'), configMap);
  repo = await FleetWorkingCopy.create(bed.git, `rollout-wake-${Date.now()}`, dir);
  hub = await createTestHub(bed, repo.url);
  const created = await hub.sqs.send(
    new CreateQueueCommand({
      QueueName: `${hub.config.prefix}-sync-work`,
      Attributes: { VisibilityTimeout: '5' },
    }),
  );
  queue = new SqsSyncWorkQueue(hub.sqs, created.QueueUrl ?? '');
  const sqsTimer = new SqsRolloutTimer(hub.sqs, queue.url, { now: hub.now, log: silentLog });
  timer = {
    wakeAt: async (bundle, at) => {
      armed.push(at.toISOString());
      await sqsTimer.wakeAt(bundle, at);
    },
  };
  for (const name of ['wake-a', 'wake-b']) await registerCluster(hub, { name, labels: {} });
});

afterAll(async () => {
  repo?.dispose();
  await hub?.renderer?.close();
});

async function webRef(id: string) {
  const current = await hub.desiredStates.current(id);
  if (!current) return undefined;
  const hash = (JSON.parse(current.manifest) as DesiredState).bundles.find((b) => b.name === 'web')?.hash;
  return hash === undefined ? undefined : { hash, createdAt: Date.parse(current.createdAt) };
}

describe('rollout wakes (DynamoDB Local, ElasticMQ)', () => {
  it("opens the next wave at the bake's end by the delayed message alone", async () => {
    const ports = { ...hub, rolloutTimer: timer };
    await syncFleet(ports, { holder: 'wake-test' });
    const canary = await webRef('wake-a');
    expect(canary?.hash).toMatch(/^sha256:/);
    expect(await webRef('wake-b')).toBeUndefined();
    // The canary's progress deadline, 10 minutes out.
    expect(armed).toHaveLength(1);

    // The canary reports Ready three times (heartbeats): the bake's end is armed once.
    const record = await hub.clusters.get('wake-a');
    for (let i = 0; i < 3; i++) {
      await recordClusterStatus(
        ports,
        record ?? { id: 'wake-a' },
        parseStatusReport({
          apiVersion: STATUS_API_VERSION,
          kind: 'ClusterStatus',
          agentVersion: '0.1.0',
          bundles: [{ name: 'web', state: 'Ready', hash: canary?.hash, generation: 1 }],
        }),
      );
    }
    const bakeEnd = (await hub.rollouts.get('web'))?.head.nextWakeAt as string;
    expect(armed).toEqual([armed[0], bakeEnd]);
    expect(Date.parse(bakeEnd) - Date.now()).toBeGreaterThan(bakeMs - 1_500);
    expect(await webRef('wake-b')).toBeUndefined();

    // From here only the work queue's consumer runs, as the sync function's event source does.
    const stop = new AbortController();
    const failures: string[] = [];
    const polling = queue.poll(
      async (m) => void (await syncWork(ports, m, silentLog)),
      stop.signal,
      (err) => failures.push(err instanceof Error ? err.message : String(err)),
    );
    try {
      const released = await until('the rest wave to receive the revision', () => webRef('wake-b'), {
        timeoutMs: 20_000,
        intervalMs: 100,
      });
      expect(released.hash).toBe(canary?.hash);
      // Not before the bake ended, and long before anything else could have stepped it
      // (the deadline is 10 minutes out; the schedule does not run here). The wave-advance
      // latency itself is bench:rollout's to measure, not a timed test's.
      expect(released.createdAt).toBeGreaterThanOrEqual(Date.parse(bakeEnd));
      expect(released.createdAt - Date.parse(bakeEnd)).toBeLessThan(10_000);
    } finally {
      stop.abort();
      await polling;
    }
    expect(failures).toEqual([]);
    const rollout = await readRollout(hub, 'web');
    expect(rollout?.state.waves.map((w) => w.openedAt !== null)).toEqual([true, true]);
    expect((await hub.desiredStates.history('wake-b'))[0]?.reason).toBe('rollout');
    // The rest wave's deadline is the next wake, armed by the wake's own step.
    expect(armed.at(-1)).toBe((await hub.rollouts.get('web'))?.head.nextWakeAt);
    expect(armed).toHaveLength(3);
  });

  it('holds a wake back until its time, and logs rather than throws when it cannot send', async () => {
    const created = await hub.sqs.send(
      new CreateQueueCommand({ QueueName: `${hub.config.prefix}-wake-delay` }),
    );
    const url = created.QueueUrl ?? '';
    const lines: { message: string; fields?: Record<string, unknown> }[] = [];
    const log = {
      info: () => {},
      warn: (message: string, fields?: Record<string, unknown>) => lines.push({ message, fields }),
      error: () => {},
    };
    const sent = Date.now();
    await new SqsRolloutTimer(hub.sqs, url, { now: () => new Date(), log }).wakeAt(
      'web',
      new Date(sent + 2_000),
    );
    const receive = (wait: number) =>
      hub.sqs.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: wait }));
    expect((await receive(0)).Messages ?? []).toEqual([]);
    const later = await until('the delayed wake', async () => (await receive(1)).Messages?.[0], {
      timeoutMs: 10_000,
      intervalMs: 0,
    });
    expect(Date.now() - sent).toBeGreaterThanOrEqual(2_000);
    expect(JSON.parse(later.Body ?? '')).toEqual({
      kind: 'rollout-wake',
      bundle: 'web',
      at: new Date(sent + 2_000).toISOString(),
    });

    await new SqsRolloutTimer(hub.sqs, `${url}-gone`, { now: () => new Date(), log }).wakeAt(
      'web',
      new Date(),
    );
    expect(lines).toEqual([
      expect.objectContaining({
        message: 'rollout wake not armed',
        fields: expect.objectContaining({ bundle: 'web', delaySeconds: 0 }),
      }),
    ]);
  });
});
