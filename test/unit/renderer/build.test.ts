/**
 * The build's cache layout and recipe per target, with a stand-in `go` that records how
 * it was called and writes an empty binary. The real builds (host and linux/arm64) are
 * run by test/integration/renderer/worker.test.ts and test/integration/infra/renderer-layer.test.ts.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import {
  ensureRenderer,
  executableTarget,
  lambdaRendererTarget,
  moduleHash,
  parseRendererTarget,
  RendererBuildError,
  rendererModuleDir,
} from '@flotilla/renderer/build.ts';
import { afterAll, describe, expect, it } from 'vitest';
import { elfMachine, fakeRenderer } from '../infra/synth.ts';

const work = mkdtempSync(join(tmpdir(), 'flotilla-renderer-build-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const calls = join(work, 'calls.jsonl');
const go = join(work, 'go');
// Records argv and the variables a cross build depends on, then "builds" the -o target.
writeFileSync(
  go,
  `#!/usr/bin/env node
const fs = require('node:fs');
const args = process.argv.slice(2);
const env = Object.fromEntries(['GOOS', 'GOARCH', 'CGO_ENABLED', 'GOWORK'].map((k) => [k, process.env[k] ?? null]));
fs.appendFileSync(${JSON.stringify(calls)}, JSON.stringify({ args, env }) + '\\n');
fs.writeFileSync(args[args.indexOf('-o') + 1], '');
`,
);
chmodSync(go, 0o755);
const recorded = () =>
  readFileSync(calls, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { args: string[]; env: Record<string, string | null> });

describe('ensureRenderer with a target', () => {
  const cacheDir = join(work, 'cache');
  const log = () => {};

  it('cross-builds static and stripped for linux/arm64 into a cache directory of its own', async () => {
    const path = await ensureRenderer({ cacheDir, go, log, target: lambdaRendererTarget });
    expect(basename(path)).toBe('flotilla-renderer');
    expect(dirname(path)).toBe(join(cacheDir, 'renderer', `linux-arm64-${moduleHash(rendererModuleDir)}`));
    const [call] = recorded();
    expect(call?.env).toEqual({ GOOS: 'linux', GOARCH: 'arm64', CGO_ENABLED: '0', GOWORK: 'off' });
    expect(call?.args.slice(0, 6)).toEqual([
      'build',
      '-trimpath',
      '-buildvcs=false',
      '-mod=readonly',
      '-ldflags',
      '-s -w',
    ]);
  });

  it('finds the cached build without running go again, and keeps the host build apart', async () => {
    const arm = await ensureRenderer({ cacheDir, go, log, target: lambdaRendererTarget });
    expect(recorded()).toHaveLength(1);
    const host = await ensureRenderer({ cacheDir, go, log });
    expect(recorded()).toHaveLength(2);
    expect(dirname(host)).toBe(join(cacheDir, 'renderer', moduleHash(rendererModuleDir)));
    expect(host).not.toBe(arm);
    // The host build sets no target: go builds for the machine it runs on.
    expect(recorded()[1]?.env).toMatchObject({
      GOOS: process.env.GOOS ?? null,
      GOARCH: process.env.GOARCH ?? null,
    });
    await ensureRenderer({ cacheDir, go, log, target: { goos: 'linux', goarch: 'amd64' } });
    expect(recorded()).toHaveLength(3);
  });
});

describe('parseRendererTarget', () => {
  it('reads GOOS/GOARCH and refuses what the hub does not run on', () => {
    expect(parseRendererTarget('linux/arm64')).toEqual(lambdaRendererTarget);
    expect(parseRendererTarget('linux/amd64')).toEqual({ goos: 'linux', goarch: 'amd64' });
    for (const bad of ['darwin/arm64', 'linux', 'linux/arm64/v8', 'linux/386']) {
      expect(() => parseRendererTarget(bad)).toThrow(RendererBuildError);
    }
    expect(() => parseRendererTarget('windows/amd64')).toThrow(
      'unsupported renderer target "windows/amd64": expected linux/arm64 or linux/amd64',
    );
  });
});

describe('executableTarget', () => {
  it('reads the architecture from the ELF header', () => {
    expect(executableTarget(fakeRenderer(elfMachine.aarch64))).toEqual({ goos: 'linux', goarch: 'arm64' });
    expect(executableTarget(fakeRenderer(elfMachine.x86_64))).toEqual({ goos: 'linux', goarch: 'amd64' });
  });

  it('answers undefined for what is no 64-bit ELF executable of a known machine', () => {
    const text = join(work, 'script.sh');
    writeFileSync(text, '#!/bin/sh\necho this is long enough to have a header\n');
    expect(executableTarget(text)).toBeUndefined();
    expect(executableTarget(fakeRenderer(8 /* MIPS */))).toBeUndefined();
    const short = join(work, 'short');
    writeFileSync(short, '\x7fELF');
    expect(executableTarget(short)).toBeUndefined();
  });
});
