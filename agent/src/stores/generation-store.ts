import type { GenerationMark, GenerationPort } from '../reconcile/generation-floor.ts';
import type { ClusterStore } from './cluster-store.ts';

const key = 'highest';

/**
 * The highest desired-state generation the agent has verified, in a ConfigMap of its
 * namespace (`flotilla-generation-highest`), apart from the cached desired state: a cache
 * that could not be written, or one put back from an old copy, is then still refused.
 */
export class ConfigMapGenerationStore implements GenerationPort {
  readonly #store: ClusterStore;

  constructor(store: ClusterStore) {
    this.#store = store;
  }

  async load(): Promise<GenerationMark | undefined> {
    const text = (await this.#store.readAll()).get(key);
    if (text === undefined) return undefined;
    const value = JSON.parse(text) as Partial<GenerationMark>;
    if (!Number.isSafeInteger(value.generation) || typeof value.etag !== 'string')
      throw new Error(`flotilla-generation-${key}: not a generation record`);
    return { generation: value.generation as number, etag: value.etag };
  }

  async save(mark: GenerationMark): Promise<void> {
    await this.#store.write(key, JSON.stringify(mark));
  }
}
