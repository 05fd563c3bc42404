import type { BundleStatusView, ClusterStatusView, FleetStatus } from '@flotilla/shared/hub';
import { describe, expect, it } from 'vitest';
import { ApiError, type DashboardApi } from '../../../dashboard/src/api.ts';
import { type LiveState, pollFleetStatus } from '../../../dashboard/src/live.ts';
import {
  ago,
  buildMatrix,
  bundleClusters,
  cellState,
  compileFilter,
  noFilter,
  visibleWindow,
} from '../../../dashboard/src/model.ts';
import { formatRoute, parseRoute, type Route } from '../../../dashboard/src/route.ts';

function bundle(
  name: string,
  state: BundleStatusView['state'],
  extra: Partial<BundleStatusView> = {},
): BundleStatusView {
  return {
    name,
    state,
    desiredHash: `sha256:${'a'.repeat(64)}`,
    appliedHash: null,
    desiredGeneration: 3,
    appliedGeneration: 3,
    upToDate: true,
    driftPolicy: 'correct',
    paused: false,
    reportedState: state,
    ...extra,
  };
}

function cluster(
  id: string,
  labels: Record<string, string>,
  bundles: BundleStatusView[],
  extra: Partial<ClusterStatusView> = {},
): ClusterStatusView {
  const worst = ['Failed', 'Drifted', 'NotReady', 'Applying', 'Pending'].find((s) =>
    bundles.some((b) => b.state === s),
  );
  return {
    id,
    labels,
    connection: 'Online',
    lastHeartbeatAt: '2026-01-01T00:00:00.000Z',
    agentVersion: '0.1.0',
    kubeVersion: 'v1.33.2',
    state: (worst ?? 'Ready') as ClusterStatusView['state'],
    desired: { generation: 3, commit: 'c'.repeat(40), etag: 'e' },
    appliedGeneration: 3,
    inSync: worst === undefined,
    bundles,
    pins: [],
    ...extra,
  };
}

function fleet(clusters: ClusterStatusView[]): FleetStatus {
  return {
    generatedAt: '2026-01-01T00:00:00.000Z',
    offlineAfterSeconds: 300,
    sync: null,
    summary: {
      clusters: clusters.length,
      online: 0,
      offline: 0,
      inSync: 0,
      clusterStates: {} as FleetStatus['summary']['clusterStates'],
      bundleStates: {} as FleetStatus['summary']['bundleStates'],
    },
    clusters,
    rollouts: [],
  };
}

const status = fleet([
  cluster('prod-us-1', { env: 'prod', region: 'us' }, [
    bundle('web', 'Ready'),
    bundle('db', 'Failed', { message: 'boom' }),
  ]),
  cluster('prod-eu-1', { env: 'prod', region: 'eu' }, [
    bundle('web', 'Drifted', { drift: [{ object: 'apps/Deployment/web/web', fields: ['spec.replicas'] }] }),
  ]),
  cluster('staging-eu-1', { env: 'staging', region: 'eu' }, [bundle('web', 'Ready', { paused: true })]),
  cluster('edge-1', { env: 'edge' }, [bundle('web', 'Ready')], { connection: 'Offline' }),
]);

const ids = (f: typeof noFilter) => {
  const c = compileFilter(f);
  if (!c.ok) throw new Error(c.message);
  return buildMatrix(status, c.keep).rows.map((r) => r.cluster.id);
};

