/**
 * The fleet events the hub emits, on plain fakes of its stores and a sink that records what
 * it is handed: each transition emits once, a repeat emits nothing, a conditional write
 * lost to another writer emits nothing, and a sink that throws fails nothing.
 */
import {
  ConflictError,
  commandRollout,
  type FleetSourceFile,
  parseStatusReport,
  type RolloutHead,
  recordClusterStatus,
  STATUS_API_VERSION,
  syncFleet,
  watchFleetHealth,
} from '@flotilla/shared/hub';
import type { EventSink, FleetEvent } from '@flotilla/shared/notify';
import { describe, expect, it } from 'vitest';
import { scheduledSync } from '../../../functions/src/http/scheduled-sync.ts';
import { addCluster, captureLog, fakeApiDeps, MemoryFleetSource, type MemoryRolloutStore } from './fakes.ts';

class RecordingSink implements EventSink {
  readonly events: FleetEvent[] = [];
  async publish(events: readonly FleetEvent[]) {
    this.events.push(...events);
  }
  /** The events recorded since the last call, then forgets them. */
  take(): FleetEvent[] {
    return this.events.splice(0);
  }
}

const h = (c: string) => `sha256:${c.repeat(64)}`;
const t0 = Date.parse('2026-12-06T12:00:00Z');

function setup(files: FleetSourceFile[] = []) {
  const clock = { now: t0 };
  const events = new RecordingSink();
  const source = new MemoryFleetSource('a'.repeat(40), files);
  const deps = { ...fakeApiDeps({ source }), events, now: () => new Date(clock.now) };
  const report = async (id: string, bundles: Record<string, unknown>[] = []) =>
    recordClusterStatus(
      deps,
      (await deps.clusters.get(id)) ?? { id },
      parseStatusReport({
        apiVersion: STATUS_API_VERSION,
        kind: 'ClusterStatus',
        agentVersion: '0.1.0',
        ...(bundles.length > 0 ? { bundles } : {}),
      }),
    );
  const advance = (seconds: number) => {
    clock.now += seconds * 1000;
  };
  return { deps, events, source, clock, report, advance };
}

const webYaml = 'namespace: web\ntargets: [{clusterSelector: {}}]\n';
const webConfig = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  a: "1"\n';

describe('sync events', () => {
  it('emits sync.failed when a sync throws, rethrows it, and masks credentials in the message', async () => {
    const { deps, events } = setup();
    deps.source.fetch = async () => {
      throw new Error('could not fetch https://deploy:s3cr3t-token@git.example.com/fleet.git: 401\nmore');
    };
    await expect(syncFleet(deps, { holder: 'webhook:req-1' })).rejects.toThrow(/401/);
    const [event, ...rest] = events.take();
    expect(rest).toEqual([]);
    expect(event).toMatchObject({
      type: 'sync.failed',
      severity: 'error',
      details: { trigger: 'webhook' },
    });
    expect(event?.message).toBe(
      'sync of the fleet repo failed (webhook): could not fetch https://***@git.example.com/fleet.git: 401',
    );
    expect(JSON.stringify(event)).not.toContain('s3cr3t');
    // The same failure again is the same key: the notifier's window holds it.
    await expect(syncFleet(deps, { holder: 'schedule:x' })).rejects.toThrow();
    expect(events.take()[0]?.key).toBe(event?.key);
  });

  it('emits fleet.errors with file:line when a commit brings errors, once, and fleet.errors-cleared when they go', async () => {
    const { deps, events, source } = setup([
      { path: 'bundles/web/bundle.yaml', content: webYaml },
      { path: 'bundles/web/config.yaml', content: webConfig },
    ]);
    await addCluster(deps.clusters, 'c1');
    await syncFleet(deps, { holder: 'test' });
    expect(events.take()).toEqual([]); // a clean first sync says nothing

    source.commit = 'b'.repeat(40);
    source.files = [
      { path: 'bundles/web/bundle.yaml', content: `${webYaml}paused: sometimes\n` },
      { path: 'bundles/web/config.yaml', content: webConfig },
    ];
    await syncFleet(deps, { holder: 'test' });
    const [broken, ...more] = events.take();
    expect(more).toEqual([]);
    expect(broken).toMatchObject({
      type: 'fleet.errors',
      severity: 'error',
      key: `fleet.errors/${'b'.repeat(40)}`,
      commit: 'b'.repeat(40),
      bundle: 'web',
    });
    const details = broken?.details as {
      errors: { text: string; file: string; line: number }[];
      new: string[];
    };
    expect(details.errors).toEqual([
      expect.objectContaining({
        file: 'bundles/web/bundle.yaml',
        line: 3,
        text: expect.stringMatching(/^bundles\/web\/bundle\.yaml:3: paused/),
      }),
    ]);
    expect(broken?.message).toMatch(
      /^commit bbbbbbbbbbbb has 1 fleet-repo error: bundles\/web\/bundle\.yaml:3: paused/,
    );

    // The same errors at the next sync (or commit) say nothing new.
    source.commit = 'c'.repeat(40);
    await syncFleet(deps, { holder: 'test' });
    expect(events.take()).toEqual([]);

    source.commit = 'd'.repeat(40);
    source.files = [
      { path: 'bundles/web/bundle.yaml', content: webYaml },
      { path: 'bundles/web/config.yaml', content: webConfig },
    ];
    await syncFleet(deps, { holder: 'test' });
    expect(events.take()).toEqual([
      expect.objectContaining({
        type: 'fleet.errors-cleared',
        severity: 'info',
        key: `fleet.errors-cleared/${'d'.repeat(40)}`,
        details: {
          cleared: [expect.stringMatching(/^bundles\/web\/bundle\.yaml:3: /)],
          previousCommit: 'c'.repeat(40),
        },
      }),
    ]);
    await syncFleet(deps, { holder: 'test' });
    expect(events.take()).toEqual([]);
  });
});

