/**
 * The plain data that the resource manager's operations return: change sets, failures,
 * drift and readiness reports. No I/O here.
 */
import type { IgnoreDifference, KubeJson, ObjectRef, PathSegment } from '@flotilla/shared/agent';
import { KubeApiError } from '../kube/client.ts';

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
  /** Fields left to other managers (`ignoreDifferences`): already removed from `object`, and not drift. */
  readonly ignored?: readonly (readonly PathSegment[])[];
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
  /** The tenant whose service account the API server refused the write for (a 403 on a tenant's bundle). */
  readonly tenant?: string;
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
  /** Annotations added to every object. */
  readonly annotations?: Readonly<Record<string, string>>;
  /** CRDs that define kinds not served yet (applied in the same run), to learn their scope. */
  readonly definitions?: readonly KubeJson[];
  /** Fields to leave to other managers: removed from the objects they select before the digest. */
  readonly ignoreDifferences?: readonly IgnoreDifference[];
}

export interface ApplyOptions {
  /**
   * Digests of what was applied before, by id. An object whose digest is unchanged is
   * reported `unchanged` without a request (drift is {@link ResourceManager.diffAll}'s job).
   */
  readonly previous?: ReadonlyMap<string, string>;
  /** Narrows the reads of objects to compare (a list per kind and namespace instead of a read per object). */
  readonly labelSelector?: string;
  /**
   * The objects are known to differ from the live ones (a drift check just compared them):
   * applied at once, without reading and comparing them again.
   */
  readonly knownToDiffer?: boolean;
  /** How long to wait for an object annotated `<group>/force: "true"` to be gone before creating it again. Default 60 s. */
  readonly recreateTimeoutMs?: number;
  /** How long to wait for CRDs applied here to be Established before their custom resources. Default 60 s. */
  readonly crdTimeoutMs?: number;
}

/** Thrown by {@link ResourceManager.prepare} for an object without apiVersion, kind or name. */
export class InvalidObjectError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'InvalidObjectError';
  }
}

/**
 * An apply the API server refused because it changes fields that cannot change once set
 * (a Job's `spec.template`, a Deployment's `spec.selector`, a Service's `spec.clusterIP`),
 * on an object not annotated to be deleted and created again.
 */
export class ImmutableFieldError extends Error {
  /** The immutable fields, as the API server's Status causes name them. */
  readonly fields: readonly string[];
  readonly status = 422;
  readonly reason = 'Invalid';
  constructor(message: string, fields: readonly string[], options?: ErrorOptions) {
    super(message, options);
    this.name = 'ImmutableFieldError';
    this.fields = fields;
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function failureOf(p: { id: string; ref: ObjectRef }, err: unknown): ObjectFailure {
  if (err instanceof KubeApiError) {
    return {
      id: p.id,
      ref: p.ref,
      message: err.message,
      status: err.status,
      ...(err.reason ? { reason: err.reason } : {}),
    };
  }
  if (err instanceof ImmutableFieldError) {
    return { id: p.id, ref: p.ref, message: err.message, status: err.status, reason: err.reason };
  }
  return { id: p.id, ref: p.ref, message: messageOf(err) };
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
