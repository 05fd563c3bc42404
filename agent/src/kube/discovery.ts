import { apiGroup } from '@flotilla/shared/agent';
import type { KubeClient } from './client.ts';

/** How a kind is served: its resource (plural) name and whether it is namespaced. */
export interface ResourceInfo {
  readonly resource: string;
  readonly namespaced: boolean;
}

interface ApiResourceList {
  readonly resources?: readonly {
    readonly name: string;
    readonly kind: string;
    readonly namespaced: boolean;
  }[];
}

interface Entry {
  /** Kinds served by this group-version; undefined when the group-version is not served. */
  readonly kinds: ReadonlyMap<string, ResourceInfo> | undefined;
  readonly fetchedAt: number;
}

/** Not-yet-served kinds are looked up again after this long (a CRD may just have been established). */
const missRetryMs = 1_000;

/**
 * Maps `apiVersion` + `kind` to the resource to call, from API discovery. It asks only for
 * the group-versions objects use (`/api/v1`, `/apis/apps/v1`, ...), one request each,
 * cached; a kind it cannot find is looked up again (at most once a second) in case its
 * CRD has just been established.
 */
export class RestMapper {
  readonly #client: KubeClient;
  readonly #cache = new Map<string, Entry>();
  readonly #inflight = new Map<string, Promise<Entry>>();

  constructor(client: KubeClient) {
    this.#client = client;
  }

  /** The resource for a kind, or undefined when the API server does not serve it. */
  async find(apiVersion: string, kind: string): Promise<ResourceInfo | undefined> {
    let entry = await this.#entry(apiVersion);
    let info = entry.kinds?.get(kind);
    if (!info && Date.now() - entry.fetchedAt > missRetryMs) {
      this.#cache.delete(apiVersion);
      entry = await this.#entry(apiVersion);
      info = entry.kinds?.get(kind);
    }
    return info;
  }

  /** Forgets what is known of a group (after its CRDs changed), or of everything. */
  invalidate(group?: string): void {
    for (const key of [...this.#cache.keys()]) {
      if (group === undefined || apiGroup(key) === group) this.#cache.delete(key);
    }
  }

  #entry(apiVersion: string): Promise<Entry> {
    const cached = this.#cache.get(apiVersion);
    if (cached) return Promise.resolve(cached);
    let pending = this.#inflight.get(apiVersion);
    if (!pending) {
      pending = this.#fetch(apiVersion).finally(() => this.#inflight.delete(apiVersion));
      this.#inflight.set(apiVersion, pending);
    }
    return pending;
  }

  async #fetch(apiVersion: string): Promise<Entry> {
    const path = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    const list = await this.#client.get<ApiResourceList>(path);
    const kinds = list
      ? new Map(
          (list.resources ?? [])
            .filter((r) => !r.name.includes('/'))
            .map((r) => [r.kind, { resource: r.name, namespaced: r.namespaced }] as const),
        )
      : undefined;
    const entry = { kinds, fetchedAt: Date.now() };
    this.#cache.set(apiVersion, entry);
    return entry;
  }
}

/** The URL path of a resource collection or object. */
export function resourcePath(
  apiVersion: string,
  info: ResourceInfo,
  namespace: string | undefined,
  name?: string,
): string {
  const root = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const ns = info.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  return `${root}${ns}/${info.resource}${name === undefined ? '' : `/${encodeURIComponent(name)}`}`;
}
