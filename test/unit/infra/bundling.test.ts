/**
 * The functions' code as the stack ships it: bundled at synth time by the local esbuild,
 * never Docker, into ES modules that load on Node 24 and export `handler`.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fakeRenderer, resourcesOfType, synthHub } from './synth.ts';

const outdir = mkdtempSync(join(tmpdir(), 'flotilla-cdk-'));
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

// Any fallback to Docker bundling fails loudly instead of pulling an image.
process.env.CDK_DOCKER = join(outdir, 'no-docker-here');
const rendererBinary = fakeRenderer();
const hub = synthHub(
  { fleetRepo: { url: 'https://git.acme.test/fleet.git' } },
  { bundle: true, outdir, rendererBinary },
);
hub.app.synth();

describe('function bundles', () => {
  const assets = readdirSync(outdir).filter(
    (d) => d.startsWith('asset.') && existsSync(join(outdir, d, 'index.mjs')),
  );

  it('are built locally with esbuild: one ES module per function, with a source map', () => {
    // The API, the sync and the notifier.
    expect(assets).toHaveLength(3);
    for (const asset of assets) {
      const size = statSync(join(outdir, asset, 'index.mjs')).size;
      expect(size).toBeGreaterThan(100_000);
      expect(size).toBeLessThan(5_000_000);
      expect(existsSync(join(outdir, asset, 'index.mjs.map'))).toBe(true);
    }
    const keys = resourcesOfType(hub, 'AWS::Lambda::Function').map(
      ({ props }) => JSON.stringify(props.Code).match(/([0-9a-f]{64})\.zip/)?.[1],
    );
    expect(keys.map((k) => `asset.${k}`).sort()).toEqual([...assets].sort());
  });

  // Two Node processes loading a megabyte of bundle each: slow on a loaded machine.
  it('load on this Node and export the handler', { timeout: 60_000 }, () => {
    const key = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    for (const asset of assets) {
      const out = execFileSync(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `const m = await import(${JSON.stringify(join(outdir, asset, 'index.mjs'))}); console.log(typeof m.handler);`,
        ],
        {
          env: {
            PATH: process.env.PATH,
            AWS_REGION: 'eu-west-1',
            FLOTILLA_FLEET_REPO_URL: 'https://git.acme.test/fleet.git',
            FLOTILLA_SIGNING_KEY: key,
          },
          encoding: 'utf8',
        },
      );
      expect(out.trim()).toBe('function');
    }
  });

  it('put the render worker at bin/flotilla-renderer of the layer, executable, copied locally', () => {
    const [layer] = resourcesOfType(hub, 'AWS::Lambda::LayerVersion');
    const key = JSON.stringify(layer?.props.Content).match(/([0-9a-f]{64})\.zip/)?.[1];
    const dir = join(outdir, `asset.${key}`);
    expect(readdirSync(dir)).toEqual(['bin']);
    expect(readdirSync(join(dir, 'bin'))).toEqual(['flotilla-renderer']);
    const worker = join(dir, 'bin', 'flotilla-renderer');
    expect(readFileSync(worker)).toEqual(readFileSync(rendererBinary));
    // The zip that CDK uploads keeps each file's mode, and Lambda extracts it with it.
    expect(statSync(worker).mode & 0o777).toBe(0o755);
  });
});
