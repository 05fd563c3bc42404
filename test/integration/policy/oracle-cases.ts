/**
 * The oracle corpus: policies, bindings and objects on which Flotilla's policy engine must
 * decide as the real kube-apiserver does. `NAME` in the YAML is replaced by a name unique
 * to the test run (policy and binding), `NS` by the run's namespace and `NS_DEV` by a
 * second namespace labelled env=dev (the first is labelled env=prod).
 */

export interface OracleCase {
  readonly name: string;
  /** Policy, binding and param documents, as a fleet repo's policies/ file holds them. */
  readonly policies: string;
  /** The object tried (a dry-run create on the server). */
  readonly object: Record<string, unknown>;
  /**
   * What the case is written to show; both sides must agree with it, and with each other.
   * `refused`: the policy itself is invalid, a load error for Flotilla and a refused create
   * for the API server.
   */
  readonly expect: 'allow' | 'deny' | 'warn' | 'refused';
}

const rule = (apiGroups: string, resources: string) =>
  `{apiGroups: [${apiGroups}], apiVersions: ["*"], resources: [${resources}], operations: [CREATE, UPDATE]}`;

function policy(spec: string, binding = 'validationActions: [Deny]'): string {
  return `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: NAME}
spec:
${spec}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: NAME}
spec:
  policyName: NAME
  ${binding}
`;
}

interface DeploymentOptions {
  name?: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  replicas?: number;
  containers?: Record<string, unknown>[];
}

function deployment(o: DeploymentOptions = {}): Record<string, unknown> {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: o.name ?? 'web',
      namespace: o.namespace ?? 'NS',
      labels: o.labels ?? { app: 'web' },
      ...(o.annotations ? { annotations: o.annotations } : {}),
    },
    spec: {
      replicas: o.replicas ?? 1,
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: { containers: o.containers ?? [{ name: 'web', image: 'registry.example.com/web:1.0.0' }] },
      },
    },
  };
}

const limited = (cpu: string, memory: string, image = 'registry.example.com/web:1.0.0') => ({
  name: 'web',
  image,
  resources: { limits: { cpu, memory } },
});

function configMap(
  data: Record<string, string>,
  name = 'web',
  namespace = 'NS',
  labels?: Record<string, string>,
) {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, namespace, ...(labels ? { labels } : {}) },
    data,
  };
}

const NO_LATEST = `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: NAME}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], resources: [deployments], operations: [CREATE, UPDATE]}]
  validations:
    - expression: "object.spec.template.spec.containers.all(c, !c.image.endsWith(':latest'))"
      message: images must be pinned to a version
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: NAME}
spec: {policyName: NAME, validationActions: [Deny]}
`;

const LIMITS = policy(`  matchConstraints:
    resourceRules: [${rule('apps', 'deployments')}]
  validations:
    - expression: >-
        object.spec.template.spec.containers.all(c, has(c.resources) && has(c.resources.limits) &&
        'cpu' in c.resources.limits && 'memory' in c.resources.limits)
      message: every container needs cpu and memory limits
      reason: Forbidden`);

const PRIVILEGED = policy(`  matchConstraints:
    resourceRules: [${rule('apps', 'deployments')}]
  validations:
    - expression: >-
        object.metadata.namespace == 'kube-system' ||
        object.spec.template.spec.containers.all(c, !has(c.securityContext) ||
        !has(c.securityContext.privileged) || c.securityContext.privileged == false)
      message: privileged containers are only allowed in kube-system`);

const LABELS = policy(`  matchConstraints:
    resourceRules: [${rule('apps', 'deployments')}]
  validations:
    - expression: "has(object.metadata.labels) && ['team', 'app'].all(k, k in object.metadata.labels)"
      messageExpression: "'missing labels: ' + ['team', 'app'].filter(k, !has(object.metadata.labels) || !(k in object.metadata.labels)).join(', ')"`);

const MATCH_CONDITIONS = policy(`  matchConstraints:
    resourceRules: [${rule('apps', 'deployments')}]
  matchConditions:
    - name: not-exempt
      expression: "!object.metadata.name.startsWith('exempt-')"
  validations:
    - expression: "object.spec.replicas >= 2"
      message: at least two replicas`);

