/**
 * Where the hub's functions find the render worker. The local fallback (the host build)
 * needs Go and is tested in test/integration/infra/renderer-layer.test.ts.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RendererNotFoundError, rendererBinary } from '../../../functions/src/renderer.ts';

const dir = mkdtempSync(join(tmpdir(), 'flotilla-renderer-binary-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const executable = join(dir, 'flotilla-renderer');
writeFileSync(executable, '#!/bin/sh\n');
chmodSync(executable, 0o755);
const plain = join(dir, 'not-executable');
writeFileSync(plain, '');
const lambda = { AWS_LAMBDA_FUNCTION_NAME: 'flotilla-sync' };

describe('rendererBinary', () => {
  it('is FLOTILLA_RENDERER when that is an executable file, in Lambda and elsewhere', async () => {
    expect(await rendererBinary({ FLOTILLA_RENDERER: executable })).toBe(executable);
    expect(await rendererBinary({ ...lambda, FLOTILLA_RENDERER: ` ${executable} ` })).toBe(executable);
  });

  it('says the layer is missing when FLOTILLA_RENDERER names nothing runnable in Lambda', async () => {
    for (const path of [plain, '/opt/bin/flotilla-renderer-missing']) {
      const err = await rendererBinary({ ...lambda, FLOTILLA_RENDERER: path }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RendererNotFoundError);
      expect((err as Error).message).toBe(
        `FLOTILLA_RENDERER is ${path}, which is not an executable file: is the hub's renderer layer attached to this function?`,
      );
      expect((err as Error).cause).toBeInstanceOf(Error);
    }
    await expect(rendererBinary({ FLOTILLA_RENDERER: plain })).rejects.toThrow(
      `FLOTILLA_RENDERER is ${plain}, which is not an executable file`,
    );
  });

  it('never tries to build the worker inside Lambda', async () => {
    await expect(rendererBinary(lambda)).rejects.toThrow(
      "FLOTILLA_RENDERER is not set: the hub's stack sets it with the renderer layer (/opt/bin/flotilla-renderer)",
    );
  });
});