describe('policy violation events', () => {
  const policy = (action: string) => `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: small-configs}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], resources: [configmaps], operations: [CREATE, UPDATE]}]
  validations:
    - expression: "!has(object.data) || size(object.data) < 1"
      message: config maps stay empty here
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: small-configs}
spec: {policyName: small-configs, validationActions: [${action}]}
`;

  it('emits policy.violation once per new violation (Deny as an error, Warn as a warning), not again while it lasts', async () => {
    const { deps, events, source } = setup([
      { path: 'bundles/web/bundle.yaml', content: webYaml },
      { path: 'bundles/web/config.yaml', content: webConfig },
      { path: 'policies/small.yaml', content: policy('Deny') },
    ]);
    await addCluster(deps.clusters, 'c1');
    await addCluster(deps.clusters, 'c2');
    await syncFleet(deps, { holder: 'test' });
    const violations = events.take().filter((e) => e.type === 'policy.violation');
    expect(violations).toEqual([
      expect.objectContaining({
        severity: 'error',
        bundle: 'web',
        message:
          'policies/small.yaml:8: policy small-configs (binding small-configs) denies ConfigMap "web/web" (bundles/web/config.yaml:1): config maps stay empty here',
        details: expect.objectContaining({ action: 'Deny', file: 'policies/small.yaml', line: 8 }),
      }),
    ]);

    source.commit = 'b'.repeat(40);
    await syncFleet(deps, { holder: 'test' });
    expect(events.take().filter((e) => e.type === 'policy.violation')).toEqual([]);

    source.commit = 'c'.repeat(40);
    source.files = source.files.map((f) =>
      f.path === 'policies/small.yaml' ? { ...f, content: policy('Warn') } : f,
    );
    await syncFleet(deps, { holder: 'test' });
    expect(events.take().filter((e) => e.type === 'policy.violation')).toEqual([
      expect.objectContaining({ severity: 'warning', details: expect.objectContaining({ action: 'Warn' }) }),
    ]);
  });
});

