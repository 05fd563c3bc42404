import {
  applySyncWindow,
  type FleetSourceFile,
  type SyncFanout,
  type SyncJob,
  type SyncJobStore,
  type SyncWindowMessage,
  syncFleet,
} from '@flotilla/shared/hub';
import type { FleetEvent } from '@flotilla/shared/notify';
import { describe, expect, it } from 'vitest';
import { syncText } from '../../../cli/src/commands/status.ts';
import { parseSyncWorkMessage } from '../../../functions/src/adapters/sqs-sync-work-queue.ts';
import { loadConfig } from '../../../functions/src/config.ts';
import { addCluster, fakeApiDeps, MemoryFleetSource, MemorySyncStateStore } from './fakes.ts';

function fleetFiles(image: string): FleetSourceFile[] {
  return [
    { path: 'bundles/app/bundle.yaml', content: 'namespace: app\ntargets:\n  - clusterSelector: {}\n' },
    {
      path: 'bundles/app/config.yaml',
      content: `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  image: ${image}\n  cluster: \${cluster.name}\n`,
    },
  ];
}

/** Job records with the store's once-per-window condition. */
class MemorySyncJobStore implements SyncJobStore {
  readonly jobs = new Map<string, { job: SyncJob; done: Set<number> }>();
  async create(job: Omit<SyncJob, 'windowsDone' | 'clusters' | 'changedClusters'>) {
    this.jobs.set(job.jobId, {
      job: { ...job, windowsDone: 0, clusters: 0, changedClusters: 0 },
      done: new Set(),
    });
  }
  async completeWindow(
    jobId: string,
    window: number,
    r: { clusters: number; changedClusters: number; errors: readonly SyncJob['errors'][number][] },
  ) {
    const entry = this.jobs.get(jobId);
    if (!entry) throw new Error(`sync job ${jobId} does not exist`);
    if (entry.done.has(window)) return { recorded: false, job: entry.job };
    entry.done.add(window);
    const j = entry.job;
    entry.job = {
      ...j,
      windowsDone: entry.done.size,
      clusters: j.clusters + r.clusters,
      changedClusters: j.changedClusters + r.changedClusters,
      errors: [...j.errors, ...r.errors],
    };
    return { recorded: true, job: entry.job };
  }
}

function fanoutDeps(thresholdWindows: number, files: FleetSourceFile[] = fleetFiles('v1')) {
  const sent: SyncWindowMessage[] = [];
  const jobs = new MemorySyncJobStore();
  let n = 0;
  const fanout: SyncFanout = {
    queue: { send: async (m) => void sent.push(...m) },
    jobs,
    thresholdWindows,
    newJobId: () => `job-${++n}`,
  };
  const syncState = new MemorySyncStateStore();
  const deps = fakeApiDeps({
    source: new MemoryFleetSource('a'.repeat(40), files),
    fanout,
    syncState,
  });
  return { deps: { ...deps, fanout, syncState }, sent, jobs };
}

async function addClusters(deps: ReturnType<typeof fanoutDeps>['deps'], count: number) {
  for (let i = 0; i < count; i++) await addCluster(deps.clusters, `c${String(i).padStart(3, '0')}`);
}

