/**
 * Readiness of live objects, as kstatus (sigs.k8s.io/cli-utils/pkg/kstatus, what Flux and
 * `kubectl wait` build on) computes it, reduced to what a bundle's status needs: Current
 * is `ready`, InProgress is not ready, Failed is not ready with `failed`.
 *
 * Every object first passes the generic rules (deletion pending, generation not observed,
 * `Reconciling` or `Stalled` conditions); built-in kinds then have their own rule, and any
 * other kind is read from its `Ready` condition, being ready once it exists when it has
 * none.
 */
import { apiGroup } from '../kinds.ts';
import type { HealthCheck } from '../protocol/desired-state.ts';
import type { Health } from '../readiness.ts';

export type { Health };

interface Condition {
  readonly type?: string;
  readonly status?: string;
  readonly reason?: string;
  readonly message?: string;
}

interface Live {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: {
    readonly generation?: number;
    readonly name?: string;
    readonly deletionTimestamp?: string;
  };
  readonly spec?: Record<string, unknown>;
  readonly status?: Record<string, unknown> & { readonly conditions?: readonly Condition[] };
}

// The kinds with a rule of their own below; their readiness needs a read of the live object.
const checked = new Set([
  'apps/Deployment',
  'apps/StatefulSet',
  'apps/DaemonSet',
  'apps/ReplicaSet',
  'batch/Job',
  'apiextensions.k8s.io/CustomResourceDefinition',
  '/Namespace',
  '/PersistentVolumeClaim',
  '/Pod',
  '/Service',
  'policy/PodDisruptionBudget',
]);

// The API groups Kubernetes itself serves. Their other kinds (ConfigMap, Role, Ingress...)
// carry no readiness in their status, so reading them back would cost requests for nothing.
// Groups merely ending in `.k8s.io` are not all built in: Gateway API's
// `gateway.networking.k8s.io` is a CRD whose objects report conditions.
const builtInGroups = new Set([
  '',
  'admissionregistration.k8s.io',
  'apiextensions.k8s.io',
  'apiregistration.k8s.io',
  'apps',
  'authentication.k8s.io',
  'authorization.k8s.io',
  'autoscaling',
  'batch',
  'certificates.k8s.io',
  'coordination.k8s.io',
  'discovery.k8s.io',
  'events.k8s.io',
  'extensions',
  'flowcontrol.apiserver.k8s.io',
  'internal.apiserver.k8s.io',
  'networking.k8s.io',
  'node.k8s.io',
  'policy',
  'rbac.authorization.k8s.io',
  'resource.k8s.io',
  'scheduling.k8s.io',
  'storage.k8s.io',
  'storagemigration.k8s.io',
]);

/**
 * Whether readiness of this kind depends on more than its existence: built-in kinds with a
 * rule, and every custom resource (which may report `Ready`, `Stalled`, `Reconciling` or an
 * observed generation).
 */
export function hasReadiness(ref: { readonly apiVersion: string; readonly kind: string }): boolean {
  const group = apiGroup(ref.apiVersion);
  return !builtInGroups.has(group) || checked.has(`${group}/${ref.kind}`);
}

/**
 * Which of a bundle's custom health checks decides this object: the first whose kind,
 * API group (when it names an apiVersion; the version does not count) and name (exact, or a
 * glob with `*` and `?`) match. -1 when none does. Pure and light: the agent loads the CEL
 * engine only for bundles that have checks.
 */
export function healthCheckIndex(
  checks: readonly HealthCheck[] | undefined,
  ref: { readonly apiVersion: string; readonly kind: string; readonly name: string },
): number {
  if (!checks) return -1;
  return checks.findIndex(
    (c) =>
      c.kind === ref.kind &&
      (c.apiVersion === undefined || apiGroup(c.apiVersion) === apiGroup(ref.apiVersion)) &&
      (c.name === undefined || globMatch(c.name, ref.name)),
  );
}

