import { CreateQueueCommand } from '@aws-sdk/client-sqs';
import {
  registerCluster,
  type SyncFanout,
  type SyncPorts,
  type SyncWindowMessage,
  syncFleet,
} from '@flotilla/shared/hub';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { HubDb } from '../../../functions/src/adapters/dynamodb-stores.ts';
import { DynamoDbSyncJobStore } from '../../../functions/src/adapters/dynamodb-sync-jobs.ts';
import { SqsSyncWorkQueue } from '../../../functions/src/adapters/sqs-sync-work-queue.ts';
import { syncWindow } from '../../../functions/src/http/sync-window.ts';
import { syncWork } from '../../../functions/src/http/sync-work.ts';
import { bedSqs } from '../../support/aws-clients.ts';
import { FleetWorkingCopy } from '../../support/fleet-git.ts';
import { createTestHub, drainQueue } from '../../support/hub.ts';
import { until } from '../../support/until.ts';
import { startApiHub } from '../api/local-hub.ts';

const bed = inject('bed');
const clusterCount = 12;
const ids = Array.from({ length: clusterCount }, (_, i) => `fan-${String(i).padStart(2, '0')}`);
let repo: FleetWorkingCopy;
let hub: Awaited<ReturnType<typeof createTestHub>>;
let queue: SqsSyncWorkQueue;
let fanout: SyncFanout & { queue: SqsSyncWorkQueue };
const spokeQueues = new Map<string, string>();
const silentLog = { info: () => {}, warn: () => {}, error: () => {} };

beforeAll(async () => {
  repo = await FleetWorkingCopy.create(bed.git, `fanout-${Date.now()}`);
  hub = await createTestHub(bed, repo.url);
  // A short visibility timeout, so that a failed window comes back within the test.
  const created = await hub.sqs.send(
    new CreateQueueCommand({
      QueueName: `${hub.config.prefix}-sync-work`,
      Attributes: { VisibilityTimeout: '2' },
    }),
  );
  queue = new SqsSyncWorkQueue(hub.sqs, created.QueueUrl ?? '');
  let n = 0;
  fanout = {
    queue,
    jobs: new DynamoDbSyncJobStore(new HubDb(hub.dynamodb, hub.config.tables)),
    // Windows of 5 clusters below: 3 windows, past a threshold of 1.
    thresholdWindows: 1,
    newJobId: () => `job-${Date.now().toString(36)}-${++n}`,
  };
  for (const name of ids) {
    const { cluster } = await registerCluster(hub, { name, labels: { env: 'prod', region: 'eu' } });
    spokeQueues.set(name, cluster.queueUrl ?? '');
  }
});

afterAll(async () => {
  repo?.dispose();
  await hub?.renderer?.close();
});

/** Works the queue as the sync function's event source does, until `done` holds. */
async function work(ports: SyncPorts & { fanout: SyncFanout }, done: () => Promise<boolean>) {
  const stop = new AbortController();
  const failures: string[] = [];
  const polling = queue.poll(
    async (m) => void (await syncWork(ports, m, silentLog)),
    stop.signal,
    (err) => failures.push(err instanceof Error ? err.message : String(err)),
  );
  try {
    await until('the dispatched sync to finish', async () => ((await done()) ? true : undefined), {
      timeoutMs: 60_000,
      intervalMs: 200,
    });
  } catch (err) {
    // The workers' failures say why it never finished.
    throw new Error(`${(err as Error).message}; worker failures: ${JSON.stringify(failures)}`, {
      cause: err,
    });
  } finally {
    stop.abort();
    await polling;
  }
  return failures;
}

