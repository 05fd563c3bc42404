import type { KubeObject } from '@flotilla/shared';
import {
  type BundleSide,
  type ClusterSides,
  diffCluster,
  diffFleet,
  formatDiffMarkdown,
  formatDiffText,
  markdownLimit,
} from '@flotilla/shared/diff';
import { describe, expect, it } from 'vitest';

const settings = { namespace: 'apps', dependsOn: [], driftPolicy: 'correct', paused: false };

function deployment(image: string, replicas = 2, extra: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'apps' },
    spec: {
      replicas,
      template: {
        spec: {
          containers: [
            { name: 'web', image, ports: [{ containerPort: 80 }] },
            { name: 'sidecar', image: 'envoy:1.30' },
          ],
          ...extra,
        },
      },
    },
  };
}

function secret(data: Record<string, string>, annotations?: Record<string, string>): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'db', namespace: 'apps', ...(annotations ? { annotations } : {}) },
    type: 'Opaque',
    data,
  };
}

const configMap = (name: string, data: Record<string, string>): KubeObject => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace: 'apps' },
  data,
});

const bundle = (objects: KubeObject[], name = 'web', extra: Record<string, unknown> = {}): BundleSide => ({
  name,
  settings: { ...settings, ...extra },
  objects,
});

const sides = (cluster: string, before: BundleSide[] | null, after: BundleSide[]): ClusterSides => ({
  cluster,
  before,
  after,
});

describe('diffCluster', () => {
  it('finds nothing when both sides hold the same objects, whatever their key order', () => {
    const a = deployment('nginx:1.27.3');
    const reordered = JSON.parse(
      JSON.stringify({ spec: a.spec, metadata: a.metadata, kind: a.kind, apiVersion: a.apiVersion }),
    );
    expect(diffCluster(sides('c', [bundle([a])], [bundle([reordered])])).changes).toEqual([]);
  });

  it('names an image change by tag and shows it as a unified diff of sorted YAML', () => {
    const d = diffCluster(
      sides('c', [bundle([deployment('nginx:1.27.3')])], [bundle([deployment('nginx:1.27.4')])]),
    );
    expect(d.changes).toHaveLength(1);
    const [c] = d.changes;
    expect(c?.action).toBe('changed');
    expect(c?.summary).toBe('web Deployment image nginx 1.27.3 -> 1.27.4');
    expect(c?.diff).toContain('--- a/web/Deployment.apps/apps/web\n+++ b/web/Deployment.apps/apps/web\n');
    expect(c?.diff).toContain('-        - image: nginx:1.27.3\n+        - image: nginx:1.27.4\n');
    // keys sorted: apiVersion before kind before metadata before spec
    expect(c?.diff).not.toMatch(/^={3,}/);
  });

  it('names replicas, and counts other fields', () => {
    const d = diffCluster(
      sides(
        'c',
        [bundle([deployment('nginx:1', 2)])],
        [
          bundle([
            deployment('registry.example/nginx:2', 4, { serviceAccountName: 'web', hostNetwork: true }),
          ]),
        ],
      ),
    );
    expect(d.changes[0]?.summary).toBe(
      'web Deployment replicas 2 -> 4, image nginx:1 -> registry.example/nginx:2, 2 more fields changed',
    );
  });

  it('matches containers by name, so reordering them is not a change', () => {
    const a = deployment('nginx:1');
    const spec = (a.spec as { template: { spec: { containers: unknown[] } } }).template.spec;
    const b = structuredClone(a);
    (b.spec as { template: { spec: { containers: unknown[] } } }).template.spec.containers = [
      ...spec.containers,
    ].reverse();
    const d = diffCluster(sides('c', [bundle([a])], [bundle([b])]));
    // YAML shows the reorder, the summary does not invent a field change
    expect(d.changes[0]?.summary ?? '').not.toMatch(/image/);
  });

  it('reports added and removed objects, and bundles whose settings changed', () => {
    const d = diffCluster(
      sides(
        'c',
        [bundle([configMap('old', { a: '1' })])],
        [bundle([configMap('new', { a: '1' })], 'web', { driftPolicy: 'warn' })],
      ),
    );
    expect(d.changes.map((c) => [c.action, c.summary])).toEqual([
      ['changed', 'bundle web driftPolicy changed'],
      ['added', 'new ConfigMap added'],
      ['removed', 'old ConfigMap removed'],
    ]);
    const added = d.changes.find((c) => c.action === 'added');
    expect(added?.diff).toMatch(/^--- \/dev\/null\n\+\+\+ b\/web\/ConfigMap\/apps\/new\n/);
  });

  it('treats a cluster without a desired state as getting everything new', () => {
    const d = diffCluster(sides('c', null, [bundle([configMap('x', {})])]));
    expect(d.firstDesiredState).toBe(true);
    expect(d.changes.map((c) => c.action)).toEqual(['added', 'added']);
  });

  it('says an object moved between bundles', () => {
    const cm = configMap('shared', { a: '1' });
    const d = diffCluster(
      sides('c', [bundle([cm], 'a'), bundle([], 'b')], [bundle([], 'a'), bundle([cm], 'b')]),
    );
    expect(d.changes.map((c) => c.summary)).toEqual(['shared ConfigMap moved from bundle a']);
  });
});