const VARIABLES = policy(`  matchConstraints:
    resourceRules: [${rule('apps', 'deployments')}]
  variables:
    - name: images
      expression: "object.spec.template.spec.containers.map(c, c.image)"
    - name: untrusted
      expression: "variables.images.filter(i, !i.startsWith('registry.example.com/'))"
  validations:
    - expression: "size(variables.untrusted) == 0"
      messageExpression: "'images from untrusted registries: ' + variables.untrusted.join(', ')"`);

const MESSAGE_FALLBACK = policy(`  matchConstraints:
    resourceRules: [${rule('apps', 'deployments')}]
  validations:
    - expression: "object.spec.replicas <= 3"
      message: too many replicas
      messageExpression: "'   '"`);

const PARAMS = (notFound: 'Allow' | 'Deny', ref: string) => `${policy(
  `  paramKind: {apiVersion: v1, kind: ConfigMap}
  matchConstraints:
    resourceRules: [${rule('apps', 'deployments')}]
  validations:
    - expression: "object.spec.replicas <= int(params.data.maxReplicas)"
      messageExpression: "'at most ' + params.data.maxReplicas + ' replicas'"`,
  `validationActions: [Deny]
  paramRef: {${ref}, parameterNotFoundAction: ${notFound}}`,
)}---
${JSON.stringify(configMap({ maxReplicas: '3' }, 'NAME-limits'))}
---
${JSON.stringify(configMap({ maxReplicas: '5' }, 'NAME-loose', 'NS', { tier: 'loose' }))}
---
${JSON.stringify(configMap({ maxReplicas: '4' }, 'NAME-strict', 'NS', { tier: 'loose' }))}
`;

const NS_SELECTOR = (env: string) =>
  policy(`  matchConstraints:
    resourceRules: [${rule('apps', 'deployments')}]
    namespaceSelector: {matchLabels: {env: ${env}}}
  validations:
    - expression: "object.spec.replicas >= 2"
      message: production needs two replicas`);

const OBJ_SELECTOR = policy(`  matchConstraints:
    resourceRules: [${rule('apps', 'deployments')}]
    objectSelector: {matchExpressions: [{key: tier, operator: In, values: [frontend]}]}
  validations:
    - expression: "object.spec.replicas >= 2"
      message: frontends need two replicas`);

const QUANTITY = policy(`  matchConstraints:
    resourceRules: [${rule('apps', 'deployments')}]
  validations:
    - expression: >-
        object.spec.template.spec.containers.all(c, !has(c.resources.limits.memory) ||
        quantity(c.resources.limits.memory).compareTo(quantity('1Gi')) <= 0)
      message: memory limit above 1Gi
    - expression: >-
        object.spec.template.spec.containers.all(c, isQuantity(c.resources.limits.cpu) &&
        quantity(c.resources.limits.cpu).isLessThan(quantity('2')) &&
        quantity(c.resources.limits.cpu).add(quantity('500m')).asApproximateFloat() <= 2.0)
      message: cpu limit too high`);

const REGEX = policy(`  matchConstraints:
    resourceRules: [${rule('apps', 'deployments')}]
  validations:
    - expression: "object.spec.template.spec.containers.all(c, c.image.matches('^registry[.]example[.]com/[a-z-]+:[0-9]+[.][0-9]+[.][0-9]+$'))"
      message: images must come from registry.example.com with a semver tag
    - expression: "object.spec.template.spec.containers.all(c, c.image.find('[0-9]+[.][0-9]+') != '' && c.image.findAll('[0-9]+').size() == 3)"
      messageExpression: "'version parts: ' + string(object.spec.template.spec.containers[0].image.findAll('[0-9]+').size())"`);

