import type { BundleStatusView, ClusterStatusView, FleetStatus } from '@flotilla/shared/hub';
import { describe, expect, it } from 'vitest';
import { ApiError, type DashboardApi, routeFor } from '../../../dashboard/src/api.ts';
import { type PageAnswer, PagedRows, type Problem, poll } from '../../../dashboard/src/live.ts';
import {
  ago,
  cellState,
  checkFilter,
  clusterState,
  matrixCells,
  noFilter,
  stateCounts,
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

describe('dashboard view logic', () => {
  it('shows Offline over what an offline cluster last reported, then Paused, then the hub state', () => {
    const [us, , staging, edge] = status.clusters as ClusterStatusView[];
    expect(cellState(edge as ClusterStatusView, edge?.bundles[0] as BundleStatusView)).toBe('Offline');
    expect(cellState(staging as ClusterStatusView, staging?.bundles[0] as BundleStatusView)).toBe('Paused');
    expect(cellState(us as ClusterStatusView, us?.bundles[1] as BundleStatusView)).toBe('Failed');
  });

  it("builds a matrix row's cells in column order, a gap where a cluster lacks a bundle", () => {
    const rows = [...status.clusters].sort((x, y) => (x.id < y.id ? -1 : 1));
    expect(rows.map((c) => matrixCells(c, ['db', 'web']).map((x) => x?.state ?? null))).toEqual([
      [null, 'Offline'],
      [null, 'Drifted'],
      ['Failed', 'Ready'],
      [null, 'Paused'],
    ]);
    expect(rows.map((c) => clusterState(c))).toEqual(['Offline', 'Drifted', 'Failed', 'Ready']);
    // A Ready bundle rollback pins reads Pinned.
    const pinned = { ...(status.clusters[0] as ClusterStatusView), pins: [{ bundle: 'web' }] } as never;
    expect(matrixCells(pinned, ['web'])[0]?.state).toBe('Pinned');
  });

  it('counts clusters by state over the whole answer, Offline from the connection', () => {
    const summary = {
      ...fleet([]).summary,
      offline: 3,
      clusterStates: { Ready: 10, Pending: 0, Applying: 0, NotReady: 0, Drifted: 2, Failed: 1 },
    } as FleetStatus['summary'];
    expect(stateCounts(summary)).toEqual([
      { state: 'Ready', count: 10 },
      { state: 'Drifted', count: 2 },
      { state: 'Failed', count: 1 },
      { state: 'Offline', count: 3 },
    ]);
  });

  it('reports a selector that does not parse, or an unknown state, before asking the hub', () => {
    const bad = checkFilter({ ...noFilter, selector: 'env in prod' });
    expect(bad.ok).toBe(false);
    expect(bad.ok ? '' : bad.field).toBe('selector');
    expect(bad.ok ? '' : bad.message).toMatch(/^invalid selector "env in prod": /);
    const state = checkFilter({ ...noFilter, state: 'Broken' });
    expect(state.ok ? '' : state.message).toMatch(/^unknown state "Broken"/);
    // Paused and Pinned show in cells, but the hub does not filter by them.
    expect(checkFilter({ ...noFilter, state: 'Paused' }).ok).toBe(false);
    expect(checkFilter({ selector: 'env=prod,!legacy', state: 'Offline', search: 'eu' }).ok).toBe(true);
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

  it("reads a tenant's own routes when a tenant's admin runs the dashboard", () => {
    expect(routeFor(null, '/v1/admin/status?view=matrix')).toBe('/v1/admin/status?view=matrix');
    for (const [admin, tenant] of [
      ['/v1/admin/status?view=matrix&limit=100', '/v1/tenants/team-a/status?view=matrix&limit=100'],
      ['/v1/admin/bundles', '/v1/tenants/team-a/bundles'],
      ['/v1/admin/clusters/edge-1/status', '/v1/tenants/team-a/clusters/edge-1/status'],
      ['/v1/admin/clusters/edge-1/history?limit=25', '/v1/tenants/team-a/clusters/edge-1/history?limit=25'],
      ['/v1/admin/preview', '/v1/tenants/team-a/preview'],
      ['/v1/admin/rollouts', '/v1/tenants/team-a/rollouts'],
      ['/v1/admin/rollouts/team-a%2Fweb/pause', '/v1/tenants/team-a/rollouts/team-a%2Fweb/pause'],
    ] as const)
      expect(routeFor('team-a', admin)).toBe(tenant);
    expect(routeFor('team-a', '/v1/admin/bundles/sha256:abc')).toBe('/v1/tenants/team-a/bundles/sha256:abc');
    // No tenant copy: left where the hub refuses it by name.
    expect(routeFor('team-a', '/v1/admin/clusters/edge-1/desired-state')).toBe(
      '/v1/admin/clusters/edge-1/desired-state',
    );
  });

  it('says how long ago', () => {
    const now = Date.parse('2026-01-01T01:00:00Z');
    expect(ago('2026-01-01T00:59:55Z', now)).toBe('5s');
    expect(ago('2026-01-01T00:50:00Z', now)).toBe('10m');
    expect(ago(now + 5000, now)).toBe('0s');
  });
});

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
      await settle();
    },
    pending,
  };
}