describe('a sync that fans out (git server, DynamoDB Local, ElasticMQ)', () => {
  it('gives every cluster its desired state once, finishing a killed window on redelivery', async () => {
    const ports = { ...hub, fanout };
    const report = await syncFleet(ports, { holder: 'fanout-test', windowClusters: 5 });
    expect(report).toMatchObject({ status: 'dispatched', clusters: clusterCount, job: { windows: 3 } });
    // Nothing is recorded as synced before the last window is done.
    expect(await hub.syncState.get()).toBeUndefined();

    // The first window's worker dies right after its first commit.
    const commit = hub.desiredStates.commit.bind(hub.desiredStates);
    let killed = false;
    const crashing = {
      ...ports,
      desiredStates: new Proxy(hub.desiredStates, {
        get(target, prop) {
          if (prop === 'commit') {
            return async (...args: Parameters<typeof commit>) => {
              const written = await commit(...args);
              if (!killed) {
                killed = true;
                throw new Error('worker killed after its first commit');
              }
              return written;
            };
          }
          const value: unknown = Reflect.get(target, prop, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      }),
    };
    const failures = await work(crashing, async () => {
      const state = await hub.syncState.get();
      return state?.commit === report.commit;
    });
    expect(failures).toEqual(['worker killed after its first commit']);

    const state = await hub.syncState.get();
    expect(state).toMatchObject({ commit: report.commit, clusters: clusterCount });
    // What the killed worker committed counts as unchanged when its window comes back.
    expect(state?.changedClusters).toBeGreaterThanOrEqual(clusterCount - 5);
    expect(state?.changedClusters).toBeLessThan(clusterCount);
    for (const id of ids) {
      const history = await hub.desiredStates.history(id);
      expect(
        history.map((h) => h.generation),
        id,
      ).toEqual([1]);
      expect(history[0]?.commit).toBe(report.commit);
    }
    // Each cluster is told at most once. What the killed worker committed goes untold (its
    // redelivery finds it unchanged); the agent's own poll of its desired state covers it.
    let told = 0;
    for (const id of ids) {
      const n = (await drainQueue(hub, spokeQueues.get(id) ?? '')).length;
      expect(n).toBeLessThanOrEqual(1);
      told += n;
    }
    expect(told).toBe(state?.changedClusters);
    // The lease is free again: the next sync runs (and dispatches) at once.
    const again = await syncFleet(ports, { holder: 'fanout-test-2', windowClusters: 5 });
    expect(again.status).toBe('dispatched');
    await work(ports, async () => (await hub.syncState.get())?.syncedAt !== state?.syncedAt);
    for (const id of ids) expect((await hub.desiredStates.history(id)).map((h) => h.generation)).toEqual([1]);
  });

  it('changes nothing when a finished window is delivered again', async () => {
    const ports = { ...hub, fanout };
    repo.write('bundles/fan/bundle.yaml', 'namespace: fan\ntargets:\n  - clusterSelector: {}\n');
    repo.write(
      'bundles/fan/config.yaml',
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fan\ndata:\n  cluster: ${cluster.name}\n',
    );
    repo.commit('A bundle for every cluster');
    const report = await syncFleet(ports, { holder: 'fanout-redeliver', windowClusters: 5 });
    expect(report.status).toBe('dispatched');
    await work(ports, async () => (await hub.syncState.get())?.commit === report.commit);
    const before = await Promise.all(ids.map((id) => hub.desiredStates.history(id)));
    expect(before.every((h) => h.map((g) => g.generation).join() === '2,1')).toBe(true);
    for (const id of ids) await drainQueue(hub, spokeQueues.get(id) ?? '');

    const stateBefore = await hub.syncState.get();
    const replay: SyncWindowMessage = {
      jobId: report.job?.id ?? '',
      window: 0,
      commit: report.commit ?? '',
      snapshotHash: stateBefore?.snapshotHash ?? '',
      clusterIds: ids.slice(0, 5),
    };
    const again = await syncWindow(ports, replay, silentLog);
    expect(again).toMatchObject({ recorded: false, completed: true });
    expect(again.result.changed).toEqual([]);
    expect(again.result.itemsWritten).toBe(0);
    expect(await Promise.all(ids.map((id) => hub.desiredStates.history(id)))).toEqual(before);
    expect((await hub.syncState.get())?.clusters).toBe(clusterCount);
    for (const id of ids) expect(await drainQueue(hub, spokeQueues.get(id) ?? '')).toEqual([]);
  });
});

describe('reading a window of clusters', () => {
  it('reads many clusters by id in batches and leaves out the ones that are gone', async () => {
    const wanted = [...ids, ...Array.from({ length: 150 }, (_, i) => `gone-${i}`)];
    const found = await hub.clusters.getMany(wanted);
    expect(found.map((c) => c.id).sort()).toEqual(ids);
    expect(found.every((c) => c.head?.generation === 2)).toBe(true);
  });
});

describe('a sync job of several sources', () => {
  it('keeps each source’s record with the job, for the sync state its last window writes', async () => {
    const sources = {
      'team-a': { commit: 'a'.repeat(40), fetchedAt: '2024-05-01T12:00:00.000Z', key: '["x"]' },
      'team-b': {
        commit: '',
        fetchedAt: '',
        error: 'git fetch https://git.example.com/b.git: HTTP 404',
        key: '["y"]',
      },
    };
    const jobId = `job-sources-${Date.now().toString(36)}`;
    await fanout.jobs.create({
      jobId,
      holder: 'test',
      commit: 'c'.repeat(40),
      snapshotHash: `sha256:${'0'.repeat(64)}`,
      windows: 1,
      errors: [],
      startedAt: '2024-05-01T12:00:00.000Z',
      kubeVersionMatters: false,
      sources,
    });
    const { job } = await fanout.jobs.completeWindow(jobId, 0, {
      clusters: 0,
      changedClusters: 0,
      errors: [],
    });
    expect(job.sources).toEqual(sources);
  });
});

describe('the local hub as a sync worker', () => {
  it('answers 202 dispatched and works the windows in its own process', async () => {
    const sqs = bedSqs(bed);
    const created = await sqs.send(
      new CreateQueueCommand({
        QueueName: `local-${Date.now().toString(36)}-sync-work`,
        Attributes: { VisibilityTimeout: '5' },
      }),
    );
    sqs.destroy();
    const api = await startApiHub(bed, repo.url, {
      FLOTILLA_SYNC_QUEUE_URL: created.QueueUrl ?? '',
      FLOTILLA_SYNC_FANOUT_WINDOWS: '0',
    });
    try {
      for (const name of ['local-a', 'local-b']) await registerCluster(api.hub, { name, labels: {} });
      const res = await api.admin('/v1/admin/sync', { method: 'POST' });
      expect(res.status).toBe(202);
      const body = (await res.json()) as { status: string; clusters: number; job: { windows: number } };
      expect(body).toMatchObject({ status: 'dispatched', clusters: 2, job: { windows: 1 } });
      const state = await until(
        'the local hub to finish the dispatched sync',
        () => api.hub.syncState.get(),
        {
          timeoutMs: 30_000,
          intervalMs: 200,
        },
      );
      expect(state).toMatchObject({ commit: repo.git('rev-parse', 'HEAD'), clusters: 2, changedClusters: 2 });
      for (const id of ['local-a', 'local-b'])
        expect((await api.hub.desiredStates.current(id))?.generation).toBe(1);
      expect(
        api.logLines.some((l) => l.includes('"message":"sync window"') && l.includes('"completed":true')),
      ).toBe(true);
    } finally {
      await api.stop();
    }
  });
});
