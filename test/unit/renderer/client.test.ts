/**
 * The renderer client's queueing, matching and restart logic, against a fake worker
 * that speaks the protocol and misbehaves on request. The real worker is tested in
 * test/integration/renderer/worker.test.ts.
 */
import { RendererClient, RendererWorkerError, type RenderRequest } from '@flotilla/renderer/client.ts';
import { afterEach, describe, expect, it } from 'vitest';

const fakeWorker = new URL('../../fixtures/renderer-fake/worker.mjs', import.meta.url).pathname;
const clients: RendererClient[] = [];

function client(maxInFlight?: number): RendererClient {
  const c = new RendererClient({ binary: fakeWorker, ...(maxInFlight ? { maxInFlight } : {}) });
  clients.push(c);
  return c;
}

/** Requests the fake worker understands; the client passes any kind through. */
const special = (kind: 'die' | 'wrong-id' | 'hang') =>
  ({ kind, files: {}, dir: '' }) as unknown as RenderRequest;
const build = (dir: string): RenderRequest => ({ kind: 'kustomize', files: {}, dir });

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

describe('RendererClient', () => {
  it('matches answers to requests and keeps one worker', async () => {
    const c = client();
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => c.render(build(`d${i}`))));
    const pid = c.pid;
    results.forEach((r, i) => {
      expect(r).toEqual({ ok: true, manifests: `dir: d${i}\npid: ${pid}\n` });
    });
    expect(c.starts).toBe(1);
  });

  it('returns a failed render as a value', async () => {
    const result = await client().render({ kind: 'helm', files: {}, releaseName: 'web', namespace: 'apps' });
    expect(result).toEqual({ ok: false, error: { message: 'no chart for web', file: 'Chart.yaml' } });
  });

  it('fails the requests in flight when the worker exits and sends the queued ones to a new worker', async () => {
    const c = client(1);
    const first = c.render(build('before'));
    const dying = c.render(special('die'));
    const queued = [c.render(build('after-1')), c.render(build('after-2'))];
    expect((await first).ok).toBe(true);
    const firstPid = c.pid;
    const err = await dying.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RendererWorkerError);
    expect((err as Error).message).toBe(
      `request 2 not rendered: renderer worker (pid ${firstPid}) exited with code 3; its last stderr lines:\nfake worker: dying as asked`,
    );
    const after = await Promise.all(queued);
    expect(after.map((r) => r.ok && r.manifests.split('\n')[0])).toEqual(['dir: after-1', 'dir: after-2']);
    expect(c.starts).toBe(2);
    expect(c.pid).not.toBe(firstPid);
  });

  it('treats an answer to an unknown id as a broken worker and starts afresh', async () => {
    const c = client(1);
    const err = await c.render(special('wrong-id')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RendererWorkerError);
    expect((err as Error).message).toBe(
      'request 1 not rendered: renderer protocol error: answer for unknown request id "not-1"',
    );
    expect((await c.render(build('x'))).ok).toBe(true);
    expect(c.starts).toBe(2);
  });

  it('reports a worker that cannot be started', async () => {
    const c = new RendererClient({ binary: '/nonexistent/flotilla-renderer' });
    const err = await c.render(build('x')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RendererWorkerError);
    expect((err as Error).message).toMatch(/could not run \/nonexistent\/flotilla-renderer: spawn .*ENOENT/);
    await c.close();
  });

  it('on close fails what is queued and refuses new requests', async () => {
    const c = client(1);
    expect(await c.versions()).toMatchObject({ helm: 'fake' });
    const hanging = c.render(special('hang'));
    const queued = c.render(build('never'));
    const closing = c.close();
    await expect(queued).rejects.toThrow('renderer client closed');
    // The worker exits on stdin's end without answering: the request it had fails.
    await expect(hanging).rejects.toThrow(
      /request 2 not rendered: renderer worker \(pid \d+\) exited with code 0/,
    );
    await closing;
    await expect(c.render(build('late'))).rejects.toThrow('renderer client closed');
  });
});