describe('Secret redaction', () => {
  const oldPass = 'czNjcjN0LW9sZA==';
  const newPass = 'czNjcjN0LW5ldw==';

  it('shows that a key changed, never a value, old or new', () => {
    const before = secret({ password: oldPass, user: 'YWRtaW4=' });
    const after = secret({ password: newPass, user: 'YWRtaW4=', token: 'dG9rZW4tdmFsdWU=' });
    const d = diffCluster(sides('c', [bundle([before])], [bundle([after])]));
    const text = JSON.stringify(d);
    for (const value of [oldPass, newPass, 'YWRtaW4=', 'dG9rZW4tdmFsdWU=']) expect(text).not.toContain(value);
    expect(d.changes[0]?.summary).toBe('db Secret keys password, token changed');
    expect(d.changes[0]?.diff).toContain('-  password: "(redacted: old value)"');
    expect(d.changes[0]?.diff).toContain('+  password: "(redacted: new value)"');
    expect(d.changes[0]?.diff).toContain('+  token: (redacted)');
    expect(d.changes[0]?.diff).toContain('   user: (redacted)');
  });

  it('hides the values of an added or removed Secret, stringData and last-applied-configuration too', () => {
    const lastApplied = JSON.stringify({ kind: 'Secret', data: { password: oldPass } });
    const s = {
      ...secret(
        { password: oldPass },
        { 'kubectl.kubernetes.io/last-applied-configuration': lastApplied, team: 'db' },
      ),
      stringData: { pin: '1234' },
    };
    for (const d of [
      diffCluster(sides('c', null, [bundle([s])])),
      diffCluster(sides('c', [bundle([s])], [bundle([])])),
    ]) {
      const text = JSON.stringify(d);
      expect(text).not.toContain(oldPass);
      expect(text).not.toContain('1234');
      expect(text).toContain('team: db');
    }
    const changedAnnotation = {
      ...s,
      metadata: {
        ...s.metadata,
        annotations: {
          'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify({ data: { password: newPass } }),
        },
      },
    };
    const d = diffCluster(sides('c', [bundle([s])], [bundle([changedAnnotation])]));
    expect(JSON.stringify(d)).not.toContain(newPass);
    expect(d.changes[0]?.diff).toContain('(redacted: new value)');
  });

  it('leaves other kinds named Secret in other API groups alone', () => {
    const other = {
      apiVersion: 'example.com/v1',
      kind: 'Secret',
      metadata: { name: 'x' },
      data: { a: 'visible' },
    };
    const d = diffCluster(sides('c', null, [bundle([other as KubeObject])]));
    expect(d.changes[1]?.diff).toContain('visible');
  });
});

