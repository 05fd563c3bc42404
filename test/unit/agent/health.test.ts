import { assessHealth, hasReadiness } from '@flotilla/shared/agent';
import { describe, expect, it } from 'vitest';

const cr = (status?: Record<string, unknown>, metadata: Record<string, unknown> = { generation: 1 }) => ({
  apiVersion: 'cert-manager.io/v1',
  kind: 'Certificate',
  metadata: { name: 'web', ...metadata },
  spec: {},
  ...(status ? { status } : {}),
});

const cond = (type: string, status: string, message?: string, reason?: string) => ({
  type,
  status,
  ...(message ? { message } : {}),
  ...(reason ? { reason } : {}),
});

describe('hasReadiness', () => {
  it('reads custom resources and built-in kinds with a rule, not the rest of Kubernetes', () => {
    expect(hasReadiness({ apiVersion: 'cert-manager.io/v1', kind: 'Certificate' })).toBe(true);
    expect(hasReadiness({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway' })).toBe(true);
    expect(hasReadiness({ apiVersion: 'kustomize.toolkit.fluxcd.io/v1', kind: 'Kustomization' })).toBe(true);
    expect(hasReadiness({ apiVersion: 'apps/v1', kind: 'Deployment' })).toBe(true);
    expect(hasReadiness({ apiVersion: 'v1', kind: 'Pod' })).toBe(true);
    expect(hasReadiness({ apiVersion: 'policy/v1', kind: 'PodDisruptionBudget' })).toBe(true);
    expect(hasReadiness({ apiVersion: 'v1', kind: 'ConfigMap' })).toBe(false);
    expect(hasReadiness({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role' })).toBe(false);
    expect(hasReadiness({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy' })).toBe(false);
  });
});

describe('generic rules (kstatus) for any object', () => {
  it('is ready once it exists when it reports nothing', () => {
    expect(assessHealth(cr())).toEqual({ ready: true, message: '' });
    expect(assessHealth(cr({}))).toEqual({ ready: true, message: '' });
    expect(assessHealth(cr({ conditions: [] }))).toEqual({ ready: true, message: '' });
  });

  it('waits while the observed generation is behind, and only when one is reported', () => {
    expect(assessHealth(cr({ observedGeneration: 1 }, { generation: 2 }))).toEqual({
      ready: false,
      message: 'the controller has not observed generation 2 yet',
    });
    expect(assessHealth(cr({ observedGeneration: 2 }, { generation: 2 })).ready).toBe(true);
    expect(assessHealth(cr({ phase: 'x' }, { generation: 2 })).ready).toBe(true);
  });

  it('follows the Ready condition: True is ready, False waits with its message', () => {
    expect(assessHealth(cr({ conditions: [cond('Ready', 'True')] })).ready).toBe(true);
    expect(assessHealth(cr({ conditions: [cond('Ready', 'False', 'Issuing certificate')] }))).toEqual({
      ready: false,
      message: 'not ready: Issuing certificate',
    });
    expect(assessHealth(cr({ conditions: [cond('Ready', 'Unknown')] }))).toEqual({
      ready: false,
      message: 'not ready: Ready is Unknown',
    });
  });

  it('calls Stalled=True failed for good, and Reconciling=True in progress', () => {
    expect(assessHealth(cr({ conditions: [cond('Stalled', 'True', 'bad spec')] }))).toEqual({
      ready: false,
      message: 'stalled: bad spec',
      failed: true,
    });
    expect(
      assessHealth(
        cr({ conditions: [cond('Ready', 'True'), cond('Reconciling', 'True', '', 'Progressing')] }),
      ),
    ).toEqual({ ready: false, message: 'reconciling: Progressing' });
    expect(
      assessHealth(cr({ conditions: [cond('Reconciling', 'False'), cond('Stalled', 'False')] })).ready,
    ).toBe(true);
  });

  it('waits for an object being deleted', () => {
    expect(assessHealth(cr({}, { deletionTimestamp: '2026-01-01T00:00:00Z' }))).toEqual({
      ready: false,
      message: 'being deleted',
    });
  });

  it('applies the generic rules to built-in kinds too, and ignores Ready on built-ins without a rule', () => {
    expect(
      assessHealth({
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        metadata: {},
        status: { phase: 'Bound', conditions: [cond('Stalled', 'True')] },
      }),
    ).toMatchObject({ ready: false, failed: true });
    expect(
      assessHealth({ apiVersion: 'v1', kind: 'ConfigMap', status: { conditions: [cond('Ready', 'False')] } })
        .ready,
    ).toBe(true);
  });
});

describe('built-in kinds (kstatus rules)', () => {
  const deployment = (status: Record<string, unknown>) => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', generation: 2 },
    spec: { replicas: 2 },
    status: { observedGeneration: 2, replicas: 2, updatedReplicas: 2, availableReplicas: 2, ...status },
  });

  it('Deployment: ready replicas, the new ReplicaSet available when progress is reported, Available', () => {
    expect(assessHealth(deployment({ readyReplicas: 1 })).message).toBe('1 of 2 replicas ready');
    expect(assessHealth(deployment({ readyReplicas: 2 })).message).toBe('not available: not reported yet');
    expect(
      assessHealth({
        ...deployment({ readyReplicas: 2 }),
        spec: { replicas: 2, progressDeadlineSeconds: 600 },
      }).message,
    ).toBe('rollout in progress: not reported yet');
    expect(
      assessHealth(
        deployment({ readyReplicas: 2, conditions: [cond('Progressing', 'True', 'x', 'ReplicaSetUpdated')] }),
      ),
    ).toEqual({ ready: false, message: 'rollout in progress: x' });
    expect(
      assessHealth(
        deployment({
          readyReplicas: 2,
          conditions: [cond('Progressing', 'True', '', 'NewReplicaSetAvailable'), cond('Available', 'True')],
        }),
      ),
    ).toEqual({ ready: true, message: '' });
  });

  it('StatefulSet: OnDelete needs no rollout; a partition only its updated part', () => {
    const sts = (spec: Record<string, unknown>, status: Record<string, unknown>) => ({
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { generation: 1 },
      spec: { replicas: 3, ...spec },
      status: { observedGeneration: 1, ...status },
    });
    expect(assessHealth(sts({ updateStrategy: { type: 'OnDelete' } }, {})).ready).toBe(true);
    expect(assessHealth(sts({}, { replicas: 2, readyReplicas: 2 })).message).toBe('2 of 3 replicas created');
    const partitioned = { updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 2 } } };
    expect(
      assessHealth(sts(partitioned, { replicas: 3, readyReplicas: 3, updatedReplicas: 0 })).message,
    ).toBe('0 of 1 replicas updated (partition 2)');
    expect(
      assessHealth(
        sts(partitioned, {
          replicas: 3,
          readyReplicas: 3,
          updatedReplicas: 1,
          currentRevision: 'a',
          updateRevision: 'b',
        }),
      ).ready,
    ).toBe(true);
  });

  it('DaemonSet: scheduled, updated, available and ready', () => {
    const ds = (status: Record<string, unknown>) => ({
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { generation: 1 },
      status: { observedGeneration: 1, ...status },
    });
    expect(assessHealth(ds({})).message).toBe('no pods scheduled yet');
    expect(
      assessHealth(
        ds({
          desiredNumberScheduled: 2,
          currentNumberScheduled: 2,
          updatedNumberScheduled: 2,
          numberAvailable: 2,
          numberReady: 1,
        }),
      ).message,
    ).toBe('1 of 2 pods ready');
  });

  it('ReplicaSet: available and ready replicas', () => {
    const rs = (status: Record<string, unknown>) => ({
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: { generation: 1 },
      spec: { replicas: 2 },
      status: { observedGeneration: 1, fullyLabeledReplicas: 2, ...status },
    });
    expect(assessHealth(rs({ replicas: 2, availableReplicas: 1, readyReplicas: 2 })).message).toBe(
      '1 of 2 replicas available',
    );
    expect(assessHealth(rs({ replicas: 2, availableReplicas: 2, readyReplicas: 2 })).ready).toBe(true);
  });

  it('Pod: succeeded or running and Ready; failed and crash-looping pods are failed', () => {
    const pod = (status: Record<string, unknown>) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {},
      status,
    });
    expect(assessHealth(pod({ phase: 'Succeeded' })).ready).toBe(true);
    expect(assessHealth(pod({ phase: 'Running', conditions: [cond('Ready', 'True')] })).ready).toBe(true);
    expect(assessHealth(pod({ phase: 'Running', conditions: [cond('Ready', 'False')] }))).toEqual({
      ready: false,
      message: 'running but not ready',
    });
    expect(
      assessHealth(
        pod({
          phase: 'Running',
          containerStatuses: [{ name: 'web', state: { waiting: { reason: 'CrashLoopBackOff' } } }],
        }),
      ),
    ).toEqual({ ready: false, message: 'container web is in CrashLoopBackOff', failed: true });
    expect(assessHealth(pod({ phase: 'Failed', reason: 'Evicted' }))).toMatchObject({ failed: true });
    expect(assessHealth(pod({ phase: 'Pending' })).message).toBe('phase is Pending');
  });

  it('PodDisruptionBudget: observed by the disruption controller, as kstatus (the budget may not be met)', () => {
    const pdb = (status: Record<string, unknown>) => ({
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: { generation: 2 },
      status,
    });
    expect(assessHealth(pdb({})).message).toBe('the controller has not observed generation 2 yet');
    expect(assessHealth(pdb({ observedGeneration: 2, currentHealthy: 1, desiredHealthy: 2 })).ready).toBe(
      true,
    );
  });

  it('Job: complete, or suspended; CRD: Established=False other than Installing fails', () => {
    const job = (conditions: unknown[]) => ({
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: {},
      status: { conditions },
    });
    expect(assessHealth(job([])).message).toBe('job has not completed');
    expect(assessHealth(job([cond('Suspended', 'True')])).ready).toBe(true);
    const crd = (conditions: unknown[]) => ({
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: {},
      status: { conditions },
    });
    expect(assessHealth(crd([cond('Established', 'False', '', 'Installing')]))).toEqual({
      ready: false,
      message: 'not established yet',
    });
    expect(assessHealth(crd([cond('Established', 'False', 'bad schema', 'Invalid')]))).toEqual({
      ready: false,
      message: 'not established: bad schema',
      failed: true,
    });
  });

  it('CRD names not accepted fail for good; a Job that failed too', () => {
    expect(
      assessHealth({
        apiVersion: 'apiextensions.k8s.io/v1',
        kind: 'CustomResourceDefinition',
        metadata: {},
        status: { conditions: [cond('NamesAccepted', 'False', 'clash')] },
      }),
    ).toEqual({ ready: false, message: 'names not accepted: clash', failed: true });
    expect(
      assessHealth({
        apiVersion: 'batch/v1',
        kind: 'Job',
        metadata: {},
        status: { conditions: [cond('Failed', 'True', '', 'BackoffLimitExceeded')] },
      }),
    ).toEqual({ ready: false, message: 'job failed: BackoffLimitExceeded', failed: true });
  });
});
