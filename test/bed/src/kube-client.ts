import { request } from 'node:https';

/** What it takes to talk to one API server as the plane's admin. */
export interface KubeConnection {
  readonly server: string;
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

export interface KubeResponse {
  readonly status: number;
  readonly body: string;
}

/**
 * One HTTPS request with the admin client certificate. The bed polls the API server
 * while a plane starts; doing that in-process costs far less than a kubectl per poll.
 */
export function kubeRequest(
  conn: KubeConnection,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = 5_000,
): Promise<KubeResponse> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      new URL(path, conn.server),
      {
        method,
        ca: conn.ca,
        cert: conn.cert,
        key: conn.key,
        agent: false,
        timeout: timeoutMs,
        headers: {
          accept: 'application/json',
          ...(payload === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within ${timeoutMs}ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}
