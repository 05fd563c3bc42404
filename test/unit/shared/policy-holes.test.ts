/**
 * Verdicts shared across the clusters a bundle names: an object with a cluster variable is
 * evaluated once masked, each variable a tripwire; the verdict is shared only when no rule,
 * condition, validation or message reads a variable. Every case checks each cluster's
 * violations against a plain evaluation of that cluster's filled objects (the engine
 * itself is checked against the kube-apiserver in test/integration/policy), and counts the
 * evaluations to show what was shared.
 */
import { loadFleet } from '@flotilla/shared';
import {
  evaluateObject,
  evaluatePolicies,
  HoleRead,
  loadPolicies,
  policyContext,
} from '@flotilla/shared/policy';
import { describe, expect, it } from 'vitest';
import type { RenderedBundle } from '../../../shared/src/fleet/model.ts';
import { checkPolicies, policyStats } from '../../../shared/src/fleet/policy.ts';
import { repo } from './helpers.ts';

/** A Warn policy on Deployments with the given spec lines after matchConstraints. */
function policy(spec: string, match = ''): string {
  return `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: p}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], resources: [deployments], operations: [CREATE]${match}}]
${spec}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: b}
spec: {policyName: p, validationActions: [Warn]}
`;
}

const validation = (expression: string, extra = '') =>
  `  validations:\n    - expression: ${JSON.stringify(expression)}\n      message: refused${extra}\n`;

function deployment(
  opts: { name?: string; image?: string; labels?: string; args?: string; replicas?: number } = {},
) {
  return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${opts.name ?? 'web-${cluster.name}'}
  labels: {${opts.labels ?? 'app: web, cluster: "${cluster.name}"'}}
spec:
  replicas: ${opts.replicas ?? 2}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: ${opts.image ?? 'nginx:1.27.3'}
          args: [${opts.args ?? '"--cluster=${cluster.name}", "--port=80"'}]
`;
}

const CLUSTERS = ['prod-1', 'prod-2', 'dev-1', 'dev-2'].map((name) => ({
  name,
  labels: { tier: name.replace(/-\d$/, '') },
}));

/**
 * Each cluster's violations (`name: message`), after checking they are those of a plain
 * evaluation of its filled objects, and the number of object evaluations it took.
 */
function check(policyYaml: string, manifest: string) {
  const fleet = loadFleet(
    repo({
      'policies/p.yaml': policyYaml,
      'bundles/web/bundle.yaml': 'namespace: web\ntargets: [{ clusterSelector: {} }]\n',
      'bundles/web/app.yaml': manifest,
    }),
  );
  expect(fleet.errors).toEqual([]);
  const { set, errors } = loadPolicies([{ path: 'policies/p.yaml', content: policyYaml }]);
  expect(errors).toEqual([]);
  const before = policyStats.evaluations;
  const verdicts = CLUSTERS.map((c) => {
    const rendered = fleet.planCluster(c).bundles[0]?.rendered;
    if (!rendered) throw new Error(`no render for ${c.name}`);
    const { objects } = JSON.parse(rendered.canonical);
    expect(rendered.violations ?? []).toEqual(evaluatePolicies(set, objects));
    return (rendered.violations ?? []).map((v) => `${v.object.name}: ${v.message}`);
  });
  return { verdicts, evaluations: policyStats.evaluations - before };
}

const ALL = CLUSTERS.map((c) => [`web-${c.name}: refused`]);
const NONE = CLUSTERS.map(() => []);
const PROD_ONLY = CLUSTERS.map((c) => (c.name.startsWith('prod') ? [`web-${c.name}: refused`] : []));

describe('verdicts shared across cluster variables', () => {
  it('shares one evaluation when the policies read no variable, and names each cluster’s object', () => {
    expect(check(policy(validation('object.spec.replicas <= 1')), deployment())).toEqual({
      verdicts: ALL,
      evaluations: 1,
    });
    expect(check(policy(validation('object.spec.replicas <= 5')), deployment())).toEqual({
      verdicts: NONE,
      evaluations: 1,
    });
  });

  it('evaluates each cluster’s object when a validation reads a variable', () => {
    const r = check(policy(validation("!object.metadata.name.startsWith('web-prod')")), deployment());
    expect(r).toEqual({ verdicts: PROD_ONLY, evaluations: 1 + CLUSTERS.length });
  });

  it('evaluates each cluster’s object when only the message reads a variable', () => {
    const spec = validation(
      'object.spec.replicas <= 1',
      '\n      messageExpression: "\'refused on \' + object.metadata.labels.cluster"',
    );
    expect(check(policy(spec), deployment())).toEqual({
      verdicts: CLUSTERS.map((c) => [`web-${c.name}: refused on ${c.name}`]),
      evaluations: 1 + CLUSTERS.length,
    });
  });

  it('shares when || or && is decided without the variable, not when the variable decides', () => {
    const shared = check(
      policy(validation("object.spec.replicas > 1 || object.metadata.name == 'web-prod-1'")),
      deployment(),
    );
    expect(shared).toEqual({ verdicts: NONE, evaluations: 1 });
    const decided = check(
      policy(validation("object.spec.replicas > 5 && object.metadata.name == 'web-prod-1'")),
      deployment(),
    );
    expect(decided).toEqual({ verdicts: ALL, evaluations: 1 });
    const reads = check(
      policy(validation("object.spec.replicas > 5 || !object.metadata.name.startsWith('web-prod')")),
      deployment(),
    );
    expect(reads.verdicts).toEqual(PROD_ONLY);
  });

  it('gives each cluster its verdict through has(), size(), in and comprehensions over variables', () => {
    for (const expression of [
      "has(object.metadata.labels.cluster) && !object.metadata.labels.cluster.startsWith('prod')",
      "!object.spec.template.spec.containers.exists(c, c.args.exists(a, a.startsWith('--cluster=prod')))",
      "!('--cluster=prod-1' in object.spec.template.spec.containers[0].args) || object.metadata.labels.cluster == 'prod-2'",
      'object.spec.template.spec.containers[0].args.all(a, size(a) < 16)',
      "object.spec.template.spec.containers.map(c, c.args).flatten().filter(a, a.contains('prod')).size() == 0",
    ]) {
      const r = check(policy(validation(expression)), deployment());
      const want = expression.includes("prod-1' in")
        ? CLUSTERS.map((c) => (c.name === 'prod-1' ? [`web-${c.name}: refused`] : []))
        : PROD_ONLY;
      expect(r.verdicts, expression).toEqual(want);
    }
  });

  it('shares size() of a list that holds a variable; in over it shares only when found before the variable', () => {
    const args = 'object.spec.template.spec.containers[0].args';
    expect(check(policy(validation(`size(${args}) == 2`)), deployment())).toEqual({
      verdicts: NONE,
      evaluations: 1,
    });
    // @bufbuild/cel compares in order: a match before the variable decides, the variable first is an error.
    expect(
      check(
        policy(validation(`'--port=80' in ${args}`)),
        deployment({ args: '"--port=80", "--cluster=${cluster.name}"' }),
      ),
    ).toEqual({
      verdicts: NONE,
      evaluations: 1,
    });
    expect(check(policy(validation(`'--port=80' in ${args}`)), deployment())).toEqual({
      verdicts: NONE,
      evaluations: 1 + CLUSTERS.length,
    });
  });

  it('gives each cluster its verdict from library functions over lists that hold a variable', () => {
    for (const expression of [
      "!sets.contains(object.spec.template.spec.containers[0].args, ['--cluster=prod-1'])",
      "object.spec.template.spec.containers[0].args.indexOf('--cluster=prod-1') < 0",
      "!object.spec.template.spec.containers[0].args.join(',').contains('prod-1')",
    ]) {
      const r = check(policy(validation(expression)), deployment());
      expect(r.verdicts, expression).toEqual(
        CLUSTERS.map((c) => (c.name === 'prod-1' ? [`web-${c.name}: refused`] : [])),
      );
    }
  });

  it('gives each cluster its verdict when matching reads a variable (selectors, resource names)', () => {
    const byLabel = `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: p}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], resources: [deployments], operations: [CREATE]}]
    objectSelector: {matchLabels: {cluster: prod-1}}