const URL = policy(`  matchConstraints:
    resourceRules: [${rule('apps', 'deployments')}]
  validations:
    - expression: "!('example.com/docs' in object.metadata.annotations) || isURL(object.metadata.annotations['example.com/docs'])"
      message: docs annotation must be a URL
    - expression: >-
        !('example.com/docs' in object.metadata.annotations) ||
        (url(object.metadata.annotations['example.com/docs']).getScheme() == 'https' &&
        url(object.metadata.annotations['example.com/docs']).getHostname().endsWith('.example.com') &&
        url(object.metadata.annotations['example.com/docs']).getPort() in ['', '443'])
      messageExpression: "'docs must be served over https from *.example.com, not ' + url(object.metadata.annotations['example.com/docs']).getHost()"`);

const STRINGS = policy(`  matchConstraints:
    resourceRules: [${rule('apps', 'deployments')}]
  validations:
    - expression: "object.metadata.labels.team == object.metadata.labels.team.lowerAscii().trim()"
      messageExpression: "'team label must be lower case: ' + object.metadata.labels.team.lowerAscii()"
    - expression: "object.metadata.name.split('-').size() <= 3 && object.metadata.name.replace('-', '').size() <= 20 && object.metadata.name.indexOf('--') == -1"
      message: names have at most three parts
    - expression: "object.metadata.name.substring(0, 1) != 'x' && object.metadata.name.charAt(0) != 'y'"
      message: names must not start with x or y`);

const LISTS = policy(`  matchConstraints:
    resourceRules: [${rule('apps', 'deployments')}]
  validations:
    - expression: "object.spec.template.spec.containers.map(c, c.name).isSorted()"
      message: containers must be sorted by name
    - expression: >-
        object.spec.template.spec.containers.map(c, has(c.ports) ? c.ports.size() : 0).sum() <= 2 &&
        object.spec.template.spec.containers.map(c, c.name).indexOf('sidecar') != 0
      message: at most two ports, and the sidecar is not first
    - expression: "sets.contains(['app', 'team', 'tier'], object.metadata.labels.map(k, k)) && !sets.intersects(object.metadata.labels.map(k, k), ['forbidden'])"
      message: only the app, team and tier labels`);

const FAILURE = (failurePolicy: 'Fail' | 'Ignore') =>
  policy(`  failurePolicy: ${failurePolicy}
  matchConstraints:
    resourceRules: [${rule('apps', 'deployments')}]
  validations:
    - expression: "object.metadata.annotations['example.com/owner'] != ''"
      message: owner must not be empty`);

const ACTION = (action: 'Warn' | 'Audit') =>
  policy(
    `  matchConstraints:
    resourceRules: [${rule('apps', 'deployments')}]
  validations:
    - expression: "object.spec.replicas >= 2"
      message: consider two replicas`,
    `validationActions: [${action}]`,
  );

const EXCLUDE = policy(`  matchConstraints:
    resourceRules: [${rule('""', 'configmaps')}]
    excludeResourceRules: [{apiGroups: [""], apiVersions: [v1], resources: [configmaps], operations: ["*"], resourceNames: [exempt]}]
  validations:
    - expression: "has(object.data) && 'owner' in object.data"
  `);

const RESOURCE_NAMES = policy(`  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], resources: ["*"], operations: [CREATE], resourceNames: [settings], scope: Namespaced}]
  validations:
    - expression: "object.data.size() <= 1"
      message: settings has one key
      reason: Forbidden`);

const BINDING_NARROWS = policy(
  `  matchConstraints:
    resourceRules: [${rule('apps', 'deployments')}]
  validations:
    - expression: "object.spec.replicas >= 2"
      message: two replicas in production namespaces`,
  `validationActions: [Deny]
  matchResources:
    resourceRules: [${rule('apps', 'deployments')}]
    namespaceSelector: {matchExpressions: [{key: env, operator: In, values: [prod]}]}`,
);

const BINDING_NAMESPACE_ONLY = policy(
  `  matchConstraints:
    resourceRules: [${rule('apps', 'deployments')}]
  validations:
    - expression: "object.spec.replicas >= 2"
      message: two replicas where the binding applies`,
  `validationActions: [Deny]
  matchResources:
    namespaceSelector: {matchLabels: {env: prod}}`,
);