describe('bundle status events', () => {
  it('emits bundle.failed and bundle.drifted on entering the state, once, and bundle.recovered when Ready again', async () => {
    const { deps, events, report, advance } = setup();
    await addCluster(deps.clusters, 'edge', { env: 'prod' });
    await report('edge', [{ name: 'web', state: 'Ready', hash: h('a'), generation: 0 }]);
    expect(events.take()).toEqual([]);

    advance(10);
    const failed = {
      name: 'web',
      state: 'Failed',
      hash: h('a'),
      generation: 0,
      message: 'quota exceeded',
      failedObject: 'apps/Deployment/web/web',
    };
    await report('edge', [failed]);
    const [event, ...rest] = events.take();
    expect(rest).toEqual([]);
    expect(event).toMatchObject({
      type: 'bundle.failed',
      severity: 'error',
      cluster: { name: 'edge', labels: { env: 'prod' } },
      bundle: 'web',
      message: 'web failed on edge: quota exceeded',
      key: `bundle.failed/edge/web/${h('a')}/2026-12-06T12:00:10.000Z`,
      details: { failedObject: 'apps/Deployment/web/web', message: 'quota exceeded' },
    });
    advance(10);
    await report('edge', [failed]); // the same report again
    await report('edge', [{ ...failed, message: 'quota still exceeded' }]); // rewritten, same state
    expect(events.take()).toEqual([]);

    advance(10);
    await report('edge', [{ name: 'web', state: 'Ready', hash: h('a'), generation: 0 }]);
    expect(events.take()).toEqual([
      expect.objectContaining({
        type: 'bundle.recovered',
        severity: 'info',
        details: expect.objectContaining({ previousState: 'Failed' }),
      }),
    ]);

    advance(10);
    const drifted = {
      name: 'web',
      state: 'Drifted',
      hash: h('a'),
      generation: 0,
      drift: [{ object: 'apps/Deployment/web/web', fields: ['spec.replicas'] }],
    };
    await report('edge', [drifted]);
    await report('edge', [drifted]);
    expect(events.take()).toEqual([
      expect.objectContaining({
        type: 'bundle.drifted',
        severity: 'warning',
        message: 'web drifted on edge: apps/Deployment/web/web (spec.replicas)',
        details: expect.objectContaining({
          drift: [{ object: 'apps/Deployment/web/web', fields: ['spec.replicas'] }],
        }),
      }),
    ]);
    await report('edge', [{ name: 'web', state: 'Ready', hash: h('a'), generation: 0 }]);
    await report('edge', [{ name: 'web', state: 'Ready', hash: h('a'), generation: 0 }]);
    expect(events.take().map((e) => e.type)).toEqual(['bundle.recovered']);
    // NotReady, Applying and Pending are not news on a report (the deadline is the schedule's).
    await report('edge', [{ name: 'web', state: 'NotReady', hash: h('b'), generation: 0 }]);
    await report('edge', [{ name: 'web', state: 'Ready', hash: h('b'), generation: 0 }]);
    expect(events.take()).toEqual([]);
  });

  it('never fails a report when the sink or a builder throws', async () => {
    const { deps, report } = setup();
    const throwing = { publish: async () => Promise.reject(new Error('sink broke')) };
    const ports = { ...deps, events: throwing };
    await addCluster(deps.clusters, 'edge');
    const receipt = await recordClusterStatus(
      ports,
      { id: 'edge' },
      parseStatusReport({
        apiVersion: STATUS_API_VERSION,
        kind: 'ClusterStatus',
        agentVersion: '0.1.0',
        bundles: [{ name: 'web', state: 'Failed', hash: h('a'), generation: 0, message: 'x' }],
      }),
    );
    expect(receipt.changed).toBe(1);
    await expect(report('edge')).resolves.toMatchObject({ clusterId: 'edge' });
  });
});

