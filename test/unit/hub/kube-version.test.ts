/**
 * The cluster's Kubernetes version as its agent reports it: how the hub validates it, keeps
 * it on the cluster record, shows it, and re-plans a cluster whose version changed.
 */

import type { EngineRequest, EngineResult, RenderEngine } from '@flotilla/shared';
import {
  clusterView,
  type FleetSourceFile,
  isKubeVersion,
  kubeVersionProblem,
  parseStatusReport,
  recordClusterStatus,
  statusLimits,
  syncFleet,
} from '@flotilla/shared/hub';
import type { Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { createApiHandler } from '../../../functions/src/http/api.ts';
import { toApiGatewayEvent } from '../../../functions/src/local/event.ts';
import {
  addCluster,
  fakeApiDeps,
  MemoryClusterStore,
  MemoryFleetSource,
  statusReport,
  statusReportProblems,
} from './fakes.ts';

const report = statusReport;
const problemsOf = statusReportProblems;

describe('kubeVersion in a status report', () => {
  it.each([
    'v1.33.2',
    'v1.29.3-eks-adc7111',
    'v1.28.5+k3s1',
    'v1.30.1-gke.1329003',
    'v1.27.6+rke2r1',
    'v1.34.0-alpha.1.120+0123456789abcd',
    'v0.0.0',
  ])('takes %s, as API servers report it', (version) => {
    expect(isKubeVersion(version)).toBe(true);
    expect(parseStatusReport(report({ kubeVersion: version })).kubeVersion).toBe(version);
  });

  it('is optional: an older agent does not send it', () => {
    expect(parseStatusReport(report()).kubeVersion).toBeUndefined();
  });

  it.each([
    ['1.33.2', /v<major>\.<minor>\.<patch>/],
    ['v1.33', /v<major>\.<minor>\.<patch>/],
    ['v01.33.2', /v<major>\.<minor>\.<patch>/],
    ['v1.33.2-', /v<major>\.<minor>\.<patch>/],
    ['v1.33.2+', /v<major>\.<minor>\.<patch>/],
    ['v1.33.2-a..b', /v<major>\.<minor>\.<patch>/],
    ['v1.33.2 ', /v<major>\.<minor>\.<patch>/],
    ['v1.33.2\n', /v<major>\.<minor>\.<patch>/],
    ['v1.33.2-<script>', /v<major>\.<minor>\.<patch>/],
    ['', /v<major>\.<minor>\.<patch>/],
    [`v1.33.2-${'a'.repeat(60)}`, /at most 64 characters \(got 68\)/],
    [133, /expected a string/],
    [null, /expected a string/],
  ])('refuses %j, naming the field', (value, message) => {
    const problems = problemsOf(report({ kubeVersion: value }));
    expect(problems).toHaveLength(1);
    expect(problems[0]?.field).toBe('kubeVersion');
    expect(problems[0]?.message).toMatch(message);
    expect(kubeVersionProblem(value)).toBeDefined();
  });

  it('reports a bad kubeVersion together with the other problems', () => {
    const problems = problemsOf(report({ kubeVersion: 'latest', observedAt: 'now' }));
    expect(problems.map((p) => p.field)).toEqual(['kubeVersion', 'observedAt']);
    expect(problems[0]?.message).toBe(
      'expected a Kubernetes version "v<major>.<minor>.<patch>[-pre][+build]" such as "v1.33.2", got "latest"',
    );
  });

  it('has a limit the agent and hub share', () => {
    expect(statusLimits.kubeVersionChars).toBe(64);
  });
});

describe('the cluster store keeps the last kubeVersion reported', () => {
  it('tells whether a heartbeat changed it, and keeps it when an older agent sends none', async () => {
    const clusters = new MemoryClusterStore();
    await addCluster(clusters, 'edge');
    const beat = (kubeVersion?: string) =>
      clusters.recordHeartbeat('edge', { at: '2024-05-01T12:00:00Z', agentVersion: '0.1.0', kubeVersion });
    expect(await beat('v1.33.2')).toEqual({ kubeVersionChanged: true });
    expect(await beat('v1.33.2')).toEqual({ kubeVersionChanged: false });
    expect(await beat()).toEqual({ kubeVersionChanged: false });
    expect((await clusters.get('edge'))?.kubeVersion).toBe('v1.33.2');
    expect(await beat('v1.34.0')).toEqual({ kubeVersionChanged: true });
    const record = await clusters.get('edge');
    expect(record?.kubeVersion).toBe('v1.34.0');
    expect(clusterView(record as never).kubeVersion).toBe('v1.34.0');
  });

  it('shows null for a cluster whose agent never reported it', async () => {
    const clusters = new MemoryClusterStore();
    await addCluster(clusters, 'edge');
    expect(clusterView((await clusters.get('edge')) as never).kubeVersion).toBeNull();
  });
});

const plainFiles: FleetSourceFile[] = [
  { path: 'bundles/base/bundle.yaml', content: 'namespace: base\ntargets:\n  - clusterSelector: {}\n' },
  {
    path: 'bundles/base/config.yaml',
    content: 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: base\ndata:\n  cluster: ${cluster.name}\n',
  },
];
/** With a Helm bundle that renders with each cluster's Kubernetes version. */
const files: FleetSourceFile[] = [
  ...plainFiles,
  {
    path: 'bundles/chart/bundle.yaml',
    content: 'namespace: base\ntargets: [{clusterSelector: {}}]\nhelm: {chart: chart}\n',
  },
  { path: 'bundles/chart/chart/Chart.yaml', content: 'apiVersion: v2\nname: chart\nversion: 0.1.0\n' },
];

/** A plain fake of the render engine: a chart renders to one ConfigMap naming the Kubernetes version it was given. */
const echoEngine: RenderEngine = {
  async render(request: EngineRequest): Promise<EngineResult> {
    if (request.kind !== 'helm') return { ok: false, error: { message: 'only helm in this fake' } };
    return {
      ok: true,
      manifests: `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kube\ndata:\n  version: "${request.kubeVersion ?? 'default'}"\n`,
    };
  },
};

/** API deps on fakes, synced once, with a count of the re-plans (each loads the fleet snapshot). */
async function synced(repo: FleetSourceFile[] = files) {
  const deps = {
    ...fakeApiDeps({ source: new MemoryFleetSource('a'.repeat(40), repo) }),
    engine: { engine: echoEngine },
  };
  const token = await addCluster(deps.clusters, 'edge');
  await syncFleet(deps, { holder: 'test' });
  const bundles = deps.bundles;
  const replans = { count: 0 };
  const get = bundles.get.bind(bundles);
  bundles.get = async (hash) => {
    replans.count++;
    return get(hash);
  };
  return { deps, token, replans };
}

describe('a changed kubeVersion re-plans the cluster', () => {
  it('re-plans when the version is new or changed, and not when it is the same or absent', async () => {
    const { deps, replans } = await synced();
    const generation = (await deps.clusters.get('edge'))?.head?.generation;
    const post = (extra: Record<string, unknown>) =>
      recordClusterStatus(deps, { id: 'edge' }, parseStatusReport(report(extra)));

    const first = await post({ kubeVersion: 'v1.33.2' });
    expect(replans.count).toBe(1);
    // The chart renders with the reported version now: a new generation.
    expect(first.replan).toMatchObject({
      kubeVersion: 'v1.33.2',
      sync: { status: 'synced', changed: [{ clusterId: 'edge' }] },
    });
    expect((await deps.clusters.get('edge'))?.head?.generation).toBe((generation ?? 0) + 1);

    expect((await post({ kubeVersion: 'v1.33.2' })).replan).toBeUndefined();
    expect((await post({})).replan).toBeUndefined();
    expect(replans.count).toBe(1);

    const upgraded = await post({ kubeVersion: 'v1.34.1' });
    expect(replans.count).toBe(2);
    expect(upgraded.replan).toMatchObject({ kubeVersion: 'v1.34.1' });
    expect((await deps.clusters.get('edge'))?.kubeVersion).toBe('v1.34.1');
  });

  it('does not re-plan when no chart renders with the cluster version', async () => {
    const { deps, replans } = await synced(plainFiles);
    const receipt = await recordClusterStatus(
      deps,
      { id: 'edge' },
      parseStatusReport(report({ kubeVersion: 'v1.33.2' })),
    );
    expect(replans.count).toBe(0);
    expect(receipt.replan).toMatchObject({ kubeVersion: 'v1.33.2', sync: { changed: [] } });
  });

  it('records the report even when the re-plan fails, and says why', async () => {
    const { deps } = await synced();
    deps.bundles.get = async () => {
      throw new Error('bundle store unreachable');
    };
    const receipt = await recordClusterStatus(
      deps,
      { id: 'edge' },
      parseStatusReport(report({ kubeVersion: 'v1.33.2' })),
    );
    expect(receipt.replan).toMatchObject({
      kubeVersion: 'v1.33.2',
      error: { message: 'bundle store unreachable' },
    });
    expect((await deps.clusters.get('edge'))?.lastHeartbeatAt).toBe('2024-05-01T12:00:00.000Z');
  });

  it('through the API: the answer leaves the re-plan out, the hub logs it', async () => {
    const { deps, token, replans } = await synced();
    const post = async (body: unknown) => {
      const event = toApiGatewayEvent({
        method: 'POST',
        url: '/v1/clusters/edge/status',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: Buffer.from(JSON.stringify(body)),
        sourceIp: '127.0.0.1',
        requestId: 'req-1',
        now: new Date('2024-05-01T12:00:00Z'),
      });
      const res = await createApiHandler(deps)(event, { awsRequestId: 'lambda' } as Context);
      return { statusCode: res.statusCode, json: JSON.parse(res.body ?? '{}') as Record<string, unknown> };
    };
    const ok = await post(report({ kubeVersion: 'v1.33.2' }));
    expect(ok.statusCode).toBe(200);
    expect(Object.keys(ok.json).sort()).toEqual([
      'bundles',
      'changed',
      'clusterId',
      'desired',
      'receivedAt',
      'removed',
    ]);
    expect(replans.count).toBe(1);
    expect(deps.log.lines).toContainEqual({
      level: 'info',
      message: 're-planned a cluster for its new Kubernetes version',
      fields: { clusterId: 'edge', kubeVersion: 'v1.33.2', changed: true, errors: 0 },
    });

    const bad = await post(report({ kubeVersion: 'v1.33' }));
    expect(bad.statusCode).toBe(400);
    expect(bad.json.error).toMatchObject({ code: 'invalid_request', field: 'kubeVersion' });
    expect((await deps.clusters.get('edge'))?.kubeVersion).toBe('v1.33.2');
  });
});
