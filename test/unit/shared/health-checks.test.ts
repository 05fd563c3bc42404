import {
  canonicalJson,
  type HealthCheck,
  loadFleet,
  parseRenderedBundle,
  RenderedBundleIntegrityError,
  sha256Hash,
} from '@flotilla/shared';
import { healthCheckIndex } from '@flotilla/shared/agent';
import { compileHealthChecks, evaluateHealthCheck } from '@flotilla/shared/health-checks';
import { describe, expect, it } from 'vitest';
import { repo } from './helpers.ts';

const CLAIM = `apiVersion: example.com/v1
kind: Claim
metadata:
  name: data-0
spec: {}
`;

const evaluate = (check: Omit<HealthCheck, 'kind'>, live: unknown) =>
  evaluateHealthCheck(compileHealthChecks([{ kind: 'Claim', ...check }])[0] as never, live);

const claim = (status?: Record<string, unknown>, metadata: Record<string, unknown> = {}) => ({
  apiVersion: 'example.com/v1',
  kind: 'Claim',
  metadata: { name: 'data-0', generation: 1, ...metadata },
  ...(status ? { status } : {}),
});

describe('health checks travel in the rendered bundle', () => {
  const files = (bundleYaml: string) =>
    repo({ 'bundles/data/bundle.yaml': bundleYaml, 'bundles/data/claim.yaml': CLAIM });

  it('leave the canonical form, and so the hash, of a bundle without checks as it was', () => {
    const plan = loadFleet(files('targets:\n  - clusterSelector: {}\n')).planCluster({ name: 'c1' });
    const rendered = plan.bundles[0]?.rendered;
    if (!rendered) throw new Error('not rendered');
    const doc = parseRenderedBundle(rendered.canonical, rendered.hash);
    expect(Object.keys(doc).sort()).toEqual(['apiVersion', 'bundle', 'kind', 'objects']);
    expect(rendered.canonical).toBe(
      canonicalJson({
        apiVersion: doc.apiVersion,
        bundle: 'data',
        kind: 'RenderedBundle',
        objects: doc.objects,
      }),
    );
  });

  it('take the one-expression form, expression being current by another name', () => {
    const fleet = loadFleet(
      files(`targets: [{ clusterSelector: {} }]
healthChecks: [{ kind: Claim, expression: 'self.status.phase == "Bound"' }]
`),
    );
    expect(fleet.errors).toEqual([]);
    const rendered = fleet.planCluster({ name: 'dev', labels: {} }).bundles[0]?.rendered;
    if (!rendered) throw new Error('not rendered');
    expect(parseRenderedBundle(rendered.canonical, rendered.hash).healthChecks).toEqual([
      { kind: 'Claim', current: 'self.status.phase == "Bound"' },
    ]);
  });

  it('are rendered canonically, a matching customization first', () => {
    const fleet = loadFleet(
      files(`targets:
  - clusterSelector: {}
healthChecks:
  - kind: Claim
    current: self.status.phase == "Bound"
customizations:
  - clusterSelector: env=prod
    healthChecks:
      - apiVersion: example.com/v1
        kind: Claim
        name: data-*
        failed: status.phase == "Lost"
        current: status.phase == "Bound" && has(status.capacity)
        message: '"phase " + status.phase'
`),
    );
    expect(fleet.errors).toEqual([]);
    const dev = fleet.planCluster({ name: 'dev', labels: { env: 'dev' } }).bundles[0]?.rendered;
    const prod = fleet.planCluster({ name: 'prod', labels: { env: 'prod' } }).bundles[0]?.rendered;
    if (!dev || !prod) throw new Error('not rendered');
    const devDoc = parseRenderedBundle(dev.canonical, dev.hash);
    expect(devDoc.healthChecks).toEqual([{ kind: 'Claim', current: 'self.status.phase == "Bound"' }]);
    expect(dev.canonical).toBe(canonicalJson(devDoc));
    const prodDoc = parseRenderedBundle(prod.canonical, prod.hash);
    expect(prodDoc.healthChecks?.map((c) => c.name ?? '-')).toEqual(['data-*', '-']);
    expect(prod.canonical).toBe(canonicalJson(prodDoc));
    expect(prod.hash).not.toBe(dev.hash);
  });

  it('are parsed strictly by the agent', () => {
    const doc = (extra: Record<string, unknown>) => {
      const text = canonicalJson({
        apiVersion: 'flotilla.dev/v1alpha1',
        bundle: 'data',
        kind: 'RenderedBundle',
        objects: [],
        ...extra,
      });
      return () => parseRenderedBundle(text, sha256Hash(text));
    };
    expect(doc({ healthChecks: [{ kind: 'Claim', current: 'true' }] })).not.toThrow();
    expect(doc({ healthChecks: [] })).toThrow(
      'rendered bundle data: healthChecks: expected a non-empty list',
    );
    expect(doc({ healthChecks: [{ kind: 'Claim' }] })).toThrow(
      'rendered bundle data: healthChecks[0].current: expected a non-empty string',
    );
    expect(doc({ healthChecks: [{ kind: 'Claim', current: 'true', expr: 'x' }] })).toThrow(
      'rendered bundle data: healthChecks[0].expr: unknown field',
    );
    expect(doc({ extra: 1 })).toThrow(RenderedBundleIntegrityError);
  });
});