describe('dashboard view logic', () => {
  it('shows Offline over what an offline cluster last reported, then Paused, then the hub state', () => {
    const [us, , staging, edge] = status.clusters as ClusterStatusView[];
    expect(cellState(edge as ClusterStatusView, edge?.bundles[0] as BundleStatusView)).toBe('Offline');
    expect(cellState(staging as ClusterStatusView, staging?.bundles[0] as BundleStatusView)).toBe('Paused');
    expect(cellState(us as ClusterStatusView, us?.bundles[1] as BundleStatusView)).toBe('Failed');
  });

  it('builds the matrix: every bundle a column, sorted rows, a gap where a cluster lacks a bundle, counts', () => {
    const m = buildMatrix(status, () => true);
    expect(m.bundles).toEqual(['db', 'web']);
    expect(m.rows.map((r) => r.cluster.id)).toEqual(['edge-1', 'prod-eu-1', 'prod-us-1', 'staging-eu-1']);
    expect(m.rows.map((r) => r.cells.map((c) => c?.state ?? null))).toEqual([
      [null, 'Offline'],
      [null, 'Drifted'],
      ['Failed', 'Ready'],
      [null, 'Paused'],
    ]);
    expect(m.rows.map((r) => r.state)).toEqual(['Offline', 'Drifted', 'Failed', 'Ready']);
    expect(m.clusterCounts).toMatchObject({ Offline: 1, Drifted: 1, Failed: 1, Ready: 1, Pending: 0 });
    expect(m.cellCounts).toMatchObject({ Offline: 1, Drifted: 1, Failed: 1, Ready: 1, Paused: 1 });
    expect(m.total).toBe(4);
  });

  it('filters by label selector (kubectl -l syntax), by state on the cluster or any cell, and by name', () => {
    expect(ids({ ...noFilter, selector: 'env=prod' })).toEqual(['prod-eu-1', 'prod-us-1']);
    expect(ids({ ...noFilter, selector: 'region in (eu),env!=prod' })).toEqual(['staging-eu-1']);
    expect(ids({ ...noFilter, selector: '!region' })).toEqual(['edge-1']);
    expect(ids({ ...noFilter, state: 'Failed' })).toEqual(['prod-us-1']);
    // Ready matches a cell, not only the cluster's worst state.
    expect(ids({ ...noFilter, state: 'Ready' })).toEqual(['prod-us-1', 'staging-eu-1']);
    expect(ids({ ...noFilter, state: 'Offline' })).toEqual(['edge-1']);
    expect(ids({ ...noFilter, search: 'EU' })).toEqual(['prod-eu-1', 'staging-eu-1']);
    expect(ids({ selector: 'env=prod', state: 'Drifted', search: 'eu' })).toEqual(['prod-eu-1']);
  });

  it('reports a selector that does not parse, or an unknown state, instead of hiding every cluster', () => {
    const bad = compileFilter({ ...noFilter, selector: 'env in prod' });
    expect(bad.ok).toBe(false);
    expect(bad.ok ? '' : bad.field).toBe('selector');
    expect(bad.ok ? '' : bad.message).toMatch(/^invalid selector "env in prod": /);
    const state = compileFilter({ ...noFilter, state: 'Broken' });
    expect(state.ok ? '' : state.message).toMatch(/^unknown state "Broken"/);
  });

  it("lists a bundle's clusters with their state there", () => {
    expect(bundleClusters(status, 'db').map((r) => [r.cluster.id, r.state])).toEqual([
      ['prod-us-1', 'Failed'],
    ]);
    expect(bundleClusters(status, 'web')).toHaveLength(4);
  });

  it('puts only the visible rows (and a few either side) of 10,000 in the DOM', () => {
    const top = visibleWindow({
      rowCount: 10_000,
      rowHeight: 30,
      scrollTop: 0,
      viewportHeight: 600,
      overscan: 8,
    });
    expect(top).toEqual({ start: 0, end: 29, offsetTop: 0, totalHeight: 300_000 });
    const mid = visibleWindow({
      rowCount: 10_000,
      rowHeight: 30,
      scrollTop: 150_000,
      viewportHeight: 600,
      overscan: 8,
    });
    expect(mid).toEqual({ start: 4992, end: 5029, offsetTop: 149_760, totalHeight: 300_000 });
    const end = visibleWindow({ rowCount: 10_000, rowHeight: 30, scrollTop: 299_400, viewportHeight: 600 });
    expect(end.end).toBe(10_000);
    expect(end.end - end.start).toBeLessThan(40);
    expect(visibleWindow({ rowCount: 0, rowHeight: 30, scrollTop: 0, viewportHeight: 600 })).toMatchObject({
      start: 0,
      end: 0,
    });
  });

  it('filters and builds the matrix of 10,000 clusters x 50 bundles quickly', () => {
    const bundles = Array.from({ length: 50 }, (_, i) =>
      bundle(`b${String(i).padStart(2, '0')}`, i === 7 ? 'Drifted' : 'Ready'),
    );
    const big = fleet(
      Array.from({ length: 10_000 }, (_, i) =>
        cluster(`c${String(i).padStart(5, '0')}`, { env: i % 2 ? 'prod' : 'dev' }, bundles),
      ),
    );
    const started = performance.now();
    const c = compileFilter({ selector: 'env=prod', state: 'Drifted', search: '1' });
    const m = buildMatrix(big, c.ok ? c.keep : () => true);
    const ms = performance.now() - started;
    expect(m.rows.length).toBeGreaterThan(0);
    expect(m.rows.every((r) => r.cluster.labels.env === 'prod' && r.cluster.id.includes('1'))).toBe(true);
    // Generous for a shared CI machine; in a browser this runs on every keystroke.
    expect(ms).toBeLessThan(1000);
  });

  it('round-trips every view through the URL hash', () => {
    const routes: Route[] = [
      { view: 'fleet', filter: noFilter },
      { view: 'fleet', filter: { selector: 'env=prod,region in (eu)', state: 'Drifted', search: 'web 1' } },
      { view: 'cluster', id: 'prod-eu-1' },
      { view: 'bundle', name: 'web/app?x' },
      { view: 'rollouts' },
    ];
    for (const r of routes) expect(parseRoute(formatRoute(r))).toEqual(r);
    expect(formatRoute({ view: 'fleet', filter: noFilter })).toBe('#/fleet');
    expect(parseRoute('')).toEqual({ view: 'fleet', filter: noFilter });
    expect(parseRoute('#/nowhere')).toEqual({ view: 'fleet', filter: noFilter });
  });

  it('says how long ago', () => {
    const now = Date.parse('2026-01-01T01:00:00Z');
    expect(ago('2026-01-01T00:59:55Z', now)).toBe('5s');
    expect(ago('2026-01-01T00:50:00Z', now)).toBe('10m');
    expect(ago(now + 5000, now)).toBe('0s');
  });
});

