/**
 * `npm run bench:status`: how fast the hub answers the fleet status a dashboard asks for,
 * on the bed's DynamoDB Local. Seeds fleets of 10,000 clusters x 50 bundles (the cluster
 * records and labels as `bench:hub` seeds them; each cluster's current desired state and
 * its agent's per-bundle status written in the stores' own item layout, without rendering,
 * which `bench:hub` measures), then times, through the API handler in-process (admin key,
 * middy, JSON, ETag):
 *
 *   firstPage      GET /v1/admin/status?limit=100: the dashboard's first view
 *   matrixPage     ...&view=matrix: the same page cut to matrix cells
 *   filteredPage   ...&state=Failed,Drifted&selector=env=prod
 *   notModified    the first page again with If-None-Match (304)
 *   bundles        GET /v1/admin/bundles (the matrix columns)
 *   whole          GET /v1/admin/status (the unpaged answer `flotilla status` reads)
 *
 * Each is run 5 times; the line gives the first (cold) and the median of the rest, in ms,
 * and the answer's size. Options: --sizes 10000, --bundles 50, --stale (no status digests
 * on the records, as right after a sync moved every cluster's head: the slow path).
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateSigningKeyPair } from '@flotilla/shared';
import type { Context } from 'aws-lambda';
import { ensureHubTables } from '../functions/src/adapters/dynamodb-tables.ts';
import { loadConfig } from '../functions/src/config.ts';
import { createApiHandler } from '../functions/src/http/api.ts';
import { createHubContext } from '../functions/src/hub-context.ts';
import { toApiGatewayEvent } from '../functions/src/local/event.ts';
import { repoRoot, startBed } from '../test/bed/src/bed.ts';
import { seedStatusFleet } from '../test/support/status-fleet.ts';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10000' },
    bundles: { type: 'string', default: '50' },
    // No status digests on the records, as right after a sync moved every head: every
    // cluster's full status is read.
    stale: { type: 'boolean', default: false },
  },
});
const sizes = values.sizes.split(',').map(Number);
const bundleCount = Number(values.bundles);
const log = (line: string) => process.stderr.write(`[bench:status] ${line}\n`);

const bed = await startBed({
  dir: join(repoRoot, '.flotilla', 'bench-status'),
  clusters: [],
  log,
  javaHeapMb: 3072,
});
const adminKey = 'bench-admin-key-0123456789';
try {
  for (const size of sizes) {
    const { privateKeyPem } = generateSigningKeyPair();
    const config = loadConfig({
      FLOTILLA_PREFIX: `s${size}`,
      AWS_REGION: bed.state.region,
      FLOTILLA_DYNAMODB_ENDPOINT: bed.state.dynamodb.endpoint,
      FLOTILLA_SQS_ENDPOINT: bed.state.sqs.endpoint,
      FLOTILLA_FLEET_REPO_URL: 'http://unused.invalid/fleet.git',
      FLOTILLA_SIGNING_KEY: privateKeyPem,
      FLOTILLA_ADMIN_KEY_SHA256: createHash('sha256').update(adminKey).digest('hex'),
    });
    const hub = createHubContext(config, { credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' } });
    await ensureHubTables(hub.dynamodb, config.tables);
    const now = new Date();
    const t0 = performance.now();
    const seeded = await seedStatusFleet(hub, { size, bundles: bundleCount, now, stale: values.stale });
    log(
      `${size} clusters x ${bundleCount} bundles seeded in ${((performance.now() - t0) / 1000).toFixed(1)} s (writes ${seeded.writeSeconds} s, digest check ${seeded.checkSeconds} s)`,
    );
    const handler = createApiHandler(hub);
    const get = async (url: string, headers: Record<string, string> = {}) => {
      const event = toApiGatewayEvent({
        method: 'GET',
        url,
        headers: { authorization: `Bearer ${adminKey}`, ...headers },
        body: Buffer.from(''),
        sourceIp: '127.0.0.1',
        requestId: `bench-${Math.random().toString(36).slice(2)}`,
        now: new Date(),
      });
      const t = performance.now();
      const res = await handler(event, { awsRequestId: 'bench' } as Context);
      return { ms: performance.now() - t, res };
    };
    const time = async (url: string, headers?: () => Record<string, string>) => {
      const runs: number[] = [];
      let bytes = 0;
      let status = 0;
      for (let r = 0; r < 5; r++) {
        const { ms, res } = await get(url, headers?.() ?? {});
        runs.push(ms);
        bytes = res.body?.length ?? 0;
        status = res.statusCode;
        if (status !== 200 && status !== 304) throw new Error(`${url}: ${status} ${res.body}`);
      }
      const rest = runs.slice(1).sort((a, b) => a - b);
      return {
        status,
        coldMs: Math.round(runs[0] as number),
        medianMs: Math.round(rest[Math.floor(rest.length / 2)] as number),
        bytes,
      };
    };
    const firstPage = await time('/v1/admin/status?limit=100');
    const { res } = await get('/v1/admin/status?limit=100');
    const etag = String(res.headers?.etag);
    const body = JSON.parse(res.body ?? '{}') as { total: number; summary: unknown };
    const notModified = await time('/v1/admin/status?limit=100', () => ({ 'if-none-match': etag }));
    const matrixPage = await time('/v1/admin/status?limit=100&view=matrix');
    const filteredPage = await time('/v1/admin/status?limit=100&state=Failed,Drifted&selector=env%3Dprod');
    const bundles = await time('/v1/admin/bundles');
    const whole = await time('/v1/admin/status');
    process.stdout.write(
      `${JSON.stringify({ bench: 'hub-status', digests: !values.stale, clusters: size, bundles: bundleCount, total: body.total, summary: body.summary, firstPage, matrixPage, filteredPage, notModified, bundlesAxis: bundles, whole })}\n`,
    );
  }
} finally {
  await bed.stop();
}