describe('the schedule: offline clusters and bundles NotReady past their deadline', () => {
  const opts = { offlineAfterSeconds: 180, notReadyAfterSeconds: 600 };

  it('emits cluster.offline once past the threshold, and cluster.online with the next heartbeat', async () => {
    const { deps, events, report, advance } = setup();
    await addCluster(deps.clusters, 'edge', { site: 'a' });
    await addCluster(deps.clusters, 'never'); // never reported: never online, never offline
    await report('edge');
    advance(170);
    expect(await watchFleetHealth(deps, opts)).toEqual({ offline: [], notReady: [] });
    advance(20);
    // Two schedule runs at once: one marks the cluster and emits.
    const both = await Promise.all([watchFleetHealth(deps, opts), watchFleetHealth(deps, opts)]);
    expect(both.flatMap((r) => r.offline)).toEqual(['edge']);
    const [offline, ...rest] = events.take();
    expect(rest).toEqual([]);
    expect(offline).toMatchObject({
      type: 'cluster.offline',
      severity: 'warning',
      cluster: { name: 'edge', labels: { site: 'a' } },
      key: 'cluster.offline/edge/2026-12-06T12:00:00.000Z',
      details: { lastHeartbeatAt: '2026-12-06T12:00:00.000Z', offlineAfterSeconds: 180 },
    });
    advance(60);
    await watchFleetHealth(deps, opts);
    expect(events.take()).toEqual([]);

    await report('edge');
    await report('edge');
    expect(events.take()).toEqual([
      expect.objectContaining({
        type: 'cluster.online',
        severity: 'info',
        key: 'cluster.online/edge/2026-12-06T12:03:10.000Z',
        cluster: { name: 'edge', labels: { site: 'a' } },
      }),
    ]);
    await watchFleetHealth(deps, opts);
    expect(events.take()).toEqual([]);
  });

  it('emits nothing when a heartbeat lands between reading the cluster and marking it', async () => {
    const { deps, events, report, advance } = setup();
    await addCluster(deps.clusters, 'edge');
    await report('edge');
    advance(200);
    const clusters = deps.clusters;
    const racing = {
      list: () => clusters.list(),
      markOffline: async (id: string, beat: string, at: string) => {
        await report('edge'); // the agent is back just before the conditional write
        return (await clusters.markOffline?.(id, beat, at)) ?? false;
      },
    };
    expect(await watchFleetHealth({ ...deps, clusters: racing }, opts)).toEqual({
      offline: [],
      notReady: [],
    });
    expect(events.take()).toEqual([]);
  });

  it('emits bundle.not-ready once past the deadline, keeps it reported while NotReady, and recovered when Ready', async () => {
    const { deps, events, report, advance } = setup();
    await addCluster(deps.clusters, 'edge');
    const notReady = { name: 'web', state: 'NotReady', hash: h('a'), generation: 0, message: '0/3 replicas' };
    await report('edge', [notReady]);
    advance(120);
    await report('edge', [{ ...notReady, message: '1/3 replicas' }]);
    expect(await watchFleetHealth(deps, opts)).toEqual({ offline: [], notReady: [] });
    advance(500);
    await report('edge', [notReady]);
    const both = await Promise.all([watchFleetHealth(deps, opts), watchFleetHealth(deps, opts)]);
    expect(both.flatMap((r) => r.notReady)).toEqual([{ cluster: 'edge', bundle: 'web' }]);
    expect(events.take()).toEqual([
      expect.objectContaining({
        type: 'bundle.not-ready',
        severity: 'warning',
        bundle: 'web',
        key: `bundle.not-ready/edge/web/${h('a')}/2026-12-06T12:00:00.000Z`,
        message: 'web has been NotReady on edge for 10 min: 0/3 replicas',
      }),
    ]);
    // A report that rewrites the stretch (a new message) keeps it reported.
    await report('edge', [{ ...notReady, message: '2/3 replicas' }]);
    advance(10);
    await watchFleetHealth(deps, opts);
    expect(events.take()).toEqual([]);
    await report('edge', [{ ...notReady, state: 'Ready' }]);
    expect(events.take()).toEqual([
      expect.objectContaining({
        type: 'bundle.recovered',
        details: expect.objectContaining({ previousState: 'NotReady' }),
      }),
    ]);
  });

  it('counts the deadline from the NotReady stretch on the current content', async () => {
    const { deps, events, report, advance } = setup();
    await addCluster(deps.clusters, 'edge');
    const notReady = { name: 'web', state: 'NotReady', hash: h('a'), generation: 0 };
    await report('edge', [notReady]);
    advance(480);
    await report('edge', [{ ...notReady, hash: h('b') }]); // new content, still NotReady
    advance(180);
    await report('edge', [{ ...notReady, hash: h('b') }]);
    expect(await watchFleetHealth(deps, opts)).toEqual({ offline: [], notReady: [] });
    advance(430);
    await report('edge', [{ ...notReady, hash: h('b') }]);
    await watchFleetHealth(deps, opts);
    expect(events.take().map((e) => e.key)).toEqual([
      `bundle.not-ready/edge/web/${h('b')}/2026-12-06T12:08:00.000Z`,
    ]);
  });

  it('runs from the scheduled handler, even when the sync fails', async () => {
    const { deps, events, report, advance } = setup();
    await addCluster(deps.clusters, 'edge');
    await report('edge');
    advance(200);
    deps.source.fetch = async () => {
      throw new Error('git unreachable');
    };
    await expect(scheduledSync(deps, 'inv-1', captureLog())).rejects.toThrow(/unreachable/);
    expect(events.take().map((e) => e.type)).toEqual(['cluster.offline', 'sync.failed']);
  });
});

