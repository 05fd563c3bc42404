import type { KubeObject } from '@flotilla/shared';
import {
  evaluatePolicies,
  kindToResource,
  loadPolicies,
  policiesDependOnCluster,
} from '@flotilla/shared/policy';
import { describe, expect, it } from 'vitest';
import { NO_LATEST } from '../../support/policy-fixtures.ts';

function deployment(
  image: string,
  extra: { namespace?: string; labels?: Record<string, string>; replicas?: number } = {},
): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace: extra.namespace ?? 'apps', labels: extra.labels ?? {} },
    spec: { replicas: extra.replicas ?? 1, template: { spec: { containers: [{ name: 'web', image }] } } },
  };
}

function load(content: string, path = 'policies/p.yaml') {
  const { set, errors } = loadPolicies([{ path, content }]);
  expect(errors).toEqual([]);
  return set;
}

/** A policy on deployments with the given spec lines after matchConstraints, and its binding. */
function policy(spec: string, binding = 'validationActions: [Deny]', bindingMeta = ''): string {
  return `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: p}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: ["*"], resources: [deployments], operations: [CREATE]}]
${spec}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: b${bindingMeta}}
spec:
  policyName: p
  ${binding}
`;
}

describe('loadPolicies + evaluatePolicies', () => {
  it('runs the no-latest example as written', () => {
    const set = load(NO_LATEST, 'policies/no-latest.yaml');
    expect(evaluatePolicies(set, [deployment('nginx:1.27')])).toEqual([]);
    expect(evaluatePolicies(set, [deployment('nginx:latest')])).toEqual([
      {
        policy: 'no-latest-images',
        binding: 'no-latest-images',
        file: 'policies/no-latest.yaml',
        line: 9,
        action: 'Deny',
        actions: ['Deny'],
        object: { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'apps', name: 'web' },
        message: 'images must be pinned to a version',
        reason: 'Invalid',
      },
    ]);
    // Other kinds are not matched.
    expect(evaluatePolicies(set, [{ ...deployment('a:latest'), apiVersion: 'v1', kind: 'Pod' }])).toEqual([]);
    expect(policiesDependOnCluster(set)).toBe(false);
  });

  it('reports compile errors with the line of the expression', () => {
    const { errors } = loadPolicies([
      {
        path: 'policies/bad.yaml',
        content: NO_LATEST.replace("endsWith(':latest'))", "endsWith(':latest')"),
      },
    ]);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.line).toBe(9);
    expect(errors[0]?.message).toMatch(/^spec\.validations\[0\]\.expression: syntax error/);
  });

  it('refuses unknown names, unknown functions and authorizer', () => {
    const errs = (expr: string) =>
      loadPolicies([
        { path: 'p.yaml', content: policy(`  validations:\n    - expression: "${expr}"`) },
      ]).errors.map((e) => `${e.line}: ${e.message}`);
    expect(errs('objekt.spec != null')).toEqual([
      "8: spec.validations[0].expression: undeclared reference to 'objekt' (the variables are object, oldObject, request, params, namespaceObject, variables)",
    ]);
    expect(errs('object.spec.frobnicate()')).toEqual([
      "8: spec.validations[0].expression: undeclared reference to function 'frobnicate'",
    ]);
    expect(errs("authorizer.path('x').check('get').allowed()")[0]).toContain('authorizer is not supported');
    // @bufbuild/cel keeps an unknown escape as written; the API server refuses the policy.
    expect(errs("object.metadata.name.matches('^a\\\\.b$')")).toEqual([
      "8: spec.validations[0].expression: syntax error at column 33: invalid escape sequence in a string literal (write \\\\ for a backslash, or use a raw string r'...')",
    ]);
    expect(errs("object.metadata.name.matches(r'^a\\\\.b$') || 'a\\\\\\\\b\\\\n\\\\x41' != ''")).toEqual([]);
    expect(errs('variables.nope')).toEqual([
      "8: spec.validations[0].expression: undeclared reference to 'variables.nope' (spec.variables has no such name)",
    ]);
  });

  it('reports a binding of a missing policy and bad actions', () => {
    const { errors } = loadPolicies([
      {
        path: 'b.yaml',
        content:
          'apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\nmetadata: {name: b}\nspec:\n  policyName: nope\n  validationActions: [Deny, Warn]\n',
      },
    ]);
    expect(errors.map((e) => `${e.line}: ${e.message}`)).toEqual([
      '6: spec.validationActions: Deny and Warn may not be used together',
    ]);
    const missing = loadPolicies([
      {
        path: 'b.yaml',
        content:
          'apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\nmetadata: {name: b}\nspec:\n  policyName: nope\n  validationActions: [Deny]\n',
      },
    ]).errors;
    expect(missing.map((e) => `${e.line}: ${e.message}`)).toEqual([
      '5: spec.policyName: no ValidatingAdmissionPolicy "nope" in policies/',
    ]);
  });

  it('uses messageExpression, falls back to message, and to the expression', () => {
    const set = load(
      policy(`  validations:
    - expression: "object.spec.replicas >= 2"
      messageExpression: "'replicas: ' + string(object.spec.replicas)"
    - expression: "object.spec.replicas >= 3"
      message: static
      messageExpression: "''"
    - expression: "object.spec.replicas >= 4"
      reason: Forbidden`),
    );
    expect(evaluatePolicies(set, [deployment('a:1')]).map((v) => [v.message, v.reason])).toEqual([
      ['replicas: 1', 'Invalid'],
      ['static', 'Invalid'],
      ['failed expression: object.spec.replicas >= 4', 'Forbidden'],
    ]);
  });

  it('evaluates matchConditions and lazy variables', () => {
    const set = load(
      policy(`  matchConditions:
    - name: not-exempt
      expression: "!object.metadata.name.startsWith('exempt')"
  variables:
    - name: broken
      expression: "object.nope"
    - name: images
      expression: "object.spec.template.spec.containers.map(c, c.image)"
  validations:
    - expression: "variables.images.all(i, i.contains(':'))"
      messageExpression: "'untagged: ' + variables.images.join(', ')"`),
    );
    expect(evaluatePolicies(set, [deployment('nginx')]).map((v) => v.message)).toEqual(['untagged: nginx']);
    const exempt = { ...deployment('nginx'), metadata: { name: 'exempt-web', namespace: 'apps' } };
    expect(evaluatePolicies(set, [exempt])).toEqual([]);
  });

  it('applies failurePolicy to evaluation errors', () => {
    const spec = (fp: string) =>
      `  failurePolicy: ${fp}\n  validations:\n    - expression: "object.spec.nope == 1"`;
    const [v] = evaluatePolicies(load(policy(spec('Fail'))), [deployment('a:1')]);
    expect(v?.message).toMatch(/^expression 'object\.spec\.nope == 1' resulted in error: .*nope/);
    expect(evaluatePolicies(load(policy(spec('Ignore'))), [deployment('a:1')])).toEqual([]);
  });

  it('reports Warn and Audit bindings with their action', () => {
    const set = load(policy('  validations:\n    - expression: "false"', 'validationActions: [Warn, Audit]'));
    const [v] = evaluatePolicies(set, [deployment('a:1')]);
    expect(v?.action).toBe('Warn');
    expect(v?.actions).toEqual(['Warn', 'Audit']);
  });

  it('limits bindings to clusters by the cluster-selector annotation', () => {
    const set = load(
      policy(
        '  validations:\n    - expression: "false"',
        'validationActions: [Deny]',
        ', annotations: {flotilla.dev/cluster-selector: "env=prod,region in (eu)"}',
      ),
    );
    expect(policiesDependOnCluster(set)).toBe(true);
    const objs = [deployment('a:1')];
    expect(evaluatePolicies(set, objs)).toHaveLength(1);
    expect(
      evaluatePolicies(set, objs, { cluster: { name: 'a', labels: { env: 'prod', region: 'eu' } } }),
    ).toHaveLength(1);
    expect(
      evaluatePolicies(set, objs, { cluster: { name: 'b', labels: { env: 'prod', region: 'us' } } }),
    ).toEqual([]);
    const bad = loadPolicies([
      {
        path: 'p.yaml',
        content: policy(
          '  validations:\n    - expression: "false"',
          'validationActions: [Deny]',
          ', annotations: {flotilla.dev/cluster-selector: "env in prod"}',
        ),
      },
    ]).errors;
    expect(bad[0]?.message).toMatch(/^flotilla\.dev\/cluster-selector: invalid selector/);
  });

  it('matches namespaceSelector against the Namespace objects present, objectSelector against labels', () => {
    const set = load(
      policy(`    namespaceSelector: {matchLabels: {env: prod}}
    objectSelector: {matchExpressions: [{key: tier, operator: Exists}]}
  validations:
    - expression: "namespaceObject.metadata.name == 'x'"`),
    );
    const ns = (labels: Record<string, string>): KubeObject => ({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'apps', labels },
    });
    const d = deployment('a:1', { labels: { tier: 'web' } });
    expect(evaluatePolicies(set, [d])).toEqual([]); // the namespace is unknown: a non-empty selector does not match
    expect(evaluatePolicies(set, [d, ns({ env: 'dev' })])).toEqual([]);
    expect(evaluatePolicies(set, [d, ns({ env: 'prod' })]).map((v) => v.message)).toEqual([
      "failed expression: namespaceObject.metadata.name == 'x'",
    ]);
    expect(evaluatePolicies(set, [deployment('a:1'), ns({ env: 'prod' })])).toEqual([]);
  });

  it('takes params from the policies files, by name or selector, and honours parameterNotFoundAction', () => {
    const spec = `  paramKind: {apiVersion: v1, kind: ConfigMap}
  validations:
    - expression: "object.spec.replicas <= int(params.data.max)"
      messageExpression: "'max ' + params.data.max"`;
    const params = `---
apiVersion: v1
kind: ConfigMap
metadata: {name: limits, namespace: apps, labels: {kind: limit}}
data: {max: "2"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: other, namespace: apps, labels: {kind: limit}}
data: {max: "3"}
`;
    const byName = load(
      policy(spec, 'validationActions: [Deny]\n  paramRef: {name: limits, parameterNotFoundAction: Deny}') +
        params,
    );
    expect(evaluatePolicies(byName, [deployment('a:1', { replicas: 3 })]).map((v) => v.message)).toEqual([
      'max 2',
    ]);
    expect(
      evaluatePolicies(byName, [deployment('a:1', { replicas: 3, namespace: 'elsewhere' })]).map(
        (v) => v.message,
      ),
    ).toEqual([
      'failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction',
    ]);
    const allow = load(
      policy(spec, 'validationActions: [Deny]\n  paramRef: {name: none, parameterNotFoundAction: Allow}') +
        params,
    );
    expect(evaluatePolicies(allow, [deployment('a:1', { replicas: 9 })])).toEqual([]);
    const bySelector = load(
      policy(
        spec,
        'validationActions: [Deny]\n  paramRef: {selector: {matchLabels: {kind: limit}}, parameterNotFoundAction: Deny}',
      ) + params,
    );
    expect(evaluatePolicies(bySelector, [deployment('a:1', { replicas: 3 })]).map((v) => v.message)).toEqual([
      'max 2',
    ]);
    const missingRef = loadPolicies([{ path: 'p.yaml', content: policy(spec) + params }]).errors;
    expect(missingRef.map((e) => e.message)).toEqual([
      'spec.paramRef is required: policy "p" has spec.paramKind ConfigMap',
    ]);
  });
});

