/**
 * Bundles the dashboard (src/main.tsx and its CSS) with esbuild into one JavaScript and
 * one CSS file, in memory, each time `flotilla dashboard` starts.
 *
 * Why at start and not cached or prebuilt: esbuild bundles this UI in well under a second,
 * so a cache would save little and could serve a stale UI after an edit; a build step
 * would have to be wired into `npm start`, `npm test` and a fresh clone alike. Everything
 * comes from node_modules (Preact is bundled in), so the page needs no CDN and works offline.
 */
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export const dashboardEntry = fileURLToPath(new URL('./src/main.tsx', import.meta.url));

export interface DashboardBundle {
  readonly js: string;
  readonly css: string;
}

/** @throws Error with esbuild's messages when the sources do not build. */
export async function buildDashboard(opts: { minify?: boolean } = {}): Promise<DashboardBundle> {
  const result = await build({
    entryPoints: [dashboardEntry],
    bundle: true,
    write: false,
    outdir: 'out',
    format: 'esm',
    target: ['es2022'],
    platform: 'browser',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    minify: opts.minify ?? true,
    sourcemap: false,
    legalComments: 'none',
    logLevel: 'silent',
  });
  const js = result.outputFiles.find((f) => f.path.endsWith('.js'));
  const css = result.outputFiles.find((f) => f.path.endsWith('.css'));
  if (!js || !css) throw new Error('the dashboard bundle is missing its JavaScript or CSS output');
  return { js: js.text, css: css.text };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const started = Date.now();
  const bundle = await buildDashboard();
  process.stdout.write(
    `dashboard: ${bundle.js.length} bytes of JavaScript, ${bundle.css.length} bytes of CSS in ${Date.now() - started} ms\n`,
  );
}
