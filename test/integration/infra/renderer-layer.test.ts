/**
 * The render worker as the CDK app ships it: the app entry (infra/bin/app.ts, what
 * `npm run synth` runs) builds flotilla-renderer for linux/arm64 (cached) and the layer
 * asset it writes holds that binary, an aarch64 ELF executable, where the functions'
 * FLOTILLA_RENDERER says. Integration project: it needs the Go cross build, no bed service.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ensureRenderer, lambdaRendererTarget } from '@flotilla/renderer/build.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rendererBinary } from '../../../functions/src/renderer.ts';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const outdir = mkdtempSync(join(tmpdir(), 'flotilla-synth-'));
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

interface Resource {
  Type: string;
  Properties: Record<string, unknown>;
}
let arm64Binary: string;
let resources: Record<string, Resource>;
let appStderr: string;

beforeAll(async () => {
  const log = (line: string) => process.stderr.write(`[renderer layer test] ${line}\n`);
  // Built here first so that a cold build shows its progress in the test output.
  arm64Binary = await ensureRenderer({ target: lambdaRendererTarget, log });
  // The app as the CDK CLI runs it: the cdk.json context, and an output directory.
  const cdkJson = JSON.parse(readFileSync(join(repoRoot, 'cdk.json'), 'utf8')) as { context: object };
  const started = Date.now();
  const { stderr } = await promisify(execFile)(process.execPath, ['infra/bin/app.ts'], {
    cwd: repoRoot,
    env: { ...process.env, CDK_OUTDIR: outdir, CDK_CONTEXT_JSON: JSON.stringify(cdkJson.context) },
    maxBuffer: 64 * 1024 * 1024,
  });
  appStderr = stderr;
  log(`the CDK app synthesized in ${Date.now() - started} ms`);
  const template = JSON.parse(readFileSync(join(outdir, 'flotilla-hub.template.json'), 'utf8')) as {
    Resources: Record<string, Resource>;
  };
  resources = template.Resources;
}, 900_000);

const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);

describe('the CDK app ships the render worker for arm64 Lambda', () => {
  it('writes a layer asset holding bin/flotilla-renderer: an executable ELF for aarch64 (e_machine 183)', () => {
    const layers = ofType('AWS::Lambda::LayerVersion');
    expect(layers).toHaveLength(1);
    const key = JSON.stringify(layers[0]?.[1].Properties.Content).match(/([0-9a-f]{64})\.zip/)?.[1];
    expect(key).toBeDefined();
    const worker = join(outdir, `asset.${key}`, 'bin', 'flotilla-renderer');
    const bytes = readFileSync(worker);
    expect(bytes.subarray(0, 4)).toEqual(Buffer.from([0x7f, 0x45, 0x4c, 0x46])); // \x7fELF
    expect(bytes[4]).toBe(2); // ELFCLASS64
    expect(bytes[5]).toBe(1); // little-endian
    expect(bytes.readUInt16LE(16)).toBe(2); // ET_EXEC: Go's static, non-PIE default
    expect(bytes.readUInt16LE(18)).toBe(183); // EM_AARCH64
    expect(statSync(worker).mode & 0o777).toBe(0o755);
    // The binary the build cache holds for linux/arm64, not the host's.
    expect(bytes.equals(readFileSync(arm64Binary))).toBe(true);
    expect(arm64Binary).toMatch(/\/renderer\/linux-arm64-[0-9a-f]{16}\/flotilla-renderer$/);
    // Static (CGO_ENABLED=0): no PT_INTERP program header, so it needs no dynamic loader.
    const phoff = Number(bytes.readBigUInt64LE(32));
    const [phentsize, phnum] = [bytes.readUInt16LE(54), bytes.readUInt16LE(56)];
    const types = Array.from({ length: phnum }, (_, i) => bytes.readUInt32LE(phoff + i * phentsize));
    expect(types).toContain(1); // PT_LOAD: the headers are read right
    expect(types).not.toContain(3); // PT_INTERP
  });

  it('gives the functions that render arm64, the layer and FLOTILLA_RENDERER=/opt/bin/flotilla-renderer', () => {
    const [[layerId]] = ofType('AWS::Lambda::LayerVersion') as [[string, Resource]];
    const all = ofType('AWS::Lambda::Function');
    // The API and sync functions render; the notifier only delivers (no layer, no renderer).
    const fns = all.filter(([, fn]) => fn.Properties.Layers !== undefined);
    expect(all).toHaveLength(3);
    expect(fns).toHaveLength(2);
    for (const [, fn] of all) expect(fn.Properties.Architectures).toEqual(['arm64']);
    for (const [, fn] of fns) {
      expect(fn.Properties.Architectures).toEqual(['arm64']);
      expect(fn.Properties.Layers).toEqual([{ Ref: layerId }]);
      expect(fn.Properties.Environment).toMatchObject({
        Variables: { FLOTILLA_RENDERER: '/opt/bin/flotilla-renderer' },
      });
    }
  });

  it('passes the checks the app runs (cdk-nag AwsSolutions) without a finding', () => {
    expect(appStderr).not.toMatch(/AwsSolutions-\w+/);
  });

  it('leaves local runs to the host build when FLOTILLA_RENDERER is unset', async () => {
    const host = await rendererBinary({});
    expect(host).toBe(await ensureRenderer());
    expect(host).not.toBe(arm64Binary);
    const machine = readFileSync(host).readUInt16LE(18);
    expect(machine).toBe(process.arch === 'arm64' ? 183 : 62);
  });
});