describe('which check applies', () => {
  const checks: HealthCheck[] = [
    { apiVersion: 'example.com/v1', kind: 'Claim', name: 'data-?', current: 'true' },
    { kind: 'Claim', name: 'logs', current: 'true' },
    { apiVersion: 'other.io/v1', kind: 'Claim', current: 'true' },
  ];
  const ref = (name: string, apiVersion = 'example.com/v2') => ({ apiVersion, kind: 'Claim', name });

  it('matches kind, API group (any version) and name glob; first match wins', () => {
    expect(healthCheckIndex(checks, ref('data-1'))).toBe(0);
    expect(healthCheckIndex(checks, ref('data-10'))).toBe(-1);
    expect(healthCheckIndex(checks, ref('logs'))).toBe(1);
    expect(healthCheckIndex(checks, ref('x', 'other.io/v1beta1'))).toBe(2);
    expect(healthCheckIndex(checks, { apiVersion: 'v1', kind: 'ConfigMap', name: 'data-1' })).toBe(-1);
    expect(healthCheckIndex(undefined, ref('data-1'))).toBe(-1);
  });
});

describe('evaluating a check on a live object', () => {
  const bound = 'self.status.phase == "Bound"';

  it('is ready when current is true, not ready otherwise, naming the expression', () => {
    expect(evaluate({ current: bound }, claim({ phase: 'Bound' }))).toEqual({ ready: true, message: '' });
    expect(evaluate({ current: bound }, claim({ phase: 'Pending' }))).toEqual({
      ready: false,
      message: 'health check: self.status.phase == "Bound" is false',
    });
  });

  it('evaluates inProgress, then failed, then current, as Flux does', () => {
    const check = {
      inProgress: 'status.phase == "Resizing"',
      failed: 'status.phase == "Lost"',
      current: 'status.phase in ["Bound", "Resizing"]',
      message: '"phase is " + status.phase',
    };
    expect(evaluate(check, claim({ phase: 'Resizing' }))).toEqual({
      ready: false,
      message: 'phase is Resizing',
    });
    expect(evaluate(check, claim({ phase: 'Lost' }))).toEqual({
      ready: false,
      message: 'phase is Lost',
      failed: true,
    });
    expect(evaluate(check, claim({ phase: 'Bound' })).ready).toBe(true);
  });

  it('waits for the controller to observe the generation first', () => {
    expect(
      evaluate({ current: bound }, claim({ phase: 'Bound', observedGeneration: 1 }, { generation: 2 })),
    ).toEqual({ ready: false, message: 'the controller has not observed generation 2 yet' });
  });

  it('exposes the object as self and object, with integers as CEL ints', () => {
    expect(evaluate({ current: 'object.status.replicas + 1 == 4' }, claim({ replicas: 3 })).ready).toBe(true);
    expect(evaluate({ current: 'self.metadata.name.startsWith("data-")' }, claim({})).ready).toBe(true);
    expect(
      evaluate(
        { current: 'self.status.conditions.exists(c, c.type == "Synced" && c.status == "True")' },
        claim({ conditions: [{ type: 'Synced', status: 'True' }] }),
      ).ready,
    ).toBe(true);
  });

  it('makes an expression that errors or is not a bool NotReady with the error, never throws', () => {
    expect(evaluate({ current: bound }, claim())).toEqual({
      ready: false,
      message:
        'cannot evaluate health check "current" (self.status.phase == "Bound"): field not found: status',
    });
    expect(evaluate({ current: 'self.metadata.name' }, claim({}))).toEqual({
      ready: false,
      message: 'health check "current" (self.metadata.name) gave a string, not a bool',
    });
    expect(evaluate({ current: 'self.status.replicas / 0 == 1' }, claim({ replicas: 1 })).message).toMatch(
      /divide by zero/,
    );
    expect(evaluate({ current: bound, message: 'self.status.why' }, claim({ phase: 'Pending' }))).toEqual({
      ready: false,
      message: 'health check: self.status.phase == "Bound" is false (message: field not found: why)',
    });
  });
});
