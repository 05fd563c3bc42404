import type { ChartCache } from './ports.ts';

export interface MemoryChartCacheOptions {
  /** Bytes of archives kept; the least recently used go first. Default 64 MiB. */
  readonly maxBytes?: number;
}

/**
 * Chart archives in memory, bounded by total size, least recently used evicted
 * first: enough for one warm Lambda or one CLI run. An archive larger than the
 * bound is not kept.
 */
export class MemoryChartCache implements ChartCache {
  readonly #maxBytes: number;
  readonly #entries = new Map<string, Uint8Array>();
  #bytes = 0;

  constructor(opts: MemoryChartCacheOptions = {}) {
    this.#maxBytes = opts.maxBytes ?? 64 * 1024 * 1024;
  }

  /** Bytes held now. */
  get size(): number {
    return this.#bytes;
  }

  async get(digest: string): Promise<Uint8Array | undefined> {
    const hit = this.#entries.get(digest);
    if (hit) {
      // Map order is insertion order: re-inserting makes this the most recent.
      this.#entries.delete(digest);
      this.#entries.set(digest, hit);
    }
    return hit;
  }

  async put(digest: string, archive: Uint8Array): Promise<void> {
    if (archive.byteLength > this.#maxBytes) return;
    const old = this.#entries.get(digest);
    if (old) {
      this.#entries.delete(digest);
      this.#bytes -= old.byteLength;
    }
    this.#entries.set(digest, archive);
    this.#bytes += archive.byteLength;
    for (const [key, value] of this.#entries) {
      if (this.#bytes <= this.#maxBytes) break;
      this.#entries.delete(key);
      this.#bytes -= value.byteLength;
    }
  }
}
