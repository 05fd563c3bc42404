import {
  assessHealth,
  backoffDelay,
  buildStatusReport,
  coveredBy,
  decodeInventory,
  encodeInventory,
  type FieldsV1,
  InventoryFormatError,
  isClusterFoundation,
  isoTime,
  jittered,
  objectId,
  ownedFieldDifferences,
  pendingInventory,
  pruneOrder,
  rankGroups,
  removedWhenDone,
  reportLimits,
  staleEntries,
} from '@flotilla/shared/agent';
import { parseStatusReport, statusLimits } from '@flotilla/shared/hub';
import { describe, expect, it } from 'vitest';

const ref = (kind: string, name: string, namespace = 'web', apiVersion = 'v1') => ({
  apiVersion,
  kind,
  namespace,
  name,
});

describe('object identity and order', () => {
  it('names objects group/Kind/namespace/name, as the hub does', () => {
    expect(objectId(ref('ConfigMap', 'cfg'))).toBe('/ConfigMap/web/cfg');
    expect(objectId(ref('Deployment', 'web', 'web', 'apps/v1'))).toBe('apps/Deployment/web/web');
    expect(objectId(ref('Namespace', 'web', ''))).toBe('/Namespace//web');
  });

  it('applies namespaces and definitions first, and prunes in the reverse order', () => {
    const widget = ref('Widget', 'w', 'web', 'example.com/v1');
    const crd = ref('CustomResourceDefinition', 'widgets.example.com', '', 'apiextensions.k8s.io/v1');
    const ns = ref('Namespace', 'web', '');
    const dep = ref('Deployment', 'web', 'web', 'apps/v1');
    expect(isClusterFoundation(ns)).toBe(true);
    expect(isClusterFoundation(crd)).toBe(true);
    expect(isClusterFoundation(dep)).toBe(false);
    expect(pruneOrder([ns, widget, crd, dep]).map((r) => r.kind)).toEqual([
      'Widget',
      'Deployment',
      'CustomResourceDefinition',
      'Namespace',
    ]);
    expect(
      rankGroups([dep, ref('ConfigMap', 'a'), ref('ConfigMap', 'b'), widget], (r) => r.kind).map((g) =>
        g.map((r) => r.name),
      ),
    ).toEqual([['a', 'b'], ['web'], ['w']]);
  });
});

describe('inventories', () => {
  const inventory = {
    bundle: 'web',
    hash: `sha256:${'a'.repeat(64)}`,
    generation: 4,
    entries: [{ ...ref('ConfigMap', 'cfg'), digest: 'd1' }, ref('Service', 'web')],
  };

  it('round-trips through readable text', () => {
    const text = encodeInventory(inventory);
    expect(text.split('\n')[0]).toBe('# flotilla inventory v1');
    expect(text).toContain('["v1","ConfigMap","web","cfg","d1"]');
    expect(decodeInventory(text)).toEqual(inventory);
  });

  it('refuses text that is not an inventory', () => {
    expect(() => decodeInventory('hello')).toThrow(InventoryFormatError);
    expect(() => decodeInventory('# flotilla inventory v1\n{"bundle":"web"}\n["v1"]\n')).toThrow(/line 3/);
  });

  it('prunes what left the desired state, but not what moved to another bundle', () => {
    const wanted = new Set(['/ConfigMap/web/cfg']);
    expect(staleEntries(inventory, wanted).map((e) => e.name)).toEqual(['web']);
    expect(staleEntries(inventory, new Set(['/ConfigMap/web/cfg', '/Service/web/web']))).toEqual([]);
    expect(staleEntries(undefined, wanted)).toEqual([]);
  });

  it('records objects about to be created before they are applied', () => {
    const pending = pendingInventory(inventory, 'web', [ref('ConfigMap', 'cfg'), ref('Secret', 'new')]);
    expect(pending?.entries.map((e) => [e.name, e.digest])).toEqual([
      ['cfg', 'd1'],
      ['web', undefined],
      ['new', undefined],
    ]);
    expect(pending?.hash).toBe(inventory.hash);
    expect(pendingInventory(inventory, 'web', [ref('ConfigMap', 'cfg')])).toBeUndefined();
  });
});

