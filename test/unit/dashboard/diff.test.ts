import type { KubeObject, RenderedBundleDocument, SealedFile } from '@flotilla/shared';
import { sha256Hash } from '@flotilla/shared';
import { describe, expect, it } from 'vitest';
import { type BundleDiff, diffBundles, formatHunk, sha256Digest } from '../../../dashboard/src/diff.ts';

function bundle(
  objects: KubeObject[],
  extra: Partial<Pick<RenderedBundleDocument, 'sealed' | 'healthChecks' | 'ignoreDifferences'>> = {},
): RenderedBundleDocument {
  return { apiVersion: 'flotilla.dev/v1alpha1', kind: 'RenderedBundle', bundle: 'web', objects, ...extra };
}

function deployment(image: string, replicas = 2): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'storefront', namespace: 'web', labels: { app: 'storefront' } },
    spec: {
      replicas,
      selector: { matchLabels: { app: 'storefront' } },
      template: {
        metadata: { labels: { app: 'storefront' } },
        spec: { containers: [{ name: 'web', image, ports: [{ containerPort: 8080 }] }] },
      },
    },
  };
}

const config: KubeObject = {
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'storefront-config', namespace: 'web' },
  data: { region: 'eu', logLevel: 'info' },
};
const service: KubeObject = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'storefront', namespace: 'web' },
  spec: { ports: [{ port: 80, targetPort: 8080 }], selector: { app: 'storefront' } },
};
const namespace: KubeObject = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'web' } };

const g7 = { label: 'generation 7', bundle: bundle([namespace, config, deployment('nginx:1.27.3')]) };
const g8 = { label: 'generation 8', bundle: bundle([config, service, deployment('nginx:1.27.4')]) };

const byName = (d: BundleDiff, kind: string) => d.objects.find((o) => o.kind === kind);

