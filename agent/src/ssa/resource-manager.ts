/**
 * Server-side apply of sets of objects under one field manager, after Flux's `ssa`
 * package: a {@link ResourceManager} is built with its client and an owner, and every
 * operation returns plain data (change sets, drift reports, readiness) instead of
 * logging or mutating its input. Each verb lives in its own file (`prepare.ts`,
 * `apply.ts`, `diff.ts`, `delete.ts`, `read.ts`, `health.ts`); this class holds what they
 * share and is the one thing callers build.
 */
import { apiGroup, type KubeJson, type ObjectRef } from '@flotilla/shared/agent';
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
    /** For {@link forTenant}: a context shared with another manager. */
    context?: ManagerContext;
  }) {
    this.client = opts.client;
    this.owner = opts.context?.owner ?? opts.owner ?? defaultOwner;
    this.mapper = opts.context?.mapper ?? opts.mapper ?? new RestMapper(opts.client);
    this.#ctx = opts.context ?? {
      client: this.client,
      writer: this.client,
      owner: this.owner,
      mapper: this.mapper,
      limit: new Limiter(opts.concurrency ?? 16),
      clock: opts.clock ?? systemClock,
    };
  }

  /** The tenant this manager writes for (see {@link forTenant}), if any. */
  get tenant(): string | undefined {
    return this.#ctx.tenant;
  }

  /**
   * A manager that writes (applies, ownership patches, deletes) through `writer`, a client
   * impersonating `tenant`'s service account, and reads as this one does. It shares this
   * manager's REST mapper and request limiter. A write the API server refuses (403) is
   * reported as the tenant's: `tenant "team-a" may not write apps/Deployment kube-system/x:
   * forbidden by RBAC (...)`.
   */
  forTenant(tenant: string, writer: KubeClient): ResourceManager {
    return new ResourceManager({ client: this.client, context: { ...this.#ctx, writer, tenant } });
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
  async applyPrepared(prepared: readonly PreparedObject[], opts: ApplyOptions = {}): Promise<ChangeSet> {
    return this.#tenantRefusals(await applyPrepared(this.#ctx, prepared, opts));
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
  async deleteAll(
    refs: readonly ObjectRef[],
    opts: { ownedBy?: Readonly<Record<string, string>> } = {},
  ): Promise<ChangeSet> {
    return this.#tenantRefusals(await deleteAll(this.#ctx, refs, opts));
  }

  /** A tenant manager's 403s, worded as the tenant's refusal. */
  #tenantRefusals(changes: ChangeSet): ChangeSet {
    const { tenant } = this.#ctx;
    if (tenant === undefined || !changes.failures.some((f) => f.status === 403)) return changes;
    return {
      entries: changes.entries,
      failures: changes.failures.map((f) =>
        f.status === 403 ? { ...f, tenant, message: tenantRefusal(tenant, f.ref, f.message) } : f,
      ),
    };
  }

  /** See {@link health}. */
  health(refs: readonly ObjectRef[], opts: HealthOptions = {}): Promise<HealthReport[]> {
    return health(this.#ctx, refs, opts);
  }
}

/** `tenant "team-a" may not write apps/Deployment kube-system/x: forbidden by RBAC (the API server's message)`. */
export function tenantRefusal(tenant: string, ref: ObjectRef, serverMessage: string): string {
  const group = apiGroup(ref.apiVersion);
  const what = `${group ? `${group}/` : ''}${ref.kind} ${ref.namespace ? `${ref.namespace}/` : ''}${ref.name}`;
  return `tenant "${tenant}" may not write ${what}: forbidden by RBAC (${serverMessage})`;
}
