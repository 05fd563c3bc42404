/**
 * Server-side apply of sets of objects under one field manager, after Flux's `ssa`
 * package: a {@link ResourceManager} is built with its client and an owner, and every
 * operation returns plain data (change sets, drift reports, readiness) instead of
 * logging or mutating its input. Each verb lives in its own file (`prepare.ts`,
 * `apply.ts`, `diff.ts`, `delete.ts`, `read.ts`, `health.ts`); this class holds what they
 * share and is the one thing callers build.
 */
import type { KubeJson, ObjectRef } from '@flotilla/shared/agent';
import { type Clock, systemClock } from '../clock.ts';
import type { KubeClient } from '../kube/client.ts';
import { RestMapper } from '../kube/discovery.ts';
import { applyPrepared } from './apply.ts';
import { type ManagerContext, ownerLabel } from './context.ts';
import { deleteAll } from './delete.ts';
import { diffAll } from './diff.ts';
import { type HealthOptions, health } from './health.ts';
import { Limiter } from './limiter.ts';
import { prepare } from './prepare.ts';
import { getAll } from './read.ts';
import {
  type ApplyOptions,
  type ChangeSet,
  type DriftReport,
  defaultOwner,
  type HealthReport,
  type Owner,
  type PreparedObject,
  type PrepareOptions,
} from './types.ts';

export * from './types.ts';

/**
 * Applies, diffs, prunes and waits for Kubernetes objects with server-side apply under one
 * field manager (`force`, so the agent's desired values win conflicts). Every request goes
 * through one limiter, so concurrency stays bounded however many bundles run at once.
 *
 * @example
 * const manager = new ResourceManager({ client, owner: defaultOwner, concurrency: 16 });
 * const changes = await manager.applyAll(objects, { namespace: 'web', labels: { 'flotilla.dev/bundle': 'web' } });
 * const again = await manager.applyAll(objects, { namespace: 'web', labels: { 'flotilla.dev/bundle': 'web' },
 *   previous: digestsOf(changes) }); // every entry `unchanged`, no request sent
 */
export class ResourceManager {
  readonly client: KubeClient;
  readonly owner: Owner;
  readonly mapper: RestMapper;
  readonly #ctx: ManagerContext;

  constructor(opts: {
    client: KubeClient;
    owner?: Owner;
    concurrency?: number;
    mapper?: RestMapper;
    clock?: Clock;
  }) {
    this.client = opts.client;
    this.owner = opts.owner ?? defaultOwner;
    this.mapper = opts.mapper ?? new RestMapper(opts.client);
    this.#ctx = {
      client: this.client,
      owner: this.owner,
      mapper: this.mapper,
      limit: new Limiter(opts.concurrency ?? 16),
      clock: opts.clock ?? systemClock,
    };
  }

  /** The owner's label key for `name`, e.g. `flotilla.dev/bundle`. */
  label(name: string): string {
    return ownerLabel(this, name);
  }

  /** See {@link prepare}. */
  prepare(objects: readonly KubeJson[], opts: PrepareOptions = {}): Promise<PreparedObject[]> {
    return prepare(this.#ctx, objects, opts);
  }

  /** {@link prepare}, then {@link applyPrepared}. */
  async applyAll(objects: readonly KubeJson[], opts: PrepareOptions & ApplyOptions = {}): Promise<ChangeSet> {
    return this.applyPrepared(await this.prepare(objects, opts), opts);
  }

  /** See {@link applyPrepared}. */
  applyPrepared(prepared: readonly PreparedObject[], opts: ApplyOptions = {}): Promise<ChangeSet> {
    return applyPrepared(this.#ctx, prepared, opts);
  }

  /** See {@link getAll}. */
  getAll(refs: readonly ObjectRef[], opts: { labelSelector?: string } = {}) {
    return getAll(this.#ctx, refs, opts);
  }

  /** See {@link diffAll}. */
  diffAll(
    prepared: readonly PreparedObject[],
    opts: { labelSelector?: string } = {},
  ): Promise<DriftReport[]> {
    return diffAll(this.#ctx, prepared, opts);
  }

  /** See {@link deleteAll}. */
  deleteAll(
    refs: readonly ObjectRef[],
    opts: { ownedBy?: Readonly<Record<string, string>> } = {},
  ): Promise<ChangeSet> {
    return deleteAll(this.#ctx, refs, opts);
  }

  /** See {@link health}. */
  health(refs: readonly ObjectRef[], opts: HealthOptions = {}): Promise<HealthReport[]> {
    return health(this.#ctx, refs, opts);
  }
}
