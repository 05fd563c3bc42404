/**
 * `npm run bench:render` in miniature: four variants of each tool, one timed round, so
 * that its equality check (the worker's objects against `helm template`'s and `kustomize
 * build`'s for every variant) runs with the tests. Variant 3 turns the chart's subchart
 * off after three that have it on, which the worker's chart cache must not carry over.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const bench = fileURLToPath(new URL('../../../bench/render.ts', import.meta.url));

describe('bench:render', () => {
  it('renders the same objects as the CLIs for every variant and prints its headline', async () => {
    const { stdout } = await run(
      process.execPath,
      [bench, '--variants', '4', '--seconds', '0', '--workers', '1', '--cli-concurrency', '2'],
      { maxBuffer: 16 << 20 },
    );
    const lines = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.bench)).toEqual(['render-helm', 'render-kustomize', 'render']);
    for (const tool of lines.slice(0, 2)) expect(tool).toMatchObject({ variants: 4, sameObjects: 4 });
    const headline = lines[2] as Record<string, Record<string, unknown>>;
    expect(headline.helm).toMatchObject({ variants: 4 });
    expect(headline.kustomize).toMatchObject({ variants: 4 });
    expect(headline.versions).toEqual({ helm: 'v4.3.2', kustomize: 'v0.21.2' });
    for (const n of [
      headline.helm?.perSecond,
      headline.helm?.helmTemplatePerSecond,
      headline.kustomize?.perSecond,
      headline.kustomize?.kustomizeBuildPerSecond,
    ])
      expect(n).toBeGreaterThan(0);
  });
});
