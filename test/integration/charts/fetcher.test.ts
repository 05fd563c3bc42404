/**
 * The chart fetcher (shared/src/charts) against the bed's real chart repositories:
 * a Helm HTTP repository served over charts packaged by `helm package` and indexed
 * by `helm repo index`, and CNCF distribution registries filled by `helm push`.
 * Versions are picked by the renderer worker (Helm's code); fetched archives are
 * rendered by the worker and compared with the reference `helm template`.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ensureReferenceTools, ensureRenderer } from '@flotilla/renderer/build.ts';
import { RendererClient } from '@flotilla/renderer/client.ts';
import {
  type ChartCache,
  type ChartFetcher,
  type ChartRef,
  createChartFetcher,
  type FetchResult,
  MemoryChartCache,
  staticCredentialResolver,
} from '@flotilla/shared/charts';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DirectoryChartCache } from '../../../functions/src/adapters/directory-chart-cache.ts';

const run = promisify(execFile);
const bed = inject('bed');
const repos = (() => {
  if (!bed.charts) throw new Error('the bed has no chart repositories (startBed with charts: true)');
  return bed.charts;
})();

let renderer: RendererClient;
let helm: string;
const scratch = mkdtempSync(join(tmpdir(), 'flotilla-charts-'));
const helmEnv = {
  ...process.env,
  HELM_CACHE_HOME: join(scratch, 'helm-cache'),
  HELM_CONFIG_HOME: join(scratch, 'helm-config'),
  HELM_DATA_HOME: join(scratch, 'helm-data'),
};

/** The requests a fetcher sends, by URL path, through the real global fetch. */
function countingFetch(): { fetch: typeof fetch; paths: string[] } {
  const paths: string[] = [];
  return {
    paths,
    fetch: (input, init) => {
      paths.push(new URL(input instanceof Request ? input.url : input).pathname);
      return fetch(input, init);
    },
  };
}

const credentials = staticCredentialResolver(
  new Map([
    ['bed-charts', { username: repos.http.username, password: repos.http.password }],
    ['wrong', { username: repos.http.username, password: 'not-the-password' }],
  ]),
);

function fetcher(opts: { cache?: ChartCache; fetch?: typeof fetch; timeoutMs?: number } = {}): ChartFetcher {
  return createChartFetcher({
    resolve: (query) => renderer.resolve(query),
    cache: opts.cache ?? new MemoryChartCache(),
    credentials,
    fetch: opts.fetch,
    timeoutMs: opts.timeoutMs,
    plainHttpRegistries: [repos.oci.host, repos.oci.privateHost],
  });
}

function fetched(result: FetchResult) {
  if (!result.ok) throw new Error(result.error);
  return result.chart;
}

function archiveOf(version: string): Buffer {
  return readFileSync(join(repos.archivesDir, `web-${version}.tgz`));
}