describe('diffBundles', () => {
  it('says per object whether it was added, removed, changed or left alone', () => {
    const d = diffBundles(g7, g8);
    expect(d.before).toEqual({ label: 'generation 7', bundle: 'web' });
    expect(d.after).toEqual({ label: 'generation 8', bundle: 'web' });
    expect(d.objects.map((o) => [o.id, o.change])).toEqual([
      ['/ConfigMap/web/storefront-config', 'unchanged'],
      ['/Service/web/storefront', 'added'],
      ['apps/Deployment/web/storefront', 'changed'],
      ['/Namespace//web', 'removed'],
    ]);
    expect(d.counts).toEqual({ added: 1, removed: 1, changed: 1, unchanged: 1 });
    expect(byName(d, 'Deployment')).toMatchObject({
      group: 'apps',
      kind: 'Deployment',
      namespace: 'web',
      name: 'storefront',
      summary: 'image nginx 1.27.3 -> 1.27.4',
      sealed: false,
      secretKeys: [],
    });
    expect(byName(d, 'ConfigMap')?.hunks).toEqual([]);
    expect(d.settings).toEqual({ change: 'unchanged', hunks: [] });
  });

  it('gives a changed object a unified diff of its YAML, keys in a stable order', () => {
    const d = diffBundles(g7, g8);
    const hunks = byName(d, 'Deployment')?.hunks ?? [];
    expect(hunks.map(formatHunk).join('\n')).toBe(
      [
        '@@ -16,7 +16,7 @@',
        '         app: storefront',
        '     spec:',
        '       containers:',
        '-        - image: nginx:1.27.3',
        '+        - image: nginx:1.27.4',
        '           name: web',
        '           ports:',
        '             - containerPort: 8080',
      ].join('\n'),
    );
    expect(hunks[0]?.lines.filter((l) => l.type !== 'context')).toEqual([
      { type: 'removed', text: '        - image: nginx:1.27.3' },
      { type: 'added', text: '        - image: nginx:1.27.4' },
    ]);
  });

  it('shows an added object whole, and a removed one whole, as one hunk', () => {
    const d = diffBundles(g7, g8);
    const added = byName(d, 'Service')?.hunks ?? [];
    expect(added).toHaveLength(1);
    expect(added[0]?.header).toMatch(/^@@ -0,0 \+1,\d+ @@$/);
    expect(added[0]?.lines.every((l) => l.type === 'added')).toBe(true);
    expect(added[0]?.lines.map((l) => l.text)).toContain('kind: Service');
    const removed = byName(d, 'Namespace')?.hunks ?? [];
    expect(removed.map(formatHunk).join('\n')).toBe(
      '@@ -1,4 +0,0 @@\n-apiVersion: v1\n-kind: Namespace\n-metadata:\n-  name: web',
    );
  });

  it('reads objects that differ only in key order as unchanged', () => {
    const reordered: KubeObject = {
      data: { logLevel: 'info', region: 'eu' },
      metadata: { namespace: 'web', name: 'storefront-config' },
      kind: 'ConfigMap',
      apiVersion: 'v1',
    };
    const d = diffBundles(
      { label: 'a', bundle: bundle([config]) },
      { label: 'b', bundle: bundle([reordered]) },
    );
    expect(d.objects.map((o) => o.change)).toEqual(['unchanged']);
  });

  it('keeps objects of the same name in other namespaces or groups apart', () => {
    const other = { ...config, metadata: { ...config.metadata, namespace: 'shop' } };
    const d = diffBundles({ label: 'a', bundle: bundle([config]) }, { label: 'b', bundle: bundle([other]) });
    expect(d.objects.map((o) => [o.id, o.change])).toEqual([
      ['/ConfigMap/shop/storefront-config', 'added'],
      ['/ConfigMap/web/storefront-config', 'removed'],
    ]);
  });

  it('compares with a side that has no such bundle: everything added (or removed)', () => {
    const d = diffBundles({ label: 'staging-eu-1', bundle: null }, { label: 'prod-eu-1', bundle: g8.bundle });
    expect(d.before).toEqual({ label: 'staging-eu-1', bundle: null });
    expect(d.counts).toEqual({ added: 3, removed: 0, changed: 0, unchanged: 0 });
    const back = diffBundles(
      { label: 'prod-eu-1', bundle: g8.bundle },
      { label: 'staging-eu-1', bundle: null },
    );
    expect(back.counts).toEqual({ added: 0, removed: 3, changed: 0, unchanged: 0 });
  });

  it('diffs the bundle settings that are not objects (health checks, ignored differences)', () => {
    const checks: RenderedBundleDocument['healthChecks'] = [
      { kind: 'Widget', current: 'self.status.ready == true' },
    ];
    const d = diffBundles(
      { label: 'a', bundle: bundle([config]) },
      { label: 'b', bundle: bundle([config], { healthChecks: checks }) },
    );
    expect(d.settings.change).toBe('added');
    expect(d.settings.hunks.map(formatHunk).join('\n')).toContain('+    kind: Widget');
    expect(d.counts.unchanged).toBe(1);
  });

  it('takes the context from the options', () => {
    const d = diffBundles(g7, g8, { context: 0 });
    expect(byName(d, 'Deployment')?.hunks.map(formatHunk)).toEqual([
      '@@ -19,1 +19,1 @@\n-        - image: nginx:1.27.3\n+        - image: nginx:1.27.4',
    ]);
  });
});

