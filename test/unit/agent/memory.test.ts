import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpClient } from '../../../agent/src/http/request.ts';
import { type IdleConnections, releaseMemoryAfterWork } from '../../../agent/src/memory.ts';

const memoryModule = new URL('../../../agent/src/memory.ts', import.meta.url).pathname;

describe('giving memory back after work', () => {
  it('compacting gives back the V8 heap pages a burst grew', async () => {
    // 40 MB of short-lived objects grow the old generation; an ordinary collection frees
    // them but keeps the pages, the last-resort one gives the pages back.
    const script = `
      import { compactHeap } from ${JSON.stringify(memoryModule)};
      import { getHeapStatistics } from 'node:v8';
      let held = Array.from({ length: 400_000 }, (_, i) => ({ i, s: 'x'.repeat(64) + i }));
      held = undefined;
      const before = getHeapStatistics().total_heap_size / 1048576;
      compactHeap();
      const after = getHeapStatistics().total_heap_size / 1048576;
      console.log(JSON.stringify({ before, after }));
    `;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script]);
    const r = JSON.parse(stdout) as { before: number; after: number };
    expect(r.before - r.after).toBeGreaterThan(20);
  });

  it('closes idle connections, then compacts; calls while it runs share the run', async () => {
    const events: string[] = [];
    let release: () => void = () => {};
    const slow: IdleConnections = {
      closeIdle: () => {
        events.push('close slow');
        return new Promise((resolve) => {
          release = resolve;
        });
      },
    };
    const fast: IdleConnections = { closeIdle: async () => void events.push('close fast') };
    const errors: unknown[] = [];
    const settle = releaseMemoryAfterWork([slow, fast], (e) => errors.push(e));
    const first = settle();
    const second = settle();
    expect(second).toBe(first);
    release();
    await first;
    expect(events).toEqual(['close slow', 'close fast']);
    const third = settle();
    expect(third).not.toBe(first);
    release();
    await third;
    expect(events).toHaveLength(4);
    expect(errors).toEqual([]);
  });

  it('reports a failure to close and is ready for the next time', async () => {
    const errors: unknown[] = [];
    let calls = 0;
    const failing: IdleConnections = {
      closeIdle: async () => {
        calls += 1;
        throw new Error('socket trouble');
      },
    };
    const settle = releaseMemoryAfterWork([failing], (e) => errors.push(e));
    await settle();
    await settle();
    expect(calls).toBe(2);
    expect(errors.map((e) => (e as Error).message)).toEqual(['socket trouble', 'socket trouble']);
  });
});

describe('HttpClient.closeIdle', () => {
  let server: Server | undefined;
  afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

  it('closes the keep-alive connections no request uses, and later requests open new ones', async () => {
    server = createServer((_req, res) => setTimeout(() => res.end('ok'), 20));
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const open = () =>
      new Promise<number>((resolve, reject) =>
        server?.getConnections((e, n) => (e ? reject(e) : resolve(n))),
      );
    const client = new HttpClient(`http://127.0.0.1:${port}`, { maxSockets: 4 });
    try {
      const get = () => client.request('/', { method: 'GET', timeoutMs: 5_000 });
      await Promise.all([get(), get(), get()]);
      expect(await open()).toBe(3);
      await client.closeIdle();
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await open()).toBe(0);
      expect((await get()).body.toString()).toBe('ok');
      expect(await open()).toBe(1);
    } finally {
      client.close();
    }
  });
});
