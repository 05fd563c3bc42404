import { compileSelector, parseLabelSelector } from '@flotilla/shared';
import {
  fleetStatus,
  InvalidRequestError,
  NotFoundError,
  parseStatusReport,
  recordClusterStatus,
  type StoredDesiredState,
  statusChange,
} from '@flotilla/shared/hub';
import { describe, expect, it } from 'vitest';
import {
  addCluster,
  fakeApiDeps,
  MemoryClusterStore,
  MemoryDesiredStateStore,
  MemoryStatusStore,
  MemorySyncStateStore,
  statusReport,
  statusReportProblems,
} from './fakes.ts';

const h = (c: string) => `sha256:${c.repeat(64)}`;
const report = statusReport;
const problemsOf = statusReportProblems;

describe('status report validation', () => {
  it('accepts a heartbeat alone and a full report', () => {
    expect(parseStatusReport(report()).bundles).toBeUndefined();
    const full = parseStatusReport(
      report({
        observedAt: '2024-05-01T12:00:00.123Z',
        appliedGeneration: 4,
        bundles: [
          { name: 'web', state: 'Ready', hash: h('a'), generation: 4 },
          {
            name: 'db',
            state: 'Failed',
            hash: h('b'),
            generation: 4,
            message: 'quota',
            failedObject: '/Service/db/db',
          },
          {
            name: 'cache',
            state: 'Drifted',
            hash: h('c'),
            generation: 4,
            drift: [{ object: 'apps/Deployment/cache/redis', fields: ['spec.replicas'] }],
          },
        ],
      }),
    );
    expect(full.bundles?.map((b) => b.state)).toEqual(['Ready', 'Failed', 'Drifted']);
  });

  const cases: [string, unknown, string, RegExp][] = [
    ['not an object', [1, 2], 'body', /JSON object/],
    ['wrong apiVersion', report({ apiVersion: 'v1' }), 'apiVersion', /flotilla\.dev\/v1alpha1/],
    ['wrong kind', report({ kind: 'Status' }), 'kind', /ClusterStatus/],
    ['missing agentVersion', report({ agentVersion: undefined }), 'agentVersion', /expected a string/],
    ['empty agentVersion', report({ agentVersion: ' ' }), 'agentVersion', /must not be empty/],
    ['unknown top-level field', report({ clusterId: 'x' }), 'clusterId', /unknown field/],
    ['bad observedAt', report({ observedAt: 'yesterday' }), 'observedAt', /RFC 3339/],
    [
      'negative appliedGeneration',
      report({ appliedGeneration: -1 }),
      'appliedGeneration',
      /non-negative integer/,
    ],
    [
      'fractional appliedGeneration',
      report({ appliedGeneration: 1.5 }),
      'appliedGeneration',
      /non-negative integer/,
    ],
    ['bundles not an array', report({ bundles: {} }), 'bundles', /array/],
    ['bundle not an object', report({ bundles: ['web'] }), 'bundles[0]', /object/],
    [
      'bad bundle name',
      report({ bundles: [{ name: 'Web', state: 'Ready', hash: h('a'), generation: 1 }] }),
      'bundles[0].name',
      /not a valid name/,
    ],
    [
      'unknown state',
      report({ bundles: [{ name: 'web', state: 'Done', hash: h('a'), generation: 1 }] }),
      'bundles[0].state',
      /Pending, Applying, Ready, NotReady, Failed, Drifted/,
    ],
    [
      'bad hash',
      report({ bundles: [{ name: 'web', state: 'Ready', hash: 'abc', generation: 1 }] }),
      'bundles[0].hash',
      /sha256/,
    ],
    [
      'missing generation',
      report({ bundles: [{ name: 'web', state: 'Ready', hash: h('a') }] }),
      'bundles[0].generation',
      /non-negative integer/,
    ],
    [
      'appliedGeneration as text',
      report({ appliedGeneration: '1' }),
      'appliedGeneration',
      /non-negative integer/,
    ],
    [
      'unsafe appliedGeneration',
      report({ appliedGeneration: 2 ** 53 }),
      'appliedGeneration',
      /non-negative integer/,
    ],
    [
      'fractional bundle generation',
      report({ bundles: [{ name: 'web', state: 'Ready', hash: h('a'), generation: 0.5 }] }),
      'bundles[0].generation',
      /non-negative integer/,
    ],
    [
      'Failed without message',
      report({ bundles: [{ name: 'web', state: 'Failed', hash: h('a'), generation: 1 }] }),
      'bundles[0].message',
      /required when state is Failed/,
    ],
    [
      'Drifted without drift',
      report({ bundles: [{ name: 'web', state: 'Drifted', hash: h('a'), generation: 1 }] }),
      'bundles[0].drift',
      /required when state is Drifted/,
    ],
    [
      'drift fields not a list',
      report({
        bundles: [
          {
            name: 'web',
            state: 'Drifted',
            hash: h('a'),
            generation: 1,
            drift: [{ object: 'x', fields: 'spec' }],
          },
        ],
      }),
      'bundles[0].drift[0].fields',
      /array/,
    ],
    [
      'unknown bundle field',
      report({ bundles: [{ name: 'web', state: 'Ready', hash: h('a'), generation: 1, colour: 1 }] }),
      'bundles[0].colour',
      /unknown field/,
    ],
    [
      'bundle reported twice',
      report({
        bundles: [
          { name: 'web', state: 'Ready', hash: h('a'), generation: 1 },
          { name: 'web', state: 'Ready', hash: h('a'), generation: 1 },
        ],
      }),
      'bundles[1].name',
      /twice/,
    ],
    [
      'message too long',
      report({
        bundles: [{ name: 'web', state: 'Failed', hash: h('a'), generation: 1, message: 'x'.repeat(5000) }],
      }),
      'bundles[0].message',
      /at most 4096/,
    ],
  ];
  for (const [name, value, field, message] of cases) {
    it(`names the field: ${name}`, () => {
      const problems = problemsOf(value);
      expect(problems.find((p) => p.field === field)?.message, JSON.stringify(problems)).toMatch(message);
    });
  }

  it('reports every problem at once, the first as the error field', () => {
    try {
      parseStatusReport(report({ apiVersion: 'x', kind: 'y', agentVersion: 3 }));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidRequestError);
      const e = err as InvalidRequestError;
      expect(e.field).toBe('apiVersion');
      expect(e.problems.map((p) => p.field)).toEqual(['apiVersion', 'kind', 'agentVersion']);
      expect(e.message).toMatch(/^3 problems: apiVersion: .*; kind: .*; agentVersion: /);
    }
  });
});