function sha256(data: Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

beforeAll(async () => {
  renderer = new RendererClient({ binary: await ensureRenderer() });
  helm = (await ensureReferenceTools()).helm;
}, 900_000);

afterAll(async () => {
  await renderer?.close();
  rmSync(scratch, { recursive: true, force: true });
});

describe('charts from a Helm HTTP repository', () => {
  it('fetches an exact version, verified against the index digest', async () => {
    const chart = fetched(
      await fetcher().fetchChart({ repo: repos.http.url, chart: 'web', version: '1.1.0' }),
    );
    expect(chart).toMatchObject({
      name: 'web',
      version: '1.1.0',
      source: `${repos.http.url}/web-1.1.0.tgz`,
      fromCache: false,
    });
    expect(Buffer.from(chart.archive).equals(archiveOf('1.1.0'))).toBe(true);
    expect(chart.digest).toBe(sha256(archiveOf('1.1.0')));
  });

  it('resolves a range as Helm does and records the version it picked', async () => {
    const f = fetcher();
    expect(fetched(await f.fetchChart({ repo: repos.http.url, chart: 'web', version: '~1.2' })).version).toBe(
      '1.2.1+build.7',
    );
    expect(
      fetched(await f.fetchChart({ repo: repos.http.url, chart: 'web', version: '^1.0.0' })).version,
    ).toBe('1.2.1+build.7');
    // No constraint: the newest stable, the release candidate is skipped.
    expect(fetched(await f.fetchChart({ repo: `${repos.http.url}/`, chart: 'web' })).version).toBe('2.0.0');
  });

  it('says when no version matches, naming the repository, chart and constraint', async () => {
    const result = await fetcher().fetchChart({ repo: repos.http.url, chart: 'web', version: '^3.0.0' });
    expect(result).toEqual({
      ok: false,
      reason: 'no-matching-version',
      error: `chart "web" (version "^3.0.0") from ${repos.http.url}: no version of chart "web" matches the constraint "^3.0.0" (available: 2.1.0-rc.1, 2.0.0, 1.2.1+build.7, 1.2.0, 1.1.0, 1.0.0)`,
    });
  });

  it('serves a second fetch of the same version from the cache, without downloading the archive', async () => {
    const counter = countingFetch();
    const f = fetcher({ fetch: counter.fetch, cache: new MemoryChartCache() });
    const ref: ChartRef = { repo: repos.http.url, chart: 'web', version: '^1.0.0' };
    const first = fetched(await f.fetchChart(ref));
    const second = fetched(await f.fetchChart(ref));
    expect(first.fromCache).toBe(false);
    expect(second.fromCache).toBe(true);
    expect(second.digest).toBe(first.digest);
    // The index is read each time (a range may pick a newer version), the archive once.
    expect(counter.paths).toEqual([
      '/stable/index.yaml',
      '/stable/web-1.2.1+build.7.tgz',
      '/stable/index.yaml',
    ]);
  });

  it('keeps the cache in a directory that outlives the fetcher', async () => {
    const dir = join(scratch, 'chart-cache');
    const ref: ChartRef = { repo: repos.http.url, chart: 'web', version: '1.0.0' };
    const first = fetched(await fetcher({ cache: new DirectoryChartCache(dir) }).fetchChart(ref));
    const counter = countingFetch();
    const again = fetched(
      await fetcher({ cache: new DirectoryChartCache(dir), fetch: counter.fetch }).fetchChart(ref),
    );
    expect(again.fromCache).toBe(true);
    expect(Buffer.from(again.archive).equals(Buffer.from(first.archive))).toBe(true);
    expect(counter.paths).toEqual(['/stable/index.yaml']);
  });

  it('refuses an archive whose digest is not the one in the index', async () => {
    const result = await fetcher().fetchChart({
      repo: repos.http.tamperedUrl,
      chart: 'web',
      version: '1.0.0',
    });
    expect(result).toEqual({
      ok: false,
      reason: 'digest-mismatch',
      error: `chart "web" (version "1.0.0") from ${repos.http.tamperedUrl}: version 1.0.0 (${repos.http.tamperedUrl}/web-1.0.0.tgz) has digest ${sha256(archiveOf('1.1.0'))} but the repository says ${sha256(archiveOf('1.0.0'))}; refusing it`,
    });
  });

  it('fetches from a private repository with credentials, and is refused without', async () => {
    const ref: ChartRef = { repo: repos.http.privateUrl, chart: 'web', version: '2.0.0' };
    const ok = fetched(await fetcher().fetchChart({ ...ref, auth: { secretRef: 'bed-charts' } }));
    expect(ok.digest).toBe(sha256(archiveOf('2.0.0')));

    const anonymous = await fetcher().fetchChart(ref);
    expect(anonymous).toEqual({
      ok: false,
      reason: 'auth-refused',
      error: `chart "web" (version "2.0.0") from ${repos.http.privateUrl}: ${repos.http.privateUrl}/index.yaml refused access (401 Unauthorized); no credentials were given (auth.secretRef)`,
    });
    const wrong = await fetcher().fetchChart({ ...ref, auth: { secretRef: 'wrong' } });
    expect(wrong.ok ? '' : wrong.error).toContain('the credentials "wrong" were refused');
    expect(wrong.ok ? '' : wrong.error).not.toContain('not-the-password');
    const unknown = await fetcher().fetchChart({ ...ref, auth: { secretRef: 'nope' } });
    expect(unknown).toMatchObject({ ok: false, reason: 'auth-refused' });
    expect(unknown.ok ? '' : unknown.error).toContain('no credentials named "nope" are configured');
  });

  it('says clearly when the repository is down or failing', async () => {
    // A port that was just listened on and closed: nothing answers there.
    const closed = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const port = (s.address() as { port: number }).port;
        s.close(() => resolve(port));
      });
    });
    const down = await fetcher().fetchChart({ repo: `http://127.0.0.1:${closed}/charts`, chart: 'web' });
    expect(down).toEqual({
      ok: false,
      reason: 'unreachable',
      error: `chart "web" (newest stable version) from http://127.0.0.1:${closed}/charts: cannot reach http://127.0.0.1:${closed}/charts/index.yaml: ECONNREFUSED (connect ECONNREFUSED 127.0.0.1:${closed})`,
    });

    // A server that accepts and never answers: the time limit ends the wait.
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
    const port = (silent.address() as { port: number }).port;
    try {
      const slow = await fetcher({ timeoutMs: 300 }).fetchChart({
        repo: `http://127.0.0.1:${port}`,
        chart: 'web',
      });
      expect(slow).toMatchObject({ ok: false, reason: 'unreachable' });
      expect(slow.ok ? '' : slow.error).toContain('no answer within 0.3s');
    } finally {
      silent.closeAllConnections();
      silent.close();
    }

    const missing = await fetcher().fetchChart({ repo: `${repos.http.url}/../nowhere`, chart: 'web' });
    expect(missing).toMatchObject({ ok: false, reason: 'not-found' });
  });

  it('refuses an archive larger than the bound', async () => {
    const result = await createChartFetcher({
      resolve: (q) => renderer.resolve(q),
      cache: new MemoryChartCache(),
      credentials,
      maxArchiveBytes: 100,
    }).fetchChart({ repo: repos.http.url, chart: 'web', version: '1.0.0' });
    expect(result).toEqual({
      ok: false,
      reason: 'invalid',
      error: `chart "web" (version "1.0.0") from ${repos.http.url}: version 1.0.0 (${repos.http.url}/web-1.0.0.tgz) is larger than the 100 bytes an archive may have`,
    });
  });

  it('refuses credentials in the repository URL without echoing them', async () => {
    const result = await fetcher().fetchChart({ repo: 'https://ci:hunter2@charts.example/', chart: 'web' });
    expect(result).toEqual({
      ok: false,
      reason: 'invalid',
      error:
        'chart "web" (newest stable version) from https://charts.example/: repo URL must not carry credentials; use auth.secretRef',
    });
  });
});

