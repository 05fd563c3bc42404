/**
 * The resource the agent's replicas elect their leader on: a coordination.k8s.io/v1 Lease
 * in the agent's namespace, read and written as client-go's `LeaseLock` does. Writes carry
 * the resourceVersion that was read, so two replicas racing for the same Lease cannot both
 * win: the API server refuses the second with a conflict.
 */
import { isoTime } from '@flotilla/shared/agent';
import { KubeApiError, type KubeClient } from '../kube/client.ts';

/** What a Lease says about its holder (client-go's `LeaderElectionRecord`). */
export interface LeaderRecord {
  /** Empty when nobody holds it (a leader that stepped down clears it). */
  readonly holderIdentity: string;
  readonly leaseDurationSeconds: number;
  /** When the holder took it, and last renewed it (ms since the epoch). */
  readonly acquireTime: number;
  readonly renewTime: number;
  readonly leaseTransitions: number;
}

/** A record as read, with the version a write must name. */
export interface VersionedRecord {
  readonly record: LeaderRecord;
  /** Compared to tell whether the record changed since it was last seen (renewTime included). */
  readonly raw: string;
  readonly resourceVersion: string;
}

/** Someone else wrote the lock since it was read, or created it first. */
export class LeaseConflictError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'LeaseConflictError';
  }
}

/** The lock the elector works with; a fake in unit tests. */
export interface LeaderLock {
  /** Undefined when the lock does not exist yet. */
  get(signal?: AbortSignal): Promise<VersionedRecord | undefined>;
  /** @throws {LeaseConflictError} when it exists already. */
  create(record: LeaderRecord, signal?: AbortSignal): Promise<VersionedRecord>;
  /** @throws {LeaseConflictError} when it changed since `resourceVersion`. */
  update(record: LeaderRecord, resourceVersion: string, signal?: AbortSignal): Promise<VersionedRecord>;
  /** `namespace/name`, for logs. */
  readonly description: string;
}

interface LeaseObject {
  readonly metadata: { readonly resourceVersion?: string };
  readonly spec?: {
    readonly holderIdentity?: string;
    readonly leaseDurationSeconds?: number;
    readonly acquireTime?: string;
    readonly renewTime?: string;
    readonly leaseTransitions?: number;
  };
}

/** A MicroTime as the API server wants it: RFC 3339 with six fractional digits. */
function microTime(ms: number): string {
  return isoTime(ms).replace(/Z$/, '000Z');
}

/** The agent's Lease, through its own Kubernetes client. */
export class LeaseLock implements LeaderLock {
  readonly description: string;
  readonly #client: KubeClient;
  readonly #namespace: string;
  readonly #name: string;

  constructor(client: KubeClient, namespace: string, name: string) {
    this.#client = client;
    this.#namespace = namespace;
    this.#name = name;
    this.description = `${namespace}/${name}`;
  }

  #collection(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${this.#namespace}/leases`;
  }

  #object(record: LeaderRecord, resourceVersion?: string) {
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: this.#name,
        namespace: this.#namespace,
        ...(resourceVersion ? { resourceVersion } : {}),
      },
      spec: {
        holderIdentity: record.holderIdentity,
        leaseDurationSeconds: record.leaseDurationSeconds,
        acquireTime: microTime(record.acquireTime),
        renewTime: microTime(record.renewTime),
        leaseTransitions: record.leaseTransitions,
      },
    };
  }

  #versioned(lease: LeaseObject): VersionedRecord {
    const spec = lease.spec ?? {};
    return {
      record: {
        holderIdentity: spec.holderIdentity ?? '',
        leaseDurationSeconds: spec.leaseDurationSeconds ?? 0,
        acquireTime: spec.acquireTime ? Date.parse(spec.acquireTime) : 0,
        renewTime: spec.renewTime ? Date.parse(spec.renewTime) : 0,
        leaseTransitions: spec.leaseTransitions ?? 0,
      },
      raw: JSON.stringify(spec),
      resourceVersion: lease.metadata.resourceVersion ?? '',
    };
  }

  async get(signal?: AbortSignal): Promise<VersionedRecord | undefined> {
    try {
      const res = await this.#client.request<LeaseObject>('GET', `${this.#collection()}/${this.#name}`, {
        ...(signal ? { signal } : {}),
      });
      return this.#versioned(res.body);
    } catch (e) {
      if (e instanceof KubeApiError && e.status === 404) return undefined;
      throw e;
    }
  }

  async create(record: LeaderRecord, signal?: AbortSignal): Promise<VersionedRecord> {
    try {
      const res = await this.#client.request<LeaseObject>('POST', this.#collection(), {
        body: this.#object(record),
        ...(signal ? { signal } : {}),
      });
      return this.#versioned(res.body);
    } catch (e) {
      if (e instanceof KubeApiError && e.status === 409)
        throw new LeaseConflictError(`Lease ${this.description} exists already`, { cause: e });
      throw e;
    }
  }

  async update(
    record: LeaderRecord,
    resourceVersion: string,
    signal?: AbortSignal,
  ): Promise<VersionedRecord> {
    try {
      const res = await this.#client.request<LeaseObject>('PUT', `${this.#collection()}/${this.#name}`, {
        body: this.#object(record, resourceVersion),
        ...(signal ? { signal } : {}),
      });
      return this.#versioned(res.body);
    } catch (e) {
      if (e instanceof KubeApiError && e.status === 409)
        throw new LeaseConflictError(`Lease ${this.description} changed since it was read`, { cause: e });
      throw e;
    }
  }
}
