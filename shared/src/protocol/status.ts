/**
 * The status an agent reports to the hub (`POST /v1/clusters/{id}/status`), the hub's
 * answer, and the limits a report must keep to. The hub validates reports strictly
 * (`hub/status.ts`); the agent builds them within these limits (`agent/status.ts`).
 */

import type { AgeRecipient } from './age-recipients.ts';

/** apiVersion of the status payload; a breaking change to the schema gets a new version. */
export const STATUS_API_VERSION = 'flotilla.dev/v1alpha1';
export const STATUS_KIND = 'ClusterStatus';

/** Where one bundle stands on one cluster. */
export const BundleState = {
  /** Known to the agent, not yet applied. */
  Pending: 'Pending',
  /** Being applied. */
  Applying: 'Applying',
  /** Applied and healthy. */
  Ready: 'Ready',
  /** Applied, not healthy yet. */
  NotReady: 'NotReady',
  /** The apply failed; `message` says why and `failedObject` which object. */
  Failed: 'Failed',
  /** The live objects differ from the desired ones; corrected or only reported per driftPolicy. */
  Drifted: 'Drifted',
} as const;
export type BundleState = (typeof BundleState)[keyof typeof BundleState];

/** One object whose live state differs from the desired state, and the fields that differ. */
export interface DriftedObject {
  /** `group/Kind/namespace/name`, as in the rendered bundle (namespace empty when cluster-scoped). */
  readonly object: string;
  /** Dotted field paths, e.g. `spec.replicas`. */
  readonly fields: readonly string[];
}

/** An agent's report on one bundle of its desired state. */
export interface BundleStatusReport {
  readonly name: string;
  readonly state: BundleState;
  /** Content hash of the rendered bundle this status is about. */
  readonly hash: string;
  /** Desired-state generation this status is about. */
  readonly generation: number;
  readonly message?: string;
  /** The object the apply failed on (`group/Kind/namespace/name`). */
  readonly failedObject?: string;
  readonly drift?: readonly DriftedObject[];
}

/** The body of `POST /v1/clusters/{id}/status`. */
export interface ClusterStatusReport {
  readonly apiVersion: typeof STATUS_API_VERSION;
  readonly kind: typeof STATUS_KIND;
  readonly agentVersion: string;
  /**
   * The spoke's Kubernetes version, as its API server reports it (`GET /version`,
   * `gitVersion`), e.g. `v1.33.2`. Optional: older agents do not send it, and the hub keeps
   * the last one it was told. See {@link isKubeVersion}.
   */
  readonly kubeVersion?: string;
  /**
   * The cluster's age recipients (public keys only), for SOPS files meant for it. Optional:
   * older agents do not send them, and the hub keeps the last list it was told. See
   * {@link recipientsProblems}.
   */
  readonly recipients?: readonly AgeRecipient[];
  /**
   * The id of the last key rotation the hub asked for ({@link StatusAnswer.rotateKey}) that
   * the agent has done: the hub stops asking once it reads it.
   */
  readonly keyRotation?: string;
  /** When the agent took this status, by its clock. */
  readonly observedAt?: string;
  /** Generation of the last desired state the agent applied completely. */
  readonly appliedGeneration?: number;
  /** Every bundle of the agent's desired state; when present it replaces what was reported before. */
  readonly bundles?: readonly BundleStatusReport[];
}

/** Limits that keep one report well inside one Lambda request and a few DynamoDB writes per bundle. */
export const statusLimits = {
  bundles: 500,
  messageChars: 4096,
  agentVersionChars: 64,
  kubeVersionChars: 64,
  driftObjects: 100,
  driftFields: 100,
  fieldChars: 512,
} as const;

/** What the hub answers to a status report: its current desired generation, so an agent that missed a notification knows it is behind. */
export interface StatusAnswer {
  readonly desired: { readonly generation: number; readonly etag: string } | null;
  /**
   * Set while an admin's request to rotate the cluster's age key is open: the agent makes a
   * new key once per `id`, and says so in its next report's `keyRotation`.
   */
  readonly rotateKey?: { readonly id: string };
}

/** A key-rotation request id: what the hub issues and the agent echoes back. */
export const keyRotationIdPattern = /^[A-Za-z0-9_-]{8,64}$/;

/**
 * A Kubernetes version as API servers report it in `gitVersion`: `v` and three numbers,
 * then an optional semver pre-release and build metadata (`v1.33.2`, `v1.29.3-eks-adc7111`,
 * `v1.28.5+k3s1`). Helm reads the same string as `.Capabilities.KubeVersion`.
 */
const kubeVersionPattern =
  /^v(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,8})(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$/;

/** Why `value` is not a Kubernetes version the hub takes, or undefined when it is one. */
export function kubeVersionProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return 'expected a string such as "v1.33.2"';
  if (value.length > statusLimits.kubeVersionChars) {
    return `at most ${statusLimits.kubeVersionChars} characters (got ${value.length})`;
  }
  if (!kubeVersionPattern.test(value)) {
    return 'expected a Kubernetes version "v<major>.<minor>.<patch>[-pre][+build]" such as "v1.33.2"';
  }
  return undefined;
}

/** Whether `value` is a Kubernetes version the hub takes ({@link kubeVersionProblem} finds nothing wrong). */
export function isKubeVersion(value: unknown): value is string {
  return kubeVersionProblem(value) === undefined;
}