describe('drift in owned fields', () => {
  const owned: FieldsV1 = {
    'f:metadata': { 'f:labels': { 'f:app.kubernetes.io/name': {}, 'f:flotilla.dev/bundle': {} } },
    'f:spec': {
      'f:replicas': {},
      'f:template': {
        'f:spec': {
          'f:containers': { 'k:{"name":"web"}': { '.': {}, 'f:image': {}, 'f:name': {} } },
          'f:tolerations': {},
        },
      },
    },
    'f:metadata.finalizers': {},
  };
  const base = {
    metadata: { labels: { 'app.kubernetes.io/name': 'web', 'flotilla.dev/bundle': 'web' } },
    spec: {
      replicas: 2,
      template: {
        spec: {
          containers: [
            { name: 'web', image: 'web:1', terminationMessagePath: '/dev/termination-log' },
            { name: 'sidecar', image: 'proxy:1' },
          ],
          tolerations: [{ key: 'a' }],
        },
      },
    },
  };

  it('names the owned fields that differ, and nothing else', () => {
    const live = structuredClone(base);
    live.spec.replicas = 5;
    (live.spec.template.spec.containers[0] as { image: string }).image = 'web:2';
    (live.spec.template.spec.containers[1] as { image: string }).image = 'proxy:2';
    live.metadata.labels['app.kubernetes.io/name'] = 'other';
    expect(ownedFieldDifferences(base, live, owned)).toEqual([
      'metadata.labels["app.kubernetes.io/name"]',
      'spec.replicas',
      'spec.template.spec.containers[name=web].image',
    ]);
    expect(ownedFieldDifferences(base, structuredClone(base), owned)).toEqual([]);
  });

  it('reports a missing list item once, and atomic fields as a whole', () => {
    const live = structuredClone(base);
    live.spec.template.spec.containers.splice(0, 1);
    live.spec.template.spec.tolerations = [{ key: 'b' }];
    expect(ownedFieldDifferences(base, live, owned)).toEqual([
      'spec.template.spec.containers[name=web]',
      'spec.template.spec.tolerations',
    ]);
  });

  it('compares set members by value', () => {
    const set: FieldsV1 = { 'f:metadata': { 'f:finalizers': { 'v:"example.com/keep"': {} } } };
    expect(
      ownedFieldDifferences(
        { metadata: { finalizers: ['example.com/keep'] } },
        { metadata: { finalizers: [] } },
        set,
      ),
    ).toEqual(['metadata.finalizers[example.com/keep]']);
  });

  it('takes a first, cheap look: every desired field present with the same value', () => {
    const desired = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: 'web', labels: { app: 'web' } },
      spec: { replicas: 2, template: { spec: { containers: [{ name: 'web', image: 'web:1' }] } } },
    };
    const live = {
      metadata: { name: 'web', namespace: 'web', uid: 'x', labels: { app: 'web', extra: 'y' } },
      spec: {
        replicas: 2,
        template: {
          spec: { containers: [{ name: 'web', image: 'web:1', imagePullPolicy: 'IfNotPresent' }] },
        },
      },
      status: { replicas: 2 },
    };
    expect(coveredBy(desired, live)).toBe(true);
    expect(coveredBy(desired, { ...live, spec: { ...live.spec, replicas: 3 } })).toBe(false);
    expect(coveredBy({ ...desired, data: { cpu: 0.5 } }, { ...live, data: { cpu: '500m' } })).toBe(false);
  });
});

describe('objects Kubernetes removes when done', () => {
  it('are Jobs with a TTL after finishing and Pods that do not restart, nothing else', () => {
    const job = (spec: Record<string, unknown>) => ({ apiVersion: 'batch/v1', kind: 'Job', spec });
    expect(removedWhenDone(job({ ttlSecondsAfterFinished: 0 }))).toBe(true);
    expect(removedWhenDone(job({ ttlSecondsAfterFinished: 3600 }))).toBe(true);
    expect(removedWhenDone(job({}))).toBe(false);
    const pod = (restartPolicy?: string) => ({ apiVersion: 'v1', kind: 'Pod', spec: { restartPolicy } });
    expect(removedWhenDone(pod('Never'))).toBe(true);
    expect(removedWhenDone(pod('OnFailure'))).toBe(true);
    expect(removedWhenDone(pod('Always'))).toBe(false);
    expect(removedWhenDone(pod())).toBe(false);
    expect(removedWhenDone({ apiVersion: 'v1', kind: 'ConfigMap', data: {} })).toBe(false);
    expect(
      removedWhenDone({ apiVersion: 'example.com/v1', kind: 'Job', spec: { ttlSecondsAfterFinished: 0 } }),
    ).toBe(false);
  });
});

