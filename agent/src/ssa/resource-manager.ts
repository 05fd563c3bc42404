/**
 * Server-side apply of sets of objects under one field manager, after Flux's `ssa`
 * package: a {@link ResourceManager} is built with its client and an owner, and every
 * operation returns plain data (change sets, drift reports, readiness) instead of
 * logging or mutating its input.
 */
import {
  apiGroup,
  appliedFields,
  assessHealth,
  CLUSTER_SCOPED_KINDS,
  canonicalJson,
  coveredBy,
  groupKind,
  hasReadiness,
  isClusterFoundation,
  type KubeJson,
  type ObjectRef,
  objectId,
  ownedFieldDifferences,
  pruneOrder,
  rankGroups,
  sha256Hash,
} from '@flotilla/shared/agent';
import { KubeApiError, type KubeClient } from '../kube/client.ts';
import { type ResourceInfo, RestMapper, resourcePath } from '../kube/discovery.ts';
import { Limiter } from './limiter.ts';

/** What an operation did to one object. */
export const ChangeAction = {
  Created: 'created',
  Configured: 'configured',
  Unchanged: 'unchanged',
  Deleted: 'deleted',
  Skipped: 'skipped',
} as const;
export type ChangeAction = (typeof ChangeAction)[keyof typeof ChangeAction];

/** Who applies: the field manager, and the domain of the labels it puts on what it applies. */
export interface Owner {
  /** Field manager name for server-side apply. */
  readonly field: string;
  /** Label prefix, e.g. `flotilla.dev` for `flotilla.dev/bundle`. */
  readonly group: string;
}

export const defaultOwner: Owner = { field: 'flotilla-agent', group: 'flotilla.dev' };

/** An object ready to apply: namespace settled from discovery, owner labels added, content digested. */
export interface PreparedObject {
  readonly id: string;
  readonly ref: ObjectRef;
  readonly object: KubeJson;
  /** Digest of `object` (hex); equal digests mean equal content to apply. */
  readonly digest: string;
}

export interface ChangeSetEntry {
  readonly id: string;
  readonly ref: ObjectRef;
  readonly action: ChangeAction;
  /** For applied objects: the digest of the content applied. */
  readonly digest?: string;
  /** For skipped objects: why. */
  readonly reason?: string;
  /** The object as the API server returned it after the apply (for readiness without another read). */
  readonly live?: KubeJson;
}

/** One object an operation could not carry out, with the API server's own message. */
export interface ObjectFailure {
  readonly id: string;
  readonly ref: ObjectRef;
  readonly message: string;
  /** HTTP status of the API server's answer; absent when the server could not be reached. */
  readonly status?: number;
  readonly reason?: string;
}

export interface ChangeSet {
  readonly entries: readonly ChangeSetEntry[];
  readonly failures: readonly ObjectFailure[];
}

export interface DriftReport {
  readonly id: string;
  readonly ref: ObjectRef;
  readonly drifted: boolean;
  /** The object is gone from the cluster. */
  readonly missing: boolean;
  /** Dotted paths of the owned fields that differ. */
  readonly fields: readonly string[];
}

export interface HealthReport {
  readonly id: string;
  readonly ref: ObjectRef;
  readonly ready: boolean;
  readonly message: string;
  readonly failed?: boolean;
}

export interface PrepareOptions {
  /** Namespace of namespaced objects that name none. Default `default`. */
  readonly namespace?: string;
  /** Labels added to every object. */
  readonly labels?: Readonly<Record<string, string>>;
  /** CRDs that define kinds not served yet (applied in the same run), to learn their scope. */
  readonly definitions?: readonly KubeJson[];
}

export interface ApplyOptions {
  /**
   * Digests of what was applied before, by id. An object whose digest is unchanged is
   * reported `unchanged` without a request (drift is {@link ResourceManager.diffAll}'s job).
   */
  readonly previous?: ReadonlyMap<string, string>;
  /** How long to wait for CRDs applied here to be Established before their custom resources. Default 60 s. */
  readonly crdTimeoutMs?: number;
}

