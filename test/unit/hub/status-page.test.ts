import { compileSelector, parseLabelSelector } from '@flotilla/shared';
import {
  type ClusterStatusView,
  decodeStatusCursor,
  encodeStatusCursor,
  fleetBundles,
  fleetStatusPage,
  InvalidRequestError,
  parseStatusReport,
  recordClusterStatus,
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
    refsHash: 'r',
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

describe('GET /v1/admin/status and /v1/admin/bundles over HTTP', () => {
  const context = { awsRequestId: 'lambda-request' } as Context;
  let n = 0;
  async function get(
    deps: ReturnType<typeof fakeApiDeps>,
    url: string,
    headers: Record<string, string> = {},
  ) {
    const e = toApiGatewayEvent({
      method: 'GET',
      url,
      headers: { authorization: `Bearer ${adminKey}`, ...headers },
      body: Buffer.from(''),
      sourceIp: '127.0.0.1',
      requestId: `req-${++n}`,
      now,
    });
    const res = await createApiHandler(deps)(e, context);
    return { ...res, json: (res.body ? JSON.parse(res.body) : {}) as Record<string, unknown> };
  }

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
    ] as const) {
      const res = await get(deps, `/v1/admin/status?${query}`);
      expect(res.statusCode, query).toBe(400);
      expect((res.json.error as { field?: string }).field, query).toBe(field);
    }
  });
});
