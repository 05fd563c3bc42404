/**
 * Renders cached by the hash of their inputs, across syncs: a warm hub re-renders only
 * the charts and kustomizations whose files, values or Kubernetes version changed.
 */
import { sha256Hash } from '../canonical.ts';
import type { EngineRequest, EngineResult, RenderEngine } from './engine.ts';

/**
 * A {@link RenderEngine} that answers a request it has seen from memory. Only successful
 * renders are kept (a failure may be a chart repository that is down), at most
 * `limitChars` of output; past that the least recently used go first.
 */
export class CachingEngine implements RenderEngine {
  readonly #engine: RenderEngine;
  readonly #limitChars: number;
  readonly #cache = new Map<string, Promise<EngineResult>>();
  readonly #sizes = new Map<string, number>();
  #used = 0;
  hits = 0;
  misses = 0;

  constructor(engine: RenderEngine, limitChars = 128 * 1024 * 1024) {
    this.#engine = engine;
    this.#limitChars = limitChars;
  }

  render(request: EngineRequest): Promise<EngineResult> {
    const key = sha256Hash(JSON.stringify(request));
    const hit = this.#cache.get(key);
    if (hit) {
      this.hits++;
      this.#cache.delete(key);
      this.#cache.set(key, hit);
      return hit;
    }
    this.misses++;
    const pending = this.#engine.render(request);
    this.#cache.set(key, pending);
    pending.then(
      (result) => {
        if (!result.ok) this.#forget(key);
        else this.#charge(key, result.manifests.length);
      },
      () => this.#forget(key),
    );
    return pending;
  }

  #forget(key: string): void {
    this.#cache.delete(key);
    this.#used -= this.#sizes.get(key) ?? 0;
    this.#sizes.delete(key);
  }

  #charge(key: string, chars: number): void {
    if (!this.#cache.has(key)) return;
    this.#sizes.set(key, chars);
    this.#used += chars;
    for (const oldest of this.#cache.keys()) {
      if (this.#used <= this.#limitChars) break;
      if (oldest !== key) this.#forget(oldest);
    }
  }
}
