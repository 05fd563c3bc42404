/**
 * The agent's service-account credentials as the kubelet projects them into its pod: a
 * token from the TokenRequest API (`POST .../serviceaccounts/<sa>/token`) with a bounded
 * lifetime, written with the cluster's CA into a directory (`token`, `ca.crt`), and
 * requested again once 80% of its lifetime has passed. `bootstrap --run-agent local` runs
 * the agent on these files, so a local agent holds exactly the rights the RBAC that
 * bootstrap installs gives the pod, never the operator's kubeconfig.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';

/** A token and when it stops working. */
export interface ServiceAccountToken {
  readonly token: string;
  readonly expiresAt: number;
}

/** Asks the API server for a new token. */
export type RequestToken = () => Promise<ServiceAccountToken>;

/** The lifetime a projected service-account token volume asks for by default: an hour. */
export const defaultTokenExpirationSeconds = 3600;

export class ServiceAccountTokenError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ServiceAccountTokenError';
  }
}

/**
 * TokenRequest for one service account, with the admin's kubeconfig (the kubelet uses its
 * node credentials for the same call).
 */
export function tokenRequester(
  kc: KubeConfig,
  target: { readonly namespace: string; readonly serviceAccount: string; readonly expirationSeconds: number },
): RequestToken {
  const core = kc.makeApiClient(CoreV1Api);
  return async () => {
    let answer: Awaited<ReturnType<CoreV1Api['createNamespacedServiceAccountToken']>>;
    try {
      answer = await core.createNamespacedServiceAccountToken({
        name: target.serviceAccount,
        namespace: target.namespace,
        body: {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenRequest',
          spec: { audiences: [], expirationSeconds: target.expirationSeconds },
        },
      });
    } catch (e) {
      throw new ServiceAccountTokenError(
        `requesting a token for ServiceAccount ${target.namespace}/${target.serviceAccount} failed`,
        { cause: e },
      );
    }
    const token = answer.status?.token;
    const expiresAt = answer.status?.expirationTimestamp;
    if (!token || !expiresAt) {
      throw new ServiceAccountTokenError(
        `the TokenRequest for ${target.namespace}/${target.serviceAccount} came back without a token`,
      );
    }
    return { token, expiresAt: new Date(expiresAt).getTime() };
  };
}

const dayMs = 24 * 3_600_000;

/**
 * When the kubelet requests a projected token again: once 80% of its lifetime has passed,
 * or after 24 hours, whichever comes first (kubelet's token manager, `requiresRefresh`).
 */
export function refreshTime(issuedAt: number, expiresAt: number): number {
  return issuedAt + Math.min(0.8 * (expiresAt - issuedAt), dayMs);
}

/** Writes a file so that a reader sees the old content or the new, never a part. */
function writeAtomically(path: string, data: string | Buffer): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data, { mode: 0o600 });
  renameSync(tmp, path);
}

export interface TokenProjectorOptions {
  /** The service-account directory: `token` and `ca.crt` go there. */
  readonly dir: string;
  /** The cluster CA (PEM) the agent verifies the API server with. */
  readonly ca: Buffer;
  readonly request: RequestToken;
  readonly clock?: () => number;
  /** Runs `fn` after `ms`; returns a cancel function. setTimeout by default. */
  readonly schedule?: (fn: () => void, ms: number) => () => void;
  /** How soon a failed refresh is tried again. */
  readonly retryMs?: number;
  readonly onRefresh?: (token: ServiceAccountToken) => void;
  readonly onError?: (e: unknown) => void;
}

/**
 * Keeps a fresh token in `dir/token` (and the CA in `dir/ca.crt`), as the kubelet does for
 * a projected service-account volume. A refresh that fails is tried again every
 * `retryMs`; the token on disk stays until a new one comes.
 */
export class ServiceAccountTokenProjector {
  readonly #opts: TokenProjectorOptions;
  readonly #clock: () => number;
  readonly #schedule: (fn: () => void, ms: number) => () => void;
  #cancel: (() => void) | undefined;
  #stopped = false;

  constructor(opts: TokenProjectorOptions) {
    this.#opts = opts;
    this.#clock = opts.clock ?? Date.now;
    this.#schedule =
      opts.schedule ??
      ((fn, ms) => {
        const t = setTimeout(fn, ms);
        return () => clearTimeout(t);
      });
  }

  /** The first token and the CA, on disk before this resolves; then refreshes on schedule. */
  async start(): Promise<ServiceAccountToken> {
    mkdirSync(this.#opts.dir, { recursive: true, mode: 0o700 });
    writeAtomically(join(this.#opts.dir, 'ca.crt'), this.#opts.ca);
    return this.#refresh();
  }

  async #refresh(): Promise<ServiceAccountToken> {
    const issuedAt = this.#clock();
    const token = await this.#opts.request();
    if (this.#stopped) return token;
    writeAtomically(join(this.#opts.dir, 'token'), token.token);
    this.#opts.onRefresh?.(token);
    this.#next(Math.max(0, refreshTime(issuedAt, token.expiresAt) - this.#clock()));
    return token;
  }

  #next(ms: number): void {
    if (this.#stopped) return;
    this.#cancel = this.#schedule(() => {
      this.#refresh().catch((e: unknown) => {
        this.#opts.onError?.(e);
        this.#next(this.#opts.retryMs ?? 10_000);
      });
    }, ms);
  }

  stop(): void {
    this.#stopped = true;
    this.#cancel?.();
  }
}
