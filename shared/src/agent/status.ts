import { type AgeRecipient, recipientsProblems } from '../protocol/age-recipients.ts';
import {
  type BundleStatusReport,
  type ClusterStatusReport,
  isKubeVersion,
  keyRotationIdPattern,
  statusLimits as reportLimits,
  STATUS_API_VERSION,
  STATUS_KIND,
} from '../protocol/status.ts';
import { isoTime } from './timing.ts';

export { reportLimits };

/** One bundle's status as the agent works it out: the report's shape, before the hub's limits are applied. */
export type BundleStatusInput = BundleStatusReport;

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/**
 * Builds the `POST /v1/clusters/{id}/status` body, cutting what would exceed the hub's
 * limits (long messages, many drifted objects or fields) instead of being refused for it.
 *
 * @example
 * buildStatusReport({ agentVersion: '0.1.0', observedAt: new Date(), appliedGeneration: 7,
 *   bundles: [{ name: 'web', state: 'Ready', hash: 'sha256:…', generation: 7 }] });
 */
export function buildStatusReport(input: {
  readonly agentVersion: string;
  /** The API server's `gitVersion`; left out when it is not one the hub takes. */
  readonly kubeVersion?: string | undefined;
  /** The cluster's age recipients; left out when the hub would refuse them. */
  readonly recipients?: readonly AgeRecipient[] | undefined;
  /** The id of the last key rotation done for the hub. */
  readonly keyRotation?: string | undefined;
  readonly observedAt: Date;
  readonly appliedGeneration?: number | undefined;
  /** Leave out for a heartbeat alone. */
  readonly bundles?: readonly BundleStatusInput[] | undefined;
}): ClusterStatusReport {
  const bundles = input.bundles?.slice(0, reportLimits.bundles).map((b): BundleStatusReport => {
    const failedMessage = b.state === 'Failed' && !b.message?.trim() ? 'apply failed' : b.message;
    const drift = b.drift
      ?.filter((d) => d.object.trim() !== '')
      .slice(0, reportLimits.driftObjects)
      .map((d) => ({
        object: clip(d.object, reportLimits.fieldChars),
        fields: d.fields
          .filter((f) => f.trim() !== '')
          .slice(0, reportLimits.driftFields)
          .map((f) => clip(f, reportLimits.fieldChars)),
      }));
    const hasDrift = drift !== undefined && drift.length > 0;
    // A Drifted report must name what drifted; without that it says nothing and the hub refuses it.
    const state = b.state === 'Drifted' && !hasDrift ? 'Ready' : b.state;
    return {
      name: b.name,
      state,
      hash: b.hash,
      generation: b.generation,
      ...(failedMessage !== undefined ? { message: clip(failedMessage, reportLimits.messageChars) } : {}),
      ...(b.failedObject?.trim() ? { failedObject: clip(b.failedObject, reportLimits.fieldChars) } : {}),
      ...(hasDrift ? { drift } : {}),
    };
  });
  return {
    apiVersion: STATUS_API_VERSION,
    kind: STATUS_KIND,
    agentVersion: clip(input.agentVersion, reportLimits.agentVersionChars),
    ...(isKubeVersion(input.kubeVersion) ? { kubeVersion: input.kubeVersion } : {}),
    ...(input.recipients !== undefined && recipientsProblems(input.recipients).length === 0
      ? { recipients: input.recipients.map((r) => ({ name: r.name, recipient: r.recipient })) }
      : {}),
    ...(input.keyRotation !== undefined && keyRotationIdPattern.test(input.keyRotation)
      ? { keyRotation: input.keyRotation }
      : {}),
    observedAt: isoTime(input.observedAt.getTime()),
    ...(input.appliedGeneration !== undefined ? { appliedGeneration: input.appliedGeneration } : {}),
    ...(bundles !== undefined ? { bundles } : {}),
  };
}