${validation('false')}---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: b}
spec: {policyName: p, validationActions: [Warn]}
`;
    const prod1 = CLUSTERS.map((c) => (c.name === 'prod-1' ? [`web-${c.name}: refused`] : []));
    expect(check(byLabel, deployment()).verdicts).toEqual(prod1);
    expect(
      check(policy(validation('false'), ', resourceNames: [web-prod-1]'), deployment()).verdicts,
    ).toEqual(prod1);
    // A selector on a label without a variable still shares.
    expect(check(byLabel.replace('cluster: prod-1', 'app: web'), deployment())).toEqual({
      verdicts: ALL,
      evaluations: 1,
    });
  });

  it('gives each cluster its verdict when namespaceObject or a namespace selector reads a variable', () => {
    const withNamespace = `apiVersion: v1\nkind: Namespace\nmetadata: {name: web, labels: {cluster: "\${cluster.name}"}}\n---\n${deployment({ labels: 'app: web' })}`;
    expect(
      check(policy(validation("!namespaceObject.metadata.labels.cluster.startsWith('prod')")), withNamespace)
        .verdicts,
    ).toEqual(PROD_ONLY);
    const selected = check(
      policy(validation('false')).replace(
        'operations: [CREATE]}]',
        'operations: [CREATE]}]\n    namespaceSelector: {matchLabels: {cluster: prod-2}}',
      ),
      withNamespace,
    );
    expect(selected.verdicts).toEqual(
      CLUSTERS.map((c) => (c.name === 'prod-2' ? [`web-${c.name}: refused`] : [])),
    );
    // The Namespace's variable unread: shared (one evaluation of the Namespace, one of the Deployment).
    expect(check(policy(validation('namespaceObject.metadata.name == "web"')), withNamespace)).toEqual({
      verdicts: NONE,
      evaluations: 2,
    });
  });

  it('evaluates each cluster’s object when a policy variable or a match condition reads a variable', () => {
    const variables = `  variables:\n    - name: tier\n      expression: "object.metadata.labels.cluster.split('-')[0]"\n${validation("variables.tier != 'prod'")}`;
    expect(check(policy(variables), deployment()).verdicts).toEqual(PROD_ONLY);
    const condition = `  matchConditions:\n    - name: prod\n      expression: "object.metadata.labels.cluster.startsWith('prod')"\n${validation('false')}`;
    expect(check(policy(condition), deployment()).verdicts).toEqual(PROD_ONLY);
  });
});

describe('a masked object', () => {
  const { set } = loadPolicies([
    { path: 'policies/p.yaml', content: policy(validation("object.metadata.name != 'x'")) },
  ]);
  const masked = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web-\u00010\u0001', namespace: 'web' },
  };
  it('throws HoleRead when a validation reads a variable, and evaluates as usual without the mask', () => {
    const context = policyContext(set, [masked]);
    expect(() => evaluateObject(set, context, masked, true)).toThrow(HoleRead);
    expect(evaluateObject(set, context, masked)).toEqual([]);
  });

  it('throws HoleRead for a hole in a map key, which fills could make collide or match', () => {
    const { set: any } = loadPolicies([{ path: 'policies/p.yaml', content: policy(validation('true')) }]);
    const keyed = {
      ...masked,
      metadata: { name: 'web', namespace: 'web', labels: { '\u00010\u0001': 'x' } },
    };
    expect(() => evaluateObject(any, policyContext(any, [keyed]), keyed, true)).toThrow(HoleRead);
  });

  it('throws HoleRead when a library function gets a list holding a hole', () => {
    for (const expression of [
      "!sets.contains(object.spec.args, ['a'])",
      "object.spec.args.indexOf('a') < 0",
      "object.spec.args.join(',') != 'a,b'",
      '!object.spec.args.isSorted()',
    ]) {
      const { set: s } = loadPolicies([{ path: 'policies/p.yaml', content: policy(validation(expression)) }]);
      const o = { ...masked, spec: { args: ['\u00010\u0001', 'b'] } };
      expect(() => evaluateObject(s, policyContext(s, [o]), o, true), expression).toThrow(HoleRead);
      const filled = { ...o, metadata: { ...o.metadata, name: 'web-a' }, spec: { args: ['a', 'b'] } };
      expect(evaluateObject(s, policyContext(s, [filled]), filled).length, expression).toBe(1);
    }
  });
});

describe('a bundle whose CRD names the cluster', () => {
  it('shares nothing: the kinds and scopes it defines could differ per cluster', () => {
    const content = `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: p}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [example.com], apiVersions: [v1], resources: [widgets], operations: [CREATE], scope: Namespaced}]