describe('a sync that fans out', () => {
  it('runs in one process when the fleet has no more windows than the threshold', async () => {
    const { deps, sent } = fanoutDeps(3);
    await addClusters(deps, 15);
    const report = await syncFleet(deps, { holder: 'h', windowClusters: 5 });
    expect(report.status).toBe('synced');
    expect(report.changed).toHaveLength(15);
    expect(sent).toEqual([]);
    expect(deps.syncState.holder).toBeUndefined();
  });

  it('dispatches one message per window past the threshold, holding the lease until the last window', async () => {
    const { deps, sent, jobs } = fanoutDeps(1);
    await addClusters(deps, 12);
    const report = await syncFleet(deps, { holder: 'h', windowClusters: 5 });
    expect(report).toMatchObject({ status: 'dispatched', clusters: 12, job: { id: 'job-1', windows: 3 } });
    expect(sent.map((m) => [m.window, m.clusterIds.length])).toEqual([
      [0, 5],
      [1, 5],
      [2, 2],
    ]);
    expect(new Set(sent.flatMap((m) => m.clusterIds)).size).toBe(12);
    expect(jobs.jobs.get('job-1')?.job.windows).toBe(3);
    // Nothing was written for any cluster yet, and no sync state: the workers do that.
    expect(await deps.desiredStates.current('c000')).toBeUndefined();
    expect(deps.syncState.state).toBeUndefined();
    expect(deps.syncState.holder).toBe('h');

    const [w0, w1, w2] = sent as [SyncWindowMessage, SyncWindowMessage, SyncWindowMessage];
    const first = await applySyncWindow(deps, w0);
    expect(first).toMatchObject({ recorded: true, completed: false });
    expect(first.result.changed).toHaveLength(5);
    expect(deps.syncState.state).toBeUndefined();
    // A redelivered window writes nothing and is not counted twice.
    const again = await applySyncWindow(deps, w0);
    expect(again).toMatchObject({ recorded: false, completed: false });
    expect(again.result.changed).toEqual([]);
    expect(again.result.itemsWritten).toBe(0);
    await applySyncWindow(deps, w2);
    expect(deps.syncState.state).toBeUndefined();
    const last = await applySyncWindow(deps, w1);
    expect(last.completed).toBe(true);
    expect(deps.syncState.state).toMatchObject({ commit: 'a'.repeat(40), clusters: 12, changedClusters: 12 });
    expect(deps.syncState.holder).toBeUndefined();
    for (let i = 0; i < 12; i++) {
      const current = await deps.desiredStates.current(`c${String(i).padStart(3, '0')}`);
      expect(current?.generation).toBe(1);
    }
  });

  it('finishes, on redelivery, a window whose worker failed after its first commit', async () => {
    const { deps, sent } = fanoutDeps(0);
    await addClusters(deps, 4);
    await syncFleet(deps, { holder: 'h', windowClusters: 5 });
    const [only] = sent as [SyncWindowMessage];
    const commit = deps.desiredStates.commit.bind(deps.desiredStates);
    let commits = 0;
    let committed = 0;
    deps.desiredStates.commit = async (...args) => {
      if (++commits === 2) throw new Error('worker killed');
      const written = await commit(...args);
      committed++;
      return written;
    };
    await expect(applySyncWindow(deps, only)).rejects.toThrow('worker killed');
    expect(deps.syncState.state).toBeUndefined();
    deps.desiredStates.commit = commit;
    const redelivered = await applySyncWindow(deps, only);
    expect(redelivered).toMatchObject({ recorded: true, completed: true });
    // What was committed before the failure keeps its generation; the others get theirs.
    expect(committed).toBeGreaterThan(0);
    expect(committed).toBeLessThan(4);
    expect(redelivered.result.changed).toHaveLength(4 - committed);
    for (let i = 0; i < 4; i++) expect((await deps.desiredStates.current(`c00${i}`))?.generation).toBe(1);
    expect(deps.syncState.state?.clusters).toBe(4);
  });
});

describe('the last window of a dispatched sync', () => {
  it('finishes the job on redelivery when its worker died after recording the window', async () => {
    const { deps, sent } = fanoutDeps(0);
    await addClusters(deps, 3);
    await syncFleet(deps, { holder: 'h', windowClusters: 5 });
    const [only] = sent as [SyncWindowMessage];
    const save = deps.syncState.save.bind(deps.syncState);
    deps.syncState.save = async () => {
      throw new Error('worker killed before saving the sync state');
    };
    await expect(applySyncWindow(deps, only)).rejects.toThrow('worker killed');
    expect(deps.syncState.holder).toBe('h');
    deps.syncState.save = save;
    const again = await applySyncWindow(deps, only);
    expect(again).toMatchObject({ recorded: false, completed: true });
    expect(deps.syncState.state).toMatchObject({ clusters: 3, changedClusters: 3 });
    expect(deps.syncState.holder).toBeUndefined();
  });

  it('leaves a newer sync state alone when it is delivered again after finishing', async () => {
    const { deps, sent } = fanoutDeps(0);
    await addClusters(deps, 3);
    await syncFleet(deps, { holder: 'h', windowClusters: 5 });
    const [only] = sent as [SyncWindowMessage];
    await applySyncWindow(deps, only);
    const newer = {
      ...(deps.syncState.state as NonNullable<typeof deps.syncState.state>),
      commit: 'b'.repeat(40),
    };
    await deps.syncState.save(newer);
    await applySyncWindow(deps, only);
    expect(deps.syncState.state).toEqual(newer);
  });
});

describe('a dispatched sync and rollouts', () => {
  it('holds a rolling bundle back from the clusters its first wave does not release, in every window', async () => {
    const rolling: FleetSourceFile[] = [
      {
        path: 'bundles/web/bundle.yaml',
        content:
          'namespace: web\ntargets: [{clusterSelector: {}}]\nrollout:\n  waves:\n    - {name: canary, clusterName: [c000], maxParallel: 1}\n    - {name: rest}\n  progressDeadline: 5m\n',
      },
      {
        path: 'bundles/web/config.yaml',
        content: 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n',
      },
    ];
    const { deps, sent } = fanoutDeps(0, rolling);
    await addClusters(deps, 3);
    const report = await syncFleet(deps, { holder: 'h', windowClusters: 1 });
    expect(report).toMatchObject({ status: 'dispatched', job: { windows: 3 } });
    for (const m of sent) await applySyncWindow(deps, m);
    const bundlesOf = async (id: string) =>
      (
        JSON.parse((await deps.desiredStates.current(id))?.manifest ?? '{"bundles":[]}') as {
          bundles: { name: string }[];
        }
      ).bundles.map((b) => b.name);
    expect(await bundlesOf('c000')).toEqual(['web']);
    expect(await bundlesOf('c001')).toEqual([]);
    expect(await bundlesOf('c002')).toEqual([]);
    expect(deps.syncState.state?.clusters).toBe(3);
  });
});