describe('rollout events', () => {
  const bundleYaml = `namespace: web
targets: [{clusterSelector: {}}]
rollout:
  waves:
    - {name: canary, clusterName: [c1], maxParallel: 1}
    - {name: rest}
  progressDeadline: 5m
  failure: {maxFailures: 0, action: revert}
`;
  const files = [
    { path: 'bundles/web/bundle.yaml', content: bundleYaml },
    { path: 'bundles/web/config.yaml', content: webConfig },
  ];

  it('maps the saved steps to rollout.wave-opened, paused and completed, each once', async () => {
    const { deps, events, report } = setup(files);
    for (const id of ['c1', 'c2']) await addCluster(deps.clusters, id);
    await syncFleet(deps, { holder: 'test' });
    const opened = events.take();
    expect(opened).toEqual([
      expect.objectContaining({
        type: 'rollout.wave-opened',
        severity: 'info',
        bundle: 'web',
        commit: 'a'.repeat(40),
        key: `rollout.wave-opened/web/${'a'.repeat(40)}/0`,
        details: expect.objectContaining({ wave: 0, waveName: 'canary' }),
      }),
    ]);
    await syncFleet(deps, { holder: 'test' }); // the same commit: the rollout carries on, nothing new
    expect(events.take()).toEqual([]);

    await commandRollout(deps, 'web', 'pause');
    expect(events.take().map((e) => [e.type, e.severity])).toEqual([['rollout.paused', 'warning']]);
    await commandRollout(deps, 'web', 'resume');
    expect(events.take()).toEqual([]); // resuming is not news

    const hashOf = async (id: string) =>
      (
        JSON.parse((await deps.desiredStates.current(id))?.manifest ?? '{}') as {
          bundles: { hash: string }[];
        }
      ).bundles[0]?.hash as string;
    await report('c1', [{ name: 'web', state: 'Ready', hash: await hashOf('c1'), generation: 1 }]);
    expect(events.take().map((e) => e.type)).toEqual(['rollout.wave-opened']);
    await report('c2', [{ name: 'web', state: 'Ready', hash: await hashOf('c2'), generation: 1 }]);
    await report('c2', [{ name: 'web', state: 'Ready', hash: await hashOf('c2'), generation: 1 }]);
    expect(events.take().map((e) => [e.type, e.key])).toEqual([
      ['rollout.completed', `rollout.completed/web/${'a'.repeat(40)}/done`],
    ]);
  });

  it('emits nothing for a step whose conditional save lost to other writers', async () => {
    const { deps, events } = setup(files);
    await addCluster(deps.clusters, 'c1');
    await syncFleet(deps, { holder: 'test' });
    events.take();
    const store = deps.rollouts as MemoryRolloutStore;
    const losing = Object.assign(Object.create(store) as MemoryRolloutStore, {
      save: async (): Promise<RolloutHead> => {
        throw new ConflictError('another writer moved the rollout');
      },
    });
    await expect(commandRollout({ ...deps, rollouts: losing }, 'web', 'pause')).rejects.toBeInstanceOf(
      ConflictError,
    );
    expect(events.take()).toEqual([]);
  });
});
