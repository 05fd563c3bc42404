import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { loadFleet } from '@flotilla/shared';
import {
  type FleetSourceFile,
  InvalidRequestError,
  type PreviewClusterInput,
  parsePreviewRequest,
  previewFleet,
  previewTargets,
} from '@flotilla/shared/hub';
import { describe, expect, it } from 'vitest';
import { passThroughEngine } from '../shared/helpers.ts';
import { addCluster, MemoryClusterStore, MemoryFleetSource } from './fakes.ts';

const exampleDir = new URL('../../../examples/fleet-repo/', import.meta.url).pathname;

function exampleFiles(): FleetSourceFile[] {
  const out: FleetSourceFile[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const full = join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else out.push({ path: relative(exampleDir, full), content: readFileSync(full, 'utf8') });
    }
  };
  walk(exampleDir);
  // Helm and Kustomize bundles need the render engine: test/integration/renderer/example-fleet.test.ts.
  return out.filter((f) => !f.path.startsWith('bundles/ingress/') && !f.path.startsWith('bundles/shop/'));
}

const clusters: PreviewClusterInput[] = [
  { name: 'prod-us-1', labels: { env: 'prod', region: 'us' }, registered: true },
  { name: 'edge-eu', labels: { env: 'prod', region: 'eu' }, registered: true },
  { name: 'lab-1', labels: { env: 'staging', region: 'eu', monitoring: 'disabled' }, registered: false },
];

async function fieldsOf(fn: () => Promise<unknown>): Promise<string[]> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof InvalidRequestError) return err.problems.map((p) => p.field);
    throw err;
  }
  return [];
}

describe('preview (pure)', () => {
  it('shows which bundles each cluster gets, through which target and customization, with the hashes sync stores', async () => {
    const files = exampleFiles();
    // Overlays run in the render engine: a fake of its port will do for what preview adds.
    const preview = await previewFleet(files, clusters, {
      source: 'upload',
      engine: { engine: passThroughEngine },
    });
    expect(preview.errors).toEqual([]);
    const fleet = loadFleet(files);
    await fleet.prepare(clusters, { engine: passThroughEngine });
    for (const c of preview.clusters) {
      const plan = fleet.planCluster({
        name: c.name,
        labels: clusters.find((x) => x.name === c.name)?.labels ?? {},
      });
      expect(c.bundles.map((b) => [b.name, b.hash])).toEqual(
        plan.bundles.map((b) => [b.ref.name, b.ref.hash]),
      );
    }
    const edge = preview.clusters.find((c) => c.name === 'edge-eu');
    expect(edge?.bundles.find((b) => b.name === 'web')).toMatchObject({
      target: { index: 0, name: 'prod-and-staging', kind: 'clusterSelector' },
      customization: { name: 'prod-eu' },
    });
    // prod-us-1 is excluded from log-shipper by name.
    const us = preview.clusters.find((c) => c.name === 'prod-us-1');
    expect(us?.excluded).toEqual([
      { bundle: 'log-shipper', excludedBy: { index: 0, name: 'managed-logging', kind: 'clusterName' } },
    ]);
    expect(us?.bundles.map((b) => b.name)).not.toContain('log-shipper');
    // Labels declared in git win: prod-us-1's file says tier gold.
    expect(us?.labels.tier).toBe('gold');
    // lab-1 opted out of monitoring.
    expect(preview.clusters.find((c) => c.name === 'lab-1')?.bundles.map((b) => b.name)).not.toContain(
      'monitoring-agent',
    );
    const webHash = edge?.bundles.find((b) => b.name === 'web')?.hash ?? '';
    expect(preview.renders[webHash]?.objects.map((o) => o.kind)).toContain('Deployment');
    expect(preview.bundles.find((b) => b.name === 'log-shipper')?.clusters).toEqual(['edge-eu', 'lab-1']);
  });

  it('is deterministic, and can leave the objects out or keep to one bundle', async () => {
    const files = exampleFiles();
    expect(JSON.stringify(await previewFleet(files, clusters))).toBe(
      JSON.stringify(await previewFleet([...files].reverse(), [...clusters].reverse())),
    );
    expect(
      (await previewFleet(files, clusters, { source: 'upload', includeObjects: false })).renders,
    ).toEqual({});
    const web = await previewFleet(files, clusters, { source: 'upload', bundle: 'web' });
    expect(web.bundles.map((b) => b.name)).toEqual(['web']);
    expect(web.clusters.every((c) => c.bundles.every((b) => b.name === 'web'))).toBe(true);
  });

  it('reports broken files by file and line, holding the affected bundles', async () => {
    const files = exampleFiles().map((f) =>
      f.path === 'bundles/web/bundle.yaml' ? { ...f, content: `${f.content}paused: sometimes\n` } : f,
    );
    const preview = await previewFleet(files, clusters);
    const error = preview.errors.find((e) => e.file === 'bundles/web/bundle.yaml');
    expect(error?.text).toMatch(/^bundles\/web\/bundle\.yaml:\d+: .*paused/);
    expect(preview.clusters.find((c) => c.name === 'edge-eu')?.held.map((h) => h.bundle)).toContain('web');
  });

  it('refuses an unknown bundle and an inconsistent file list, naming the field', async () => {
    expect(
      await fieldsOf(() => previewFleet(exampleFiles(), clusters, { source: 'upload', bundle: 'nope' })),
    ).toEqual(['bundle']);
    const twice = [...exampleFiles(), { path: './bundles/web/bundle.yaml', content: '' }];
    expect(await fieldsOf(() => previewFleet(twice, clusters))).toEqual(['files']);
  });
});