describe('recording status', () => {
  const at = (s: number) => new Date(Date.UTC(2024, 4, 1, 12, 0, s)).toISOString();

  it('writes only what changed, keeps the time a bundle entered its state, and removes bundles no longer reported', () => {
    const first = statusChange(
      undefined,
      parseStatusReport(
        report({
          appliedGeneration: 1,
          bundles: [
            { name: 'a', state: 'Applying', hash: h('a'), generation: 1 },
            { name: 'b', state: 'Ready', hash: h('b'), generation: 1 },
          ],
        }),
      ),
      'edge',
      at(0),
    );
    expect(first.put.map((p) => [p.bundle, p.since])).toEqual([
      ['a', at(0)],
      ['b', at(0)],
    ]);
    expect(first.summary).toEqual({ appliedGeneration: 1 });
    const stored = { clusterId: 'edge', appliedGeneration: 1, bundles: first.put };

    const same = statusChange(
      stored,
      parseStatusReport(
        report({
          appliedGeneration: 1,
          bundles: [
            { name: 'a', state: 'Applying', hash: h('a'), generation: 1 },
            { name: 'b', state: 'Ready', hash: h('b'), generation: 1 },
          ],
        }),
      ),
      'edge',
      at(30),
    );
    expect(same).toEqual({ clusterId: 'edge', put: [], remove: [] });

    const next = statusChange(
      stored,
      parseStatusReport(report({ bundles: [{ name: 'a', state: 'Ready', hash: h('a'), generation: 1 }] })),
      'edge',
      at(60),
    );
    expect(next.put.map((p) => [p.bundle, p.state, p.since])).toEqual([['a', 'Ready', at(60)]]);
    expect(next.remove).toEqual(['b']);
    expect(next.summary).toBeUndefined();

    // Same state, new message: written, but the state's start time stays.
    const withMessage = statusChange(
      stored,
      parseStatusReport(
        report({
          bundles: [
            { name: 'a', state: 'Applying', hash: h('a'), generation: 1, message: '3 of 5 objects applied' },
            { name: 'b', state: 'Ready', hash: h('b'), generation: 1 },
          ],
        }),
      ),
      'edge',
      at(90),
    );
    expect(withMessage.put.map((p) => [p.bundle, p.since, p.updatedAt])).toEqual([['a', at(0), at(90)]]);
  });

  it('records the heartbeat with the hub clock and refuses a cluster that is gone', async () => {
    const statuses = new MemoryStatusStore();
    const ports = fakeApiDeps({ statuses, now: () => new Date(at(5)) });
    const { clusters } = ports;
    await addCluster(clusters, 'edge');
    const receipt = await recordClusterStatus(
      ports,
      { id: 'edge' },
      parseStatusReport(report({ observedAt: '1999-01-01T00:00:00Z' })),
    );
    expect(receipt).toEqual({ clusterId: 'edge', receivedAt: at(5), bundles: 0, changed: 0, removed: 0 });
    expect((await clusters.get('edge'))?.lastHeartbeatAt).toBe(at(5));
    expect((await clusters.get('edge'))?.agentVersion).toBe('0.1.0');
    expect(statuses.applied).toEqual([]); // a heartbeat alone writes no status
    await expect(
      recordClusterStatus(ports, { id: 'gone' }, parseStatusReport(report())),
    ).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe('reported generations against the desired one', () => {
  async function edgeAt(generation: number | undefined) {
    const statuses = new MemoryStatusStore();
    const ports = fakeApiDeps({ statuses });
    await addCluster(ports.clusters, 'edge');
    const head =
      generation === undefined
        ? undefined
        : { generation, etag: h('e'), refsHash: h('r'), commit: 'c'.repeat(40) };
    return { ports, statuses, cluster: { id: 'edge', head } };
  }

  it('refuses an applied generation above the desired one, naming the field, and records nothing', async () => {
    const { ports, statuses, cluster } = await edgeAt(1);
    const claim = parseStatusReport(report({ appliedGeneration: 10 ** 15 }));
    const refused = await recordClusterStatus(ports, cluster, claim).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(InvalidRequestError);
    expect(refused).toMatchObject({ field: 'appliedGeneration' });
    expect((refused as Error).message).toMatch(
      /1000000000000000 is above the cluster's desired generation 1/,
    );
    // Not even the heartbeat: a report the hub refuses leaves no trace.
    expect((await ports.clusters.get('edge'))?.lastHeartbeatAt).toBeUndefined();
    expect(statuses.applied).toEqual([]);
  });

  it('names every bundle generation above the desired one', async () => {
    const { ports, cluster } = await edgeAt(3);
    const claim = parseStatusReport(
      report({
        appliedGeneration: 3,
        bundles: [
          { name: 'a', state: 'Ready', hash: h('a'), generation: 3 },
          { name: 'b', state: 'Ready', hash: h('b'), generation: 4 },
          { name: 'c', state: 'Ready', hash: h('c'), generation: 9 },
        ],
      }),
    );
    const refused = await recordClusterStatus(ports, cluster, claim).catch((err: unknown) => err);
    expect((refused as InvalidRequestError).problems.map((p) => p.field)).toEqual([
      'bundles[1].generation',
      'bundles[2].generation',
    ]);
  });

  it('accepts the desired generation and older ones, and only 0 before the first desired state', async () => {
    const { ports, statuses, cluster } = await edgeAt(3);
    const fine = parseStatusReport(
      report({
        appliedGeneration: 2,
        bundles: [{ name: 'a', state: 'Applying', hash: h('a'), generation: 3 }],
      }),
    );
    expect((await recordClusterStatus(ports, cluster, fine)).changed).toBe(1);
    expect(statuses.applied).toHaveLength(1);

    const fresh = await edgeAt(undefined);
    const zero = parseStatusReport(report({ appliedGeneration: 0 }));
    expect((await recordClusterStatus(fresh.ports, fresh.cluster, zero)).clusterId).toBe('edge');
    await expect(
      recordClusterStatus(fresh.ports, fresh.cluster, parseStatusReport(report({ appliedGeneration: 1 }))),
    ).rejects.toMatchObject({ field: 'appliedGeneration' });
  });
});

describe('fleet status', () => {
  async function fleet() {
    const clusters = new MemoryClusterStore();
    const desiredStates = new MemoryDesiredStateStore(clusters);
    const statuses = new MemoryStatusStore();
    const syncState = new MemorySyncStateStore();
    const now = new Date('2024-05-01T12:00:00Z');
    const ports = { clusters, desiredStates, statuses, syncState, now: () => now };
    const manifest = (
      cluster: string,
      generation: number,
      bundles: [string, string][],
    ): StoredDesiredState => {
      const m = {
        apiVersion: 'flotilla.dev/v1alpha1',
        kind: 'DesiredState',
        cluster,
        generation,
        commit: 'c1',
        bundles: bundles.map(([name, hash]) => ({
          name,
          hash,
          namespace: 'default',
          dependsOn: [],
          driftPolicy: 'correct',
          paused: false,
        })),
      };
      return {
        clusterId: cluster,
        generation,
        etag: `e-${cluster}-${generation}`,
        refsHash: 'r',
        commit: 'c1',
        manifest: JSON.stringify(m),
        signature: 's',
        keyId: 'k',
        createdAt: now.toISOString(),
      };
    };
    for (const [id, labels] of [
      ['eu-1', { env: 'prod' }],
      ['us-1', { env: 'prod' }],
      ['new-1', { env: 'dev' }],
    ] as const) {
      await addCluster(clusters, id, labels);
    }
    await desiredStates.commit(
      manifest('eu-1', 1, [
        ['a', h('a')],
        ['b', h('b')],
      ]),
      undefined,
    );
    await desiredStates.commit(
      manifest('us-1', 1, [
        ['a', h('a')],
        ['b', h('c')],
      ]),
      undefined,
    );
    const seen = (s: number) => new Date(now.getTime() - s * 1000).toISOString();
    await clusters.recordHeartbeat('eu-1', { at: seen(30), agentVersion: '0.1.0', kubeVersion: 'v1.33.2' });
    await clusters.recordHeartbeat('us-1', { at: seen(600), agentVersion: '0.1.0' });
    const state = (bundle: string, hash: string, st: string) =>
      ({ bundle, state: st, hash, generation: 1, since: seen(60), updatedAt: seen(60) }) as never;
    await statuses.apply({
      clusterId: 'eu-1',
      summary: { appliedGeneration: 1 },
      put: [state('a', h('a'), 'Ready'), state('b', h('b'), 'Ready')],
      remove: [],
    });
    // us-1 last reported b at an older hash, as Failed.
    await statuses.apply({
      clusterId: 'us-1',
      put: [state('a', h('a'), 'NotReady'), state('b', h('b'), 'Failed')],
      remove: [],
    });
    await syncState.save({
      commit: 'c1',
      snapshotHash: 's',
      syncedAt: seen(120),
      clusters: 3,
      changedClusters: 2,
      errors: [
        { file: 'bundles/x/bundle.yaml', line: 4, message: 'paused: expected a boolean', bundle: 'x' },
      ],
    });
    return ports;
  }

  it('puts clusters x bundles against desired state, with Offline clusters and the last sync', async () => {
    const status = await fleetStatus(await fleet(), { offlineAfterSeconds: 180 });
    const byId = Object.fromEntries(status.clusters.map((c) => [c.id, c]));
    expect(byId['eu-1']).toMatchObject({
      connection: 'Online',
      state: 'Ready',
      inSync: true,
      appliedGeneration: 1,
    });
    expect(byId['us-1']).toMatchObject({ connection: 'Offline', state: 'NotReady', inSync: false });
    // The Failed report was about content the hub no longer wants: it counts as Pending.
    expect(byId['us-1']?.bundles.find((b) => b.name === 'b')).toMatchObject({
      state: 'Pending',
      reportedState: 'Failed',
      upToDate: false,
      desiredHash: h('c'),
      appliedHash: h('b'),
    });
    expect(byId['new-1']).toMatchObject({
      connection: 'Offline',
      desired: null,
      lastHeartbeatAt: null,
      bundles: [],
    });
    expect(status.summary).toMatchObject({ clusters: 3, online: 1, offline: 2, inSync: 1 });
    expect(status.summary.bundleStates).toMatchObject({ Ready: 2, NotReady: 1, Pending: 1 });
    expect(status.sync?.errors[0]?.text).toBe('bundles/x/bundle.yaml:4: paused: expected a boolean');
  });

  it('narrows to clusters matching a selector', async () => {
    const status = await fleetStatus(await fleet(), {
      offlineAfterSeconds: 180,
      matcher: compileSelector(parseLabelSelector('env=dev')),
    });
    expect(status.clusters.map((c) => c.id)).toEqual(['new-1']);
  });
});
