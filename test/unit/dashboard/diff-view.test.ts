import type { KubeObject, RenderedBundleDocument, SealedFile } from '@flotilla/shared';
import { build } from 'esbuild';
import { Fragment, type VNode } from 'preact';
import { describe, expect, it } from 'vitest';
import { diffBundles } from '../../../dashboard/src/diff.ts';
import { DiffView } from '../../../dashboard/src/views/diff-view.tsx';

type Props = Record<string, unknown> & { children?: unknown };

/**
 * Renders a Preact tree to HTML without a DOM: the view uses no hooks, so its components
 * are plain functions of their props. Enough to read its text, elements and classes.
 */
function html(node: unknown): string {
  if (node === null || node === undefined || typeof node === 'boolean') return '';
  if (typeof node === 'string' || typeof node === 'number') return escapeHtml(String(node));
  if (Array.isArray(node)) return node.map(html).join('');
  const v = node as VNode<Props>;
  if (v.type === Fragment) return html(v.props.children);
  if (typeof v.type === 'function') return html((v.type as (p: Props) => unknown)(v.props));
  const attrs = Object.entries(v.props)
    .filter(([k, val]) => k !== 'children' && val !== false && val !== undefined)
    .map(([k, val]) => (val === true ? ` ${k}` : ` ${k}="${escapeHtml(String(val))}"`))
    .join('');
  return `<${v.type}${attrs}>${html(v.props.children)}</${v.type}>`;
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;');
}

/** What a reader sees: the text without tags. */
function text(markup: string): string {
  return markup
    .replace(/<[^>]+>/g, '')
    .replace(/&lt;/g, '<')
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, '&');
}

function doc(objects: KubeObject[], sealed?: SealedFile[]): RenderedBundleDocument {
  return {
    apiVersion: 'flotilla.dev/v1alpha1',
    kind: 'RenderedBundle',
    bundle: 'web',
    objects,
    ...(sealed ? { sealed } : {}),
  };
}

const cm = (region: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'storefront-config', namespace: 'web' },
  data: { region },
});
const svc: KubeObject = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'storefront', namespace: 'web' },
  spec: { ports: [{ port: 80 }] },
};
const ns: KubeObject = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'web' } };
const secret = (password: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name: 'db', namespace: 'web' },
  data: { password, user: 'c3RvcmVmcm9udA==' },
});
const sealedFile: SealedFile = {
  file: 'bundles/web/api.sops.yaml',
  format: 'yaml',
  content: 'apiVersion: v1\nkind: Secret\nstringData:\n  key: ENC[AES256_GCM,data:Zm9v,type:str]\n',
  objects: [{ apiVersion: 'v1', kind: 'Secret', name: 'api', namespace: 'web' }],
};

describe('DiffView', () => {
  const diff = diffBundles(
    { label: 'prod-eu-1', bundle: doc([ns, cm('eu'), secret('aHVudGVyMg==')], [sealedFile]) },
    { label: 'prod-us-1', bundle: doc([cm('us'), svc, secret('Y29ycmVjdA==')]) },
  );
  const markup = html(DiffView({ diff }));
  const words = text(markup);

  it('says in words which side is which and what changed, per object', () => {
    expect(words).toContain(
      'From prod-eu-1 (lines marked -) to prod-us-1 (lines marked +): 2 changed, 1 added, 2 removed, 0 unchanged.',
    );
    expect(words).toContain('changed ConfigMap web/storefront-config');
    expect(words).toContain('added Service web/storefront');
    expect(words).toContain('removed Namespace web');
    expect(words).toContain('removed Secret web/api');
  });

  it('shows the hunks in a <pre> with +/- on each line, and ins/del with classes for colour', () => {
    expect(markup).toContain('<pre class="diff-hunks">');
    expect(words).toContain(
      'YAML diff (7 lines, lines marked - are prod-eu-1, lines marked + are prod-us-1)',
    );
    expect(markup).toContain('<span class="diff-hunk-header">@@ -1,6 +1,6 @@</span>');
    expect(markup).toContain('<del class="diff-line diff-line-removed">-  region: eu</del>');
    expect(markup).toContain('<ins class="diff-line diff-line-added">+  region: us</ins>');
    expect(markup).toContain('<span class="diff-line diff-line-context"> kind: ConfigMap</span>');
    expect(markup).toContain('<span class="diff-change diff-change-changed">changed</span>');
  });

  it('lists a Secret’s keys as (changed) or (unchanged), and shows no secret value', () => {
    expect(words).toContain('data.password (changed)');
    expect(words).toContain('data.user (unchanged)');
    expect(words).toContain('SOPS-encrypted: compared by the SHA-256 digest of its file');
    for (const value of ['aHVudGVyMg==', 'Y29ycmVjdA==', 'c3RvcmVmcm9udA==', 'ENC[', 'Zm9v']) {
      expect(markup).not.toContain(value);
    }
  });

  it('folds unchanged objects away and says when nothing differs', () => {
    const same = html(
      DiffView({
        diff: diffBundles(
          { label: 'generation 7', bundle: doc([svc]) },
          { label: 'generation 8', bundle: doc([svc]) },
        ),
      }),
    );
    expect(text(same)).toContain('No differences: both render the same objects.');
    expect(same).toContain('<details class="diff-unchanged"><summary>1 unchanged object</summary>');
  });

  it('bundles with the diff module for the browser with esbuild, as the dashboard is built (no Node built-ins)', async () => {
    const result = await build({
      stdin: {
        contents:
          "export { diffBundles } from './dashboard/src/diff.ts'; export { DiffView } from './dashboard/src/views/diff-view.tsx';",
        resolveDir: new URL('../../../', import.meta.url).pathname,
        loader: 'ts',
      },
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'browser',
      target: ['es2022'],
      jsx: 'automatic',
      jsxImportSource: 'preact',
      minify: true,
      logLevel: 'silent',
    });
    const js = result.outputFiles[0]?.text ?? '';
    expect(js).toContain('diff-hunks');
    // The line diff (jsdiff), YAML and SHA-256 are bundled in: about 80 KB minified with Preact.
    expect(js).toContain('sha256:');
    expect(js.length).toBeLessThan(150_000);
    expect(js).not.toMatch(/\bfrom\s*["'](?!\.)[^"']+["']/);
  });
});