describe('readiness', () => {
  const deployment = (status: Record<string, unknown>, generation = 2) => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', generation },
    spec: { replicas: 2 },
    status,
  });

  it('waits for a Deployment to be observed, updated and available', () => {
    expect(assessHealth(deployment({ observedGeneration: 1 })).message).toMatch(/not observed generation 2/);
    expect(assessHealth(deployment({ observedGeneration: 2, updatedReplicas: 1, replicas: 2 })).message).toBe(
      '1 of 2 replicas updated',
    );
    expect(
      assessHealth(
        deployment({ observedGeneration: 2, updatedReplicas: 2, replicas: 2, availableReplicas: 1 }),
      ).message,
    ).toBe('1 of 2 replicas available');
    expect(
      assessHealth(
        deployment({
          observedGeneration: 2,
          updatedReplicas: 2,
          replicas: 2,
          availableReplicas: 2,
          readyReplicas: 2,
          conditions: [{ type: 'Available', status: 'True' }],
        }),
      ),
    ).toEqual({ ready: true, message: '' });
    expect(
      assessHealth(
        deployment({
          observedGeneration: 2,
          conditions: [
            { type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: 'too slow' },
          ],
        }),
      ),
    ).toMatchObject({ ready: false, failed: true });
  });

  it('knows StatefulSets, DaemonSets, Jobs, CRDs, Namespaces, PVCs and Services', () => {
    const sts = {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { generation: 1 },
      spec: { replicas: 3 },
    };
    expect(assessHealth({ ...sts, status: { observedGeneration: 1, readyReplicas: 2 } }).ready).toBe(false);
    expect(
      assessHealth({
        ...sts,
        status: {
          observedGeneration: 1,
          replicas: 3,
          readyReplicas: 3,
          updatedReplicas: 3,
          currentRevision: 'a',
          updateRevision: 'a',
        },
      }).ready,
    ).toBe(true);
    const ds = { apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { generation: 1 } };
    expect(
      assessHealth({
        ...ds,
        status: {
          observedGeneration: 1,
          desiredNumberScheduled: 3,
          updatedNumberScheduled: 3,
          numberAvailable: 2,
        },
      }).ready,
    ).toBe(false);
    expect(
      assessHealth({
        ...ds,
        status: {
          observedGeneration: 1,
          desiredNumberScheduled: 3,
          updatedNumberScheduled: 3,
          numberAvailable: 3,
          numberReady: 3,
        },
      }).ready,
    ).toBe(true);
    const job = { apiVersion: 'batch/v1', kind: 'Job', metadata: {} };
    expect(
      assessHealth({ ...job, status: { conditions: [{ type: 'Complete', status: 'True' }] } }).ready,
    ).toBe(true);
    expect(
      assessHealth({
        ...job,
        status: { conditions: [{ type: 'Failed', status: 'True', message: 'BackoffLimitExceeded' }] },
      }),
    ).toMatchObject({
      ready: false,
      failed: true,
    });
    const crd = { apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: {} };
    expect(
      assessHealth({ ...crd, status: { conditions: [{ type: 'Established', status: 'True' }] } }).ready,
    ).toBe(true);
    expect(assessHealth({ ...crd, status: {} }).ready).toBe(false);
    expect(
      assessHealth({ apiVersion: 'v1', kind: 'Namespace', status: { phase: 'Terminating' } }).ready,
    ).toBe(false);
    expect(
      assessHealth({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', status: { phase: 'Bound' } }).ready,
    ).toBe(true);
    expect(
      assessHealth({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', status: { phase: 'Pending' } }).ready,
    ).toBe(false);
    expect(assessHealth({ apiVersion: 'v1', kind: 'Service', spec: { type: 'ClusterIP' } }).ready).toBe(true);
    expect(
      assessHealth({ apiVersion: 'v1', kind: 'Service', spec: { type: 'LoadBalancer' }, status: {} }).ready,
    ).toBe(false);
    expect(assessHealth({ apiVersion: 'v1', kind: 'ConfigMap' }).ready).toBe(true);
  });
});

describe('status reports', () => {
  it('keeps the hub limits (checked against the hub validator)', () => {
    expect(reportLimits).toEqual(statusLimits);
    const report = buildStatusReport({
      agentVersion: '0.1.0',
      observedAt: new Date('2026-01-01T00:00:00Z'),
      appliedGeneration: 3,
      bundles: [
        {
          name: 'a',
          state: 'Failed',
          hash: `sha256:${'a'.repeat(64)}`,
          generation: 3,
          message: 'x'.repeat(10_000),
          failedObject: '/ConfigMap/web/a',
        },
        {
          name: 'b',
          state: 'Drifted',
          hash: `sha256:${'b'.repeat(64)}`,
          generation: 3,
          drift: Array.from({ length: 150 }, (_, i) => ({
            object: `/ConfigMap/web/c${i}`,
            fields: Array.from({ length: 120 }, (_, j) => `data.k${j}`),
          })),
        },
        // Drifted without drift would be refused by the hub: it is reported Ready.
        { name: 'c', state: 'Drifted', hash: `sha256:${'c'.repeat(64)}`, generation: 3, drift: [] },
        { name: 'd', state: 'Failed', hash: `sha256:${'d'.repeat(64)}`, generation: 3 },
      ],
    });
    const parsed = parseStatusReport(report);
    expect(parsed.bundles?.[0]?.message?.length).toBe(4096);
    expect(parsed.bundles?.[1]?.drift).toHaveLength(100);
    expect(parsed.bundles?.[1]?.drift?.[0]?.fields).toHaveLength(100);
    expect(parsed.bundles?.[2]?.state).toBe('Ready');
    expect(parsed.bundles?.[3]?.message).toBe('apply failed');
  });

  it('is a bare heartbeat without bundles', () => {
    const report = buildStatusReport({ agentVersion: '0.1.0', observedAt: new Date(0) });
    expect(report).toEqual({
      apiVersion: 'flotilla.dev/v1alpha1',
      kind: 'ClusterStatus',
      agentVersion: '0.1.0',
      observedAt: '1970-01-01T00:00:00.000Z',
    });
    expect(parseStatusReport(report)).toEqual(report);
  });

  it('carries the Kubernetes version only when the hub would take it', () => {
    const at = new Date(0);
    const withVersion = buildStatusReport({
      agentVersion: '0.1.0',
      kubeVersion: 'v1.33.2+k3s1',
      observedAt: at,
    });
    expect(parseStatusReport(withVersion).kubeVersion).toBe('v1.33.2+k3s1');
    for (const bad of ['1.33.2', `v1.33.2-${'x'.repeat(60)}`, ''])
      expect(
        buildStatusReport({ agentVersion: '0.1.0', kubeVersion: bad, observedAt: at }),
      ).not.toHaveProperty('kubeVersion');
  });
});

describe('retry timing', () => {
  it('backs off exponentially with full jitter, within bounds', () => {
    const opts = { minMs: 1_000, maxMs: 60_000 };
    expect([0, 1, 2, 3].map((a) => backoffDelay(a, opts, () => 0.999999))).toEqual([
      1_000, 2_000, 4_000, 8_000,
    ]);
    expect(backoffDelay(3, opts, () => 0)).toBe(1_000);
    expect(backoffDelay(50, opts, () => 0.999999)).toBe(60_000);
  });

  it('spreads periodic work', () => {
    expect(jittered(100_000, 0.2, () => 0)).toBe(80_000);
    expect(jittered(100_000, 0.2, () => 0.5)).toBe(100_000);
    expect(jittered(100_000, 0.2, () => 0.999999)).toBe(120_000);
  });
});

describe('isoTime', () => {
  it('writes what Date.prototype.toISOString writes, across leap days, centuries and eras', () => {
    const fixed = [
      0,
      -1,
      Date.UTC(2000, 1, 29, 23, 59, 59, 999),
      Date.UTC(2100, 1, 28, 12),
      Date.UTC(2100, 2, 1),
      Date.UTC(1900, 1, 28, 0, 0, 0, 1),
      Date.UTC(2024, 11, 31, 23, 59, 59, 999),
      Date.UTC(2026, 10, 23, 8, 15, 30, 123),
      Date.UTC(1600, 0, 1),
      Date.UTC(9999, 11, 31, 23, 59, 59, 999),
      -62_167_219_200_000, // 0000-01-01T00:00:00.000Z
    ];
    let seed = 7;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const spread = Array.from({ length: 20_000 }, () =>
      Math.floor(-62_167_219_200_000 + random() * 315_537_897_599_999),
    );
    for (const ms of [...fixed, ...spread]) expect(isoTime(ms)).toBe(new Date(ms).toISOString());
  });

  it('drops fractions of a millisecond as Date does', () => {
    expect(isoTime(1_700_000_000_123.9)).toBe(new Date(1_700_000_000_123.9).toISOString());
  });
});