const REQUEST = policy(`  matchConstraints:
    resourceRules: [${rule('""', 'configmaps')}]
  validations:
    - expression: "request.operation == 'CREATE' && request.kind.kind == 'ConfigMap' && request.resource.resource == 'configmaps' && request.namespace == object.metadata.namespace && object.metadata.name != 'bad'"
      messageExpression: "request.resource.resource + '/' + request.name + ' is refused'"`);

const NAMESPACE_OBJECT = policy(`  matchConstraints:
    resourceRules: [${rule('""', 'configmaps')}]
  validations:
    - expression: "namespaceObject.metadata.labels.env != 'prod' || (has(object.metadata.labels) && 'owner' in object.metadata.labels)"
      messageExpression: "'config maps in ' + namespaceObject.metadata.name + ' need an owner'"`);

const INT_MATH = policy(`  matchConstraints:
    resourceRules: [${rule('apps', 'deployments')}]
  validations:
    - expression: "[1, 2, 3].max() == 3 && [4, 5].min() == 4 && object.spec.replicas % 2 == 1 && object.spec.replicas * 10 / 4 <= 12"
      message: replicas must be odd and small`);

const FORMAT_NAME = policy(`  matchConstraints:
    resourceRules: [${rule('apps', 'deployments')}]
  validations:
    - expression: "!format.dns1123Label().validate(object.metadata.name).hasValue()"
      messageExpression: "'name: ' + format.dns1123Label().validate(object.metadata.name).value().join(', ')"
    - expression: >-
        !format.named('dns1123Subdomain').value().validate(object.spec.template.spec.containers[0].name).hasValue() &&
        format.named('qualifiedName').orValue(format.dns1123Label()).validate('example.com/web') == optional.none() &&
        optional.of(object.spec.replicas).orValue(0) <= 3 && !format.named('nothing').hasValue()
      message: container names are subdomains, at most three replicas`);

// The keys of the config map name the format its value must have. One key fails per case: the
// API server iterates a map in no fixed order.
const FORMAT_DATA = policy(`  matchConstraints:
    resourceRules: [${rule('""', 'configmaps')}]
  validations:
    - expression: >-
        !has(object.data) || object.data.all(k, !format.named(k).hasValue() ||
        !format.named(k).value().validate(object.data[k]).hasValue())
      messageExpression: >-
        object.data.filter(k, format.named(k).hasValue() &&
        format.named(k).value().validate(object.data[k]).hasValue()).map(k, k + ': ' +
        format.named(k).value().validate(object.data[k]).value().join('; ')).join(' | ')`);

const onDeployments = (expression: string) =>
  policy(`  matchConstraints:
    resourceRules: [${rule('apps', 'deployments')}]
  validations:
    - expression: ${JSON.stringify(expression)}`);