/** Thrown by {@link ResourceManager.prepare} for an object without apiVersion, kind or name. */
export class InvalidObjectError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidObjectError';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function failureOf(p: { id: string; ref: ObjectRef }, err: unknown): ObjectFailure {
  if (err instanceof KubeApiError) {
    return {
      id: p.id,
      ref: p.ref,
      message: err.message,
      status: err.status,
      ...(err.reason ? { reason: err.reason } : {}),
    };
  }
  return { id: p.id, ref: p.ref, message: messageOf(err) };
}

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
  readonly #limit: Limiter;
  /** The managedFields stamp of each object after this manager last applied it, to tell `unchanged` from `configured`. */
  readonly #seen = new Map<string, string>();

  constructor(opts: { client: KubeClient; owner?: Owner; concurrency?: number; mapper?: RestMapper }) {
    this.client = opts.client;
    this.owner = opts.owner ?? defaultOwner;
    this.mapper = opts.mapper ?? new RestMapper(opts.client);
    this.#limit = new Limiter(opts.concurrency ?? 16);
  }

  /** The owner's label key for `name`, e.g. `flotilla.dev/bundle`. */
  label(name: string): string {
    return `${this.owner.group}/${name}`;
  }

  /**
   * Settles each object's namespace from discovery (namespaced kinds get `namespace` when
   * they name none; cluster-scoped kinds lose any), adds the labels and digests the result.
   * Kinds not served yet take their scope from `definitions` (or objects) that are CRDs.
   *
   * @throws {InvalidObjectError} for an object without apiVersion, kind or metadata.name.
   */
  async prepare(objects: readonly KubeJson[], opts: PrepareOptions = {}): Promise<PreparedObject[]> {
    const scopes = new Map<string, boolean>();
    for (const d of [...(opts.definitions ?? []), ...objects]) {
      if (!isClusterFoundation(d) || d.kind !== 'CustomResourceDefinition') continue;
      const spec = (d as { spec?: { group?: string; scope?: string; names?: { kind?: string } } }).spec;
      if (spec?.group && spec.names?.kind) {
        scopes.set(groupKind(spec.group, spec.names.kind), spec.scope !== 'Cluster');
      }
    }
    const kinds = new Map<string, Promise<ResourceInfo | undefined>>();
    for (const o of objects) {
      if (
        typeof o?.apiVersion !== 'string' ||
        typeof o.kind !== 'string' ||
        typeof o.metadata?.name !== 'string'
      ) {
        throw new InvalidObjectError(
          `object ${JSON.stringify({ apiVersion: o?.apiVersion, kind: o?.kind, name: o?.metadata?.name })} needs apiVersion, kind and metadata.name`,
        );
      }
      const key = `${o.apiVersion}\n${o.kind}`;
      // A group-version that cannot be looked up now (an aggregated API that is down) only
      // fails the objects of that kind, when they are applied: scope is guessed meanwhile.
      if (!kinds.has(key))
        kinds.set(
          key,
          this.mapper.find(o.apiVersion, o.kind).catch(() => undefined),
        );
    }
    const infos = new Map<string, ResourceInfo | undefined>();
    await Promise.all([...kinds].map(async ([key, p]) => infos.set(key, await p)));
    const labels = opts.labels ?? {};
    return objects.map((o) => {
      const gk = groupKind(apiGroup(o.apiVersion), o.kind);
      const info = infos.get(`${o.apiVersion}\n${o.kind}`);
      const namespaced = info ? info.namespaced : (scopes.get(gk) ?? !CLUSTER_SCOPED_KINDS.has(gk));
      const namespace = namespaced ? o.metadata.namespace || opts.namespace || 'default' : '';
      const { namespace: _dropped, ...meta } = o.metadata;
      const metadata = {
        ...meta,
        ...(namespaced ? { namespace } : {}),
        labels: { ...(o.metadata.labels ?? {}), ...labels },
      };
      const object = { ...o, metadata } as KubeJson;
      const ref: ObjectRef = { apiVersion: o.apiVersion, kind: o.kind, namespace, name: o.metadata.name };
      return { id: objectId(ref), ref, object, digest: sha256Hash(canonicalJson(object)).slice(7, 39) };
    });
  }

  /** {@link prepare}, then {@link applyPrepared}. */
  async applyAll(objects: readonly KubeJson[], opts: PrepareOptions & ApplyOptions = {}): Promise<ChangeSet> {
    return this.applyPrepared(await this.prepare(objects, opts), opts);
  }

  /**
   * Applies prepared objects in stages: Namespaces and CRDs first (then waits until those
   * CRDs are Established), then the rest by kind rank (Helm's install order), each rank
   * concurrently within the manager's limit. An object that fails does not stop the
   * others; it is listed in `failures` with the API server's message.
   */
  async applyPrepared(prepared: readonly PreparedObject[], opts: ApplyOptions = {}): Promise<ChangeSet> {
    const results = new Map<string, ChangeSetEntry>();
    const failures: ObjectFailure[] = [];
    const todo: PreparedObject[] = [];
    for (const p of prepared) {
      if (opts.previous !== undefined && opts.previous.get(p.id) === p.digest) {
        results.set(p.id, { id: p.id, ref: p.ref, action: ChangeAction.Unchanged, digest: p.digest });
      } else todo.push(p);
    }
    const run = (batch: readonly PreparedObject[]) =>
      Promise.all(
        batch.map(async (p) => {
          try {
            const before = opts.previous?.get(p.id);
            results.set(p.id, await this.#applyOne(p, false, before !== undefined && before !== p.digest));
          } catch (e) {
            failures.push(failureOf(p, e));
          }
        }),
      );
    const foundation = todo.filter((p) => isClusterFoundation(p.ref));
    await run(foundation);
    const crds = foundation.filter((p) => p.ref.kind === 'CustomResourceDefinition' && results.has(p.id));
    if (crds.length > 0) {
      failures.push(...(await this.#waitEstablished(crds, opts.crdTimeoutMs ?? 60_000)));
      for (const crd of crds) {
        const group = (crd.object as { spec?: { group?: string } }).spec?.group;
        if (group) this.mapper.invalidate(group);
      }
    }
    for (const group of rankGroups(
      todo.filter((p) => !isClusterFoundation(p.ref)),
      (p) => p.ref.kind,
    )) {
      await run(group);
    }
    const entries = prepared.flatMap((p) => results.get(p.id) ?? []);
    return { entries, failures };
  }

  async #resource(ref: ObjectRef): Promise<ResourceInfo> {
    const info = await this.mapper.find(ref.apiVersion, ref.kind);
    if (!info) {
      throw new KubeApiError(
        404,
        `no matches for kind "${ref.kind}" in version "${ref.apiVersion}": is its CustomResourceDefinition installed?`,
        'NotFound',
      );
    }
    return info;
  }

  /** @param contentChanged the content differs from what was applied before (so a 200 means `configured`). */
  async #applyOne(p: PreparedObject, dryRun: boolean, contentChanged = false): Promise<ChangeSetEntry> {
    const info = await this.#resource(p.ref);
    const q = `?fieldManager=${encodeURIComponent(this.owner.field)}&force=true${dryRun ? '&dryRun=All' : ''}`;
    const path = resourcePath(p.ref.apiVersion, info, p.ref.namespace, p.ref.name) + q;
    const res = await this.#limit.run(() =>
      this.client.request<KubeJson>('PATCH', path, {
        body: p.object,
        contentType: 'application/apply-patch+yaml',
      }),
    );
    const live = res.body;
    if (dryRun) return { id: p.id, ref: p.ref, action: ChangeAction.Configured, digest: p.digest, live };
    const stamp = this.#stamp(live);
    const seen = this.#seen.get(p.id);
    this.#seen.set(p.id, stamp);
    let action: ChangeAction;
    if (res.status === 201) action = ChangeAction.Created;
    else if (contentChanged) action = ChangeAction.Configured;
    else if (seen !== undefined && stamp !== '')
      action = seen === stamp ? ChangeAction.Unchanged : ChangeAction.Configured;
    else action = this.#untouched(stamp, res.date) ? ChangeAction.Unchanged : ChangeAction.Configured;
    return { id: p.id, ref: p.ref, action, digest: p.digest, live };
  }

  /** When the API server last stamped this manager's Apply entry: it does so only when an apply changes the object. */
  #stamp(live: KubeJson | undefined): string {
    const entries = live?.metadata?.managedFields as
      | readonly { manager?: string; operation?: string; time?: string }[]
      | undefined;
    return entries?.find((e) => e.manager === this.owner.field && e.operation === 'Apply')?.time ?? '';
  }

  /**
   * Whether an apply changed nothing, by the server's own clock: an Apply entry stamped
   * before the answer (by more than the second of precision both have) was not written now.
   */
  #untouched(stamp: string, dateHeader: string | undefined): boolean {
    const serverDate = dateHeader ? Date.parse(dateHeader) : Number.NaN;
    if (Number.isNaN(serverDate) || stamp === '') return false;
    const stamped = Date.parse(stamp);
    return !Number.isNaN(stamped) && stamped <= serverDate - 2_000;
  }

  async #waitEstablished(crds: readonly PreparedObject[], timeoutMs: number): Promise<ObjectFailure[]> {
    const deadline = Date.now() + timeoutMs;
    let pending = [...crds];
    const last = new Map<string, string>();
    while (pending.length > 0) {
      const next: PreparedObject[] = [];
      await Promise.all(
        pending.map(async (p) => {
          const live = await this.#limit.run(() =>
            this.client.get<KubeJson>(
              `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${p.ref.name}`,
            ),
          );
          const h = assessHealth(live);
          if (!h.ready) {
            last.set(p.id, h.message);
            next.push(p);
          }
        }),
      );
      pending = next;
      if (pending.length === 0 || Date.now() >= deadline) break;
      await sleep(200);
    }
    return pending.map((p) => ({
      id: p.id,
      ref: p.ref,
      message: `CustomResourceDefinition ${p.ref.name} not established within ${Math.round(timeoutMs / 1000)} s: ${last.get(p.id) ?? 'unknown'}`,
    }));
  }

  /**
   * Reads objects, by list where several share a kind and namespace (narrowed by
   * `labelSelector`) and one by one otherwise. Missing objects map to undefined.
   */
  async getAll(
    refs: readonly ObjectRef[],
    opts: { labelSelector?: string } = {},
  ): Promise<Map<string, KubeJson | undefined>> {
    const out = new Map<string, KubeJson | undefined>();
    const groups = new Map<string, ObjectRef[]>();
    for (const r of refs) {
      const key = `${r.apiVersion}\n${r.kind}\n${r.namespace}`;
      const g = groups.get(key) ?? [];
      g.push(r);
      groups.set(key, g);
    }
    await Promise.all(
      [...groups.values()].map(async (group) => {
        const first = group[0] as ObjectRef;
        const info = await this.mapper.find(first.apiVersion, first.kind);
        if (!info) {
          for (const r of group) out.set(objectId(r), undefined);
          return;
        }
        const single = async (r: ObjectRef) => {
          const path = resourcePath(r.apiVersion, info, r.namespace, r.name);
          out.set(objectId(r), await this.#limit.run(() => this.client.get<KubeJson>(path)));
        };
        if (group.length < 2 || !opts.labelSelector) {
          await Promise.all(group.map(single));
          return;
        }
        const path = resourcePath(first.apiVersion, info, first.namespace);
        const items = await this.#limit.run(() =>
          this.client.list<KubeJson>(path, { labelSelector: opts.labelSelector as string }),
        );
        const byName = new Map(items.map((i) => [i.metadata.name, i]));
        const missing: ObjectRef[] = [];
        for (const r of group) {
          const live = byName.get(r.name);
          // Lists leave out apiVersion and kind on their items.
          if (live) out.set(objectId(r), { ...live, apiVersion: r.apiVersion, kind: r.kind });
          else missing.push(r);
        }
        // Not in the list: deleted, or someone removed the label; a read tells which.
        await Promise.all(missing.map(single));
      }),
    );
    return out;
  }

  /**
   * Drift of each object: a cheap comparison with the live object first, then, for those
   * that may differ, a server-side dry-run apply compared with the live object on the
   * fields this manager owns (as the dry run's managedFields say). Nothing is changed.
   */
  async diffAll(
    prepared: readonly PreparedObject[],
    opts: { labelSelector?: string } = {},
  ): Promise<DriftReport[]> {
    const lives = await this.getAll(
      prepared.map((p) => p.ref),
      opts,
    );
    return Promise.all(
      prepared.map(async (p): Promise<DriftReport> => {
        const live = lives.get(p.id);
        if (!live) return { id: p.id, ref: p.ref, drifted: true, missing: true, fields: [] };
        if (coveredBy(p.object, live))
          return { id: p.id, ref: p.ref, drifted: false, missing: false, fields: [] };
        const expected = (await this.#applyOne(p, true)).live;
        const owned = appliedFields(expected, this.owner.field);
        const fields = owned ? ownedFieldDifferences(expected, live, owned) : ['.'];
        return { id: p.id, ref: p.ref, drifted: fields.length > 0, missing: false, fields };
      }),
    );
  }

  /**
   * Deletes objects in prune order (the reverse of apply order, kind rank by kind rank),
   * only those that still carry `ownedBy`'s labels and are not annotated
   * `<group>/prune: disabled`. Gone objects are `skipped`.
   */
  async deleteAll(
    refs: readonly ObjectRef[],
    opts: { ownedBy?: Readonly<Record<string, string>> } = {},
  ): Promise<ChangeSet> {
    const entries: ChangeSetEntry[] = [];
    const failures: ObjectFailure[] = [];
    const ordered = pruneOrder(refs);
    const groups = rankGroups(ordered, (r) => r.kind).reverse();
    for (const group of groups) {
      await Promise.all(
        group.map(async (ref) => {
          const id = objectId(ref);
          try {
            entries.push(await this.#deleteOne(ref, id, opts.ownedBy ?? {}));
          } catch (e) {
            failures.push(failureOf({ id, ref }, e));
          }
        }),
      );
    }
    const order = new Map(ordered.map((r, i) => [objectId(r), i]));
    entries.sort((a, b) => (order.get(a.id) ?? 0) - (order.get(b.id) ?? 0));
    return { entries, failures };
  }

  async #deleteOne(
    ref: ObjectRef,
    id: string,
    ownedBy: Readonly<Record<string, string>>,
  ): Promise<ChangeSetEntry> {
    const skipped = (reason: string): ChangeSetEntry => ({ id, ref, action: ChangeAction.Skipped, reason });
    const info = await this.mapper.find(ref.apiVersion, ref.kind);
    if (!info) return skipped('its kind is no longer served');
    const path = resourcePath(ref.apiVersion, info, ref.namespace, ref.name);
    const live = await this.#limit.run(() => this.client.get<KubeJson>(path));
    if (!live) return skipped('already gone');
    for (const [key, want] of Object.entries(ownedBy)) {
      const have = live.metadata.labels?.[key];
      if (have !== want)
        return skipped(`label ${key} is ${have === undefined ? 'absent' : `"${have}"`}, not "${want}"`);
    }
    if (live.metadata.annotations?.[this.label('prune')] === 'disabled') {
      return skipped(`annotated ${this.label('prune')}: disabled`);
    }
    try {
      await this.#limit.run(() =>
        this.client.request('DELETE', path, {
          body: {
            apiVersion: 'v1',
            kind: 'DeleteOptions',
            propagationPolicy: 'Background',
            preconditions: { uid: live.metadata.uid },
          },
        }),
      );
    } catch (e) {
      if (e instanceof KubeApiError && e.status === 404) return skipped('already gone');
      if (e instanceof KubeApiError && e.status === 409)
        return skipped('replaced by another object meanwhile');
      throw e;
    }
    this.#seen.delete(id);
    return { id, ref, action: ChangeAction.Deleted };
  }

  /** Readiness of each object, from `known` live copies where given and reads otherwise. */
  async health(
    refs: readonly ObjectRef[],
    opts: { known?: ReadonlyMap<string, KubeJson | undefined>; labelSelector?: string } = {},
  ): Promise<HealthReport[]> {
    const checked = refs.filter((r) => hasReadiness(r));
    const unknown = checked.filter((r) => !opts.known?.has(objectId(r)));
    const read =
      unknown.length > 0 ? await this.getAll(unknown, opts) : new Map<string, KubeJson | undefined>();
    return refs.map((ref) => {
      const id = objectId(ref);
      if (!hasReadiness(ref)) return { id, ref, ready: true, message: '' };
      const live = opts.known?.has(id) ? opts.known.get(id) : read.get(id);
      if (!live) return { id, ref, ready: false, message: 'not found' };
      return { id, ref, ...assessHealth(live) };
    });
  }

  /**
   * Waits until every object is ready, one has failed for good, or the timeout passes,
   * reading the not-ready ones again every `intervalMs`. Returns the last readiness seen.
   */
  async waitForReady(
    refs: readonly ObjectRef[],
    opts: {
      timeoutMs: number;
      intervalMs?: number;
      known?: ReadonlyMap<string, KubeJson | undefined>;
      labelSelector?: string;
      signal?: AbortSignal;
    },
  ): Promise<HealthReport[]> {
    const deadline = Date.now() + opts.timeoutMs;
    const latest = new Map<string, HealthReport>();
    let pending = refs.filter((r) => hasReadiness(r));
    for (const r of refs)
      if (!hasReadiness(r)) latest.set(objectId(r), { id: objectId(r), ref: r, ready: true, message: '' });
    let known = opts.known;
    while (pending.length > 0) {
      const reports = await this.health(pending, {
        ...(known ? { known } : {}),
        ...(opts.labelSelector ? { labelSelector: opts.labelSelector } : {}),
      });
      known = undefined;
      for (const h of reports) latest.set(h.id, h);
      if (reports.some((h) => h.failed)) break;
      pending = reports.filter((h) => !h.ready).map((h) => h.ref);
      if (pending.length === 0 || Date.now() >= deadline || opts.signal?.aborted) break;
      await sleep(Math.min(opts.intervalMs ?? 1_000, Math.max(0, deadline - Date.now())));
    }
    return refs.map((r) => latest.get(objectId(r)) as HealthReport);
  }
}

/** The digests of what a change set applied, by id: pass as `previous` to skip unchanged objects next time. */
export function digestsOf(changes: ChangeSet): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of changes.entries) if (e.digest !== undefined) out.set(e.id, e.digest);
  return out;
}

/** Counts of a change set's entries by action, plus failures; for logs and metrics. */
export function summarize(changes: ChangeSet): Record<ChangeAction | 'failed', number> {
  const out = {
    created: 0,
    configured: 0,
    unchanged: 0,
    deleted: 0,
    skipped: 0,
    failed: changes.failures.length,
  };
  for (const e of changes.entries) out[e.action]++;
  return out;
}
