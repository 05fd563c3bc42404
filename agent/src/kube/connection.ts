import { dirname, isAbsolute, join } from 'node:path';
import { readFileSync } from '../builtins.ts';
import type { TlsOptions } from '../http/request.ts';

/** Where the agent finds its API server: a kubeconfig file, or the pod's service account. */
export type KubeSource =
  | { readonly kind: 'kubeconfig'; readonly path: string; readonly context?: string | undefined }
  | {
      readonly kind: 'in-cluster';
      readonly host: string;
      readonly port: string;
      /** Where the kubelet mounts the projected service-account token and the cluster CA (`token`, `ca.crt`). */
      readonly serviceAccountDir: string;
    };

/** What it takes to talk to one API server. */
export interface KubeConnection {
  readonly server: string;
  readonly tls: TlsOptions;
  /** The bearer token, if any; read afresh from its file now and then, as projected service-account tokens rotate. */
  readonly token?: (() => string | undefined) | undefined;
  readonly basicAuth?: string | undefined;
  /** Where the connection came from, for messages. */
  readonly description: string;
}

export class KubeConfigError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'KubeConfigError';
  }
}

/**
 * How often a token file is read again. The kubelet rewrites a projected token once 80% of
 * its lifetime has passed (at least 10 minutes for TokenRequest tokens, so at least 2
 * minutes before the old one expires); reading it every minute, as client-go does, picks
 * the new one up while the old one still works.
 */
export const tokenRereadMs = 60_000;

type ReadFile = (path: string) => Buffer;
const defaultReadFile: ReadFile = (path) => readFileSync(path);

/**
 * A token read from a file, read again at most once a minute. A file that cannot be read
 * again (being swapped by the kubelet's atomic writer) keeps the token in hand.
 */
export function tokenFromFile(
  path: string,
  readFile: ReadFile = defaultReadFile,
  clock: () => number = Date.now,
): () => string | undefined {
  let token: string | undefined;
  let readAt = 0;
  return () => {
    const now = clock();
    if (token === undefined || now - readAt >= tokenRereadMs) {
      try {
        token = readFile(path).toString('utf8').trim();
        readAt = now;
      } catch (e) {
        if (token === undefined)
          throw new KubeConfigError(`cannot read the token file ${path}`, { cause: e });
      }
    }
    return token;
  };
}

/**
 * Loads the connection to the API server: from the pod's service account when running in
 * the cluster (KUBERNETES_SERVICE_HOST/PORT, the projected token and the CA in the
 * service-account directory), or from a kubeconfig file (client certificates, tokens and
 * CAs, inline or as files; the current or a named context). Exec and auth-provider plugins
 * are not supported: the agent runs unattended. The kubeconfig is parsed by the `yaml`
 * package, imported only on that path: an agent in a pod never loads a YAML parser.
 *
 * @throws {KubeConfigError} naming what is missing or unsupported.
 */
export async function loadKubeConnection(
  source: KubeSource,
  readFile: ReadFile = defaultReadFile,
): Promise<KubeConnection> {
  if (source.kind === 'in-cluster') {
    const host = source.host.includes(':') ? `[${source.host}]` : source.host;
    const dir = source.serviceAccountDir;
    let ca: Buffer;
    try {
      ca = readFile(join(dir, 'ca.crt'));
    } catch (e) {
      throw new KubeConfigError(`in-cluster: cannot read ${join(dir, 'ca.crt')}`, { cause: e });
    }
    const token = tokenFromFile(join(dir, 'token'), readFile);
    // Read now: a pod without its token fails at start, not at its first request.
    token();
    return {
      server: `https://${host}:${source.port}`,
      tls: { ca },
      token,
      description: `in-cluster service account (${dir})`,
    };
  }
  let text: string;
  try {
    text = readFile(source.path).toString('utf8');
  } catch (e) {
    throw new KubeConfigError(`cannot read the kubeconfig ${source.path}`, { cause: e });
  }
  const { parse } = await import('yaml');
  let doc: KubeConfigDoc;
  try {
    doc = (parse(text) ?? {}) as KubeConfigDoc;
  } catch (e) {
    throw new KubeConfigError(`${source.path} is not valid YAML`, { cause: e });
  }
  const contextName = source.context ?? doc['current-context'];
  if (!contextName) throw new KubeConfigError(`${source.path}: no current-context, and no context was named`);
  const context = doc.contexts?.find((c) => c.name === contextName)?.context;
  if (!context) throw new KubeConfigError(`${source.path}: no context "${contextName}"`);
  const cluster = doc.clusters?.find((c) => c.name === context.cluster)?.cluster;
  if (!cluster?.server)
    throw new KubeConfigError(`${source.path}: context "${contextName}" has no cluster with a server`);
  const user = doc.users?.find((u) => u.name === context.user)?.user ?? {};
  if (user.exec || user['auth-provider']) {
    throw new KubeConfigError(
      `${source.path}: user "${context.user}" authenticates with an exec or auth-provider plugin, which the agent does not run; use a client certificate or a token`,
    );
  }
  const base = dirname(source.path);
  const file = (p: string) => readFile(isAbsolute(p) ? p : join(base, p));
  const inline = (data: string | undefined, path: string | undefined): Buffer | undefined =>
    data ? Buffer.from(data, 'base64') : path ? file(path) : undefined;
  const tokenFile = user.tokenFile;
  return {
    server: cluster.server,
    tls: {
      ca: inline(cluster['certificate-authority-data'], cluster['certificate-authority']),
      cert: inline(user['client-certificate-data'], user['client-certificate']),
      key: inline(user['client-key-data'], user['client-key']),
      rejectUnauthorized: cluster['insecure-skip-tls-verify'] !== true,
      servername: cluster['tls-server-name'],
    },
    token: user.token
      ? () => user.token
      : tokenFile
        ? tokenFromFile(isAbsolute(tokenFile) ? tokenFile : join(base, tokenFile), readFile)
        : undefined,
    basicAuth:
      user.username && user.password
        ? Buffer.from(`${user.username}:${user.password}`).toString('base64')
        : undefined,
    description: `${source.path} (context ${contextName})`,
  };
}

interface KubeConfigDoc {
  readonly 'current-context'?: string;
  readonly contexts?: readonly { name: string; context?: { cluster?: string; user?: string } }[];
  readonly clusters?: readonly {
    name: string;
    cluster?: {
      server?: string;
      'certificate-authority'?: string;
      'certificate-authority-data'?: string;
      'insecure-skip-tls-verify'?: boolean;
      'tls-server-name'?: string;
    };
  }[];
  readonly users?: readonly {
    name: string;
    user?: {
      token?: string;
      tokenFile?: string;
      'client-certificate'?: string;
      'client-certificate-data'?: string;
      'client-key'?: string;
      'client-key-data'?: string;
      username?: string;
      password?: string;
      exec?: unknown;
      'auth-provider'?: unknown;
    };
  }[];
}
