import { compileSelector, parseLabelSelector } from '@flotilla/shared';
import {
  type ClusterStatusView,
  clusterRowView,
  clusterStatus,
  decodeStatusCursor,
  encodeStatusCursor,
  fleetBundles,
  fleetMatrixPage,
  fleetStatus,
  fleetStatusPage,
  InvalidRequestError,
  NotFoundError,
  parseStatusReport,
  recordClusterStatus,
  type StatusFilter,
  type StoredDesiredState,
} from '@flotilla/shared/hub';
import type { Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { createApiHandler } from '../../../functions/src/http/api.ts';
import { toApiGatewayEvent } from '../../../functions/src/local/event.ts';
import { addCluster, adminKey, fakeApiDeps, statusReport } from './fakes.ts';

const h = (c: string) => `sha256:${c.repeat(64)}`;
const now = new Date('2024-05-01T12:00:00Z');
const seen = (s: number) => new Date(now.getTime() - s * 1000).toISOString();
const offlineAfterSeconds = 300;

function manifest(cluster: string, generation: number, bundles: readonly string[]): StoredDesiredState {
  const m = {
    apiVersion: 'flotilla.dev/v1alpha1',
    kind: 'DesiredState',
    cluster,
    generation,
    commit: 'c1',
    bundles: bundles.map((name) => ({
      name,
      hash: h(name === 'db' ? 'd' : 'a'),
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
    // Clusters given the same bundles share their list of references, as a sync stores them.
    refsHash: `r-${bundles.join(',')}`,
    commit: 'c1',
    manifest: JSON.stringify(m),
    signature: 's',
    keyId: 'k',
    createdAt: now.toISOString(),
  };
}

/** Clusters c-00..c-(n-1): even ones env=prod, every third Failed on `db`, every fifth Offline. */
async function fleet(n: number, viaReports = true) {
  const deps = fakeApiDeps({ now: () => now });
  for (let i = 0; i < n; i++) {
    const id = `c-${String(i).padStart(2, '0')}`;
    await addCluster(deps.clusters, id, { env: i % 2 === 0 ? 'prod' : 'dev' });
    await deps.desiredStates.commit(manifest(id, 1, ['db', 'web']), undefined);
    await deps.clusters.recordHeartbeat(id, { at: seen(i % 5 === 0 ? 900 : 10), agentVersion: '0.1.0' });
    await (viaReports ? setState : rawState)(deps, id, i % 3 === 0 ? 'Failed' : 'Ready');
  }
  await deps.syncState.save({
    commit: 'c1',
    snapshotHash: 's',
    syncedAt: seen(60),
    clusters: n,
    changedClusters: n,
    errors: [{ file: 'bundles/x/bundle.yaml', line: 4, message: 'paused: expected a boolean', bundle: 'x' }],
  });
  return deps;
}

/** As the agent reports it (so the hub keeps the digest), keeping the cluster's heartbeat as it was. */
async function setState(deps: ReturnType<typeof fakeApiDeps>, id: string, dbState: string) {
  const record = await deps.clusters.get(id);
  if (!record) throw new Error(id);
  const bundle = (name: string, hash: string, state: string) => ({
    name,
    state,
    hash,
    generation: 1,
    ...(state === 'Failed' ? { message: 'boom' } : {}),
  });
  await recordClusterStatus(
    deps,
    record,
    parseStatusReport(
      statusReport({
        appliedGeneration: 1,
        bundles: [bundle('db', h('d'), dbState), bundle('web', h('a'), 'Ready')],
      }),
    ),
  );
  if (record.lastHeartbeatAt)
    await deps.clusters.recordHeartbeat(id, { at: record.lastHeartbeatAt, agentVersion: '0.1.0' });
}

/** Written straight to the status store, as if no report had left a digest (hubs before digests). */
async function rawState(deps: ReturnType<typeof fakeApiDeps>, id: string, dbState: string) {
  const st = (bundle: string, hash: string, state: string) =>
    ({
      bundle,
      state,
      hash,
      generation: 1,
      since: seen(60),
      updatedAt: seen(60),
      ...(state === 'Failed' ? { message: 'boom' } : {}),
    }) as never;
  await deps.statuses.apply({
    clusterId: id,
    summary: { appliedGeneration: 1 },
    put: [st('db', h('d'), dbState), st('web', h('a'), 'Ready')],
    remove: [],
  });
}

const ids = (views: readonly ClusterStatusView[]) => views.map((v) => v.id);

describe('fleet status, a page at a time', () => {
  it('pages in name order with a total and a summary over every match', async () => {
    const deps = await fleet(25);
    const seenIds: string[] = [];
    let cursor: string | undefined;
    const sizes: number[] = [];
    do {
      const page = await fleetStatusPage(deps, {
        offlineAfterSeconds,
        limit: 10,
        ...(cursor ? { cursor } : {}),
      });
      expect(page.total).toBe(25);
      expect(page.summary.clusterStates.Failed).toBe(9);
      expect(page.summary.offline).toBe(5);
      expect(page.sync?.errors[0]?.text).toBe('bundles/x/bundle.yaml:4: paused: expected a boolean');
      sizes.push(page.clusters.length);
      seenIds.push(...ids(page.clusters));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(sizes).toEqual([10, 10, 5]);
    expect(seenIds).toEqual([...seenIds].sort());
    expect(new Set(seenIds).size).toBe(25);
  });

  it('jumps to a row with offset, the same rows walking the cursors reaches', async () => {
    const deps = await fleet(25);
    const all = await fleetStatusPage(deps, { offlineAfterSeconds, limit: 100 });
    const jumped = await fleetStatusPage(deps, { offlineAfterSeconds, limit: 10, offset: 20 });
    expect(ids(jumped.clusters)).toEqual(ids(all.clusters).slice(20));
    expect(jumped.total).toBe(25);
    expect(jumped.nextCursor).toBeNull();
    const middle = await fleetStatusPage(deps, { offlineAfterSeconds, limit: 5, offset: 10 });
    expect(ids(middle.clusters)).toEqual(ids(all.clusters).slice(10, 15));
    // Its cursor goes on from there.
    const next = await fleetStatusPage(deps, {
      offlineAfterSeconds,
      limit: 5,
      cursor: middle.nextCursor as string,
    });
    expect(ids(next.clusters)).toEqual(ids(all.clusters).slice(15, 20));
    const past = await fleetStatusPage(deps, { offlineAfterSeconds, limit: 5, offset: 99 });
    expect(past.clusters).toEqual([]);
    expect(past.total).toBe(25);
  });

  it('builds the matrix rows of Ready clusters from their digests: the same rows, reads only for the others', async () => {
    const deps = await fleet(12);
    // A paused bundle and a rollback pin still show on rows built without a read.
    const records = (deps.clusters as unknown as { records: Map<string, Record<string, unknown>> }).records;
    const record = records.get('c-01');
    if (!record) throw new Error('c-01');
    records.set('c-01', {
      ...record,
      pins: [
        {
          bundle: 'web',
          ref: null,
          planned: null,
          fromGeneration: 1,
          generation: 1,
          pinnedBy: 'test',
          pinnedAt: now.toISOString(),
        },
      ],
    });
    for (const query of [
      { offlineAfterSeconds, limit: 12 },
      { offlineAfterSeconds, limit: 5, offset: 3 },
      { offlineAfterSeconds, limit: 12, bundle: 'web' },
      { offlineAfterSeconds, limit: 12, states: ['Ready' as const] },
    ]) {
      const full = await fleetStatusPage(deps, query);
      let reads = 0;
      const get = deps.statuses.get.bind(deps.statuses);
      deps.statuses.get = async (id: string) => {
        reads++;
        return get(id);
      };
      const matrix = await fleetMatrixPage(deps, query);
      deps.statuses.get = get;
      const { clusters, ...rest } = matrix;
      const { clusters: _full, ...fullRest } = full;
      expect(rest).toEqual(fullRest);
      expect(clusters).toEqual(full.clusters.map(clusterRowView));
      // Only clusters with a bundle that is not Ready were read (every third one fails db).
      expect(reads).toBe(full.clusters.filter((c) => c.state !== 'Ready').length);
    }
  });

  it('stays stable while clusters change state and register between pages', async () => {
    const deps = await fleet(20);
    const first = await fleetStatusPage(deps, { offlineAfterSeconds, limit: 8, states: ['Failed'] });
    expect(ids(first.clusters)).toEqual(['c-00', 'c-03', 'c-06', 'c-09', 'c-12', 'c-15', 'c-18']);
    // Unfiltered paging: between pages, one cluster on page 1 and one ahead change state,
    // and two clusters register, one sorting before the cursor and one after it.
    const p1 = await fleetStatusPage(deps, { offlineAfterSeconds, limit: 8 });
    await setState(deps, 'c-02', 'Failed');
    await setState(deps, 'c-15', 'Failed');
    await addCluster(deps.clusters, 'c-01a', {});
    await addCluster(deps.clusters, 'c-99', {});
    const p2 = await fleetStatusPage(deps, {
      offlineAfterSeconds,
      limit: 8,
      cursor: p1.nextCursor as string,
    });
    const p3 = await fleetStatusPage(deps, {
      offlineAfterSeconds,
      limit: 8,
      cursor: p2.nextCursor as string,
    });
    expect(p3.nextCursor).toBeNull();
    const all = [...ids(p1.clusters), ...ids(p2.clusters), ...ids(p3.clusters)];
    // Nothing skipped or repeated; the newcomer behind the cursor waits for the next walk.
    expect(all).toEqual([...Array.from({ length: 20 }, (_, i) => `c-${String(i).padStart(2, '0')}`), 'c-99']);
    expect(p3.total).toBe(22);
  });

  it('composes selector, state and search (and Offline) with AND, states among themselves with OR', async () => {
    const deps = await fleet(30);
    const matcher = compileSelector(parseLabelSelector('env=prod'));
    const prodFailed = await fleetStatusPage(deps, {
      offlineAfterSeconds,
      selector: 'env=prod',
      matcher,
      states: ['Failed'],
    });
    expect(ids(prodFailed.clusters)).toEqual(['c-00', 'c-06', 'c-12', 'c-18', 'c-24']);
    expect(prodFailed.total).toBe(5);
    const searched = await fleetStatusPage(deps, {
      offlineAfterSeconds,
      selector: 'env=prod',
      matcher,
      states: ['Failed'],
      search: 'C-1',
    });
    expect(ids(searched.clusters)).toEqual(['c-12', 'c-18']);
    const failedOrOffline = await fleetStatusPage(deps, {
      offlineAfterSeconds,
      states: ['Failed', 'Offline'],
    });
    expect(ids(failedOrOffline.clusters)).toEqual(
      Array.from({ length: 30 }, (_, i) => i)
        .filter((i) => i % 3 === 0 || i % 5 === 0)
        .map((i) => `c-${String(i).padStart(2, '0')}`),
    );
    expect(failedOrOffline.summary.offline).toBe(6);
  });

  it('refuses a tampered cursor, or one made for another filter, naming the field', () => {
    const filter = { states: ['Failed' as const] };
    const good = encodeStatusCursor('c-05', filter);
    expect(decodeStatusCursor(good, filter)).toBe('c-05');
    for (const bad of ['not a cursor', `${good}x!`, Buffer.from('{"v":2}').toString('base64url'), '']) {
      const err = (() => {
        try {
          decodeStatusCursor(bad, filter);
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(InvalidRequestError);
      expect((err as InvalidRequestError).field).toBe('cursor');
    }
    expect(() => decodeStatusCursor(good, { states: ['Ready'] })).toThrow(/made for another selector/);
  });

  it('gives the bundles of the matrix with their file and counts per state', async () => {
    const deps = await fleet(12);
    const bundles = await fleetBundles(deps, { offlineAfterSeconds });
    expect(bundles.commit).toBe('c1');
    expect(bundles.bundles.map((b) => [b.name, b.file, b.clusters, b.states.Failed, b.states.Ready])).toEqual(
      [
        ['db', 'bundles/db/bundle.yaml', 12, 4, 8],
        ['web', 'bundles/web/bundle.yaml', 12, 0, 12],
      ],
    );
  });
});

/**
 * The fleet of {@link fleet}, and x-0..x-2 with `cache` and `web` (another list of
 * references): web Failed on x-1, cache Drifted on x-0. All online.
 */
async function mixedFleet(n: number, viaReports = true) {
  const deps = await fleet(n, viaReports);
  for (let i = 0; i < 3; i++) {
    const id = `x-${i}`;
    await addCluster(deps.clusters, id, { env: 'prod' });
    await deps.desiredStates.commit(manifest(id, 1, ['cache', 'web']), undefined);
    await deps.clusters.recordHeartbeat(id, { at: seen(10), agentVersion: '0.1.0' });
    const cell = (name: string, state: string) => ({
      name,
      state,
      hash: h('a'),
      generation: 1,
      ...(state === 'Failed' ? { message: 'boom' } : {}),
      ...(state === 'Drifted'
        ? { drift: [{ object: 'apps/Deployment/default/cache', fields: ['spec'] }] }
        : {}),
    });
    const bundles = [cell('cache', i === 0 ? 'Drifted' : 'Ready'), cell('web', i === 1 ? 'Failed' : 'Ready')];
    if (viaReports) {
      const record = await deps.clusters.get(id);
      if (!record) throw new Error(id);
      await recordClusterStatus(
        deps,
        record,
        parseStatusReport(statusReport({ appliedGeneration: 1, bundles })),
      );
      await deps.clusters.recordHeartbeat(id, { at: seen(10), agentVersion: '0.1.0' });
    } else {
      await deps.statuses.apply({
        clusterId: id,
        summary: { appliedGeneration: 1 },
        put: bundles.map(
          ({ name, ...b }) => ({ bundle: name, ...b, since: seen(60), updatedAt: seen(60) }) as never,
        ),
        remove: [],
      });
    }
  }
  return deps;
}

describe('fleet status filtered by bundle', () => {
  const c = (...ns: number[]) => ns.map((i) => `c-${String(i).padStart(2, '0')}`);

  it('keeps the clusters that get the bundle, and counts only those', async () => {
    const deps = await mixedFleet(12);
    const db = await fleetStatusPage(deps, { offlineAfterSeconds, bundle: 'db' });
    expect(ids(db.clusters)).toEqual(c(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11));
    expect(db.total).toBe(12);
    expect(db.bundle).toBe('db');
    expect(db.summary).toMatchObject({ clusters: 12, offline: 3 });
    expect(db.summary.clusterStates).toMatchObject({ Failed: 4, Ready: 8, Drifted: 0 });
    const cache = await fleetStatusPage(deps, { offlineAfterSeconds, bundle: 'cache' });
    expect(ids(cache.clusters)).toEqual(['x-0', 'x-1', 'x-2']);
    expect(cache.summary.clusterStates).toMatchObject({ Drifted: 1, Failed: 1, Ready: 1 });
    expect(cache.summary.bundleStates).toMatchObject({ Ready: 4, Drifted: 1, Failed: 1 });
    const web = await fleetStatusPage(deps, { offlineAfterSeconds, bundle: 'web' });
    expect(web.total).toBe(15);
    // Without a bundle filter nothing changes in the answer.
    expect(await fleetStatusPage(deps, { offlineAfterSeconds })).not.toHaveProperty('bundle');
  });

  it("filters state= on that bundle's state, not the cluster's worst", async () => {
    const deps = await mixedFleet(12);
    const page = (bundle: string, states: StatusFilter[], more = {}) =>
      fleetStatusPage(deps, { offlineAfterSeconds, bundle, states, ...more });
    // c-00, c-03, ... are Failed through db, but web is Ready on them.
    expect(ids((await page('web', ['Failed'])).clusters)).toEqual(['x-1']);
    const webReady = await page('web', ['Ready']);
    expect(ids(webReady.clusters)).toEqual([...c(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11), 'x-0', 'x-2']);
    expect(webReady.summary.clusterStates).toMatchObject({ Failed: 4, Drifted: 1, Ready: 9 });
    expect(ids((await page('db', ['Failed'])).clusters)).toEqual(c(0, 3, 6, 9));
    expect(ids((await page('cache', ['Drifted', 'Failed'])).clusters)).toEqual(['x-0']);
    // Offline is still the cluster's connection; the filters compose with AND.
    expect(ids((await page('db', ['Offline'])).clusters)).toEqual(c(0, 5, 10));
    const matcher = compileSelector(parseLabelSelector('env=prod'));
    const prod = await page('db', ['Failed'], { selector: 'env=prod', matcher, search: 'C-0' });
    expect(ids(prod.clusters)).toEqual(c(0, 6));
    expect(prod.total).toBe(2);
  });

  it('matches nothing for a bundle no cluster gets', async () => {
    const deps = await mixedFleet(4);
    const page = await fleetStatusPage(deps, { offlineAfterSeconds, bundle: 'nope', limit: 10 });
    expect(page).toMatchObject({ total: 0, clusters: [], nextCursor: null, bundle: 'nope' });
    expect(page.summary.clusters).toBe(0);
  });

  it('pages with cursors bound to the bundle', async () => {
    const deps = await mixedFleet(12);
    const seenIds: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await fleetStatusPage(deps, {
        offlineAfterSeconds,
        bundle: 'web',
        states: ['Ready'],
        limit: 4,
        ...(cursor ? { cursor } : {}),
      });
      expect(page.total).toBe(14);
      seenIds.push(...ids(page.clusters));
      cursor = page.nextCursor ?? undefined;
      if (cursor) {
        for (const other of [{ states: ['Ready' as const] }, { states: ['Ready' as const], bundle: 'db' }])
          expect(() => decodeStatusCursor(cursor as string, other)).toThrow(/or bundle/);
      }
    } while (cursor);
    expect(seenIds).toEqual([...c(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11), 'x-0', 'x-2']);
  });

  it('reads one manifest per list of references, and answers as reading every status would', async () => {
    const reported = await mixedFleet(12);
    const raw = await mixedFleet(12, false);
    let manifests = 0;
    let statuses = 0;
    const current = reported.desiredStates.current.bind(reported.desiredStates);
    reported.desiredStates.current = async (id: string) => {
      manifests++;
      return current(id);
    };
    const get = reported.statuses.get.bind(reported.statuses);
    reported.statuses.get = async (id: string) => {
      statuses++;
      return get(id);
    };
    const query = {
      offlineAfterSeconds,
      bundle: 'web',
      states: ['Ready' as const, 'Failed' as const],
      limit: 3,
    };
    const digested = await fleetStatusPage(reported, query);
    // Two lists of references (db+web, cache+web), then the page's three clusters.
    expect(manifests).toBe(2 + 3);
    expect(statuses).toBe(3);
    const full = await fleetStatusPage(raw, query);
    expect(digested.total).toBe(15);
    expect(digested.total).toBe(full.total);
    expect(digested.summary).toEqual(full.summary);
    expect(ids(digested.clusters)).toEqual(ids(full.clusters));
  });
});

describe('one cluster status', () => {
  it('is the view the cluster has in the fleet status, with the same envelope', async () => {
    const deps = await mixedFleet(6);
    const fleetView = await fleetStatus(deps, { offlineAfterSeconds });
    for (const id of ['c-03', 'x-0']) {
      const one = await clusterStatus(deps, id, { offlineAfterSeconds });
      expect(one.cluster).toEqual(fleetView.clusters.find((v) => v.id === id));
      expect(one).toMatchObject({
        generatedAt: now.toISOString(),
        offlineAfterSeconds,
        sync: fleetView.sync,
      });
    }
    await addCluster(deps.clusters, 'new-1', {});
    expect((await clusterStatus(deps, 'new-1', { offlineAfterSeconds })).cluster).toMatchObject({
      id: 'new-1',
      connection: 'Offline',
      desired: null,
      bundles: [],
      inSync: false,
    });
    await expect(clusterStatus(deps, 'nope', { offlineAfterSeconds })).rejects.toThrow(NotFoundError);
  });
});

describe('status digests kept with the cluster records', () => {
  it('keeps a digest per report, and pages from the digests, reading the full status of the page alone', async () => {
    const raw = await fleet(12, false);
    const reported = await fleet(12);
    let reads = 0;
    const get = reported.statuses.get.bind(reported.statuses);
    reported.statuses.get = async (id: string) => {
      reads++;
      return get(id);
    };
    const query = { offlineAfterSeconds, limit: 4, states: ['Failed' as const, 'Ready' as const] };
    const digested = await fleetStatusPage(reported, query);
    expect(reads).toBe(4);
    // The same answer as reading every cluster's full status.
    const full = await fleetStatusPage(raw, query);
    expect(digested.summary).toEqual(full.summary);
    expect(digested.total).toBe(full.total);
    const brief = (p: typeof full) => p.clusters.map((c) => [c.id, c.state, c.connection, c.inSync]);
    expect(brief(digested)).toEqual(brief(full));
    expect(await fleetBundles(reported, { offlineAfterSeconds })).toEqual(
      await fleetBundles(raw, { offlineAfterSeconds }),
    );
  });

  it('fills in missing and stale digests as it lists, so the next listing reads only its page', async () => {
    const deps = await fleet(6, false);
    expect((await deps.clusters.get('c-01'))?.statusDigest).toBeUndefined();
    const first = await fleetStatusPage(deps, { offlineAfterSeconds, limit: 2 });
    for (let i = 0; i < 6; i++) {
      const r = await deps.clusters.get(`c-0${i}`);
      expect(r?.statusDigest?.etag).toBe(r?.head?.etag);
    }
    let reads = 0;
    const get = deps.statuses.get.bind(deps.statuses);
    deps.statuses.get = async (id: string) => {
      reads++;
      return get(id);
    };
    const second = await fleetStatusPage(deps, { offlineAfterSeconds, limit: 2 });
    expect(reads).toBe(2);
    expect(second.summary).toEqual(first.summary);
  });

  it('reads the full status of a cluster whose desired state moved on since its digest', async () => {
    const deps = await fleet(3);
    for (const id of ['c-00', 'c-01', 'c-02']) await setState(deps, id, 'Ready');
    // A sync gives c-01 a new db revision: until its agent reports, db is Pending there.
    const next = manifest('c-01', 2, ['db', 'web']);
    const m = JSON.parse(next.manifest) as { bundles: { hash: string }[] };
    (m.bundles[0] as { hash: string }).hash = h('e');
    await deps.desiredStates.commit({ ...next, manifest: JSON.stringify(m) }, 1);
    const page = await fleetStatusPage(deps, { offlineAfterSeconds, limit: 10, states: ['Pending'] });
    expect(ids(page.clusters)).toEqual(['c-01']);
    expect(page.summary.clusterStates.Pending).toBe(1);
    const bundles = await fleetBundles(deps, { offlineAfterSeconds });
    expect(bundles.bundles.find((b) => b.name === 'db')?.states).toMatchObject({ Pending: 1, Ready: 2 });
  });
});

const context = { awsRequestId: 'lambda-request' } as Context;
let requests = 0;
/** A GET through the API handler with the admin key, as API Gateway would hand it over. */
async function get(deps: ReturnType<typeof fakeApiDeps>, url: string, headers: Record<string, string> = {}) {
  const e = toApiGatewayEvent({
    method: 'GET',
    url,
    headers: { authorization: `Bearer ${adminKey}`, ...headers },
    body: Buffer.from(''),
    sourceIp: '127.0.0.1',
    requestId: `req-${++requests}`,
    now,
  });
  const res = await createApiHandler(deps)(e, context);
  return { ...res, json: (res.body ? JSON.parse(res.body) : {}) as Record<string, unknown> };
}

describe('GET /v1/admin/status and /v1/admin/bundles over HTTP', () => {
  it('jumps with offset over HTTP; offset=0 is the first page', async () => {
    const deps = await fleet(7);
    const first = await get(deps, '/v1/admin/status?offset=0&limit=3');
    expect(first.statusCode).toBe(200);
    expect(ids(first.json.clusters as ClusterStatusView[])).toEqual(['c-00', 'c-01', 'c-02']);
    const later = await get(deps, '/v1/admin/status?offset=5&limit=3&view=matrix');
    expect(ids(later.json.clusters as ClusterStatusView[])).toEqual(['c-05', 'c-06']);
    expect(later.json.total).toBe(7);
  });

  it('keeps the whole answer without paging parameters, and pages with them', async () => {
    const deps = await fleet(7);
    const whole = await get(deps, '/v1/admin/status');
    expect(whole.statusCode).toBe(200);
    expect((whole.json.clusters as unknown[]).length).toBe(7);
    expect(whole.json).not.toHaveProperty('nextCursor');
    const page = await get(deps, '/v1/admin/status?limit=3&state=Ready,Failed&selector=env%3Dprod');
    expect(page.statusCode).toBe(200);
    expect(page.json.total).toBe(4);
    expect((page.json.clusters as ClusterStatusView[]).map((c) => c.id)).toEqual(['c-00', 'c-02', 'c-04']);
    expect(typeof page.json.nextCursor).toBe('string');
  });

  it('cuts bundles to matrix cells with view=matrix, keeping why a bundle is not Ready', async () => {
    const deps = await fleet(4);
    const full = await get(deps, '/v1/admin/status?limit=2');
    const matrix = await get(deps, '/v1/admin/status?limit=2&view=matrix');
    expect(matrix.statusCode).toBe(200);
    // A Ready cell is its name and state alone; a full bundle view repeats hashes and generations.
    const webBytes = (a: { json: Record<string, unknown> }) =>
      JSON.stringify((a.json.clusters as { bundles: unknown[] }[])[0]?.bundles[1]).length;
    expect(webBytes(matrix) * 5).toBeLessThan(webBytes(full));
    const rows = matrix.json.clusters as { id: string; state: string; bundles: Record<string, unknown>[] }[];
    expect(rows[0]).toMatchObject({ id: 'c-00', state: 'Failed' });
    expect(rows[0]?.bundles).toEqual([
      {
        name: 'db',
        state: 'Failed',
        upToDate: true,
        paused: false,
        message: 'boom',
        since: now.toISOString(),
      },
      { name: 'web', state: 'Ready' },
    ]);
    expect(matrix.headers?.etag).not.toBe(full.headers?.etag);
  });

  it('answers 304 to If-None-Match while nothing changed, and a new ETag once something did', async () => {
    const deps = await fleet(7);
    const first = await get(deps, '/v1/admin/status?limit=5');
    const etag = first.headers?.etag as string;
    expect(etag).toMatch(/^"fs-[A-Za-z0-9_-]{32}"$/);
    const again = await get(deps, '/v1/admin/status?limit=5', { 'if-none-match': etag });
    expect(again.statusCode).toBe(304);
    expect(again.body ?? '').toBe('');
    await setState(deps, 'c-01', 'Failed');
    const changed = await get(deps, '/v1/admin/status?limit=5', { 'if-none-match': etag });
    expect(changed.statusCode).toBe(200);
    expect(changed.headers?.etag).not.toBe(etag);
    const bundles = await get(deps, '/v1/admin/bundles');
    expect(bundles.statusCode).toBe(200);
    expect(bundles.headers?.etag).toMatch(/^"fs-/);
  });

  it('answers 400 naming the field for a wrong cursor, state or limit', async () => {
    const deps = await fleet(3);
    for (const [query, field] of [
      ['cursor=garbage', 'cursor'],
      [`cursor=${encodeStatusCursor('c-01', {})}&state=Failed`, 'cursor'],
      ['state=Sideways', 'state'],
      ['limit=501', 'limit'],
      ['limit=0', 'limit'],
      ['page=2', 'page'],
      ['view=wide', 'view'],
      ['bundle=', 'bundle'],
      ['bundle=%20', 'bundle'],
      ['bundle=web&bundle=db', 'bundle'],
      [`bundle=${'b'.repeat(254)}`, 'bundle'],
      [`cursor=${encodeStatusCursor('c-01', {})}&bundle=web`, 'cursor'],
      ['offset=-1', 'offset'],
      ['offset=ten', 'offset'],
      [`offset=5&cursor=${encodeStatusCursor('c-01', {})}`, 'offset'],
    ] as const) {
      const res = await get(deps, `/v1/admin/status?${query}`);
      expect(res.statusCode, query).toBe(400);
      expect((res.json.error as { field?: string }).field, query).toBe(field);
    }
    // The bundles' listing takes no bundle filter.
    const bundles = await get(deps, '/v1/admin/bundles?bundle=web');
    expect(bundles.statusCode).toBe(400);
    expect((bundles.json.error as { field?: string }).field).toBe('bundle');
  });

  it("filters a page by bundle, state= naming that bundle's state", async () => {
    const deps = await mixedFleet(6);
    const res = await get(deps, '/v1/admin/status?bundle=web&state=Failed&view=matrix');
    expect(res.statusCode).toBe(200);
    expect(res.json).toMatchObject({ total: 1, bundle: 'web', nextCursor: null });
    const rows = res.json.clusters as { id: string; bundles: Record<string, unknown>[] }[];
    expect(rows.map((r) => r.id)).toEqual(['x-1']);
    expect(rows[0]?.bundles.find((b) => b.name === 'web')).toMatchObject({
      state: 'Failed',
      message: 'boom',
    });
    // bundle= alone asks for a page; a name no cluster gets matches nothing.
    const db = await get(deps, '/v1/admin/status?bundle=db');
    expect(db.json).toMatchObject({ total: 6, nextCursor: null });
    const none = await get(deps, '/v1/admin/status?bundle=nope');
    expect(none.statusCode).toBe(200);
    expect(none.json).toMatchObject({ total: 0, clusters: [] });
    // The bundle is part of the cursor: web is on 9 clusters, 4 a page.
    const first = await get(deps, '/v1/admin/status?bundle=web&limit=4');
    const next = first.json.nextCursor as string;
    expect(
      (await get(deps, `/v1/admin/status?bundle=web&limit=4&cursor=${next}`)).json.clusters,
    ).toHaveLength(4);
    expect((await get(deps, `/v1/admin/status?bundle=db&limit=4&cursor=${next}`)).statusCode).toBe(400);
  });
});

describe('GET /v1/admin/clusters/{id}/status over HTTP', () => {
  it("answers the cluster's view from the fleet status, with an ETag and 304", async () => {
    const deps = await fleet(4);
    const whole = await get(deps, '/v1/admin/status');
    const res = await get(deps, '/v1/admin/clusters/c-03/status');
    expect(res.statusCode).toBe(200);
    expect(res.json).toEqual({
      generatedAt: now.toISOString(),
      offlineAfterSeconds: whole.json.offlineAfterSeconds,
      sync: whole.json.sync,
      cluster: (whole.json.clusters as ClusterStatusView[]).find((c) => c.id === 'c-03'),
    });
    const etag = res.headers?.etag as string;
    expect(etag).toMatch(/^"fs-[A-Za-z0-9_-]{32}"$/);
    expect(res.headers?.['cache-control']).toBe('no-cache');
    const again = await get(deps, '/v1/admin/clusters/c-03/status', { 'if-none-match': etag });
    expect(again.statusCode).toBe(304);
    expect(again.body ?? '').toBe('');
    // Another cluster changing leaves this one's ETag alone; its own change does not.
    await setState(deps, 'c-02', 'Failed');
    expect((await get(deps, '/v1/admin/clusters/c-03/status', { 'if-none-match': etag })).statusCode).toBe(
      304,
    );
    await setState(deps, 'c-03', 'Ready');
    const changed = await get(deps, '/v1/admin/clusters/c-03/status', { 'if-none-match': etag });
    expect(changed.statusCode).toBe(200);
    expect(changed.headers?.etag).not.toBe(etag);
    expect((changed.json.cluster as ClusterStatusView).state).toBe('Ready');
  });

  it('answers 404 for an unknown cluster and 400 for a wrong name or query', async () => {
    const deps = await fleet(2);
    const missing = await get(deps, '/v1/admin/clusters/nope/status');
    expect(missing.statusCode).toBe(404);
    expect(missing.json.error).toMatchObject({ code: 'not_found', message: 'cluster "nope" not found' });
    const badName = await get(deps, '/v1/admin/clusters/Not_A_Name/status');
    expect(badName.statusCode).toBe(400);
    expect((badName.json.error as { field?: string }).field).toBe('id');
    const query = await get(deps, '/v1/admin/clusters/c-01/status?view=matrix');
    expect(query.statusCode).toBe(400);
    expect((query.json.error as { field?: string }).field).toBe('view');
  });
});
