/** How a reconcile words and counts what it did, for bundle outcomes and logs. */
import { describeRef } from '@flotilla/shared/agent';
import type { HealthReport, ObjectFailure } from '../ssa/resource-manager.ts';
import type { BundleOutcome, ReconcileOutcome } from './ports.ts';

export type Changes = BundleOutcome['changes'];
export type DriftEvent = ReconcileOutcome['driftEvents'][number];

export const noChanges: Changes = {
  created: 0,
  configured: 0,
  unchanged: 0,
  deleted: 0,
  skipped: 0,
  failed: 0,
};

export function addCounts(a: Changes, b: Changes): Changes {
  return {
    created: a.created + b.created,
    configured: a.configured + b.configured,
    unchanged: a.unchanged + b.unchanged,
    deleted: a.deleted + b.deleted,
    skipped: a.skipped + b.skipped,
    failed: a.failed + b.failed,
  };
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

export function failureMessage(failures: readonly ObjectFailure[], verb: string): string {
  const first = failures[0] as ObjectFailure;
  const more = failures.length > 1 ? ` (and ${plural(failures.length - 1, 'other object')} failed)` : '';
  // A tenant's refusal names the tenant and the object itself.
  if (first.tenant !== undefined) return `${first.message}${more}`;
  return `${verb} ${describeRef(first.ref)}: ${first.message}${more}`;
}

export function notReadyMessage(reports: readonly HealthReport[]): string {
  const shown = reports.slice(0, 3).map((h) => `${describeRef(h.ref)}: ${h.message}`);
  const more = reports.length > 3 ? `; and ${reports.length - 3} more` : '';
  return `not ready: ${shown.join('; ')}${more}`;
}

/** Whether a bundle got as far as applying without errors (its objects are in place, ready or not). */
export function isSettled(b: Pick<BundleOutcome, 'state'>): boolean {
  return b.state === 'Ready' || b.state === 'NotReady' || b.state === 'Drifted';
}