describe('Kubernetes CEL libraries', () => {
  const check = (expr: string) => {
    const set = load(policy(`  validations:\n    - expression: ${JSON.stringify(expr)}`));
    const [v] = evaluatePolicies(set, [deployment('a:1')]);
    return v === undefined ? true : v.message.startsWith('failed expression') ? false : v.message;
  };
  it.each([
    "quantity('1Gi') == quantity('1024Mi')",
    "quantity('100m').isLessThan(quantity('0.2'))",
    "quantity('1.5').add(2).asApproximateFloat() == 3.5",
    "quantity('2k').sub(quantity('1k')).asInteger() == 1000",
    "quantity('-1').sign() == -1 && quantity('0').sign() == 0",
    "quantity('1e3').compareTo(quantity('1k')) == 0",
    "quantity('10Gi').isGreaterThan(quantity('1G'))",
    "isQuantity('250m') && !isQuantity('1.5Gix') && !isQuantity('')",
    "url('https://user@ex.com:8443/a/b?x=1&x=2&y=').getHost() == 'ex.com:8443'",
    "url('https://ex.com:8443/a').getPort() == '8443' && url('https://ex.com/a').getPort() == ''",
    "url('https://[::1]:80/p').getHostname() == '::1'",
    "url('https://ex.com/a%20b').getEscapedPath() == '/a%20b'",
    "url('https://ex.com/?x=1&x=2&y=').getQuery() == {'x': ['1', '2'], 'y': ['']}",
    "url('/just/a/path').getScheme() == '' && isURL('https://ex.com') && !isURL('not a url')",
    "'abc123def45'.find('[0-9]+') == '123' && 'abc'.find('[0-9]+') == ''",
    "'a1b22c333'.findAll('[0-9]+') == ['1', '22', '333'] && 'a1b22c333'.findAll('[0-9]+', 2) == ['1', '22']",
    '[1, 2, 3].sum() == 6 && [1.5, 2.5].sum() == 4.0 && [].sum() == 0',
    "[1, 2, 2].isSorted() && !['b', 'a'].isSorted()",
    '[3, 1, 2].min() == 1 && [3, 1, 2].max() == 3',
    '[1, 2, 1].indexOf(1) == 0 && [1, 2, 1].lastIndexOf(1) == 2 && [1].indexOf(5) == -1',
    '[1, 2, 3, 4].slice(1, 3) == [2, 3] && [[1], [2, [3]]].flatten() == [1, 2, [3]]',
    'sets.contains([1, 2, 3], [1, 2]) && !sets.contains([1], [2])',
    'sets.equivalent([1, 2, 1], [2, 1]) && sets.intersects([1, 2], [2, 3]) && !sets.intersects([1], [3])',
    "'Hello'.lowerAscii() == 'hello' && 'a-b-c'.split('-') == ['a', 'b', 'c'] && ' x '.trim() == 'x'",
    "'abc'.charAt(1) == 'b' && 'abcabc'.lastIndexOf('b') == 4 && 'abc'.substring(1) == 'bc'",
    "['a', 'b'].join('-') == 'a-b' && 'a.b'.replace('.', '-') == 'a-b' && 'ab'.upperAscii() == 'AB'",
    "'%s has %d'.format(['web', 3]) == 'web has 3'",
    "'abc'.matches('^a') && object.spec.template.spec.containers.exists_one(c, c.name == 'web')",
  ])('%s', (expr) => {
    expect(check(expr)).toBe(true);
  });

  it('reports errors of the libraries as evaluation errors', () => {
    expect(check("quantity('nope') == quantity('1')")).toMatch(/resulted in error: quantities must match/);
    expect(check('[].min() == 1')).toMatch(/resulted in error: min called on empty list/);
    expect(check("url('::') == url('/')")).toMatch(/resulted in error: URL parse error/);
  });
});

describe('kindToResource', () => {
  it.each([
    ['Deployment', 'deployments'],
    ['NetworkPolicy', 'networkpolicies'],
    ['Ingress', 'ingresses'],
    ['Endpoints', 'endpoints'],
    ['Gateway', 'gateways'],
    ['StorageClass', 'storageclasses'],
  ])('%s -> %s', (kind, resource) => {
    expect(kindToResource(kind)).toBe(resource);
  });
});
