/**
 * The renderer layer's guard and identity. Which functions get it, and with what, is
 * asserted on the default template in hub-stack.test.ts; the real linux/arm64 worker
 * inside the synthesized asset in test/integration/infra/renderer-layer.test.ts.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RendererLayerError } from '../../../infra/src/renderer-layer.ts';
import { elfMachine, fakeRenderer, resourcesOfType, synthHub } from './synth.ts';

const hubConfig = { fleetRepo: { url: 'https://git.acme.test/fleet.git' } };
const layerAsset = (rendererBinary: string) => {
  const [layer] = resourcesOfType(synthHub(hubConfig, { rendererBinary }), 'AWS::Lambda::LayerVersion');
  return JSON.stringify(layer?.props.Content);
};

describe('the renderer layer', () => {
  it('refuses a worker built for another machine, naming the file and the fix', () => {
    const x86 = fakeRenderer(elfMachine.x86_64);
    expect(() => synthHub(hubConfig, { rendererBinary: x86 })).toThrow(RendererLayerError);
    expect(() => synthHub(hubConfig, { rendererBinary: x86 })).toThrow(
      `renderer.binary (${x86}): built for linux/amd64; the hub's functions run on linux/arm64: build it with ensureRenderer({ target: lambdaRendererTarget })`,
    );
  });

  it('refuses a file that is no executable, and a path with nothing there', () => {
    const script = join(import.meta.dirname, 'synth.ts');
    expect(() => synthHub(hubConfig, { rendererBinary: script })).toThrow(
      `renderer.binary (${script}): not a 64-bit ELF executable; the hub's functions run on linux/arm64`,
    );
    expect(() => synthHub(hubConfig, { rendererBinary: '/nonexistent/flotilla-renderer' })).toThrow(
      'renderer.binary (/nonexistent/flotilla-renderer): no such file',
    );
  });

  it('is keyed by the worker it holds: the same binary gives the same asset, another one a new asset', () => {
    const first = layerAsset(fakeRenderer(elfMachine.aarch64, 'build 1'));
    expect(layerAsset(fakeRenderer(elfMachine.aarch64, 'build 1'))).toBe(first);
    expect(layerAsset(fakeRenderer(elfMachine.aarch64, 'build 2'))).not.toBe(first);
  });
});