describe('preview requests', () => {
  it('accepts the repo tip, a commit id, or uploaded files, with filters', () => {
    expect(parsePreviewRequest(undefined)).toEqual({ source: { kind: 'repo' } });
    expect(parsePreviewRequest({ commit: 'HEAD' })).toEqual({ source: { kind: 'repo' } });
    expect(parsePreviewRequest({ commit: 'a'.repeat(40), bundle: 'web' })).toEqual({
      source: { kind: 'repo', commit: 'a'.repeat(40) },
      bundle: 'web',
    });
    expect(
      parsePreviewRequest({
        files: [{ path: 'bundles/web/bundle.yaml', content: 'x' }],
        clusters: ['edge-1', { name: 'lab-1', labels: { env: 'dev' } }],
        includeObjects: false,
      }),
    ).toEqual({
      source: { kind: 'upload', files: [{ path: 'bundles/web/bundle.yaml', content: 'x' }] },
      clusters: ['edge-1', { name: 'lab-1', labels: { env: 'dev' } }],
      includeObjects: false,
    });
  });

  const bad: [string, unknown, string[]][] = [
    ['not an object', 'HEAD', ['body']],
    ['unknown field', { branch: 'main' }, ['branch']],
    ['commit and files', { commit: 'HEAD', files: [] }, ['files']],
    ['branch name as commit', { commit: 'main' }, ['commit']],
    ['files not a list', { files: 'bundles/' }, ['files']],
    ['file not an object', { files: ['a.yaml'] }, ['files[0]']],
    ['absolute path', { files: [{ path: '/etc/passwd', content: '' }] }, ['files[0].path']],
    ['path leaving the repo', { files: [{ path: 'bundles/../../x', content: '' }] }, ['files[0].path']],
    ['content not a string', { files: [{ path: 'a.yaml', content: 1 }] }, ['files[0].content']],
    [
      'path given twice',
      {
        files: [
          { path: 'a.yaml', content: '' },
          { path: 'a.yaml', content: '' },
        ],
      },
      ['files[1].path'],
    ],
    ['unknown file field', { files: [{ path: 'a.yaml', content: '', mode: 644 }] }, ['files[0].mode']],
    ['clusters not a list', { clusters: 'edge-1' }, ['clusters']],
    ['bad cluster name', { clusters: ['Edge_1'] }, ['clusters[0]']],
    ['cluster given twice', { clusters: ['edge-1', { name: 'edge-1', labels: {} }] }, ['clusters[1].name']],
    ['bad hypothetical labels', { clusters: [{ name: 'lab', labels: { env: 1 } }] }, ['clusters[0].labels']],
    ['bad bundle name', { bundle: 'Web!' }, ['bundle']],
    ['includeObjects not boolean', { includeObjects: 'yes' }, ['includeObjects']],
  ];
  for (const [name, body, fields] of bad) {
    it(`names the field: ${name}`, async () => {
      expect(await fieldsOf(async () => parsePreviewRequest(body))).toEqual(fields);
    });
  }

  it('resolves registered clusters by name, and refuses unknown names and commits other than the tip', async () => {
    const store = new MemoryClusterStore();
    await addCluster(store, 'edge-eu', { env: 'prod', region: 'eu' });
    await addCluster(store, 'edge-us', { env: 'prod', region: 'us' });
    const ports = { clusters: store, source: new MemoryFleetSource('b'.repeat(40), exampleFiles()) };
    const all = await previewTargets(ports, parsePreviewRequest({}));
    expect(all.commit).toBe('b'.repeat(40));
    expect(all.clusters.map((c) => [c.name, c.registered])).toEqual([
      ['edge-eu', true],
      ['edge-us', true],
    ]);
    await expect(
      previewTargets(ports, parsePreviewRequest({ clusters: ['edge-eu', 'ghost'] })),
    ).rejects.toMatchObject({
      field: 'clusters[1]',
    });
    await expect(
      previewTargets(ports, parsePreviewRequest({ commit: 'c'.repeat(40) })),
    ).rejects.toMatchObject({
      field: 'commit',
    });
  });
});