describe('charts from an OCI registry', () => {
  it('pulls an exact version, verified against the layer digest', async () => {
    const chart = fetched(await fetcher().fetchChart({ chart: repos.oci.chartUrl, version: '1.1.0' }));
    expect(chart).toMatchObject({
      name: 'web',
      version: '1.1.0',
      source: `${repos.oci.chartUrl}:1.1.0`,
      fromCache: false,
    });
    // helm push stores the packaged archive as the chart layer, byte for byte.
    expect(chart.digest).toBe(sha256(archiveOf('1.1.0')));
    expect(Buffer.from(chart.archive).equals(archiveOf('1.1.0'))).toBe(true);
  });

  it('resolves a range over the tags (+ stored as _) and records the version', async () => {
    const f = fetcher();
    const ranged = fetched(await f.fetchChart({ chart: repos.oci.chartUrl, version: '~1.2' }));
    expect(ranged).toMatchObject({ version: '1.2.1+build.7', source: `${repos.oci.chartUrl}:1.2.1_build.7` });
    expect(ranged.digest).toBe(sha256(archiveOf('1.2.1+build.7')));
    expect(fetched(await f.fetchChart({ chart: repos.oci.chartUrl })).version).toBe('2.0.0');
    expect(fetched(await f.fetchChart({ chart: repos.oci.chartUrl, version: '>=2.1.0-0' })).version).toBe(
      '2.1.0-rc.1',
    );
  });

  it('says when no tag matches', async () => {
    const range = await fetcher().fetchChart({ chart: repos.oci.chartUrl, version: '^5' });
    expect(range).toEqual({
      ok: false,
      reason: 'no-matching-version',
      error: `chart ${repos.oci.chartUrl} (version "^5"): no version matches the constraint "^5" (available: 2.1.0-rc.1, 2.0.0, 1.2.1+build.7, 1.2.0, 1.1.0, 1.0.0)`,
    });
    const exact = await fetcher().fetchChart({ chart: repos.oci.chartUrl, version: '9.9.9' });
    expect(exact).toMatchObject({ ok: false, reason: 'no-matching-version' });
    expect(exact.ok ? '' : exact.error).toContain('no tag 9.9.9 in the repository');
    const repo = await fetcher().fetchChart({ chart: `oci://${repos.oci.host}/charts/db` });
    expect(repo).toMatchObject({ ok: false, reason: 'not-found' });
  });

  it('serves a second pull of the same version from the cache, without fetching the blob', async () => {
    const counter = countingFetch();
    const f = fetcher({ fetch: counter.fetch });
    const first = fetched(await f.fetchChart({ chart: repos.oci.chartUrl, version: '1.0.0' }));
    const second = fetched(await f.fetchChart({ chart: repos.oci.chartUrl, version: '1.0.0' }));
    expect([first.fromCache, second.fromCache]).toEqual([false, true]);
    const blobs = counter.paths.filter((p) => p.includes('/blobs/'));
    expect(blobs).toEqual([`/v2/charts/web/blobs/${first.digest}`]);
    expect(counter.paths.filter((p) => p.includes('/manifests/'))).toHaveLength(2);
  });

  it('pulls from a private registry with credentials (basic challenge), and is refused without', async () => {
    const ref: ChartRef = { chart: repos.oci.privateChartUrl, version: '^2' };
    const ok = fetched(await fetcher().fetchChart({ ...ref, auth: { secretRef: 'bed-charts' } }));
    expect(ok).toMatchObject({ version: '2.0.0', digest: sha256(archiveOf('2.0.0')) });

    const anonymous = await fetcher().fetchChart(ref);
    expect(anonymous).toEqual({
      ok: false,
      reason: 'auth-refused',
      error: `chart ${repos.oci.privateChartUrl} (version "^2"): the registry asks for a username and password; no credentials were given (auth.secretRef)`,
    });
    const wrong = await fetcher().fetchChart({ ...ref, auth: { secretRef: 'wrong' } });
    expect(wrong).toMatchObject({ ok: false, reason: 'auth-refused' });
    expect(wrong.ok ? '' : wrong.error).toContain('the credentials "wrong" were refused');
    expect(wrong.ok ? '' : wrong.error).not.toContain('not-the-password');
  });

  it('answers a bearer-token challenge (the Docker token flow) with the credentials', async () => {
    // The bed's registry behind a gate that speaks the token flow as public registries do:
    // 401 with WWW-Authenticate Bearer, a token service taking basic credentials, then
    // requests carrying the token pass through to the real registry.
    const token = `t-${Date.now()}`;
    const scopes: string[] = [];
    const gate = createServer(async (req, res) => {
      const url = new URL(req.url ?? '/', 'http://gate');
      if (url.pathname === '/token') {
        const basic = `Basic ${Buffer.from(`${repos.http.username}:${repos.http.password}`).toString('base64')}`;
        scopes.push(`${url.searchParams.get('service')} ${url.searchParams.get('scope')}`);
        if (req.headers.authorization !== basic) return void res.writeHead(401).end();
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token }));
      }
      if (req.headers.authorization !== `Bearer ${token}`) {
        const realm = `http://127.0.0.1:${(gate.address() as { port: number }).port}/token`;
        res.writeHead(401, {
          'www-authenticate': `Bearer realm="${realm}",service="bed-gate",scope="repository:charts/web:pull"`,
        });
        return void res.end();
      }
      const upstream = await fetch(`http://${repos.oci.host}${url.pathname}${url.search}`, {
        headers: { accept: req.headers.accept ?? '*/*' },
      });
      res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? '' });
      res.end(Buffer.from(await upstream.arrayBuffer()));
    });
    await new Promise<void>((resolve) => gate.listen(0, '127.0.0.1', () => resolve()));
    const host = `127.0.0.1:${(gate.address() as { port: number }).port}`;
    const gated = createChartFetcher({
      resolve: (q) => renderer.resolve(q),
      cache: new MemoryChartCache(),
      credentials,
      plainHttpRegistries: [host],
    });
    try {
      const ok = fetched(
        await gated.fetchChart({
          chart: `oci://${host}/charts/web`,
          version: '~1.1',
          auth: { secretRef: 'bed-charts' },
        }),
      );
      expect(ok).toMatchObject({ version: '1.1.0', digest: sha256(archiveOf('1.1.0')) });
      // One token for the whole pull: the challenge is answered once, not per request.
      expect(scopes).toEqual(['bed-gate repository:charts/web:pull']);

      const refused = await gated.fetchChart({
        chart: `oci://${host}/charts/web`,
        version: '1.1.0',
        auth: { secretRef: 'wrong' },
      });
      expect(refused).toMatchObject({ ok: false, reason: 'auth-refused' });
      expect(refused.ok ? '' : refused.error).toContain(`http://${host}/token refused access (401`);
      expect(refused.ok ? '' : refused.error).not.toContain('not-the-password');
    } finally {
      gate.closeAllConnections();
      gate.close();
    }
  });

  it('says clearly when the registry is down', async () => {
    const closed = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const port = (s.address() as { port: number }).port;
        s.close(() => resolve(port));
      });
    });
    const host = `127.0.0.1:${closed}`;
    const result = await createChartFetcher({
      resolve: (q) => renderer.resolve(q),
      cache: new MemoryChartCache(),
      credentials,
      plainHttpRegistries: [host],
    }).fetchChart({ chart: `oci://${host}/charts/web`, version: '1.0.0' });
    expect(result).toEqual({
      ok: false,
      reason: 'unreachable',
      error: `chart oci://${host}/charts/web (version "1.0.0"): cannot reach http://${host}/v2/charts/web/tags/list: ECONNREFUSED (connect ECONNREFUSED ${host})`,
    });
  });
});

describe('a fetched chart renders as helm template renders the same archive', () => {
  it.each([
    ['HTTP', { repo: repos.http.url, chart: 'web', version: '^1' }],
    ['OCI', { chart: repos.oci.chartUrl, version: '^1' }],
  ] as const)('%s', async (_, ref) => {
    const chart = fetched(await fetcher().fetchChart(ref));
    const rendered = await renderer.render({
      kind: 'helm',
      archive: Buffer.from(chart.archive).toString('base64'),
      releaseName: 'shop',
      namespace: 'apps',
      values: { replicaCount: 3 },
    });
    if (!rendered.ok) throw new Error(rendered.error.message);
    const tgz = join(repos.archivesDir, `web-${chart.version}.tgz`);
    const cli = await run(
      helm,
      ['template', 'shop', tgz, '--namespace', 'apps', '--include-crds', '--set', 'replicaCount=3'],
      {
        env: helmEnv,
      },
    );
    expect(rendered.manifests).toBe(cli.stdout);
    expect(rendered.manifests).toContain('chartVersion: "1.2.1+build.7"');
    expect(rendered.manifests).toContain('replicas: 3');
  });
});
