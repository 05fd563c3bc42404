import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { BedProcessError, run } from './process.ts';

/** A real git smart-HTTP server: `git http-backend` behind a small HTTP front. */
export interface GitServer {
  /** Base URL; a repository `name` is at `${url}/${name}.git`. */
  readonly url: string;
  readonly reposDir: string;
  readonly version: string;
  stop(): Promise<void>;
}

/** Creates an empty bare repository `name.git` whose default branch is `main`. */
export async function createBareRepo(reposDir: string, name: string): Promise<string> {
  if (!/^[a-z0-9][a-z0-9._-]*$/i.test(name)) throw new BedProcessError(`invalid repository name "${name}"`);
  const path = join(reposDir, `${name}.git`);
  if (!existsSync(path)) {
    await run('git', ['init', '--quiet', '--bare', '--initial-branch=main', path]);
  }
  return path;
}

/** A push webhook of one repository, delivered as a forge does (GitHub's push event). */
export interface GitWebhook {
  readonly url: string;
  /** HMAC-SHA256 key of the `X-Hub-Signature-256` header. */
  readonly secret: string;
}

const webhooksFile = 'flotilla-webhooks.json';

/**
 * Sets the push webhooks of repository `name` (replacing earlier ones). Kept in the bare
 * repository, so any process can set them on a server another process runs.
 */
export function setWebhooks(reposDir: string, name: string, hooks: readonly GitWebhook[]): void {
  writeFileSync(join(reposDir, `${name}.git`, webhooksFile), `${JSON.stringify(hooks)}\n`, { mode: 0o600 });
}

export async function startGitServer(opts: { reposDir: string; port?: number }): Promise<GitServer> {
  mkdirSync(opts.reposDir, { recursive: true });
  const version = (await run('git', ['--version'])).trim().replace(/^git version /, '');
  const server: Server = createServer((req, res) => {
    serveWithWebhooks(opts.reposDir, req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`git http-backend failed: ${err instanceof Error ? err.message : String(err)}\n`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    reposDir: opts.reposDir,
    version,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * A push (git-receive-pack) is answered first; then, like a forge, the server posts one
 * push event per updated branch to the repository's webhooks, signed with their secret.
 */
async function serveWithWebhooks(reposDir: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = decodeURIComponent(new URL(req.url ?? '/', 'http://bed').pathname);
  const push = req.method === 'POST' && path.endsWith('/git-receive-pack');
  const repoDir = push ? join(reposDir, path.slice(0, -'/git-receive-pack'.length)) : '';
  const before = push && existsSync(repoDir) ? await refs(repoDir).catch(() => undefined) : undefined;
  await serveCgi(reposDir, req, res);
  if (!before) return;
  let hooks: GitWebhook[];
  try {
    hooks = JSON.parse(readFileSync(join(repoDir, webhooksFile), 'utf8')) as GitWebhook[];
  } catch {
    return;
  }
  const after = await refs(repoDir).catch(() => new Map<string, string>());
  const name = path.slice(1, -'.git/git-receive-pack'.length);
  for (const [ref, commit] of after) {
    if (before.get(ref) === commit) continue;
    const body = JSON.stringify({
      ref,
      before: before.get(ref) ?? '0'.repeat(40),
      after: commit,
      repository: { name, full_name: name },
    });
    for (const hook of hooks) {
      const signature = `sha256=${createHmac('sha256', hook.secret).update(body).digest('hex')}`;
      fetch(hook.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-github-event': 'push',
          'x-hub-signature-256': signature,
        },
        body,
      })
        .then((r) => r.arrayBuffer())
        .catch(() => undefined);
    }
  }
}

async function refs(repoDir: string): Promise<Map<string, string>> {
  const out = await run('git', [
    '-C',
    repoDir,
    'for-each-ref',
    '--format=%(objectname) %(refname)',
    'refs/heads',
  ]);
  return new Map(
    out
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [commit = '', ref = ''] = line.split(' ');
        return [ref, commit] as const;
      }),
  );
}

// Runs one request through git http-backend as CGI (RFC 3875), streaming both ways
// so large packs never sit in memory.
function serveCgi(reposDir: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://bed');
  const header = (name: string): string => {
    const v = req.headers[name];
    return Array.isArray(v) ? (v[0] ?? '') : (v ?? '');
  };
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    GIT_PROJECT_ROOT: reposDir,
    GIT_HTTP_EXPORT_ALL: '1',
    // Pushes are what the bed is for; http-backend refuses them to anonymous users
    // unless receive-pack is switched on explicitly.
    GIT_CONFIG_COUNT: '1',
    GIT_CONFIG_KEY_0: 'http.receivepack',
    GIT_CONFIG_VALUE_0: 'true',
    REMOTE_USER: 'bed',
    REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
    REQUEST_METHOD: req.method ?? 'GET',
    PATH_INFO: decodeURIComponent(url.pathname),
    QUERY_STRING: url.search.replace(/^\?/, ''),
    CONTENT_TYPE: header('content-type'),
    CONTENT_LENGTH: header('content-length'),
    HTTP_CONTENT_ENCODING: header('content-encoding'),
    GIT_PROTOCOL: header('git-protocol'),
    SERVER_PROTOCOL: 'HTTP/1.1',
  };
  const child = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  req.pipe(child.stdin);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0);
    let headersDone = false;
    child.stdout.on('data', (chunk: Buffer) => {
      if (headersDone) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const sep = head.indexOf('\r\n\r\n');
      const sepLen = sep >= 0 ? 4 : 2;
      const end = sep >= 0 ? sep : head.indexOf('\n\n');
      if (end < 0) return;
      headersDone = true;
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of head.subarray(0, end).toString('latin1').split(/\r?\n/)) {
        const colon = line.indexOf(':');
        if (colon < 0) continue;
        const key = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (key.toLowerCase() === 'status') status = Number.parseInt(value, 10) || 200;
        else headers[key] = value;
      }
      res.writeHead(status, headers);
      res.write(head.subarray(end + sepLen));
    });
    child.once('error', reject);
    child.once('close', (code) => {
      if (!headersDone) {
        reject(new BedProcessError(`git http-backend exited ${code} without a response: ${stderr.trim()}`));
        return;
      }
      res.end();
      resolve();
    });
  });
}