describe('polling the fleet status', () => {
  function fakeClock() {
    let now = 1_000_000;
    const pending: (() => void)[] = [];
    return {
      clock: {
        now: () => now,
        setTimeout: (fn: () => void) => pending.push(fn),
        clearTimeout: () => {
          pending.length = 0;
        },
      },
      advance: async (ms: number) => {
        now += ms;
        pending.shift()?.();
        await new Promise((r) => setTimeout(r, 0));
      },
    };
  }

  it('sends the last ETag, keeps the status on 304, and shows a refused key or a hub that is down', async () => {
    const answers: (() => ReturnType<DashboardApi['fleetStatus']>)[] = [
      async () => ({ changed: true, value: status, etag: '"v1"' }),
      async () => ({ changed: false }),
      async () => {
        throw new ApiError(401, 'unauthorized', 'the admin key is not valid');
      },
      async () => {
        throw new ApiError(502, 'hub_unreachable', 'the dashboard cannot reach the hub: ECONNREFUSED');
      },
    ];
    const etags: (string | null)[] = [];
    const api: Pick<DashboardApi, 'fleetStatus'> = {
      fleetStatus: (etag) => {
        etags.push(etag);
        return (answers.shift() as () => ReturnType<DashboardApi['fleetStatus']>)();
      },
    };
    const states: LiveState[] = [];
    const { clock, advance } = fakeClock();
    const stop = pollFleetStatus(api, (s) => states.push(s), clock);
    await new Promise((r) => setTimeout(r, 0));
    await advance(2000);
    await advance(2000);
    await advance(2000);
    stop();
    expect(etags).toEqual([null, '"v1"', '"v1"', '"v1"']);
    expect(states.map((s) => [s.status === status, s.lastHeardAt, s.problem?.kind ?? null])).toEqual([
      [true, 1_000_000, null],
      [true, 1_002_000, null],
      [true, 1_002_000, 'unauthorized'],
      [true, 1_002_000, 'unreachable'],
    ]);
  });
});
