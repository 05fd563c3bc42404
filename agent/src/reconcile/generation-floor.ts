import type { DesiredState } from '@flotilla/shared/agent';
import { RefusedDesiredStateError } from './verifier.ts';

/** The newest desired state an agent has verified: its generation and ETag. */
export interface GenerationMark {
  readonly generation: number;
  readonly etag: string;
}

/** Where the agent keeps its {@link GenerationMark} across restarts (in its own namespace). */
export interface GenerationPort {
  load(): Promise<GenerationMark | undefined>;
  save(mark: GenerationMark): Promise<void>;
}

/** A validly signed desired state older than one the agent has already verified: a replay, or a stale cache. */
export class ReplayedDesiredStateError extends RefusedDesiredStateError {
  readonly generation: number;
  readonly highest: number;
  constructor(generation: number, highest: GenerationMark, sameGeneration: boolean) {
    super(
      sameGeneration
        ? `generation ${generation} was already verified with other content (${highest.etag}): a desired state is never re-issued under the same generation`
        : `generation ${generation} is older than generation ${highest.generation}, the newest this agent has verified (a replayed or stale desired state; the hub orders rollbacks as new generations)`,
    );
    this.name = 'ReplayedDesiredStateError';
    this.generation = generation;
    this.highest = highest.generation;
  }
}

/**
 * The rule that stops a rollback attack: generations only go up. A signed desired state
 * stays valid forever, so anything between the agent and the hub (a replaying proxy, a
 * stale cache) could serve an old one, and applying it would prune what was added since.
 * The agent keeps the highest generation it has verified, in memory and in the cluster,
 * and refuses anything lower, or the same generation with other content.
 */
export class GenerationFloor {
  #mark: GenerationMark | undefined;
  readonly #port: GenerationPort | undefined;

  constructor(port?: GenerationPort) {
    this.#port = port;
  }

  get highest(): GenerationMark | undefined {
    return this.#mark;
  }

  /** Reads the mark kept in the cluster (once, at start); keeps the higher of it and the one in memory. */
  async load(): Promise<GenerationMark | undefined> {
    const stored = await this.#port?.load();
    if (stored && (!this.#mark || stored.generation > this.#mark.generation)) this.#mark = stored;
    return this.#mark;
  }

  /** @throws {ReplayedDesiredStateError} when `manifest` is older than the mark, or the same generation with other content. */
  check(manifest: DesiredState, etag: string): void {
    const mark = this.#mark;
    if (!mark) return;
    if (manifest.generation < mark.generation)
      throw new ReplayedDesiredStateError(manifest.generation, mark, false);
    if (manifest.generation === mark.generation && etag !== mark.etag)
      throw new ReplayedDesiredStateError(manifest.generation, mark, true);
  }

  /** Records a verified desired state as the newest (in memory at once, then in the cluster); returns whether it moved the mark. */
  async raise(manifest: DesiredState, etag: string): Promise<boolean> {
    if (this.#mark && manifest.generation <= this.#mark.generation) return false;
    this.#mark = { generation: manifest.generation, etag };
    await this.#port?.save(this.#mark);
    return true;
  }
}
