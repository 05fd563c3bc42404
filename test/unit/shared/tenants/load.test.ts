/**
 * Reading `tenants/<name>.yaml`: a good declaration compiles; every bad field is reported
 * at its own line, by exact string, and a document with an error is left out.
 */
import { formatFleetError } from '@flotilla/shared';
import { loadTenants } from '@flotilla/shared/tenants';
import { describe, expect, it } from 'vitest';

const TEAM_A = `apiVersion: flotilla.dev/v1alpha1
kind: Tenant
metadata:
  name: team-a
spec:
  description: The storefront team
  namespaces: ["team-a", "team-a-*"]
  clusterResources:
    - group: ""
      kind: Namespace
  clusterSelector:
    matchLabels: {team-a: enabled}
  helmRepositories: ["https://Charts.Example.com/*", "oci://registry.example.com/team-a/*"]
`;

/** Loads one file and returns its errors, formatted. */
function errorsOf(content: string, path = 'tenants/t.yaml'): string[] {
  return loadTenants([{ path, content }]).errors.map(formatFleetError);
}

/** A valid tenant whose spec is `spec` (indented two spaces). */
function withSpec(spec: string): string {
  return `apiVersion: flotilla.dev/v1alpha1\nkind: Tenant\nmetadata: {name: t}\nspec:\n${spec}`;
}

const MINIMAL = '  namespaces: [t]\n  clusterSelector: {}\n';