const settle = async () => {
  for (let i = 0; i < 10; i++) await new Promise((r) => setTimeout(r, 0));
};

describe('polling what a view shows', () => {
  it('sends the last ETag, keeps the value on 304, and tells a refused key or a hub that is down', async () => {
    const answers: (() => ReturnType<DashboardApi['fleetBundles']>)[] = [
      async () => ({ changed: true, value: { generatedAt: '', commit: 'c', bundles: [] }, etag: '"v1"' }),
      async () => ({ changed: false }),
      async () => {
        throw new ApiError(401, 'unauthorized', 'the admin key is not valid');
      },
      async () => {
        throw new ApiError(502, 'hub_unreachable', 'the dashboard cannot reach the hub: ECONNREFUSED');
      },
    ];
    const etags: (string | null)[] = [];
    const seen: string[] = [];
    const { clock, advance } = fakeClock();
    const stop = poll(
      (etag) => {
        etags.push(etag);
        return (answers.shift() as () => ReturnType<DashboardApi['fleetBundles']>)();
      },
      {
        value: (v) => seen.push(`value ${v.commit}`),
        problem: (p: Problem | null) => seen.push(`problem ${p?.kind ?? 'none'}`),
      },
      clock,
    );
    await settle();
    await advance(2000);
    await advance(2000);
    await advance(2000);
    stop();
    expect(etags).toEqual([null, '"v1"', '"v1"', '"v1"']);
    expect(seen).toEqual([
      'value c',
      'problem none',
      'problem none',
      'problem unauthorized',
      'problem unreachable',
    ]);
  });
});

describe('reading a long listing a page at a time', () => {
  type Answer = PageAnswer<{ id: string }> & { n: number };
  /** A hub of `total` rows answering pages by offset, with an ETag per page and version. */
  function hub(total: number) {
    const calls: { offset: number; etag: string | null }[] = [];
    let version = 1;
    const load = async (offset: number, limit: number, etag: string | null) => {
      calls.push({ offset, etag });
      const tag = `"${offset}-${version}"`;
      if (etag === tag) return { changed: false as const };
      const clusters = Array.from({ length: Math.max(0, Math.min(limit, total - offset)) }, (_, i) => ({
        id: `c${offset + i}-v${version}`,
      }));
      return { changed: true as const, value: { total, clusters, n: version } as Answer, etag: tag };
    };
    return { load, calls, bump: () => version++ };
  }

  it('reads only the pages in view, reads a new one when the view moves there, refreshes with ETags', async () => {
    const h = hub(10_000);
    const { clock, advance } = fakeClock();
    let changes = 0;
    const paged = new PagedRows<{ id: string }, Answer>(h.load, () => changes++, clock, { pageSize: 100 });
    paged.want(0, 40);
    const stop = paged.start();
    await settle();
    expect(h.calls).toEqual([{ offset: 0, etag: null }]);
    expect(paged.total).toBe(10_000);
    expect(paged.row(5)?.id).toBe('c5-v1');
    expect(paged.row(150)).toBeUndefined();
    // Scrolling to row 5,000: that page is read at once, not the 49 before it.
    paged.want(4990, 5030);
    await settle();
    expect(h.calls.slice(1)).toEqual([
      { offset: 4900, etag: null },
      { offset: 5000, etag: null },
    ]);
    expect(paged.row(5001)?.id).toBe('c5001-v1');
    // The next tick refreshes the pages in view with their ETags; nothing changed: 304s.
    h.calls.length = 0;
    await advance(2000);
    expect(h.calls).toEqual([
      { offset: 4900, etag: '"4900-1"' },
      { offset: 5000, etag: '"5000-1"' },
    ]);
    expect(paged.row(5001)?.id).toBe('c5001-v1');
    // A change on the hub shows on the next tick.
    h.bump();
    await advance(2000);
    expect(paged.row(5001)?.id).toBe('c5001-v2');
    // Pages far from the view are dropped.
    expect(paged.row(5)).toBeUndefined();
    expect(changes).toBeGreaterThan(0);
    stop();
  });

  it('keeps the rows it has and reports the problem when the hub stops answering', async () => {
    let fail = false;
    const h = hub(30);
    const load = (o: number, l: number, e: string | null) =>
      fail ? Promise.reject(new ApiError(502, 'hub_unreachable', 'ECONNREFUSED')) : h.load(o, l, e);
    const { clock, advance } = fakeClock();
    const paged = new PagedRows<{ id: string }, Answer>(load, () => undefined, clock, { pageSize: 100 });
    paged.want(0, 40);
    const stop = paged.start();
    await settle();
    expect(paged.row(29)?.id).toBe('c29-v1');
    expect(paged.row(30)).toBeUndefined();
    fail = true;
    await advance(2000);
    expect(paged.problem?.kind).toBe('unreachable');
    expect(paged.row(29)?.id).toBe('c29-v1');
    fail = false;
    await advance(2000);
    expect(paged.problem).toBeNull();
    stop();
  });
});