describe('diffFleet', () => {
  it('groups clusters that share one change set (the same diffs), largest group first, and lists the unchanged', () => {
    const old = [bundle([deployment('nginx:1.27.3')])];
    const next = [bundle([deployment('nginx:1.27.4')])];
    const clusters = [
      ...Array.from({ length: 37 }, (_, i) => sides(`edge-${String(i).padStart(2, '0')}`, old, next)),
      // replicas differ, but out of the diff's context: the same change set
      sides('prod-1', [bundle([deployment('nginx:1.27.3', 4)])], [bundle([deployment('nginx:1.27.4', 4)])]),
      // same summary, another diff (the old tag): a group of its own
      sides('prod-2', [bundle([deployment('nginx:1.27.2')])], [bundle([deployment('nginx:1.27.4')])]),
      sides('lab', next, next),
    ];
    const d = diffFleet(clusters);
    expect(d.unchanged).toEqual(['lab']);
    expect(d.changed).toHaveLength(39);
    expect(d.groups.map((g) => [g.clusters.length, g.summary])).toEqual([
      [38, 'web Deployment image nginx 1.27.3 -> 1.27.4'],
      [1, 'web Deployment image nginx 1.27.2 -> 1.27.4'],
    ]);
    expect(d.groups[0]?.clusters.at(-1)).toBe('prod-1');
    const text = formatDiffText(d);
    expect(text).toMatch(/^39 clusters changed, 1 unchanged, 2 distinct change sets\n/);
    expect(text).toContain('=== 38 clusters: web Deployment image nginx 1.27.3 -> 1.27.4\n');
    expect(text).toContain(
      'clusters: edge-00, edge-01, edge-02, edge-03, edge-04, edge-05, edge-06, edge-07, edge-08, edge-09 and 28 more\n',
    );
    expect(text).toContain('=== 1 cluster: web Deployment image nginx 1.27.2 -> 1.27.4\nclusters: prod-2\n');
  });

  it('groups clusters whose diffs differ only in unchanged lines around the change, and says whose are shown', () => {
    const named = (cluster: string, version: string) => configMap('app', { cluster, version });
    const clusters = ['shop-2', 'shop-1', 'shop-3'].map((c) =>
      sides(c, [bundle([named(c, '1.27.3')])], [bundle([named(c, '1.27.4')])]),
    );
    const d = diffFleet(clusters);
    expect(d.groups).toHaveLength(1);
    expect(d.groups[0]?.clusters).toEqual(['shop-1', 'shop-2', 'shop-3']);
    expect(d.groups[0]?.shownFor).toBe('shop-1');
    expect(d.groups[0]?.contextVaries).toBe(true);
    expect(d.groups[0]?.changes[0]?.diff).toContain(
      ' cluster: shop-1\n-  version: 1.27.3\n+  version: 1.27.4\n',
    );
    expect(formatDiffText(d)).toContain(
      'clusters: shop-1, shop-2, shop-3\n(diffs as on shop-1; on the others, unchanged lines around the changes differ)\n',
    );
    // The same change with a different value is not the same change.
    const other = diffFleet([
      ...clusters,
      sides(
        'shop-4',
        [bundle([named('shop-4', 'nginx:1.27.2')])],
        [bundle([named('shop-4', 'nginx:1.27.4')])],
      ),
    ]);
    expect(other.groups.map((g) => g.clusters.length)).toEqual([3, 1]);
    expect(diffFleet(clusters.slice(0, 1)).groups[0]?.contextVaries).toBe(false);
  });

  it('says so when nothing changes', () => {
    const same = [bundle([configMap('a', {})])];
    const d = diffFleet([sides('a', same, same)]);
    expect(d.groups).toEqual([]);
    expect(formatDiffText(d)).toBe('no changes on 1 cluster\n');
    expect(formatDiffMarkdown(d)).toContain('No changes on 1 cluster.');
  });
});

describe('formatDiffMarkdown', () => {
  it('gives a summary table and a collapsed section per group', () => {
    const d = diffFleet([
      sides('a', [bundle([deployment('nginx:1')])], [bundle([deployment('nginx:2')])]),
      sides('b', [bundle([configMap('x|y', { k: '1' })])], [bundle([configMap('x|y', { k: '2' })])]),
    ]);
    const md = formatDiffMarkdown(d);
    expect(md).toContain('| Clusters | Change |');
    expect(md).toContain('| 1: a | web Deployment image nginx 1 -> 2 |');
    expect(md).toContain('| 1: b | x\\|y ConfigMap 1 field changed |');
    expect(md).toContain('<details><summary>1 cluster: web Deployment image nginx 1 -&gt; 2</summary>');
    expect(md).toContain('```diff\n--- a/web/Deployment.apps/apps/web');
    expect(md).not.toContain('left out');
  });

  it('stays under the limit with a note when diffs are left out, keeping the table', () => {
    const big = (i: number, v: string) =>
      configMap(
        `cm-${i}`,
        Object.fromEntries(Array.from({ length: 200 }, (_, k) => [`key-${k}`, `${v}-${k}`])),
      );
    const clusters = Array.from({ length: 30 }, (_, i) =>
      sides(`cluster-${i}`, [bundle([big(i, 'old')])], [bundle([big(i, 'new')])]),
    );
    const d = diffFleet(clusters);
    expect(d.groups).toHaveLength(30);
    const md = formatDiffMarkdown(d);
    expect(md.length).toBeLessThanOrEqual(markdownLimit);
    expect(md).toMatch(
      /_\d+ object diffs? left out to keep this comment under 60 KB; run `flotilla diff` to see them all\._\n$/,
    );
    for (const c of d.changed) expect(md).toContain(`| 1: ${c} |`);
    expect(md.match(/<details>/g)?.length).toBe(md.match(/<\/details>/g)?.length);
    // With more change sets than the table can hold, the table keeps to half the limit.
    const small = formatDiffMarkdown(d, { limit: 2_000 });
    expect(small.length).toBeLessThanOrEqual(2_000);
    expect(small).toMatch(/\| \d+ more clusters \| \d+ more change sets \|\n/);
    expect(small).toContain('| 1: cluster-0 |');
  });

  it('fences a diff so that backticks in it cannot end the block', () => {
    const d = diffFleet([
      sides('a', [bundle([configMap('x', { k: 'a ``` b' })])], [bundle([configMap('x', { k: 'c' })])]),
    ]);
    expect(formatDiffMarkdown(d)).toContain('````diff\n');
  });
});
