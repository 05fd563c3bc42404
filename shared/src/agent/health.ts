/**
 * Readiness of live objects, for the kinds whose readiness the API shows: the rules of
 * kstatus (what Flux and kubectl wait for), reduced to what a bundle's status needs.
 */
import { apiGroup } from '../kinds.ts';

/** What the agent makes of one live object. */
export interface Health {
  readonly ready: boolean;
  /** Why it is not ready (empty when ready). */
  readonly message: string;
  /** Not ready and will not become ready by waiting (a failed Job, a stalled rollout). */
  readonly failed?: boolean;
}

interface Condition {
  readonly type?: string;
  readonly status?: string;
  readonly reason?: string;
  readonly message?: string;
}

interface Live {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: { readonly generation?: number; readonly name?: string };
  readonly spec?: Record<string, unknown>;
  readonly status?: Record<string, unknown> & { readonly conditions?: readonly Condition[] };
}

const checked = new Set([
  'apps/Deployment',
  'apps/StatefulSet',
  'apps/DaemonSet',
  'batch/Job',
  'apiextensions.k8s.io/CustomResourceDefinition',
  '/Namespace',
  '/PersistentVolumeClaim',
  '/Service',
]);

/** Whether readiness of this kind depends on more than its existence. */
export function hasReadiness(ref: { readonly apiVersion: string; readonly kind: string }): boolean {
  return checked.has(`${apiGroup(ref.apiVersion)}/${ref.kind}`);
}

const ready: Health = { ready: true, message: '' };
const notReady = (message: string, failed = false): Health => ({
  ready: false,
  message,
  ...(failed ? { failed } : {}),
});

function condition(live: Live, type: string): Condition | undefined {
  return live.status?.conditions?.find((c) => c.type === type);
}

function num(v: unknown, fallback = 0): number {
  return typeof v === 'number' ? v : fallback;
}

function observed(live: Live): Health | undefined {
  const generation = live.metadata?.generation;
  const seen = live.status?.observedGeneration;
  if (generation !== undefined && (typeof seen !== 'number' || seen < generation)) {
    return notReady(`the controller has not observed generation ${generation} yet`);
  }
  return undefined;
}

/**
 * The readiness of one live object. Kinds without a rule are ready once they exist.
 *
 * @example
 * assessHealth({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'web' }, status: { phase: 'Active' } }); // { ready: true, message: '' }
 */
export function assessHealth(object: unknown): Health {
  const live = object as Live;
  const kind = `${apiGroup(live.apiVersion ?? '')}/${live.kind ?? ''}`;
  switch (kind) {
    case 'apps/Deployment':
      return deployment(live);
    case 'apps/StatefulSet':
      return statefulSet(live);
    case 'apps/DaemonSet':
      return daemonSet(live);
    case 'batch/Job':
      return job(live);
    case 'apiextensions.k8s.io/CustomResourceDefinition': {
      const established = condition(live, 'Established');
      if (established?.status === 'True') return ready;
      const names = condition(live, 'NamesAccepted');
      if (names?.status === 'False')
        return notReady(`names not accepted: ${names.message ?? names.reason}`, true);
      return notReady('not established yet');
    }
    case '/Namespace':
      return live.status?.phase === 'Active' || live.status?.phase === undefined
        ? ready
        : notReady(`phase is ${String(live.status?.phase)}`);
    case '/PersistentVolumeClaim':
      return live.status?.phase === 'Bound'
        ? ready
        : notReady(`phase is ${String(live.status?.phase ?? 'Pending')}`);
    case '/Service': {
      if (live.spec?.type !== 'LoadBalancer') return ready;
      const ingress = (live.status?.loadBalancer as { ingress?: unknown[] } | undefined)?.ingress;
      return Array.isArray(ingress) && ingress.length > 0 ? ready : notReady('no load balancer address yet');
    }
    default:
      return ready;
  }
}

function deployment(live: Live): Health {
  const pending = observed(live);
  if (pending) return pending;
  const progressing = condition(live, 'Progressing');
  if (progressing?.status === 'False' && progressing.reason === 'ProgressDeadlineExceeded') {
    return notReady(`rollout stalled: ${progressing.message ?? 'progress deadline exceeded'}`, true);
  }
  const want = num(live.spec?.replicas, 1);
  const s = live.status ?? {};
  if (num(s.updatedReplicas) < want) return notReady(`${num(s.updatedReplicas)} of ${want} replicas updated`);
  if (num(s.replicas) > num(s.updatedReplicas)) {
    return notReady(`${num(s.replicas) - num(s.updatedReplicas)} old replicas pending termination`);
  }
  if (num(s.availableReplicas) < want)
    return notReady(`${num(s.availableReplicas)} of ${want} replicas available`);
  const available = condition(live, 'Available');
  if (available && available.status !== 'True')
    return notReady(`not available: ${available.message ?? ''}`.trim());
  return ready;
}

function statefulSet(live: Live): Health {
  const pending = observed(live);
  if (pending) return pending;
  const want = num(live.spec?.replicas, 1);
  const s = live.status ?? {};
  if (num(s.readyReplicas) < want) return notReady(`${num(s.readyReplicas)} of ${want} replicas ready`);
  const strategy = (live.spec?.updateStrategy as { type?: string } | undefined)?.type ?? 'RollingUpdate';
  if (strategy === 'RollingUpdate') {
    if (num(s.updatedReplicas) < want)
      return notReady(`${num(s.updatedReplicas)} of ${want} replicas updated`);
    if (s.updateRevision !== undefined && s.currentRevision !== s.updateRevision) {
      return notReady(`rolling out revision ${String(s.updateRevision)}`);
    }
  }
  return ready;
}

function daemonSet(live: Live): Health {
  const pending = observed(live);
  if (pending) return pending;
  const s = live.status ?? {};
  const want = num(s.desiredNumberScheduled);
  if (num(s.updatedNumberScheduled) < want) {
    return notReady(`${num(s.updatedNumberScheduled)} of ${want} pods updated`);
  }
  if (num(s.numberAvailable) < want) return notReady(`${num(s.numberAvailable)} of ${want} pods available`);
  return ready;
}

function job(live: Live): Health {
  const failed = condition(live, 'Failed');
  if (failed?.status === 'True')
    return notReady(`job failed: ${failed.message ?? failed.reason ?? ''}`.trim(), true);
  const complete = condition(live, 'Complete');
  if (complete?.status === 'True') return ready;
  return notReady('job has not completed');
}