describe('loadTenants', () => {
  it('reads a declaration into a compiled tenant', () => {
    const { tenants, errors } = loadTenants([{ path: 'tenants/team-a.yaml', content: TEAM_A }]);
    expect(errors).toEqual([]);
    const t = tenants.get('team-a');
    if (!t) throw new Error('team-a not loaded');
    expect(t.file).toBe('tenants/team-a.yaml');
    expect(t.pos.line).toBe(1);
    expect(t.description).toBe('The storefront team');
    expect(t.namespaces.map((g) => g.pattern)).toEqual(['team-a', 'team-a-*']);
    expect(t.clusterResources).toEqual([{ group: '', kind: 'Namespace' }]);
    expect(t.clusterSelector).toEqual({ matchLabels: { 'team-a': 'enabled' } });
    expect(t.clusterMatcher({ 'team-a': 'enabled' })).toBe(true);
    expect(t.clusterMatcher({ 'team-b': 'enabled' })).toBe(false);
    // Patterns are shown as written, matched normalised (host in lower case).
    expect(t.helmRepositories.map((g) => g.pattern)).toEqual([
      'https://Charts.Example.com/*',
      'oci://registry.example.com/team-a/*',
    ]);
    expect(t.helmRepositories[0]?.matches('https://charts.example.com/web')).toBe(true);
    expect(t.sourceRepositories).toBeUndefined();
  });

  it('reads several tenants from one file, separated by ---', () => {
    const second = TEAM_A.replace('name: team-a', 'name: team-b');
    const { tenants, errors } = loadTenants([
      { path: 'tenants/apps.yaml', content: `${TEAM_A}---\n${second}` },
    ]);
    expect(errors).toEqual([]);
    expect([...tenants.keys()]).toEqual(['team-a', 'team-b']);
    expect(tenants.get('team-b')?.pos.line).toBe(15);
  });

  it('defaults: no cluster-scoped kinds, no Helm repositories, any source', () => {
    const { tenants, errors } = loadTenants([{ path: 'tenants/t.yaml', content: withSpec(MINIMAL) }]);
    expect(errors).toEqual([]);
    const t = tenants.get('t');
    expect(t?.clusterResources).toEqual([]);
    expect(t?.helmRepositories).toEqual([]);
    expect(t?.sourceRepositories).toBeUndefined();
    expect(t?.clusterMatcher({ anything: 'x' })).toBe(true);
  });

  it('accepts a kubectl-style selector string and sourceRepositories', () => {
    const { tenants, errors } = loadTenants([
      {
        path: 'tenants/t.yaml',
        content: withSpec(
          '  namespaces: [t]\n  clusterSelector: "env in (dev,prod),!legacy"\n  sourceRepositories: ["https://git.example.com/team-t/*"]\n',
        ),
      },
    ]);
    expect(errors).toEqual([]);
    const t = tenants.get('t');
    expect(t?.clusterMatcher({ env: 'dev' })).toBe(true);
    expect(t?.clusterMatcher({ env: 'dev', legacy: 'yes' })).toBe(false);
    expect(t?.sourceRepositories?.map((g) => g.pattern)).toEqual(['https://git.example.com/team-t/*']);
  });

  it('refuses a tenant declared twice, at the second, naming the first', () => {
    const { tenants, errors } = loadTenants([
      { path: 'tenants/b.yaml', content: TEAM_A },
      { path: 'tenants/a.yaml', content: `${withSpec(MINIMAL)}---\n${TEAM_A}` },
    ]);
    expect(errors.map(formatFleetError)).toEqual([
      'tenants/b.yaml:1: metadata.name: tenant "team-a" is declared twice (also at tenants/a.yaml:8)',
    ]);
    expect(tenants.get('team-a')?.file).toBe('tenants/a.yaml');
  });

  it('leaves out a document with an error, and keeps the others', () => {
    const bad = withSpec('  namespaces: [t]\n').replace('name: t', 'name: bad');
    const { tenants, errors } = loadTenants([{ path: 'tenants/t.yaml', content: `${bad}---\n${TEAM_A}` }]);
    expect(errors.map(formatFleetError)).toEqual([
      'tenants/t.yaml:5: spec.clusterSelector: required (where its bundles may go; {} for every cluster)',
    ]);
    expect([...tenants.keys()]).toEqual(['team-a']);
  });

  describe('reports each bad field at its line', () => {
    const cases: [string, string, string][] = [
      ['YAML syntax', 'apiVersion: [\n', 'tenants/t.yaml:2: YAML syntax error:'],
      ['a document that is not a mapping', '- a\n- b\n', 'tenants/t.yaml:1: expected a mapping, got a list'],
      [
        'unknown top-level field',
        `${withSpec(MINIMAL)}status: {}\n`,
        'tenants/t.yaml:7: unknown field "status" (expected apiVersion, kind, metadata, spec)',
      ],
      [
        'wrong apiVersion',
        withSpec(MINIMAL).replace('flotilla.dev/v1alpha1', 'v1'),
        'tenants/t.yaml:1: apiVersion: expected flotilla.dev/v1alpha1, got "v1"',
      ],
      [
        'wrong kind',
        withSpec(MINIMAL).replace('kind: Tenant', 'kind: Team'),
        'tenants/t.yaml:2: kind: expected Tenant, got "Team"',
      ],
      [
        'missing kind',
        withSpec(MINIMAL).replace('kind: Tenant\n', ''),
        'tenants/t.yaml:1: kind: required (Tenant)',
      ],
      [
        'bad name',
        withSpec(MINIMAL).replace('name: t', 'name: Team_A'),
        'tenants/t.yaml:3: metadata.name: invalid tenant name: "Team_A" is not a valid name (lowercase letters, digits and \'-\', starting and ending with a letter or digit)',
      ],
      [
        'unknown metadata field',
        withSpec(MINIMAL).replace('{name: t}', '{name: t, namespace: x}'),
        'tenants/t.yaml:3: metadata: unknown field "namespace" (expected name)',
      ],
      [
        'missing spec',
        'apiVersion: flotilla.dev/v1alpha1\nkind: Tenant\nmetadata: {name: t}\n',
        'tenants/t.yaml:1: spec: required (namespaces and clusterSelector at least)',
      ],
      [
        'unknown spec field',
        withSpec(`${MINIMAL}  namespace: t\n`),
        'tenants/t.yaml:7: spec: unknown field "namespace" (expected description, namespaces, clusterResources, clusterSelector, helmRepositories, sourceRepositories)',
      ],
      [
        'missing namespaces',
        withSpec('  clusterSelector: {}\n'),
        'tenants/t.yaml:5: spec.namespaces: required (the namespaces, or globs, its objects may go to)',
      ],
      [
        'empty namespaces',
        withSpec('  namespaces: []\n  clusterSelector: {}\n'),
        'tenants/t.yaml:5: spec.namespaces: must not be empty',
      ],
      [
        'namespaces not a list',
        withSpec('  namespaces: team-a\n  clusterSelector: {}\n'),
        'tenants/t.yaml:5: spec.namespaces: expected a list, got a string',
      ],
      [
        'a namespace glob with bad characters',
        withSpec('  namespaces:\n    - t\n    - Team/A*\n  clusterSelector: {}\n'),
        'tenants/t.yaml:7: spec.namespaces[1]: "Team/A*" is not a namespace name or glob (lowercase letters, digits, \'-\', and the wildcards * and ?)',
      ],
      [
        'a namespace that is a number',
        withSpec('  namespaces: [t, 42]\n  clusterSelector: {}\n'),
        'tenants/t.yaml:5: spec.namespaces[1]: expected a string, got a number (quote it: "42")',
      ],
      [
        'clusterResources not a list',
        withSpec(`${MINIMAL}  clusterResources: Namespace\n`),
        'tenants/t.yaml:7: spec.clusterResources: expected a list, got a string',
      ],
      [
        'a clusterResources entry without group',
        withSpec(`${MINIMAL}  clusterResources:\n    - kind: Namespace\n`),
        'tenants/t.yaml:8: spec.clusterResources[0].group: required ("" for the core group, "*" for any)',
      ],
      [
        'a clusterResources entry with an unknown field',
        withSpec(
          `${MINIMAL}  clusterResources:\n    - group: ""\n      kind: Namespace\n      verbs: [create]\n`,
        ),
        'tenants/t.yaml:10: spec.clusterResources[0]: unknown field "verbs" (expected group, kind)',
      ],
      [
        'a clusterResources entry with a bad kind',
        withSpec(`${MINIMAL}  clusterResources:\n    - group: ""\n      kind: namespaces/x\n`),
        'tenants/t.yaml:9: spec.clusterResources[0].kind: "namespaces/x" is not a kind (such as ClusterRole), or "*" for any',
      ],
      [
        'a clusterResources entry with a bad group',
        withSpec(`${MINIMAL}  clusterResources:\n    - group: RBAC\n      kind: ClusterRole\n`),
        'tenants/t.yaml:8: spec.clusterResources[0].group: "RBAC" is not an API group ("" for the core group, "*" for any)',
      ],
      [
        'missing clusterSelector',
        withSpec('  namespaces: [t]\n'),
        'tenants/t.yaml:5: spec.clusterSelector: required (where its bundles may go; {} for every cluster)',
      ],
      [
        'a bad selector operator',
        withSpec(
          '  namespaces: [t]\n  clusterSelector:\n    matchExpressions:\n      - {key: env, operator: Is, values: [a]}\n',
        ),
        'tenants/t.yaml:8: spec.clusterSelector.matchExpressions[0].operator: unknown operator "Is" (expected In, NotIn, Exists, DoesNotExist)',
      ],
      [
        'an unknown selector field',
        withSpec('  namespaces: [t]\n  clusterSelector: {matchLabel: {a: b}}\n'),
        'tenants/t.yaml:6: spec.clusterSelector: unknown field "matchLabel" (expected matchLabels, matchExpressions)',
      ],
      [
        'a Helm repository that is not a URL',
        withSpec(`${MINIMAL}  helmRepositories: [charts.example.com]\n`),
        'tenants/t.yaml:7: spec.helmRepositories[0]: "charts.example.com" is not a URL glob (https://... or http://... or oci://...)',
      ],
      [
        'a Helm repository of another scheme',
        withSpec(`${MINIMAL}  helmRepositories: ["ftp://charts.example.com"]\n`),
        'tenants/t.yaml:7: spec.helmRepositories[0]: "ftp://charts.example.com": expected a https:// or http:// or oci:// URL',
      ],
      [
        'a Helm repository glob that leaves the host open',
        withSpec(`${MINIMAL}  helmRepositories: ["https://charts.example.com*"]\n`),
        'tenants/t.yaml:7: spec.helmRepositories[0]: "https://charts.example.com*": the host must be a name, or *.domain for its subdomains',
      ],
      [
        'a Helm repository with a trailing slash',
        withSpec(`${MINIMAL}  helmRepositories: ["https://charts.example.com/"]\n`),
        'tenants/t.yaml:7: spec.helmRepositories[0]: "https://charts.example.com/": leave out the trailing /',
      ],
      [
        'a source repository of a Helm scheme',
        withSpec(`${MINIMAL}  sourceRepositories: ["oci://registry.example.com/x"]\n`),
        'tenants/t.yaml:7: spec.sourceRepositories[0]: "oci://registry.example.com/x": expected a https:// or http:// or ssh:// URL',
      ],
      [
        'a description that is not a string',
        withSpec(`${MINIMAL}  description: [a]\n`),
        'tenants/t.yaml:7: spec.description: expected a string, got a list',
      ],
    ];
    for (const [what, content, expected] of cases) {
      it(what, () => {
        const errors = errorsOf(content);
        expect(errors.length).toBeGreaterThan(0);
        if (expected.endsWith(':')) expect(errors[0]?.startsWith(expected)).toBe(true);
        else expect(errors).toEqual([expected]);
        expect(loadTenants([{ path: 'tenants/t.yaml', content }]).tenants.size).toBe(0);
      });
    }
  });
});