describe('diffBundles and secrets', () => {
  const secret = (data: Record<string, string>, stringData?: Record<string, string>): KubeObject => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'db', namespace: 'web' },
    type: 'Opaque',
    data,
    ...(stringData ? { stringData } : {}),
  });
  // Values no diff may show, in any form.
  const values = ['c3RvcmVmcm9udA==', 'aHVudGVyMg==', 'Y29ycmVjdCBob3JzZQ==', 's3cr3t-token', 'b2xk'];

  it('masks every value of a Secret and says per key whether it changed', () => {
    const before = secret({ user: 'c3RvcmVmcm9udA==', password: 'aHVudGVyMg==', old: 'b2xk' });
    const after = secret(
      { user: 'c3RvcmVmcm9udA==', password: 'Y29ycmVjdCBob3JzZQ==' },
      { token: 's3cr3t-token' },
    );
    const d = diffBundles({ label: 'a', bundle: bundle([before]) }, { label: 'b', bundle: bundle([after]) });
    const o = d.objects[0];
    expect(o?.change).toBe('changed');
    expect(o?.secretKeys).toEqual([
      { field: 'data', key: 'old', change: 'removed' },
      { field: 'data', key: 'password', change: 'changed' },
      { field: 'data', key: 'user', change: 'unchanged' },
      { field: 'stringData', key: 'token', change: 'added' },
    ]);
    // stringData is new as a whole, so the shared summary counts it as a field; secretKeys names the key.
    expect(o?.summary).toBe('keys old, password changed, 1 more field changed');
    const text = o?.hunks.map(formatHunk).join('\n') ?? '';
    expect(text).toContain('-  password: "(redacted: old value)"');
    expect(text).toContain('+  password: "(redacted: new value)"');
    const all = JSON.stringify(d);
    for (const v of values) expect(all).not.toContain(v);
  });

  it('masks an added Secret and the last-applied annotation that would copy it', () => {
    const s = secret({ password: 'aHVudGVyMg==' });
    const annotated: KubeObject = {
      ...s,
      metadata: {
        ...s.metadata,
        annotations: { 'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify(s) },
      },
    };
    const d = diffBundles({ label: 'a', bundle: null }, { label: 'b', bundle: bundle([annotated]) });
    expect(d.objects[0]?.secretKeys).toEqual([{ field: 'data', key: 'password', change: 'added' }]);
    expect(JSON.stringify(d)).not.toContain('aHVudGVyMg==');
  });

  const ciphertext =
    'ENC[AES256_GCM,data:za5NNkUUdythqXG8FXeKDg==,iv:1POoW3cdSqBb4JYSVV7O6NIbL7v4u9umV,type:str]';
  const sealed = (content: string): SealedFile[] => [
    {
      file: 'bundles/web/db.sops.yaml',
      format: 'yaml',
      content,
      objects: [{ apiVersion: 'v1', kind: 'Secret', name: 'db', namespace: 'web' }],
    },
  ];
  const sopsFile = (password: string) =>
    `apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: ${password}\nsops:\n  mac: ENC[AES256_GCM,data:bWFj]\n`;

  it('shows a SOPS-encrypted object as its file digest only, never its ciphertext', () => {
    const before = sopsFile(ciphertext);
    const after = sopsFile(ciphertext.replace('za5N', 'Qx7y'));
    const d = diffBundles(
      { label: 'prod-eu-1', bundle: bundle([], { sealed: sealed(before) }) },
      { label: 'prod-us-1', bundle: bundle([], { sealed: sealed(after) }) },
    );
    const o = d.objects[0];
    expect(o).toMatchObject({
      id: '/Secret/web/db',
      change: 'changed',
      sealed: true,
      secretKeys: [],
      summary: 'SOPS-encrypted file changed (values not shown)',
    });
    const text = o?.hunks.map(formatHunk).join('\n') ?? '';
    expect(text).toContain(`-  digest: ${sha256Hash(before)}`);
    expect(text).toContain(`+  digest: ${sha256Hash(after)}`);
    const all = JSON.stringify(d);
    expect(all).not.toContain('ENC[');
    expect(all).not.toContain('za5N');

    const same = diffBundles(
      { label: 'prod-eu-1', bundle: bundle([], { sealed: sealed(before) }) },
      { label: 'prod-us-1', bundle: bundle([], { sealed: sealed(before) }) },
    );
    expect(same.objects[0]?.change).toBe('unchanged');
  });

  it('says when an object becomes SOPS-encrypted, without the old plain values', () => {
    const d = diffBundles(
      { label: 'a', bundle: bundle([secret({ password: 'aHVudGVyMg==' })]) },
      { label: 'b', bundle: bundle([], { sealed: sealed(sopsFile(ciphertext)) }) },
    );
    expect(d.objects[0]).toMatchObject({ change: 'changed', sealed: true, summary: 'now SOPS-encrypted' });
    expect(d.objects[0]?.secretKeys).toEqual([{ field: 'data', key: 'password', change: 'removed' }]);
    const all = JSON.stringify(d);
    expect(all).not.toContain('aHVudGVyMg==');
    expect(all).not.toContain('ENC[');
  });
});

describe('sha256Digest', () => {
  it('is the hub’s sha256Hash of the same text, in the browser’s JavaScript', () => {
    for (const text of ['', 'apiVersion: v1\n', 'ü and 日本 and 🚢', 'x'.repeat(100_000)]) {
      expect(sha256Digest(text)).toBe(sha256Hash(text));
    }
  });
});
