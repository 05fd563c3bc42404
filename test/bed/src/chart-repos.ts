/**
 * Chart repositories for tests: a Helm HTTP repository (an HTTP server over
 * charts packaged by the reference `helm package`, indexed by `helm repo index`)
 * and two OCI registries (the CNCF distribution registry, one anonymous, one
 * behind htpasswd basic auth) holding the same charts, pushed by `helm push`.
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, createReadStream, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join, normalize } from 'node:path';
import { ensureReferenceTools } from '@flotilla/renderer/build.ts';
import { hashSync } from 'bcryptjs';
import {
  formatElapsed,
  freePort,
  type Log,
  type ManagedProcess,
  run,
  startProcess,
  waitUntilReady,
} from './process.ts';
import { ensureRegistryBinary } from './registry-build.ts';

const chartFixture = new URL('../../fixtures/charts/web/', import.meta.url).pathname;

/** Versions of the `web` chart every repository holds (a prerelease and build metadata among them). */
export const bedChartVersions = ['1.0.0', '1.1.0', '1.2.0', '1.2.1+build.7', '2.0.0', '2.1.0-rc.1'] as const;
/** The versions pushed to the private registry. */
export const privateVersions = ['1.0.0', '2.0.0'] as const;

export interface ChartReposState {
  /** The one chart, `web`, under every version of `versions`. */
  readonly chart: string;
  readonly versions: readonly string[];
  /** The packaged archives (`web-<version>.tgz`), byte for byte what the repositories serve. */
  readonly archivesDir: string;
  readonly http: {
    /** A public Helm repository (index.yaml with relative URLs). */
    readonly url: string;
    /** The same charts behind basic auth (`username`/`password`). */
    readonly privateUrl: string;
    /** A repository whose web-1.0.0.tgz is not the archive its index names (digest mismatch). */
    readonly tamperedUrl: string;
    readonly username: string;
    readonly password: string;
  };
  readonly oci: {
    /** `oci://127.0.0.1:<port>/charts/web`: anonymous pulls, plain HTTP. */
    readonly chartUrl: string;
    readonly host: string;
    /** `oci://127.0.0.1:<port>/charts/web` on a registry behind htpasswd basic auth (`privateVersions` only). */
    readonly privateChartUrl: string;
    readonly privateHost: string;
    readonly username: string;
    readonly password: string;
    /** distribution/distribution version. */
    readonly version: string;
  };
}

export interface ChartRepos {
  readonly state: ChartReposState;
  readonly pids: readonly number[];
  stop(): Promise<void>;
}

