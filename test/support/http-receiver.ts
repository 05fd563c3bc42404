import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
  readonly at: number;
}

/**
 * A real HTTP receiver on loopback standing in for Slack, Teams or a webhook endpoint.
 * Answers are scripted per path (200 by default).
 */
export class HttpReceiver {
  readonly requests: ReceivedRequest[] = [];
  readonly script = new Map<string, { status: number; headers?: Record<string, string> }[]>();
  #server: Server | undefined;
  url = '';

  async start(): Promise<this> {
    this.#server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const path = req.url ?? '/';
        this.requests.push({
          path,
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
          at: Date.now(),
        });
        const next = this.script.get(path)?.shift() ?? { status: 200 };
        res.writeHead(next.status, { 'content-type': 'text/plain', ...next.headers });
        res.end(next.status === 200 ? 'ok' : 'no');
      });
    });
    const server = this.#server;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return this;
  }

  on(path: string): ReceivedRequest[] {
    return this.requests.filter((r) => r.path === path);
  }

  async stop(): Promise<void> {
    const server = this.#server;
    if (server) await new Promise((r) => server.close(r));
  }
}
