/**
 * Differential test of our label-selector language against the reference: the API
 * server's own parser and matcher. The same selector text goes to `flotilla -l` (and every
 * `clusterSelector` string in the fleet repo) through parseLabelSelector + matchesSelector,
 * and to a real kube-apiserver as a list's `labelSelector`; both must select the same
 * objects, and refuse the same texts.
 */
import { matchesSelector, parseLabelSelector } from '@flotilla/shared';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { KubeApiError, type KubeClient } from '../../../agent/src/kube/client.ts';
import { cleanUp, controlPlane, kubeClientOf, uniqueName } from '../agent/harness.ts';

const bed = inject('bed');
const plane = controlPlane(bed, 0);
const ns = uniqueName('selectors');
let kube: KubeClient;

/** Objects with every kind of label set a selector tells apart: absent, empty, one of several values. */
const labelSets: Record<string, Record<string, string>> = {
  none: {},
  'env-empty': { env: '' },
  'env-prod': { env: 'prod' },
  'env-staging': { env: 'staging' },
  'env-prod-eu': { env: 'prod', region: 'eu' },
  'env-prod-us-gold': { env: 'prod', region: 'us', tier: 'gold' },
  'region-eu': { region: 'eu' },
  'region-empty': { region: '' },
  'tier-silver': { tier: 'silver' },
  'dotted-key': { 'app.kubernetes.io/name': 'web', env: 'dev' },
};

const selectors = [
  '',
  'env',
  '!env',
  'env=prod',
  'env==prod',
  'env!=prod',
  'env=',
  'env!=',
  'env in (prod,staging)',
  'env notin (prod,staging)',
  'env in ()',
  'env notin ()',
  'env in (prod,)',
  'env notin (,prod)',
  'env=prod,region=eu',
  'env=prod,!tier',
  'region in (eu,us),tier',
  'app.kubernetes.io/name=web',
  'app.kubernetes.io/name in (web, api)',
  ' env = prod , region ',
  // Refused by both:
  'env in (prod',
  'env in prod',
  '=prod',
  'env=prod,',
  'Bad Key=1',
  'env=not/valid',
];

beforeAll(async () => {
  kube = await kubeClientOf(plane.kubeconfigPath);
  await kube.request('POST', '/api/v1/namespaces', {
    body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } },
  });
  for (const [name, labels] of Object.entries(labelSets)) {
    await kube.request('POST', `/api/v1/namespaces/${ns}/configmaps`, {
      body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels } },
    });
  }
});

afterAll(async () => {
  await cleanUp(kube, [ns]);
  kube.close();
});

/** What the API server selects, or `refused` when it answers 400. */
async function apiServer(selector: string): Promise<string[] | 'refused'> {
  try {
    const items = await kube.list<{ metadata: { name: string } }>(`/api/v1/namespaces/${ns}/configmaps`, {
      labelSelector: selector,
    });
    return items
      .map((i) => i.metadata.name)
      .filter((n) => n in labelSets)
      .sort();
  } catch (e) {
    if (e instanceof KubeApiError && e.status === 400) return 'refused';
    throw e;
  }
}

function ours(selector: string): string[] | 'refused' {
  let parsed: ReturnType<typeof parseLabelSelector>;
  try {
    parsed = parseLabelSelector(selector);
  } catch {
    return 'refused';
  }
  return Object.entries(labelSets)
    .filter(([, labels]) => matchesSelector(parsed, labels))
    .map(([name]) => name)
    .sort();
}

describe('label selectors, against the API server', () => {
  it.each(selectors)('%j selects what kube-apiserver selects', async (selector) => {
    expect(ours(selector)).toEqual(await apiServer(selector));
  });

  it('differs on purpose in one place: > and < (integer comparisons) are refused, not supported', async () => {
    // The API server's string form has them; a LabelSelector's matchExpressions (what
    // bundle.yaml and the hub store) has no such operator, so `-l` refuses them clearly.
    expect(await apiServer('tier,level>1')).toEqual([]);
    expect(ours('tier,level>1')).toBe('refused');
  });
});