function globMatch(pattern: string, name: string): boolean {
  if (!/[*?]/.test(pattern)) return pattern === name;
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`).test(name);
}

const ready: Health = { ready: true, message: '' };
const notReady = (message: string, failed = false): Health => ({
  ready: false,
  message,
  ...(failed ? { failed } : {}),
});

function condition(live: Live, type: string): Condition | undefined {
  const conditions = live.status?.conditions;
  return Array.isArray(conditions) ? conditions.find((c) => c?.type === type) : undefined;
}

function detail(c: Condition): string {
  return c.message || c.reason || '';
}

function num(v: unknown, fallback = 0): number {
  return typeof v === 'number' ? v : fallback;
}

/**
 * kstatus' rules for any object: a pending deletion, a generation the controller has not
 * observed yet (when the object reports one), `Stalled=True` (Failed) and
 * `Reconciling=True` (InProgress). Undefined when they leave it to the kind's rule.
 */
function generic(live: Live): Health | undefined {
  if (live.metadata?.deletionTimestamp) return notReady('being deleted');
  const generation = live.metadata?.generation;
  const seen = live.status?.observedGeneration;
  if (typeof generation === 'number' && typeof seen === 'number' && seen < generation) {
    return notReady(`the controller has not observed generation ${generation} yet`);
  }
  const stalled = condition(live, 'Stalled');
  if (stalled?.status === 'True') return notReady(`stalled: ${detail(stalled)}`.replace(/: $/, ''), true);
  const reconciling = condition(live, 'Reconciling');
  if (reconciling?.status === 'True') {
    return notReady(`reconciling: ${detail(reconciling)}`.replace(/: $/, ''));
  }
  return undefined;
}

/** Workloads must report the generation observed: without it their counts may be stale. */
function observed(live: Live): Health | undefined {
  const generation = live.metadata?.generation;
  const seen = live.status?.observedGeneration;
  if (generation !== undefined && (typeof seen !== 'number' || seen < generation)) {
    return notReady(`the controller has not observed generation ${generation} yet`);
  }
  return undefined;
}

/**
 * The readiness of one live object, as kstatus computes it.
 *
 * @example
 * assessHealth({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'web' }, status: { phase: 'Active' } }); // { ready: true, message: '' }
 * assessHealth({ apiVersion: 'cert-manager.io/v1', kind: 'Certificate', metadata: { name: 'web' },
 *   status: { conditions: [{ type: 'Ready', status: 'False', message: 'Issuing' }] } }); // { ready: false, message: 'not ready: Issuing' }
 */
export function assessHealth(object: unknown): Health {
  const live = object as Live;
  const first = generic(live);
  if (first) return first;
  const group = apiGroup(live.apiVersion ?? '');
  switch (`${group}/${live.kind ?? ''}`) {
    case 'apps/Deployment':
      return deployment(live);
    case 'apps/StatefulSet':
      return statefulSet(live);
    case 'apps/DaemonSet':
      return daemonSet(live);
    case 'apps/ReplicaSet':
      return replicaSet(live);
    case 'batch/Job':
      return job(live);
    case 'apiextensions.k8s.io/CustomResourceDefinition': {
      const names = condition(live, 'NamesAccepted');
      if (names?.status === 'False') return notReady(`names not accepted: ${detail(names)}`, true);
      const established = condition(live, 'Established');
      if (established?.status === 'True') return ready;
      if (established?.status === 'False' && established.reason !== 'Installing') {
        return notReady(`not established: ${detail(established)}`, true);
      }
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
    case '/Pod':
      return pod(live);
    case '/Service': {
      if (live.spec?.type !== 'LoadBalancer') return ready;
      const ingress = (live.status?.loadBalancer as { ingress?: unknown[] } | undefined)?.ingress;
      return Array.isArray(ingress) && ingress.length > 0 ? ready : notReady('no load balancer address yet');
    }
    case 'policy/PodDisruptionBudget':
      return podDisruptionBudget(live);
    default:
      return builtInGroups.has(group) ? ready : readyCondition(live);
  }
}

/** Custom resources: the `Ready` condition when there is one; without one, existing is enough. */
function readyCondition(live: Live): Health {
  const c = condition(live, 'Ready');
  if (!c || c.status === 'True') return ready;
  return notReady(`not ready: ${detail(c) || `Ready is ${c.status ?? 'Unknown'}`}`);
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
  if (num(s.readyReplicas) < want) return notReady(`${num(s.readyReplicas)} of ${want} replicas ready`);
  // kstatus waits for the controller to call the new ReplicaSet available. Without a progress
  // deadline the controller never sets Progressing, so there is nothing to wait for.
  const reportsProgress = typeof live.spec?.progressDeadlineSeconds === 'number' || progressing !== undefined;
  if (
    reportsProgress &&
    !(progressing?.status === 'True' && progressing.reason === 'NewReplicaSetAvailable')
  ) {
    return notReady(`rollout in progress: ${progressing ? detail(progressing) : 'not reported yet'}`);
  }
  const available = condition(live, 'Available');
  if (available?.status !== 'True')
    return notReady(`not available: ${available ? detail(available) : 'not reported yet'}`);
  return ready;
}

function statefulSet(live: Live): Health {
  const pending = observed(live);
  if (pending) return pending;
  const strategy = live.spec?.updateStrategy as
    | { type?: string; rollingUpdate?: { partition?: number } }
    | undefined;
  // With OnDelete the controller never replaces pods itself, so there is no rollout to wait for.
  if (strategy?.type === 'OnDelete') return ready;
  const want = num(live.spec?.replicas, 1);
  const s = live.status ?? {};
  if (num(s.replicas) < want) return notReady(`${num(s.replicas)} of ${want} replicas created`);
  if (num(s.readyReplicas) < want) return notReady(`${num(s.readyReplicas)} of ${want} replicas ready`);
  if (num(s.replicas) > want) return notReady(`${num(s.replicas) - want} replicas pending termination`);
  const partition = num(strategy?.rollingUpdate?.partition);
  if (partition > 0) {
    // A partitioned rollout is done once the pods at or above the partition are updated.
    const due = Math.max(0, want - partition);
    return num(s.updatedReplicas) < due
      ? notReady(`${num(s.updatedReplicas)} of ${due} replicas updated (partition ${partition})`)
      : ready;
  }
  if (num(s.updatedReplicas) < want) return notReady(`${num(s.updatedReplicas)} of ${want} replicas updated`);
  if (s.updateRevision !== undefined && s.currentRevision !== s.updateRevision) {
    return notReady(`rolling out revision ${String(s.updateRevision)}`);
  }
  return ready;
}

function daemonSet(live: Live): Health {
  const pending = observed(live);
  if (pending) return pending;
  const s = live.status ?? {};
  if (typeof s.desiredNumberScheduled !== 'number') return notReady('no pods scheduled yet');
  const want = s.desiredNumberScheduled;
  if (num(s.currentNumberScheduled, want) < want) {
    return notReady(`${num(s.currentNumberScheduled)} of ${want} pods scheduled`);
  }
  if (num(s.updatedNumberScheduled) < want) {
    return notReady(`${num(s.updatedNumberScheduled)} of ${want} pods updated`);
  }
  if (num(s.numberAvailable) < want) return notReady(`${num(s.numberAvailable)} of ${want} pods available`);
  if (num(s.numberReady, want) < want) return notReady(`${num(s.numberReady)} of ${want} pods ready`);
  return ready;
}

function replicaSet(live: Live): Health {
  const pending = observed(live);
  if (pending) return pending;
  const failure = condition(live, 'ReplicaFailure');
  if (failure?.status === 'True') return notReady(`replica failure: ${detail(failure)}`);
  const want = num(live.spec?.replicas, 1);
  const s = live.status ?? {};
  if (num(s.fullyLabeledReplicas) < want) {
    return notReady(`${num(s.fullyLabeledReplicas)} of ${want} replicas labelled`);
  }
  if (num(s.availableReplicas) < want)
    return notReady(`${num(s.availableReplicas)} of ${want} replicas available`);
  if (num(s.readyReplicas) < want) return notReady(`${num(s.readyReplicas)} of ${want} replicas ready`);
  if (num(s.replicas) > want) return notReady(`${num(s.replicas) - want} replicas pending termination`);
  return ready;
}

// kstatus calls a running Job Current; like Flux's kustomize-controller, a bundle waits for
// it to complete, since what comes after (a migration, say) usually depends on its result.
function job(live: Live): Health {
  const failed = condition(live, 'Failed');
  if (failed?.status === 'True') return notReady(`job failed: ${detail(failed)}`.replace(/: $/, ''), true);
  const complete = condition(live, 'Complete');
  if (complete?.status === 'True') return ready;
  // A suspended Job will not run until someone resumes it: nothing to wait for.
  if (condition(live, 'Suspended')?.status === 'True') return ready;
  return notReady('job has not completed');
}

function pod(live: Live): Health {
  const phase = live.status?.phase;
  if (phase === 'Succeeded') return ready;
  // kstatus calls a Failed pod Current (it ran to its end); a bundle that shipped it did not
  // get what it asked for, and Argo CD calls it Degraded: failed here.
  if (phase === 'Failed') return notReady(`pod failed: ${String(live.status?.reason ?? phase)}`, true);
  if (phase === 'Running') {
    if (condition(live, 'Ready')?.status === 'True') return ready;
    const statuses = live.status?.containerStatuses;
    const crashing = Array.isArray(statuses)
      ? (statuses as { name?: string; state?: { waiting?: { reason?: string } } }[]).find(
          (c) => c.state?.waiting?.reason === 'CrashLoopBackOff',
        )
      : undefined;
    // kstatus calls a crash-looping container Failed: restarting it again will not help.
    if (crashing) return notReady(`container ${crashing.name ?? ''} is in CrashLoopBackOff`, true);
    return notReady('running but not ready');
  }
  const scheduled = condition(live, 'PodScheduled');
  // kstatus fails an unschedulable pod after 15 s; a cluster autoscaler may still add a node, so it is only not ready.
  if (scheduled?.status === 'False' && scheduled.reason === 'Unschedulable') {
    return notReady(`unschedulable: ${detail(scheduled)}`.replace(/: $/, ''));
  }
  return notReady(`phase is ${String(phase ?? 'Pending')}`);
}

// As kstatus: ready once the disruption controller has observed it. Whether the budget is met
// depends on pods that may belong to other bundles, or be scaled down on purpose.
function podDisruptionBudget(live: Live): Health {
  return observed(live) ?? ready;
}
