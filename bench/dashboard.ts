/**
 * `npm run bench:dashboard`: how fast the dashboard's fleet view is for a person, in a
 * real browser. On the bed's DynamoDB Local, seeds 10,000 clusters x 50 bundles as
 * `bench:status` does (test/support/status-fleet.ts), starts the local hub's HTTP server on
 * those tables and the `flotilla dashboard` server against it (admin key, the UI bundled as
 * the command bundles it), and opens the page in the bed's headless Chromium. Each round
 * (a fresh browser context: no cache) measures, by the page's own clock:
 *
 *   firstViewMs  navigation start to the first matrix row's cluster link visible
 *   rowsInDom    `tr[aria-rowindex]` in the matrix at that point (the header row included)
 *   scrollMs     the matrix scrolled to its middle, until a row of that region is rendered
 *   searchMs     a search that matches 10 clusters typed in, until the rows shown all match
 *
 * and the hub calls the page made through the dashboard server (`/api/...`): how many and
 * the bytes of their answers, by the first view and over the whole round. Prints one JSON
 * line per fleet size: each timing's first round and the median of all rounds.
 *
 * Options: --sizes 10000, --bundles 50, --rounds 3.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildDashboard } from '@flotilla/dashboard/build.ts';
import { generateSigningKeyPair } from '@flotilla/shared';
import { startDashboardServer } from '../cli/src/dashboard/server.ts';
import { HubClient } from '../cli/src/hub/hub-client.ts';
import { loadConfig } from '../functions/src/config.ts';
import { startLocalHub } from '../functions/src/local/server.ts';
import { repoRoot, startBed } from '../test/bed/src/bed.ts';
import { openBrowser } from '../test/bed/src/browser.ts';
import {
  countsLine,
  HubCalls,
  openFleetView,
  rowsInDom,
  scrollToMiddle,
  searchClusters,
} from '../test/support/dashboard-page.ts';
import { bedHubEnv } from '../test/support/hub.ts';
import { seedStatusFleet } from '../test/support/status-fleet.ts';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10000' },
    bundles: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '3' },
  },
});
const sizes = values.sizes.split(',').map(Number);
const bundleCount = Number(values.bundles);
const rounds = Number(values.rounds);
const log = (line: string) => process.stderr.write(`[bench:dashboard] ${line}\n`);
const quiet = { info: () => {}, warn: () => {}, error: () => {} };
/** Long enough for the unpaged fleet status (about 15 s of hub time at 10,000 clusters). */
const stepTimeoutMs = 180_000;
/** Clusters c00123x: 10 of them in any fleet of 1,240 clusters or more. */
const search = 'c00123';

interface Round {
  readonly firstViewMs: number;
  readonly rowsInDom: number;
  readonly counts: string;
  readonly scrollMs: number;
  readonly searchMs: number;
  readonly searchRows: number;
  readonly firstView: { requests: number; bytes: number };
  readonly round: { requests: number; bytes: number };
}

const median = (xs: readonly number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};
const firstAndMedian = (xs: readonly number[]) => ({
  first: xs[0] as number,
  median: Math.round(median(xs)),
});

const bed = await startBed({
  dir: join(repoRoot, '.flotilla', 'bench-dashboard'),
  clusters: [],
  log,
  javaHeapMb: 3072,
});
const browser = await openBrowser({ log });
try {
  const assets = await buildDashboard();
  for (const size of sizes) {
    const adminKey = `adm_${randomBytes(24).toString('base64url')}`;
    const { privateKeyPem } = generateSigningKeyPair();
    const config = loadConfig(
      bedHubEnv(bed.state, {
        prefix: `d${size}-${Date.now().toString(36)}`,
        fleetRepoUrl: 'http://unused.invalid/fleet.git',
        signingKeyPem: privateKeyPem,
        gitCacheDir: mkdtempSync(join(tmpdir(), 'flotilla-bench-dashboard-')),
        adminKey,
      }),
    );
    const local = await startLocalHub({
      config,
      credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
      log: quiet,
    });
    const t0 = performance.now();
    const seeded = await seedStatusFleet(local.hub, { size, bundles: bundleCount, now: new Date() });
    const seedSeconds = Math.round((performance.now() - t0) / 100) / 10;
    log(
      `${size} clusters x ${bundleCount} bundles seeded in ${seedSeconds} s (writes ${seeded.writeSeconds} s, digest check ${seeded.checkSeconds} s)`,
    );
    const hub = new HubClient({ baseUrl: local.url, admin: { kind: 'key', key: adminKey } });
    const server = await startDashboardServer({ hub, assets });
    try {
      const results: Round[] = [];
      for (let r = 0; r < rounds; r++) {
        const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
        const page = await context.newPage();
        const calls = new HubCalls(page);
        const firstViewMs = await openFleetView(page, server.url, stepTimeoutMs);
        const firstView = await calls.totals();
        const rows = await rowsInDom(page);
        const counts = await countsLine(page);
        const scroll = await scrollToMiddle(page, stepTimeoutMs);
        const found = await searchClusters(page, search, stepTimeoutMs);
        const round = await calls.totals();
        await context.close();
        const result: Round = {
          firstViewMs,
          rowsInDom: rows,
          counts,
          scrollMs: scroll.ms,
          searchMs: found.ms,
          searchRows: found.clusters.length,
          firstView,
          round,
        };
        log(`round ${r + 1}: ${JSON.stringify(result)}`);
        results.push(result);
      }
      const first = results[0] as Round;
      process.stdout.write(
        `${JSON.stringify({
          bench: 'dashboard',
          clusters: size,
          bundles: bundleCount,
          rounds,
          seedSeconds,
          browser: browser.version(),
          firstViewMs: firstAndMedian(results.map((x) => x.firstViewMs)),
          rowsInDom: Math.max(...results.map((x) => x.rowsInDom)),
          counts: first.counts,
          scrollMs: firstAndMedian(results.map((x) => x.scrollMs)),
          searchMs: firstAndMedian(results.map((x) => x.searchMs)),
          searchRows: first.searchRows,
          hubRequests: { firstView: first.firstView.requests, round: first.round.requests },
          hubBytes: { firstView: first.firstView.bytes, round: first.round.bytes },
        })}\n`,
      );
    } finally {
      await server.close();
      await local.stop();
    }
  }
} finally {
  await browser.close();
  await bed.stop();
}
