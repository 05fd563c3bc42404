/**
 * Helm bundles whose chart comes from a repository, as the hub renders them: bundle.yaml
 * names a Helm HTTP repository or an OCI registry of the bed and a version range; the
 * chart fetcher resolves it with Helm's rules, checks the digest, and the worker renders
 * it. A repository that is down makes the bundle broken for that sync, never empty.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureRenderer } from '@flotilla/renderer/build.ts';
import { RendererClient } from '@flotilla/renderer/client.ts';
import {
  type ClusterPlan,
  type EnginePorts,
  type KubeObject,
  type RepoFile,
  renderFleet,
} from '@flotilla/shared';
import { createChartFetcher, staticCredentialResolver } from '@flotilla/shared/charts';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DirectoryChartCache } from '../../../functions/src/adapters/directory-chart-cache.ts';

const bed = inject('bed');
const repos = (() => {
  if (!bed.charts) throw new Error('the bed has no chart repositories (startBed with charts: true)');
  return bed.charts;
})();

let renderer: RendererClient;
let ports: EnginePorts;
const scratch = mkdtempSync(join(tmpdir(), 'flotilla-fleet-charts-'));

beforeAll(async () => {
  renderer = new RendererClient({ binary: await ensureRenderer() });
  ports = {
    engine: renderer,
    charts: createChartFetcher({
      resolve: (q) => renderer.resolve(q),
      cache: new DirectoryChartCache(join(scratch, 'cache')),
      credentials: staticCredentialResolver(
        new Map([['bed-registry', { username: repos.oci.username, password: repos.oci.password }]]),
      ),
      plainHttpRegistries: [repos.oci.host, repos.oci.privateHost],
      timeoutMs: 5_000,
    }),
  };
}, 900_000);

afterAll(async () => {
  await renderer?.close();
  rmSync(scratch, { recursive: true, force: true });
});

const bundle = (helm: string): RepoFile[] => [
  {
    path: 'bundles/web/bundle.yaml',
    content: `namespace: web\ntargets: [{clusterSelector: {}}]\nhelm:\n${helm}`,
  },
];
const cluster = { name: 'edge-1', labels: { env: 'prod' } };

function chartLabel(plan: ClusterPlan): string | undefined {
  const b = plan.bundles.find((x) => x.ref.name === 'web');
  const objects = b ? (JSON.parse(b.rendered.canonical) as { objects: KubeObject[] }).objects : [];
  const labels = objects.find((o) => o.kind === 'Deployment')?.metadata.labels as
    | Record<string, string>
    | undefined;
  return labels?.['helm.sh/chart'];
}

describe('Helm bundles with charts from repositories', () => {
  it('resolves a range in a Helm HTTP repository as Helm does, and records the version used', async () => {
    const plan = await renderFleet(
      bundle(`  repo: ${repos.http.url}\n  chart: web\n  version: ~1.2.0\n  values: {replicaCount: 3}\n`),
      [cluster],
      ports,
    );
    expect(plan.errors).toEqual([]);
    // ~1.2.0 takes 1.2.1+build.7 over 1.2.0; never the prerelease 2.1.0-rc.1.
    expect(chartLabel(plan.clusters[0] as ClusterPlan)).toBe('web-1.2.1_build.7');
    expect(plan.fleet.resolvedCharts).toEqual([
      expect.objectContaining({ bundle: 'web', constraint: '~1.2.0', version: '1.2.1+build.7' }),
    ]);
    expect(plan.fleet.resolvedCharts[0]?.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('pulls from an OCI registry, public and private (credentials by secret reference)', async () => {
    const pub = await renderFleet(
      bundle(`  chart: ${repos.oci.chartUrl}\n  version: ^1.0.0\n`),
      [cluster],
      ports,
    );
    expect(pub.errors).toEqual([]);
    expect(pub.fleet.resolvedCharts[0]?.version).toBe('1.2.1+build.7');
    const priv = await renderFleet(
      bundle(`  chart: ${repos.oci.privateChartUrl}\n  version: 2.0.0\n  auth: {secretRef: bed-registry}\n`),
      [cluster],
      ports,
    );
    expect(priv.errors).toEqual([]);
    expect(chartLabel(priv.clusters[0] as ClusterPlan)).toBe('web-2.0.0');
    const refused = await renderFleet(
      bundle(`  chart: ${repos.oci.privateChartUrl}\n  version: 2.0.0\n`),
      [cluster],
      ports,
    );
    expect(refused.errors.map((e) => `${e.file}:${e.line}: ${e.message}`)).toEqual([
      expect.stringMatching(
        /^bundles\/web\/bundle\.yaml:\d+: helm\.chart: .*no credentials were given \(auth\.secretRef\)/,
      ),
    ]);
  });

  it('reports a version no release matches, and a repository that is down, as a broken bundle', async () => {
    const none = await renderFleet(
      bundle(`  repo: ${repos.http.url}\n  chart: web\n  version: ^9.0.0\n`),
      [cluster],
      ports,
    );
    expect(none.errors).toHaveLength(1);
    expect(none.errors[0]?.message).toContain('^9.0.0');
    expect(none.clusters[0]?.held.map((h) => h.bundle)).toEqual(['web']);

    const down = await renderFleet(
      bundle('  repo: http://127.0.0.1:9/charts\n  chart: web\n  version: 1.0.0\n'),
      [cluster],
      ports,
    );
    expect(down.errors).toHaveLength(1);
    expect(down.errors[0]?.message).toMatch(/^helm\.chart: .*127\.0\.0\.1:9/);
    // Held, not emptied: the hub keeps the cluster's last good render of the bundle.
    expect(down.clusters[0]?.held).toEqual([
      expect.objectContaining({ bundle: 'web', reason: 'broken', targeting: 'matched' }),
    ]);
  });
});