export const ORACLE_CASES: readonly OracleCase[] = [
  {
    name: 'no-latest-deny',
    policies: NO_LATEST,
    object: deployment({ containers: [{ name: 'web', image: 'nginx:latest' }] }),
    expect: 'deny',
  },
  {
    name: 'no-latest-allow',
    policies: NO_LATEST,
    object: deployment({ containers: [{ name: 'web', image: 'nginx:1.27' }] }),
    expect: 'allow',
  },
  { name: 'limits-missing', policies: LIMITS, object: deployment(), expect: 'deny' },
  {
    name: 'limits-partial',
    policies: LIMITS,
    object: deployment({ containers: [{ name: 'web', image: 'a:1', resources: { limits: { cpu: '1' } } }] }),
    expect: 'deny',
  },
  {
    name: 'limits-set',
    policies: LIMITS,
    object: deployment({ containers: [limited('1', '256Mi')] }),
    expect: 'allow',
  },
  {
    name: 'privileged-deny',
    policies: PRIVILEGED,
    object: deployment({
      containers: [{ name: 'web', image: 'a:1', securityContext: { privileged: true } }],
    }),
    expect: 'deny',
  },
  {
    name: 'privileged-kube-system',
    policies: PRIVILEGED,
    object: deployment({
      namespace: 'kube-system',
      name: 'NAME',
      containers: [{ name: 'web', image: 'a:1', securityContext: { privileged: true } }],
    }),
    expect: 'allow',
  },
  {
    name: 'privileged-off',
    policies: PRIVILEGED,
    object: deployment({
      containers: [{ name: 'web', image: 'a:1', securityContext: { privileged: false } }],
    }),
    expect: 'allow',
  },
  {
    name: 'labels-missing',
    policies: LABELS,
    object: deployment({ labels: { app: 'web' } }),
    expect: 'deny',
  },
  {
    name: 'labels-present',
    policies: LABELS,
    object: deployment({ labels: { app: 'web', team: 'core' } }),
    expect: 'allow',
  },
  {
    name: 'match-condition-exempt',
    policies: MATCH_CONDITIONS,
    object: deployment({ name: 'exempt-web' }),
    expect: 'allow',
  },
  {
    name: 'match-condition-applies',
    policies: MATCH_CONDITIONS,
    object: deployment({ name: 'web' }),
    expect: 'deny',
  },
  {
    name: 'variables-untrusted',
    policies: VARIABLES,
    object: deployment({
      containers: [
        { name: 'a', image: 'docker.io/x:1' },
        { name: 'b', image: 'quay.io/y:2' },
      ],
    }),
    expect: 'deny',
  },
  { name: 'variables-trusted', policies: VARIABLES, object: deployment(), expect: 'allow' },
  {
    name: 'message-expression-blank',
    policies: MESSAGE_FALLBACK,
    object: deployment({ replicas: 5 }),
    expect: 'deny',
  },
  {
    name: 'params-by-name-deny',
    policies: PARAMS('Deny', 'name: NAME-limits'),
    object: deployment({ replicas: 4 }),
    expect: 'deny',
  },
  {
    name: 'params-by-name-allow',
    policies: PARAMS('Deny', 'name: NAME-limits'),
    object: deployment({ replicas: 3 }),
    expect: 'allow',
  },
  {
    name: 'params-missing-deny',
    policies: PARAMS('Deny', 'name: NAME-nothing'),
    object: deployment({ replicas: 1 }),
    expect: 'deny',
  },
  {
    name: 'params-missing-allow',
    policies: PARAMS('Allow', 'name: NAME-nothing'),
    object: deployment({ replicas: 9 }),
    expect: 'allow',
  },
  {
    name: 'params-selector',
    policies: PARAMS('Deny', 'selector: {matchLabels: {tier: loose}}'),
    object: deployment({ replicas: 5 }),
    expect: 'deny',
  },
  {
    name: 'params-other-namespace',
    policies: PARAMS('Deny', 'name: NAME-limits, namespace: NS_DEV'),
    object: deployment({ replicas: 1 }),
    expect: 'deny',
  },
  { name: 'namespace-selector-match', policies: NS_SELECTOR('prod'), object: deployment(), expect: 'deny' },
  { name: 'namespace-selector-miss', policies: NS_SELECTOR('dev'), object: deployment(), expect: 'allow' },
  {
    name: 'object-selector-match',
    policies: OBJ_SELECTOR,
    object: deployment({ labels: { app: 'web', tier: 'frontend' } }),
    expect: 'deny',
  },
  {
    name: 'object-selector-miss',
    policies: OBJ_SELECTOR,
    object: deployment({ labels: { app: 'web', tier: 'backend' } }),
    expect: 'allow',
  },
  {
    name: 'quantity-memory-high',
    policies: QUANTITY,
    object: deployment({ containers: [limited('500m', '2Gi')] }),
    expect: 'deny',
  },
  {
    name: 'quantity-cpu-high',
    policies: QUANTITY,
    object: deployment({ containers: [limited('1600m', '1024Mi')] }),
    expect: 'deny',
  },
  {
    name: 'quantity-ok',
    policies: QUANTITY,
    object: deployment({ containers: [limited('1.5', '1073741824')] }),
    expect: 'allow',
  },
  {
    name: 'regex-bad-registry',
    policies: REGEX,
    object: deployment({ containers: [{ name: 'web', image: 'docker.io/web:1.0.0' }] }),
    expect: 'deny',
  },
  {
    name: 'regex-find',
    policies: REGEX,
    object: deployment({ containers: [{ name: 'web', image: 'registry.example.com/web:1.0.0' }] }),
    expect: 'allow',
  },
  {
    name: 'url-http',
    policies: URL,
    object: deployment({ annotations: { 'example.com/docs': 'http://docs.example.com/web' } }),
    expect: 'deny',
  },
  {
    name: 'url-port',
    policies: URL,
    object: deployment({ annotations: { 'example.com/docs': 'https://docs.example.com:8443/web?x=1' } }),
    expect: 'deny',
  },
  {
    name: 'url-not-a-url',
    policies: URL,
    object: deployment({ annotations: { 'example.com/docs': 'docs please' } }),
    expect: 'deny',
  },
  {
    name: 'url-ok',
    policies: URL,
    object: deployment({ annotations: { 'example.com/docs': 'https://docs.example.com/web' } }),
    expect: 'allow',
  },
  {
    name: 'strings-upper',
    policies: STRINGS,
    object: deployment({ labels: { app: 'web', team: 'Core' } }),
    expect: 'deny',
  },
  {
    name: 'strings-parts',
    policies: STRINGS,
    object: deployment({ name: 'a-b-c-d', labels: { app: 'web', team: 'core' } }),
    expect: 'deny',
  },
  {
    name: 'strings-ok',
    policies: STRINGS,
    object: deployment({ name: 'web-api', labels: { app: 'web', team: 'core' } }),
    expect: 'allow',
  },
  {
    name: 'lists-unsorted',
    policies: LISTS,
    object: deployment({
      containers: [
        { name: 'b', image: 'a:1' },
        { name: 'a', image: 'a:1' },
      ],
    }),
    expect: 'deny',
  },
  {
    name: 'lists-extra-label',
    policies: LISTS,
    object: deployment({ labels: { app: 'web', owner: 'me' } }),
    expect: 'deny',
  },
  {
    name: 'lists-ok',
    policies: LISTS,
    object: deployment({ labels: { app: 'web', team: 'core' } }),
    expect: 'allow',
  },
  { name: 'failure-fail', policies: FAILURE('Fail'), object: deployment(), expect: 'deny' },
  { name: 'failure-ignore', policies: FAILURE('Ignore'), object: deployment(), expect: 'allow' },
  { name: 'warn', policies: ACTION('Warn'), object: deployment(), expect: 'warn' },
  { name: 'audit', policies: ACTION('Audit'), object: deployment(), expect: 'allow' },
  {
    name: 'exclude-rules-excluded',
    policies: EXCLUDE,
    object: configMap({ a: '1' }, 'exempt'),
    expect: 'allow',
  },
  {
    name: 'exclude-rules-default-message',
    policies: EXCLUDE,
    object: configMap({ a: '1' }, 'other'),
    expect: 'deny',
  },
  {
    name: 'resource-names-match',
    policies: RESOURCE_NAMES,
    object: configMap({ a: '1', b: '2' }, 'settings'),
    expect: 'deny',
  },
  {
    name: 'resource-names-other',
    policies: RESOURCE_NAMES,
    object: configMap({ a: '1', b: '2' }, 'other'),
    expect: 'allow',
  },
  { name: 'binding-narrows-prod', policies: BINDING_NARROWS, object: deployment(), expect: 'deny' },
  {
    name: 'binding-narrows-dev',
    policies: BINDING_NARROWS,
    object: deployment({ namespace: 'NS_DEV' }),
    expect: 'allow',
  },
  {
    name: 'binding-namespace-only-prod',
    policies: BINDING_NAMESPACE_ONLY,
    object: deployment(),
    expect: 'deny',
  },
  {
    name: 'binding-namespace-only-dev',
    policies: BINDING_NAMESPACE_ONLY,
    object: deployment({ namespace: 'NS_DEV' }),
    expect: 'allow',
  },
  { name: 'request-variable', policies: REQUEST, object: configMap({ a: '1' }, 'bad'), expect: 'deny' },
  {
    name: 'namespace-object',
    policies: NAMESPACE_OBJECT,
    object: configMap({ a: '1' }, 'settings'),
    expect: 'deny',
  },
  {
    name: 'namespace-object-dev',
    policies: NAMESPACE_OBJECT,
    object: configMap({ a: '1' }, 'settings', 'NS_DEV'),
    expect: 'allow',
  },
  { name: 'int-math', policies: INT_MATH, object: deployment({ replicas: 2 }), expect: 'deny' },
  {
    name: 'format-name-dots',
    policies: FORMAT_NAME,
    object: deployment({ name: 'web.v2' }),
    expect: 'deny',
  },
  {
    name: 'format-container-name',
    policies: FORMAT_NAME,
    object: deployment({ containers: [{ name: 'web', image: 'a:1' }], replicas: 4 }),
    expect: 'deny',
  },
  { name: 'format-name-ok', policies: FORMAT_NAME, object: deployment(), expect: 'allow' },
  {
    name: 'format-dns1035-label',
    policies: FORMAT_DATA,
    object: configMap({ dns1035Label: '1abc', other: 'anything' }),
    expect: 'deny',
  },
  {
    name: 'format-label-value',
    policies: FORMAT_DATA,
    object: configMap({ labelValue: '-x-', dns1035Label: 'abc' }),
    expect: 'deny',
  },
  { name: 'format-uri', policies: FORMAT_DATA, object: configMap({ uri: 'docs please' }), expect: 'deny' },
  {
    name: 'format-uri-port',
    policies: FORMAT_DATA,
    object: configMap({ uri: 'https://docs.example.com:x/' }),
    expect: 'deny',
  },
  {
    name: 'format-uuid',
    policies: FORMAT_DATA,
    object: configMap({ uuid: '123e4567-e89b-12d3-a456-42661417400' }),
    expect: 'deny',
  },
  {
    name: 'format-qualified-name',
    policies: FORMAT_DATA,
    object: configMap({ qualifiedName: 'Example.com/-x' }),
    expect: 'deny',
  },
  {
    name: 'format-label-prefix',
    policies: FORMAT_DATA,
    object: configMap({ dns1123LabelPrefix: 'web.' }),
    expect: 'deny',
  },
  { name: 'format-date', policies: FORMAT_DATA, object: configMap({ date: '2023-02-29' }), expect: 'deny' },
  {
    name: 'format-datetime',
    policies: FORMAT_DATA,
    object: configMap({ datetime: '2021-01-01T24:00:00Z' }),
    expect: 'deny',
  },
  { name: 'format-byte', policies: FORMAT_DATA, object: configMap({ byte: 'aGVsbG8' }), expect: 'deny' },
  {
    name: 'format-all-valid',
    policies: FORMAT_DATA,
    object: configMap({
      dns1035Label: 'abc-123',
      dns1123Subdomain: 'apiextensions.k8s.io',
      dns1123SubdomainPrefix: 'web.prefix-',
      dns1035LabelPrefix: 'web-',
      labelValue: 'My_Value.1',
      qualifiedName: 'example.com/MyName',
      uri: 'https://docs.example.com/a%20b?x=1',
      uuid: '123E4567E89B12D3A456426614174000',
      byte: 'aGVsbG8=',
      date: '2024-02-29',
      datetime: '2021-01-01T23:59:59.123+02:00',
    }),
    expect: 'allow',
  },

  {
    name: 'refused-syntax',
    policies: onDeployments('object.spec.replicas >'),
    object: deployment(),
    expect: 'refused',
  },
  {
    name: 'refused-undeclared',
    policies: onDeployments('objekt.spec.replicas > 1'),
    object: deployment(),
    expect: 'refused',
  },
  {
    name: 'refused-function',
    policies: onDeployments('object.spec.replicas.frobnicate()'),
    object: deployment(),
    expect: 'refused',
  },
  {
    name: 'refused-escape',
    policies: onDeployments("object.metadata.name.matches('^a\\.b$')"),
    object: deployment(),
    expect: 'refused',
  },
  {
    name: 'raw-string-escape',
    policies: onDeployments(
      "!object.metadata.name.matches(r'^a\\.b$') && !object.metadata.name.matches('^a\\\\.c$')",
    ),
    object: deployment({ name: 'a.c' }),
    expect: 'deny',
  },
];