describe('fan-out configuration and messages', () => {
  const env = {
    AWS_REGION: 'eu-west-1',
    FLOTILLA_FLEET_REPO_URL: 'https://git.example.test/fleet.git',
    FLOTILLA_SIGNING_KEY: '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----',
    FLOTILLA_ADMIN_AUTH: 'iam',
  };

  it('fans out past 20 windows by default, and only with a work queue', () => {
    const config = loadConfig(env);
    expect(config).toMatchObject({ syncQueueUrl: undefined, syncFanoutWindows: 20 });
    expect(
      loadConfig({
        ...env,
        FLOTILLA_SYNC_QUEUE_URL: 'http://127.0.0.1:9324/q',
        FLOTILLA_SYNC_FANOUT_WINDOWS: '0',
      }),
    ).toMatchObject({ syncQueueUrl: 'http://127.0.0.1:9324/q', syncFanoutWindows: 0 });
  });

  it('names a bad threshold and a bad queue URL at once', () => {
    const load = () =>
      loadConfig({ ...env, FLOTILLA_SYNC_FANOUT_WINDOWS: '-1', FLOTILLA_SYNC_QUEUE_URL: 'nope' });
    expect(load).toThrow('FLOTILLA_SYNC_FANOUT_WINDOWS must be a non-negative integer, got "-1"');
    expect(load).toThrow('FLOTILLA_SYNC_QUEUE_URL is not a URL: "nope"');
  });

  it('reads a window message, and refuses one without its fields', () => {
    const message = { jobId: 'j', window: 3, commit: 'c', snapshotHash: 'h', clusterIds: ['a', 'b'] };
    expect(parseSyncWorkMessage(JSON.stringify(message))).toEqual(message);
    expect(() => parseSyncWorkMessage('{"jobId":"j","window":"3"}')).toThrow(
      'a sync window message needs jobId, window, commit, snapshotHash and clusterIds',
    );
    expect(() => parseSyncWorkMessage('not json')).toThrow('a sync work message is not JSON');
  });

  it('reads a rollout wake, and refuses one without a bundle and a time, or of another kind', () => {
    const wake = { kind: 'rollout-wake', bundle: 'web', at: '2026-12-06T12:10:00.000Z' };
    expect(parseSyncWorkMessage(JSON.stringify(wake))).toEqual(wake);
    expect(() => parseSyncWorkMessage('{"kind":"rollout-wake","bundle":"web","at":"soon"}')).toThrow(
      'a rollout wake message needs bundle and at (an ISO 8601 time)',
    );
    expect(() => parseSyncWorkMessage('{"kind":"rollout-sleep"}')).toThrow(
      'unknown sync work message kind "rollout-sleep"',
    );
  });
});

describe('flotilla sync on a dispatched sync', () => {
  it('says where the windows went and when the status shows the commit', () => {
    const text = syncText({
      status: 'dispatched',
      commit: 'a'.repeat(40),
      job: { id: 'job-1', windows: 200 },
      clusters: 100_000,
      changed: [],
      unchanged: 0,
      errors: [],
      itemsWritten: 1,
      notified: 0,
      notifyFailures: [],
      conflictsRetried: 0,
    });
    expect(text).toBe(
      'dispatched aaaaaaaaaaaa: 100000 cluster(s) in 200 windows to sync workers; `flotilla status` shows the commit once every window is done\n',
    );
  });

  it('emits fleet.errors once, when the last window records the sync state, and sync.failed for a window that throws', async () => {
    const broken = fleetFiles('v1').map((f) =>
      f.path === 'bundles/app/bundle.yaml' ? { ...f, content: `${f.content}paused: sometimes\n` } : f,
    );
    const { deps: base, sent } = fanoutDeps(0, broken);
    const events: FleetEvent[] = [];
    const deps = { ...base, events: { publish: async (e: readonly FleetEvent[]) => void events.push(...e) } };
    await addClusters(deps, 7);
    await syncFleet(deps, { holder: 'schedule:1', windowClusters: 5 });
    const [w0, w1] = sent as [SyncWindowMessage, SyncWindowMessage];
    await applySyncWindow(deps, w0);
    expect(events).toEqual([]); // not before the job is done
    await applySyncWindow(deps, w1);
    await applySyncWindow(deps, w1); // redelivered: the state is not recorded again
    expect(events.map((e) => [e.type, e.key])).toEqual([['fleet.errors', `fleet.errors/${'a'.repeat(40)}`]]);
    expect(events[0]?.details?.new).toEqual([expect.stringMatching(/^bundles\/app\/bundle\.yaml:4: paused/)]);

    events.length = 0;
    deps.desiredStates.commit = async () => {
      throw new Error('table unavailable');
    };
    await addCluster(deps.clusters, 'late');
    await expect(applySyncWindow(deps, { ...w1, clusterIds: ['late'] })).rejects.toThrow(/unavailable/);
    expect(events).toEqual([
      expect.objectContaining({
        type: 'sync.failed',
        commit: 'a'.repeat(40),
        details: expect.objectContaining({ trigger: 'fan-out', reason: 'table unavailable' }),
      }),
    ]);
  });
});
