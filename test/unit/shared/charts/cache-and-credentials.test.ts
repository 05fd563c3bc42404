import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ChartCredentialsError,
  MemoryChartCache,
  parseChartCredentials,
  staticCredentialResolver,
} from '@flotilla/shared/charts';
import { afterAll, describe, expect, it } from 'vitest';
import { DirectoryChartCache } from '../../../../functions/src/adapters/directory-chart-cache.ts';
import { fileCredentialResolver } from '../../../../functions/src/adapters/file-chart-credentials.ts';

const bytes = (n: number, fill = 1) => new Uint8Array(n).fill(fill);
const digestOf = (data: Uint8Array) => `sha256:${createHash('sha256').update(data).digest('hex')}`;
const scratch = mkdtempSync(join(tmpdir(), 'flotilla-chart-unit-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('MemoryChartCache', () => {
  it('evicts the least recently used archives past its bound', async () => {
    const cache = new MemoryChartCache({ maxBytes: 250 });
    await cache.put('a', bytes(100));
    await cache.put('b', bytes(100));
    await cache.get('a'); // a is now the most recent
    await cache.put('c', bytes(100));
    expect(await cache.get('b')).toBeUndefined();
    expect(await cache.get('a')).toHaveLength(100);
    expect(await cache.get('c')).toHaveLength(100);
    expect(cache.size).toBe(200);
  });

  it('keeps no archive larger than the bound', async () => {
    const cache = new MemoryChartCache({ maxBytes: 10 });
    await cache.put('big', bytes(11));
    expect(await cache.get('big')).toBeUndefined();
    expect(cache.size).toBe(0);
  });
});

describe('DirectoryChartCache', () => {
  it('reads back what it wrote and treats a changed file as a miss', async () => {
    const dir = join(scratch, 'cache');
    const data = bytes(64, 7);
    const digest = digestOf(data);
    await new DirectoryChartCache(dir).put(digest, data);
    expect(Buffer.from((await new DirectoryChartCache(dir).get(digest)) ?? []).equals(data)).toBe(true);
    const [file] = readdirSync(dir);
    writeFileSync(join(dir, file as string), 'truncated');
    expect(await new DirectoryChartCache(dir).get(digest)).toBeUndefined();
    expect(readdirSync(dir)).toEqual([]);
    expect(await new DirectoryChartCache(dir).get('md5:nope')).toBeUndefined();
  });
});

describe('chart credentials', () => {
  it('reads basic and token credentials by secret name', async () => {
    const secrets = parseChartCredentials(
      '{"internal": {"username": "ci", "password": "s3cret"}, "ghcr": {"token": "tok"}}',
      'charts.json',
    );
    const resolver = staticCredentialResolver(secrets);
    expect(await resolver.resolve('internal')).toEqual({ username: 'ci', password: 's3cret' });
    expect(await resolver.resolve('ghcr')).toEqual({ token: 'tok' });
    expect(await resolver.resolve('other')).toBeUndefined();
  });

  it('says what is wrong without quoting a value', () => {
    expect(() =>
      parseChartCredentials('{"x": {"username": "ci", "pasword": "s3cret"}}', 'charts.json'),
    ).toThrow(
      new ChartCredentialsError(
        'charts.json: secret "x" needs string fields username and password, or token',
      ),
    );
    expect(() => parseChartCredentials('{"x": s3cret}', 'FLOTILLA_CHART_CREDENTIALS')).toThrow(
      'FLOTILLA_CHART_CREDENTIALS: not JSON (SyntaxError)',
    );
    expect(() => parseChartCredentials('[]', 'charts.json')).toThrow('expected an object');
  });

  it('reads a credentials file once, and a missing file as none', async () => {
    const path = join(scratch, 'charts.json');
    writeFileSync(path, '{"internal": {"token": "abc"}}');
    const resolver = fileCredentialResolver(path);
    expect(await resolver.resolve('internal')).toEqual({ token: 'abc' });
    expect(await fileCredentialResolver(join(scratch, 'absent.json')).resolve('internal')).toBeUndefined();
  });
});
