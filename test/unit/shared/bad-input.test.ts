// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${...} is the fleet repo's variable syntax, not a mistake
import { planFleet } from '@flotilla/shared';
import { describe, expect, it } from 'vitest';
import { DEPLOYMENT, formatted, repo } from './helpers.ts';

const BASE: Record<string, string> = {
  'groups/prod.yaml': 'selector:\n  matchLabels:\n    env: prod\n',
  'bundles/web/bundle.yaml': 'namespace: web\ntargets:\n  - clusterSelector: {}\n',
  'bundles/web/deploy.yaml': DEPLOYMENT,
  'bundles/db/bundle.yaml': 'namespace: db\ntargets:\n  - clusterGroup: prod\n',
  'bundles/db/db.yaml': 'apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: db\n',
};
const CLUSTER = { name: 'c1', labels: { env: 'prod', region: 'eu' } };
const WEB = 'bundles/web/bundle.yaml';
const CM = 'bundles/web/cm.yaml';
const configMap = (data: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n${data}`;

// [description, files added to or replacing BASE (null deletes), every expected error as file:line: message]
const CASES: [string, Record<string, string | null>, string[]][] = [
  [
    'the operator example from the issue',
    {
      [WEB]: `namespace: web
targets:
  - clusterName: a
  - clusterSelector:
      matchExpressions:
        - key: env
          operator: Inn
          values: [prod]
`,
    },
    [
      'bundles/web/bundle.yaml:7: targets[1].clusterSelector.matchExpressions[0].operator: unknown operator "Inn" (expected In, NotIn, Exists, DoesNotExist)',
    ],
  ],
  [
    'YAML syntax error',
    { [WEB]: 'namespace: web\ntargets: [\n' },
    [
      'bundles/web/bundle.yaml:3: YAML syntax error: Flow sequence in block collection must be sufficiently indented and end with a ]',
    ],
  ],
  [
    'duplicate key',
    { [WEB]: 'namespace: web\ntargets: []\nnamespace: api\n' },
    ['bundles/web/bundle.yaml:3: YAML syntax error: Map keys must be unique'],
  ],
  [
    'unknown top-level field',
    { [WEB]: 'namespace: web\ntargets: []\ndriftpolicy: warn\n' },
    [
      'bundles/web/bundle.yaml:3: unknown field "driftpolicy" (expected description, namespace, targets, exclude, customizations, values, ignoreDifferences, dependsOn, driftPolicy, paused, healthChecks, helm, kustomize, rollout)',
    ],
  ],
  [
    'unknown field in a target entry',
    { [WEB]: 'targets:\n  - clusterSelecter: {}\n' },
    [
      'bundles/web/bundle.yaml:2: targets[0]: one of clusterSelector, clusterGroup or clusterName is required',
      'bundles/web/bundle.yaml:2: targets[0]: unknown field "clusterSelecter" (expected name, clusterSelector, clusterGroup, clusterName)',
    ],
  ],
  [
    'missing targets',
    { [WEB]: 'namespace: web\n' },
    ['bundles/web/bundle.yaml:1: targets: required (use [] to deploy the bundle nowhere)'],
  ],
  [
    'empty bundle.yaml',
    { [WEB]: '# nothing yet\n' },
    ['bundles/web/bundle.yaml:1: targets: required (bundle.yaml is empty)'],
  ],
  [
    'bundle.yaml not a mapping',
    { [WEB]: '- targets\n' },
    ['bundles/web/bundle.yaml:1: expected a mapping, got a list'],
  ],
  [
    'two documents in bundle.yaml',
    { [WEB]: 'targets: []\n---\ntargets: []\n' },
    ['bundles/web/bundle.yaml:3: bundles/web/bundle.yaml must hold one YAML document, found 2'],
  ],
  [
    'targets not a list',
    { [WEB]: 'targets:\n  clusterName: a\n' },
    ['bundles/web/bundle.yaml:2: targets: expected a list, got a mapping'],
  ],
  [
    'Exists with values',
    {
      [WEB]:
        'targets:\n  - clusterSelector:\n      matchExpressions:\n        - { key: env, operator: Exists, values: [prod] }\n',
    },
    [
      'bundles/web/bundle.yaml:4: targets[0].clusterSelector.matchExpressions[0].values: must be empty when operator is Exists',
    ],
  ],
  [
    'In without values',
    {
      [WEB]:
        'targets:\n  - clusterSelector:\n      matchExpressions:\n        - key: env\n          operator: In\n',
    },
    [
      'bundles/web/bundle.yaml:5: targets[0].clusterSelector.matchExpressions[0].values: must be non-empty when operator is In',
    ],
  ],
  [
    'NotIn with an empty list',
    {
      [WEB]:
        'targets:\n  - clusterSelector:\n      matchExpressions:\n        - { key: env, operator: NotIn, values: [] }\n',
    },
    [
      'bundles/web/bundle.yaml:4: targets[0].clusterSelector.matchExpressions[0].values: must be non-empty when operator is NotIn',
    ],
  ],
  [
    'expression without an operator',
    { [WEB]: 'targets:\n  - clusterSelector:\n      matchExpressions:\n        - key: env\n' },
    [
      'bundles/web/bundle.yaml:4: targets[0].clusterSelector.matchExpressions[0].operator: required (one of In, NotIn, Exists, DoesNotExist)',
    ],
  ],
  [
    'invalid label key in a selector',
    { [WEB]: 'targets:\n  - clusterSelector:\n      matchLabels:\n        -env: prod\n' },
    [
      `bundles/web/bundle.yaml:4: targets[0].clusterSelector.matchLabels: invalid label key "-env": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`,
    ],
  ],
  [
    'a boolean label value',
    { [WEB]: 'targets:\n  - clusterSelector:\n      matchLabels:\n        monitored: true\n' },
    [
      'bundles/web/bundle.yaml:4: targets[0].clusterSelector.matchLabels.monitored: expected a string, got a boolean (quote it: "true")',
    ],
  ],
  [
    'null selector',
    { [WEB]: 'targets:\n  - clusterSelector:\n' },
    [
      'bundles/web/bundle.yaml:2: targets[0].clusterSelector: expected a label selector (a mapping or a string), got null',
    ],
  ],
  [
    'string selector syntax error',
    { [WEB]: 'targets:\n  - clusterSelector: "env in (prod"\n' },
    [
      'bundles/web/bundle.yaml:2: targets[0].clusterSelector: invalid selector "env in (prod": expected "," or ")", found end of selector (at column 13)',
    ],
  ],
  [
    'two match forms in one entry',
    { [WEB]: 'targets:\n  - clusterName: a\n    clusterGroup: prod\n' },
    [
      'bundles/web/bundle.yaml:3: targets[0]: clusterName and clusterGroup cannot be combined (an entry uses exactly one of clusterSelector, clusterGroup, clusterName)',
    ],
  ],
  [
    'unknown group',
    { [WEB]: 'targets:\n  - clusterGroup: edge\n' },
    ['bundles/web/bundle.yaml:2: targets[0].clusterGroup: unknown group "edge" (no groups/edge.yaml)'],
  ],
  [
    'broken group (also breaks the bundles using it)',
    { 'groups/prod.yaml': 'selecter:\n  matchLabels:\n    env: prod\n' },
    [
      'bundles/db/bundle.yaml:3: targets[0].clusterGroup: group "prod" has errors (see groups/prod.yaml)',
      'groups/prod.yaml:1: selector: required',
      'groups/prod.yaml:1: unknown field "selecter" (expected selector, description)',
    ],
  ],
  [
    'invalid cluster name',
    { [WEB]: 'targets:\n  - clusterName: Prod_1\n' },
    [
      `bundles/web/bundle.yaml:2: targets[0].clusterName: invalid cluster name: "Prod_1" is not a valid name (lowercase letters, digits and '-', starting and ending with a letter or digit)`,
    ],
  ],
  [
    'invalid namespace',
    { [WEB]: 'namespace: Web\ntargets: []\n' },
    [
      `bundles/web/bundle.yaml:1: namespace: invalid namespace name: "Web" is not a valid name (lowercase letters, digits and '-', starting and ending with a letter or digit)`,
    ],
  ],
  [
    'unknown driftPolicy',
    { [WEB]: 'targets: []\ndriftPolicy: fix\n' },
    ['bundles/web/bundle.yaml:2: driftPolicy: unknown value "fix" (expected correct, warn, ignore)'],
  ],
  [
    'paused not a boolean',
    { [WEB]: 'targets: []\npaused: "yes"\n' },
    ['bundles/web/bundle.yaml:2: paused: expected true or false, got a string'],
  ],
  [
    'dependsOn an unknown bundle',
    { [WEB]: 'targets: []\ndependsOn: [dbb]\n' },
    ['bundles/web/bundle.yaml:2: dependsOn[0]: unknown bundle "dbb" (no bundles/dbb/bundle.yaml)'],
  ],
  [
    'dependsOn itself',
    { [WEB]: 'targets: []\ndependsOn:\n  - web\n' },
    ['bundles/web/bundle.yaml:3: dependsOn[0]: a bundle cannot depend on itself'],
  ],
  [
    'dependsOn listed twice',
    { [WEB]: 'targets: []\ndependsOn: [db, db]\n' },
    ['bundles/web/bundle.yaml:2: dependsOn[1]: "db" is listed twice'],
  ],
  [
    'dependency cycle',
    {
      [WEB]: 'targets: []\ndependsOn: [db]\n',
      'bundles/db/bundle.yaml': 'namespace: db\ntargets: []\ndependsOn:\n  - web\n',
    },
    [
      'bundles/db/bundle.yaml:4: dependsOn[0]: dependency cycle db -> web -> db',
      'bundles/web/bundle.yaml:2: dependsOn[0]: dependency cycle web -> db -> web',
    ],
  ],
  [
    'a bundle that depends on a cycle is not on it',
    {
      [WEB]: 'targets: []\ndependsOn: [db]\n',
      'bundles/db/bundle.yaml': 'namespace: db\ntargets: []\ndependsOn:\n  - web\n',
      'bundles/api/bundle.yaml': 'namespace: api\ntargets: []\ndependsOn: [web, dbb]\n',
      'bundles/api/cm.yaml': configMap('  a: b\n'),
    },
    [
      'bundles/api/bundle.yaml:3: dependsOn[1]: unknown bundle "dbb" (no bundles/dbb/bundle.yaml)',
      'bundles/db/bundle.yaml:4: dependsOn[0]: dependency cycle db -> web -> db',
      'bundles/web/bundle.yaml:2: dependsOn[0]: dependency cycle web -> db -> web',
    ],
  ],
  [
    'customization with a missing overlay',
    { [WEB]: 'targets: []\ncustomizations:\n  - clusterName: a\n    overlay: prd\n' },
    [
      'bundles/web/bundle.yaml:4: customizations[0].overlay: no overlay "prd" (bundles/web/overlays/prd/ has no YAML files)',
    ],
  ],
  [
    'customization that customizes nothing',
    { [WEB]: 'targets: []\ncustomizations:\n  - name: prod\n    clusterGroup: prod\n' },
    [
      'bundles/web/bundle.yaml:3: customizations[0]: nothing to customize (set overlay, values, helm, kustomize, ignoreDifferences, healthChecks or several)',
    ],
  ],
  [
    'a list in values',
    { [WEB]: 'targets: []\nvalues:\n  hosts: [a, b]\n' },
    [
      'bundles/web/bundle.yaml:3: values.hosts: lists are not supported in values (only strings, numbers, booleans and mappings)',
    ],
  ],
  [
    'null in values',
    { [WEB]: 'targets: []\nvalues:\n  tag:\n' },
    ['bundles/web/bundle.yaml:3: values.tag: null is not a value (quote it or remove the key)'],
  ],
  [
    'undefined value variable',
    { [CM]: configMap('  tag: ${values.tag}\n') },
    [
      'bundles/web/cm.yaml:6: undefined variable ${values.tag} (not set in values of bundles/web/bundle.yaml)',
    ],
  ],
  [
    'unknown variable',
    { [CM]: configMap('  region: "${cluster.region}"\n') },
    [
      'bundles/web/cm.yaml:6: unknown variable ${cluster.region} (expected cluster.name, cluster.labels.<key> or values.<key>; write $${ for a literal ${)',
    ],
  ],
  [
    'unterminated variable',
    { [CM]: configMap('  url: https://${cluster.name.example.com\n') },
    [
      'bundles/web/cm.yaml:6: unterminated variable reference "${cluster.name.example.com" (write $${ for a literal ${)',
    ],
  ],
  [
    'a value variable naming a mapping',
    { [WEB]: 'targets: []\nvalues:\n  image: { tag: "1" }\n', [CM]: configMap('  image: ${values.image}\n') },
    [
      'bundles/web/cm.yaml:6: ${values.image} is a mapping, not a value (from values of bundles/web/bundle.yaml)',
    ],
  ],
  [
    'a label the cluster lacks (for that cluster)',
    { [CM]: configMap('  zone: ${cluster.labels.zone}\n') },
    ['bundles/web/cm.yaml:6: undefined variable ${cluster.labels.zone}: cluster "c1" has no label "zone"'],
  ],
  [
    'variables in kind',
    { [CM]: 'apiVersion: v1\nkind: ${values.kind}\nmetadata:\n  name: cm\n' },
    ['bundles/web/cm.yaml:2: kind: variables are not allowed in kind'],
  ],
  [
    'missing apiVersion',
    { [CM]: 'kind: ConfigMap\nmetadata:\n  name: cm\n' },
    ['bundles/web/cm.yaml:1: apiVersion: required'],
  ],
  [
    'missing metadata.name',
    { [CM]: 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: {}\n' },
    ['bundles/web/cm.yaml:4: metadata.name: required'],
  ],
  [
    'generateName',
    { [CM]: 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: cm-\n' },
    ['bundles/web/cm.yaml:4: metadata.name: required (generateName cannot be used with server-side apply)'],
  ],
  [
    'a manifest that is not a mapping',
    { [CM]: `${configMap('  a: "1"\n')}---\n- just\n- a list\n` },
    ['bundles/web/cm.yaml:8: expected a Kubernetes object (a mapping), got a list'],
  ],
  [
    'a List object',
    { [CM]: 'apiVersion: v1\nkind: List\nmetadata:\n  name: all\nitems: []\n' },
    ['bundles/web/cm.yaml:2: kind: List is not supported; write the items as separate YAML documents'],
  ],
  [
    'namespace on a cluster-scoped object',
    {
      [CM]: 'apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: viewer\n  namespace: web\n',
    },
    [
      'bundles/web/cm.yaml:5: metadata.namespace: ClusterRole.rbac.authorization.k8s.io "viewer" is cluster-scoped and cannot have a namespace',
    ],
  ],
  [
    'duplicate object in one bundle',
    { [CM]: `${configMap('  a: "1"\n')}---\n${configMap('  a: "2"\n')}` },
    ['bundles/web/cm.yaml:8: duplicate object ConfigMap "web/cm" (also at bundles/web/cm.yaml:1)'],
  ],
  [
    'duplicate object across bundles for one cluster',
    { 'bundles/db/web.yaml': `${DEPLOYMENT.replace('name: web\n', 'name: web\n  namespace: web\n')}` },
    [
      'bundles/db/web.yaml:1: duplicate object Deployment.apps "web/web": also defined by bundle "web" at bundles/web/deploy.yaml:1',
      'bundles/web/deploy.yaml:1: duplicate object Deployment.apps "web/web": also defined by bundle "db" at bundles/db/web.yaml:1',
    ],
  ],
  [
    'octal-looking number',
    { [CM]: 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nspec:\n  defaultMode: 0644\n' },
    [
      'bundles/web/cm.yaml:6: number 0644 has a leading zero: kubectl (YAML 1.1) reads it as octal 420 but YAML 1.2 as 644; write 0o644 or 420',
    ],
  ],
  [
    'patch target not found',
    {
      [WEB]: 'targets: []\ncustomizations:\n  - { clusterName: a, overlay: prod }\n',
      'bundles/web/overlays/prod/patch.yaml':
        'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  replicas: 3\n',
    },
    ['bundles/web/overlays/prod/patch.yaml:1: patch target Deployment.apps "api" not found in bundle "web"'],
  ],
  [
    'unknown $patch mode',
    {
      [WEB]: 'targets: []\ncustomizations:\n  - { clusterName: a, overlay: prod }\n',
      'bundles/web/overlays/prod/patch.yaml':
        '$patch: strategic\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n',
    },
    [
      'bundles/web/overlays/prod/patch.yaml:1: $patch: unknown value "strategic" (expected merge, json-merge, replace, delete)',
    ],
  ],
  [
    'bundle without bundle.yaml',
    { 'bundles/api/deploy.yaml': DEPLOYMENT },
    ['bundles/api/deploy.yaml:1: bundle "api" has no bundle.yaml (expected bundles/api/bundle.yaml)'],
  ],
  [
    'bundle without objects',
    { 'bundles/web/deploy.yaml': null, 'bundles/web/README.md': '# web\n' },
    [
      'bundles/web/bundle.yaml:1: bundle "web" has no Kubernetes objects (add YAML files next to bundle.yaml)',
    ],
  ],
  [
    'invalid bundle directory name',
    { 'bundles/Web_App/bundle.yaml': 'targets: []\n', 'bundles/Web_App/cm.yaml': configMap('  a: "1"\n') },
    [
      `bundles/Web_App/bundle.yaml:1: invalid bundle name (the directory name): "Web_App" is not a valid name (lowercase letters, digits and '-', starting and ending with a letter or digit)`,
    ],
  ],
  [
    'invalid label in clusters/',
    { 'clusters/c1.yaml': 'labels:\n  env: prod\n  owner: team a\n' },
    [
      `clusters/c1.yaml:3: labels.owner: invalid label value "team a": must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`,
    ],
  ],
  [
    'alias expansion bomb',
    {
      [CM]: configMap(
        '  a: &a ["x","x","x","x","x","x","x","x","x","x"]\n' +
          Array.from({ length: 7 }, (_, i) => {
            const prev = String.fromCharCode(97 + i);
            const cur = String.fromCharCode(98 + i);
            return `  ${cur}: &${cur} [${Array(10).fill(`*${prev}`).join(',')}]\n`;
          }).join(''),
      ),
    },
    ['bundles/web/cm.yaml:11: YAML document is too large or too deeply nested (alias expansion?)'],
  ],
  [
    'ignoreDifferences entry without group, kind or paths',
    { [WEB]: 'namespace: web\ntargets: []\nignoreDifferences:\n  - name: web\n' },
    [
      'bundles/web/bundle.yaml:4: ignoreDifferences[0].group: required ("" for the core group of Pod, Service, ConfigMap, ...)',
      'bundles/web/bundle.yaml:4: ignoreDifferences[0].kind: required',
      'bundles/web/bundle.yaml:4: ignoreDifferences[0]: nothing to ignore (set jsonPointers, fieldPaths or both)',
    ],
  ],
  [
    'ignoreDifferences with bad paths',
    {
      [WEB]: `namespace: web
targets: []
ignoreDifferences:
  - group: apps
    kind: Deployment
    jsonPointers:
      - spec/replicas
      - /metadata/name
    fieldPaths:
      - .spec..replicas
      - .spec.template.spec.containers[name=web.image
      - .metadata.labels[app.kubernetes.io/name]
    managedFieldsManager: [hpa]
`,
    },
    [
      'bundles/web/bundle.yaml:7: ignoreDifferences[0].jsonPointers[0]: "spec/replicas" must start with "/"',
      'bundles/web/bundle.yaml:8: ignoreDifferences[0].jsonPointers[1]: "/metadata/name" is part of the object\'s identity (apiVersion, kind, metadata.name, metadata.namespace)',
      'bundles/web/bundle.yaml:10: ignoreDifferences[0].fieldPaths[0]: ".spec..replicas": expected a field name at character 7',
      'bundles/web/bundle.yaml:11: ignoreDifferences[0].fieldPaths[1]: ".spec.template.spec.containers[name=web.image": "[" without "]" at character 31',
      'bundles/web/bundle.yaml:12: ignoreDifferences[0].fieldPaths[2]: ".metadata.labels[app.kubernetes.io/name]": "[app.kubernetes.io/name]" must be [n], [key=value,...] or ["key"] at character 17',
      'bundles/web/bundle.yaml:13: ignoreDifferences[0]: unknown field "managedFieldsManager" (expected group, kind, name, namespace, jsonPointers, fieldPaths)',
    ],
  ],
  [
    'ignoreDifferences with an apiVersion for a group',
    {
      [WEB]:
        'namespace: web\ntargets: []\nignoreDifferences:\n  - { group: apps/v1, kind: Deployment, jsonPointers: [/spec/replicas] }\n',
    },
    [
      'bundles/web/bundle.yaml:4: ignoreDifferences[0].group: "apps/v1" has a version; write the group alone ("apps")',
    ],
  ],
  [
    'ignoreDifferences in a customization, not a list',
    {
      [WEB]: `namespace: web
targets: []
customizations:
  - clusterName: c1
    ignoreDifferences: { group: apps }
`,
    },
    ['bundles/web/bundle.yaml:5: customizations[0].ignoreDifferences: expected a list, got a mapping'],
  ],
  [
    'a bundle file directly in bundles/',
    { 'bundles/web.yaml': 'targets: []\n' },
    ['bundles/web.yaml:1: bundle files go in a directory per bundle: bundles/<name>/bundle.yaml'],
  ],
  [
    'a CEL syntax error in a health check',
    {
      [WEB]: `targets: []
healthChecks:
  - kind: Claim
    current: self.status.phase ==
`,
    },
    [
      'bundles/web/bundle.yaml:4: healthChecks[0].current: syntax error at column 19: found = but expecting end of input',
    ],
  ],
  [
    'an unknown variable and an unknown function in health checks',
    {
      [WEB]: `targets: []
healthChecks:
  - apiVersion: example.com/v1
    kind: Claim
    name: data-*
    failed: sefl.status.phase == "Lost"
    current: self.status.conditions.exists(c, isReady(c))
`,
    },
    [
      'bundles/web/bundle.yaml:6: healthChecks[0].failed: unknown variable "sefl" (the object is self; metadata, spec and status are also variables)',
      'bundles/web/bundle.yaml:7: healthChecks[0].current: unknown function "isReady"',
    ],
  ],
  [
    'a health check without kind or current, with an unknown field',
    {
      [WEB]: `targets: []
customizations:
  - clusterName: c1
    healthChecks:
      - apiVersion: example.com/v1
        expr: self.ready
`,
    },
    [
      'bundles/web/bundle.yaml:5: customizations[0].healthChecks[0].current: required (a CEL bool: true when ready; or write it as expression)',
      'bundles/web/bundle.yaml:5: customizations[0].healthChecks[0].kind: required (the kind of object the check is for)',
      'bundles/web/bundle.yaml:6: customizations[0].healthChecks[0]: unknown field "expr" (expected apiVersion, kind, name, inProgress, failed, current, expression, message)',
    ],
  ],
  [
    'a health check with both current and expression (its other name)',
    {
      [WEB]: `targets: []
healthChecks:
  - kind: Claim
    current: self.ready
    expression: self.status.ready
`,
    },
    [
      'bundles/web/bundle.yaml:5: healthChecks[0].expression: another name for current; set one of them, not both',
    ],
  ],
  [
    'a health check written with expression, reported under that name',
    {
      [WEB]: `targets: []
healthChecks:
  - kind: Claim
    expression: self.status.phase = "Bound"
`,
    },
    [
      'bundles/web/bundle.yaml:4: healthChecks[0].expression: syntax error at column 19: found = but expecting end of input',
    ],
  ],
];

describe('bad input: every error names file and line, with a clear message', () => {
  it('has at least 25 distinct cases', () => {
    expect(new Set(CASES.map(([name]) => name)).size).toBe(CASES.length);
    expect(CASES.length).toBeGreaterThanOrEqual(25);
  });

  it('the base repo is valid', () => {
    expect(planFleet(repo(BASE), [CLUSTER]).errors).toEqual([]);
  });

  it.each(CASES)('%s', (_name, changes, expected) => {
    const files: Record<string, string> = { ...BASE };
    for (const [path, content] of Object.entries(changes)) {
      if (content === null) delete files[path];
      else files[path] = content;
    }
    const plan = planFleet(repo(files), [CLUSTER]);
    expect(formatted(plan.errors)).toEqual(expected);
    for (const e of plan.errors) {
      expect(e.line).toBeGreaterThanOrEqual(1);
      expect(files[e.file]).toBeDefined();
    }
  });
});
