import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { nodeHttp } from './builtins.ts';
import type { AgentMetrics } from './metrics.ts';

export interface ProbeState {
  /** When the loop last did something (ms since the epoch). */
  readonly lastTickAt: number;
  /** A first reconcile has finished (from the hub or the cache); on a standby, the Lease could be read. */
  readonly ready: boolean;
  /** With leader election: whether this replica runs the agent loop. */
  readonly role?: 'leader' | 'standby';
}

/**
 * The agent's small HTTP server: `/healthz` (liveness: the loop is turning), `/readyz`
 * (a first reconcile is done) and `/metrics` (Prometheus text format).
 */
export async function startProbeServer(opts: {
  readonly host: string;
  readonly port: number;
  readonly metrics: AgentMetrics;
  readonly probe: () => ProbeState;
  /** A loop quiet for longer than this is reported dead. */
  readonly stuckAfterMs: number;
}): Promise<{ readonly url: string; readonly server: Server; close(): Promise<void> }> {
  const server = nodeHttp.createServer((req, res) => {
    // No Date header: formatting it would set up V8's time-zone cache (see isoTime).
    res.sendDate = false;
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      res
        .writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' })
        .end(opts.metrics.render());
      return;
    }
    if (path === '/healthz' || path === '/readyz') {
      const p = opts.probe();
      const quietMs = Date.now() - p.lastTickAt;
      const ok = path === '/healthz' ? quietMs < opts.stuckAfterMs : p.ready;
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          ok,
          ready: p.ready,
          ...(p.role ? { role: p.role } : {}),
          loopQuietSeconds: Math.round(quietMs / 1000),
        }),
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address() as AddressInfo;
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return {
    url: `http://${host}:${a.port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
