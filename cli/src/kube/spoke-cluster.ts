/**
 * The spoke cluster as bootstrap and the cluster commands see it: server-side apply with
 * a fixed field manager, read the agent's Secret, delete what bootstrap installed.
 * @kubernetes/client-node underneath; every failure becomes a CliError (exit 9) that
 * names the context and the object.
 */
import {
  ApiException,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  VersionApi,
} from '@kubernetes/client-node';
import { type KubeObject, objectRef } from '../bootstrap/manifests.ts';
import { CliError } from '../core/errors.ts';
import { ExitCode } from '../core/exit-codes.ts';

export type ApplyResult = 'created' | 'configured' | 'unchanged';

/** What the CLI does in a spoke cluster; a fake in unit tests. */
export interface SpokeCluster {
  /** `context (server)`, for messages. */
  readonly description: string;
  /** The kubeconfig file and context a local agent should use to reach the same cluster. */
  readonly kubeconfigPath: string;
  readonly context: string;
  /** The API server's version; fails when the cluster cannot be reached. */
  serverVersion(): Promise<string>;
  apply(object: KubeObject): Promise<ApplyResult>;
  /** A Secret's data, decoded; undefined when there is no such Secret (or namespace). */
  readSecret(namespace: string, name: string): Promise<Record<string, string> | undefined>;
  /** Sets one annotation on a Deployment's pod template, which rolls its pods; false when there is no such Deployment. */
  annotatePodTemplate(namespace: string, name: string, key: string, value: string): Promise<boolean>;
  delete(object: Pick<KubeObject, 'apiVersion' | 'kind' | 'metadata'>): Promise<'deleted' | 'absent'>;
}

export interface SpokeClusterOptions {
  readonly kubeconfigPaths: readonly string[];
  readonly context: string | undefined;
  readonly fieldManager: string;
}

/**
 * Opens the cluster a kubeconfig context points at. Contexts are checked up front so a
 * typo is a clear error (exit 3) and not a connection failure.
 */