${validation('false')}---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: b}
spec: {policyName: p, validationActions: [Warn]}
`;
    const { set } = loadPolicies([{ path: 'policies/p.yaml', content }]);
    const crd = (scope: string) => ({
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'widgets.example.com' },
      spec: { group: 'example.com', names: { kind: 'Widget', plural: 'widgets' }, scope },
    });
    const widget = {
      apiVersion: 'example.com/v1',
      kind: 'Widget',
      metadata: { name: 'w', namespace: 'web' },
    };
    const masked = [JSON.stringify(crd('\u00010\u0001')), JSON.stringify(widget)];
    const stats = { evaluations: 0 };
    const verdicts = ['Cluster', 'Namespaced'].map((scope) => {
      const objects = [crd(scope), widget];
      const got = checkPolicies(
        {} as RenderedBundle,
        set,
        { json: objects.map((o) => JSON.stringify(o)), masked },
        stats,
      );
      expect(got).toEqual(evaluatePolicies(set, objects));
      return got.length;
    });
    expect(verdicts).toEqual([0, 1]);
    expect(stats.evaluations).toBe(4);
  });
});

describe('a bundle whose Namespace is named after the cluster', () => {
  it('evaluates each cluster’s objects: the Namespace an object is in could differ per cluster', () => {
    const content = `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: p}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], resources: [configmaps], operations: [CREATE]}]
${validation("namespaceObject == null || namespaceObject.metadata.labels.tier != 'prod'")}---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: b}
spec: {policyName: p, validationActions: [Warn]}
`;
    const { set } = loadPolicies([{ path: 'policies/p.yaml', content }]);
    const objects = (cluster: string) => [
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: cluster, labels: { tier: 'prod' } } },
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'prod-1' } },
    ];
    const masked = objects('\u00010\u0001').map((o) => JSON.stringify(o));
    const stats = { evaluations: 0 };
    const verdicts = ['prod-1', 'dev-1'].map((cluster) => {
      const real = objects(cluster);
      const got = checkPolicies(
        {} as RenderedBundle,
        set,
        { json: real.map((o) => JSON.stringify(o)), masked },
        stats,
      );
      expect(got).toEqual(evaluatePolicies(set, real));
      return got.length;
    });
    // The ConfigMap is in the Namespace only on prod-1.
    expect(verdicts).toEqual([1, 0]);
    expect(stats.evaluations).toBe(2 + 2 * 2);
  });
});
