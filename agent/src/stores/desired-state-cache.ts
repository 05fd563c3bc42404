import type { CachedDesiredState, CachePort, VerifiedDesiredState } from '../reconcile/ports.ts';
import type { ClusterStore } from './cluster-store.ts';

const manifestKey = 'desired-state';
const bundleKey = (hash: string) => `bundle-${hash.replace(/^sha256:/, '').slice(0, 40)}`;

/**
 * The last verified desired state and its bundles, kept in Secrets of the agent's
 * namespace (bundles may hold Secrets of their own). Bundles are written before the
 * manifest that references them and removed after, so a cache cut short mid-write still
 * loads whole; the agent verifies signature and hashes again on load all the same.
 */
export class SecretDesiredStateCache implements CachePort {
  readonly #store: ClusterStore;
  #keys: Set<string> | undefined;
  #etag: string | undefined;

  constructor(store: ClusterStore) {
    this.#store = store;
  }

  async load(): Promise<CachedDesiredState | undefined> {
    const values = await this.#store.readAll();
    this.#keys = new Set(values.keys());
    const text = values.get(manifestKey);
    if (text === undefined) return undefined;
    const { signed, etag } = JSON.parse(text) as { signed: unknown; etag: string };
    this.#etag = etag;
    const bundles = new Map<string, string>();
    for (const [key, value] of values) {
      if (!key.startsWith('bundle-')) continue;
      // The full hash is inside; the key holds only a prefix of it.
      const { hash, canonical } = JSON.parse(value) as { hash: string; canonical: string };
      bundles.set(hash, canonical);
    }
    return { signed, etag, bundles };
  }

  async save(state: VerifiedDesiredState): Promise<void> {
    if (this.#etag === state.etag) return;
    if (!this.#keys) this.#keys = new Set((await this.#store.readAll()).keys());
    const keys = this.#keys;
    const wanted = new Set<string>([manifestKey]);
    for (const [hash, bundle] of state.bundles) {
      const key = bundleKey(hash);
      wanted.add(key);
      if (keys.has(key)) continue;
      await this.#store.write(key, JSON.stringify({ hash, canonical: bundle.canonical }));
      keys.add(key);
    }
    await this.#store.write(manifestKey, JSON.stringify({ signed: state.signed, etag: state.etag }));
    keys.add(manifestKey);
    this.#etag = state.etag;
    for (const key of [...keys]) {
      if (wanted.has(key)) continue;
      await this.#store.remove(key);
      keys.delete(key);
    }
  }
}