export async function startChartRepos(opts: {
  dir: string;
  cacheDir: string;
  log: Log;
}): Promise<ChartRepos> {
  const [registryBin, tools] = await Promise.all([
    ensureRegistryBinary({ cacheDir: opts.cacheDir, log: opts.log }),
    ensureReferenceTools({ cacheDir: opts.cacheDir, log: (l) => opts.log(`[renderer] ${l}`) }),
  ]);
  const helmHome = join(opts.dir, 'helm-home');
  const helmEnv = {
    ...process.env,
    HELM_CACHE_HOME: join(helmHome, 'cache'),
    HELM_CONFIG_HOME: join(helmHome, 'config'),
    HELM_DATA_HOME: join(helmHome, 'data'),
    HELM_REGISTRY_CONFIG: join(helmHome, 'registry.json'),
  };
  const helm = (...args: string[]) => run(tools.helm, args, { env: helmEnv });
  const started = Date.now();

  const username = 'flotilla';
  const password = 'bed-chart-secret';
  mkdirSync(opts.dir, { recursive: true });
  const htpasswd = join(opts.dir, 'htpasswd');
  writeFileSync(htpasswd, `${username}:${hashSync(password, 10)}\n`);
  const running: { stop(): Promise<void> }[] = [];
  // The registries start while the charts are packaged.
  const registries = Promise.all([
    startRegistry({ name: 'registry', dir: join(opts.dir, 'registry'), binary: registryBin.path }),
    startRegistry({
      name: 'registry-private',
      dir: join(opts.dir, 'registry-private'),
      binary: registryBin.path,
      htpasswd,
    }),
  ]).then((started) => {
    for (const r of started) running.push(r.process);
    return started;
  });
  // Awaited below; this only keeps a failure during packaging from being reported as unhandled.
  registries.catch(() => {});
  try {
    const archivesDir = join(opts.dir, 'archives');
    mkdirSync(archivesDir, { recursive: true });
    // helm starts in some 100 ms; on two busy cores, running them side by side is what keeps this short.
    await Promise.all(
      bedChartVersions.map((v) => helm('package', chartFixture, '--version', v, '-d', archivesDir)),
    );
    await helm('repo', 'index', archivesDir);

    // The index has relative URLs, so one index serves all three repositories.
    const httpRoot = join(opts.dir, 'http');
    for (const repo of ['stable', 'private', 'tampered']) {
      const dir = join(httpRoot, repo);
      mkdirSync(dir, { recursive: true });
      for (const f of readdirSync(archivesDir)) copyFileSync(join(archivesDir, f), join(dir, f));
    }
    // The index names 1.0.0's digest; the file served under that name is 1.1.0.
    copyFileSync(join(archivesDir, 'web-1.1.0.tgz'), join(httpRoot, 'tampered', 'web-1.0.0.tgz'));
    const http = await serveDirectory(httpRoot, { prefix: '/private/', username, password });
    running.push(http);

    const [pub, priv] = await registries;
    const archive = (v: string) => join(archivesDir, `web-${v}.tgz`);
    await Promise.all([
      ...bedChartVersions.map((v) => helm('push', archive(v), `oci://${pub.host}/charts`, '--plain-http')),
      // The private registry needs fewer versions: its tests are about access, not choice.
      ...privateVersions.map((v) =>
        helm(
          'push',
          archive(v),
          `oci://${priv.host}/charts`,
          '--plain-http',
          '--username',
          username,
          '--password',
          password,
        ),
      ),
    ]);
    opts.log(
      `chart repositories ready in ${formatElapsed(Date.now() - started)} (helm package, repo index, push)`,
    );
    return {
      state: {
        chart: 'web',
        versions: bedChartVersions,
        archivesDir,
        http: {
          url: `${http.url}/stable`,
          privateUrl: `${http.url}/private`,
          tamperedUrl: `${http.url}/tampered`,
          username,
          password,
        },
        oci: {
          chartUrl: `oci://${pub.host}/charts/web`,
          host: pub.host,
          privateChartUrl: `oci://${priv.host}/charts/web`,
          privateHost: priv.host,
          username,
          password,
          version: registryBin.version,
        },
      },
      pids: [pub.process.pid, priv.process.pid],
      async stop() {
        await Promise.allSettled(running.map((r) => r.stop()));
      },
    };
  } catch (err) {
    await registries.catch(() => {});
    await Promise.allSettled(running.map((r) => r.stop()));
    throw err;
  }
}

/** Static files over HTTP, with basic auth on one path prefix, as a Helm repository is served. */
async function serveDirectory(
  root: string,
  auth: { prefix: string; username: string; password: string },
): Promise<{ url: string; stop(): Promise<void> }> {
  const expected = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
  const server: Server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405).end();
      return;
    }
    if (path.startsWith(auth.prefix) && req.headers.authorization !== expected) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="flotilla-bed"' }).end();
      return;
    }
    const file = join(root, path);
    if (!file.startsWith(`${root}/`) || !statSync(file, { throwIfNoEntry: false })?.isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, {
      'content-type': file.endsWith('.yaml') ? 'application/x-yaml' : 'application/gzip',
      'content-length': statSync(file).size,
    });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  if (!address || typeof address !== 'object') throw new Error('chart repository server has no address');
  return {
    url: `http://127.0.0.1:${address.port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function startRegistry(opts: {
  name: string;
  dir: string;
  binary: string;
  htpasswd?: string;
}): Promise<{ host: string; process: ManagedProcess }> {
  mkdirSync(join(opts.dir, 'data'), { recursive: true });
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const config = join(opts.dir, 'config.yml');
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: warn',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(opts.dir, 'data')}`,
      'http:',
      `  addr: ${host}`,
      // One instance, so any secret will do; set so the registry does not warn about it.
      `  secret: ${randomBytes(16).toString('hex')}`,
      ...(opts.htpasswd
        ? ['auth:', '  htpasswd:', '    realm: flotilla-bed', `    path: ${opts.htpasswd}`]
        : []),
      '',
    ].join('\n'),
  );
  const proc = startProcess({
    name: opts.name,
    command: opts.binary,
    args: ['serve', config],
    logPath: join(opts.dir, 'registry.log'),
    // The registry exports traces over OTLP unless told not to; the bed collects none.
    env: { ...process.env, OTEL_TRACES_EXPORTER: 'none', OTEL_SDK_DISABLED: 'true' },
  });
  await waitUntilReady(
    proc,
    async () => {
      const res = await fetch(`http://${host}/v2/`);
      await res.body?.cancel();
      return res.status === 200 || res.status === 401;
    },
    30_000,
  );
  return { host, process: proc };
}