export function openSpokeCluster(opts: SpokeClusterOptions): SpokeCluster {
  const kc = new KubeConfig();
  const [first, ...rest] = opts.kubeconfigPaths;
  if (!first) throw new CliError(ExitCode.Config, 'no kubeconfig: pass --kubeconfig or set KUBECONFIG');
  try {
    kc.loadFromFile(first);
    for (const path of rest) {
      const more = new KubeConfig();
      more.loadFromFile(path);
      kc.mergeConfig(more, true);
    }
  } catch (err) {
    throw new CliError(
      ExitCode.Config,
      `cannot read the kubeconfig ${opts.kubeconfigPaths.join(':')}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  const names = kc.getContexts().map((c) => c.name);
  if (opts.context !== undefined) {
    if (!kc.getContextObject(opts.context)) {
      throw new CliError(
        ExitCode.NotFound,
        `no context "${opts.context}" in ${first} (contexts: ${names.join(', ') || 'none'})`,
      );
    }
    kc.setCurrentContext(opts.context);
  } else if (!kc.getCurrentContext() || !kc.getContextObject(kc.getCurrentContext())) {
    throw new CliError(
      ExitCode.Config,
      `the kubeconfig ${first} has no current context: pass --context (contexts: ${names.join(', ') || 'none'})`,
    );
  }
  return new KubeSpokeCluster(kc, first, opts.fieldManager);
}

class KubeSpokeCluster implements SpokeCluster {
  readonly description: string;
  readonly kubeconfigPath: string;
  readonly context: string;
  readonly #kc: KubeConfig;
  readonly #objects: KubernetesObjectApi;
  readonly #fieldManager: string;

  constructor(kc: KubeConfig, kubeconfigPath: string, fieldManager: string) {
    this.#kc = kc;
    this.#objects = KubernetesObjectApi.makeApiClient(kc);
    this.#fieldManager = fieldManager;
    this.kubeconfigPath = kubeconfigPath;
    this.context = kc.getCurrentContext();
    this.description = `context "${this.context}" (${kc.getCurrentCluster()?.server ?? 'unknown server'})`;
  }

  #fail(action: string, err: unknown): never {
    if (err instanceof CliError) throw err;
    const status = err instanceof ApiException ? err.code : undefined;
    const body = err instanceof ApiException ? parseBody(err.body) : undefined;
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    const reason = body?.message ?? (cause ? `${cause}` : (err as Error).message.split('\n')[0]);
    throw new CliError(
      ExitCode.Kubernetes,
      `${action} in ${this.description} failed${status ? ` (${status})` : ''}: ${reason}`,
      {
        cause: err,
        ...(status === 401 || status === 403
          ? { hint: 'the kubeconfig user needs cluster-admin rights to install the agent' }
          : {}),
      },
    );
  }

  async serverVersion(): Promise<string> {
    try {
      const info = await this.#kc.makeApiClient(VersionApi).getCode();
      return info.gitVersion;
    } catch (err) {
      this.#fail('reaching the API server', err);
    }
  }

  async #read(
    o: Pick<KubeObject, 'apiVersion' | 'kind' | 'metadata'>,
  ): Promise<Record<string, unknown> | undefined> {
    try {
      return (await this.#objects.read({
        apiVersion: o.apiVersion,
        kind: o.kind,
        metadata: {
          name: o.metadata.name,
          ...(o.metadata.namespace ? { namespace: o.metadata.namespace } : {}),
        },
      })) as unknown as Record<string, unknown>;
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return undefined;
      this.#fail(`reading ${objectRef(o)}`, err);
    }
  }

  async apply(object: KubeObject): Promise<ApplyResult> {
    const before = await this.#read(object);
    let after: Record<string, unknown>;
    try {
      after = (await this.#objects.patch(
        object as never,
        undefined,
        undefined,
        this.#fieldManager,
        true,
        PatchStrategy.ServerSideApply,
      )) as unknown as Record<string, unknown>;
    } catch (err) {
      this.#fail(`applying ${objectRef(object)}`, err);
    }
    if (!before) return 'created';
    return changed(before, after) ? 'configured' : 'unchanged';
  }

  async readSecret(namespace: string, name: string): Promise<Record<string, string> | undefined> {
    const secret = await this.#read({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace } });
    if (!secret) return undefined;
    const data = (secret.data ?? {}) as Record<string, string>;
    return Object.fromEntries(
      Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
    );
  }

  async annotatePodTemplate(namespace: string, name: string, key: string, value: string): Promise<boolean> {
    const ref = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace } };
    if (!(await this.#read(ref))) return false;
    try {
      await this.#objects.patch(
        { ...ref, spec: { template: { metadata: { annotations: { [key]: value } } } } } as never,
        undefined,
        undefined,
        this.#fieldManager,
        undefined,
        PatchStrategy.MergePatch,
      );
      return true;
    } catch (err) {
      this.#fail(`annotating Deployment/${namespace}/${name}`, err);
    }
  }

  async delete(object: Pick<KubeObject, 'apiVersion' | 'kind' | 'metadata'>): Promise<'deleted' | 'absent'> {
    try {
      await this.#objects.delete(object as never, undefined, undefined, undefined, undefined, 'Background');
      return 'deleted';
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return 'absent';
      this.#fail(`deleting ${objectRef(object as KubeObject)}`, err);
    }
  }
}

function parseBody(body: unknown): { message?: string } | undefined {
  if (typeof body === 'string') {
    try {
      return JSON.parse(body) as { message?: string };
    } catch {
      return { message: body.slice(0, 300) };
    }
  }
  return body as { message?: string } | undefined;
}

/**
 * Whether an apply changed the object. A spec change bumps `generation`; for objects
 * without one, `resourceVersion` (a no-op apply writes nothing, so it stays). Status
 * updates by controllers bump `resourceVersion` of objects with a generation, so those
 * are compared by generation and metadata only.
 */
function changed(before: Record<string, unknown>, after: Record<string, unknown>): boolean {
  const m0 = (before.metadata ?? {}) as Record<string, unknown>;
  const m1 = (after.metadata ?? {}) as Record<string, unknown>;
  if (m0.generation !== undefined && m1.generation !== undefined) {
    return (
      m0.generation !== m1.generation ||
      JSON.stringify(m0.labels ?? {}) !== JSON.stringify(m1.labels ?? {}) ||
      JSON.stringify(m0.annotations ?? {}) !== JSON.stringify(m1.annotations ?? {})
    );
  }
  return m0.resourceVersion !== m1.resourceVersion;
}
