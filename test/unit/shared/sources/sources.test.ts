/**
 * Fleet sources in the core: declarations (`sources/<name>.yaml`), the combined tree, and
 * the loader reading a team source's bundles as `<source>/<bundle>`.
 */
import {
  type BundleRef,
  canonicalDesiredState,
  desiredContentHash,
  FLOTILLA_API_VERSION,
  formatFleetError,
  labelValueProblem,
  loadFleet,
  parseDesiredState,
} from '@flotilla/shared';
import { bundleKey } from '@flotilla/shared/agent';
import { bundleNameProblem, combineSources, loadSourceSpecs } from '@flotilla/shared/sources';
import { describe, expect, it } from 'vitest';
import { DEPLOYMENT, passThroughEngine, repo } from '../helpers.ts';

const SOURCE = `apiVersion: flotilla.dev/v1alpha1
kind: FleetSource
metadata: {name: team-a}
spec:
  repo: https://git.example.com/team-a/apps.git
  ref: {branch: main}
  path: deploy
  tenant: team-a
  interval: 30s
  credentials: {secretRef: team-a-git}
`;

describe('source declarations', () => {
  it('reads a FleetSource with its defaults', () => {
    const { sources, errors } = loadSourceSpecs([
      { path: 'sources/team-a.yaml', content: SOURCE },
      {
        path: 'sources/team-b.yaml',
        content: SOURCE.replace(/team-a/g, 'team-b')
          .replace('  path: deploy\n', '')
          .replace('  interval: 30s\n', '')
          .replace('  tenant: team-b\n', '')
          .replace('  credentials: {secretRef: team-b-git}\n', '')
          .replace('{branch: main}', '{semver: ">=1.0.0 <2"}'),
      },
    ]);
    expect(errors).toEqual([]);
    expect(sources.get('team-a')).toMatchObject({
      repo: 'https://git.example.com/team-a/apps.git',
      ref: { branch: 'main' },
      path: 'deploy',
      tenant: 'team-a',
      intervalMs: 30_000,
      secretRef: 'team-a-git',
    });
    expect(sources.get('team-b')).toMatchObject({
      ref: { semver: '>=1.0.0 <2' },
      path: '',
      tenant: undefined,
      intervalMs: 60_000,
      secretRef: undefined,
    });
  });

  it('reports each problem at its file and line', () => {
    const bad = SOURCE.replace('{branch: main}', '{branch: main, tag: v1}')
      .replace('name: team-a}', 'name: team-x}')
      .replace('interval: 30s', 'interval: 1s')
      .replace('https://git.example.com', 'ssh://git.example.com');
    const { sources, errors } = loadSourceSpecs([
      { path: 'sources/team-a.yaml', content: bad },
      { path: 'sources/platform.yaml', content: SOURCE.replace('name: team-a}', 'name: platform}') },
    ]);
    expect(sources.size).toBe(0);
    expect(errors.map(formatFleetError)).toEqual([
      `sources/platform.yaml:3: metadata.name: "platform" is the hub's own repository`,
      'sources/team-a.yaml:3: metadata.name: "team-x" differs from the file name (sources/team-a.yaml declares source "team-a")',
      'sources/team-a.yaml:5: spec.repo: "ssh://git.example.com/team-a/apps.git": only http(s) git URLs are supported',
      'sources/team-a.yaml:6: spec.ref: exactly one of branch, tag, semver (got branch, tag)',
      'sources/team-a.yaml:9: spec.interval: at least 10s (got 1s)',
    ]);
  });
});

const bundle = (extra = '') => `namespace: apps\ntargets: [{clusterSelector: {}}]\n${extra}`;

describe('the combined tree', () => {
  it('takes a team source’s bundles/ under its name and warns once per other folder', () => {
    const combined = combineSources(
      { commit: 'p1', files: repo({ 'bundles/web/bundle.yaml': bundle() }) },
      new Map([
        [
          'team-a',
          {
            commit: 't1',
            files: repo({
              'bundles/app/bundle.yaml': bundle(),
              'policies/a.yaml': 'x',
              'policies/b.yaml': 'y',
              'fleet.yaml': 'z',
              'README.md': 'hello',
            }),
          },
        ],
      ]),
    );
    expect(combined.files.map((f) => f.path)).toEqual([
      'bundles/web/bundle.yaml',
      'team-a:bundles/app/bundle.yaml',
    ]);
    expect(combined.sources).toEqual({ 'team-a': { commit: 't1' } });
    expect(combined.errors).toEqual([]);
    expect(combined.warnings.map(formatFleetError)).toEqual([
      'team-a:fleet.yaml:1: fleet.yaml of source "team-a" is ignored: a team source carries only bundles/ (files like it belong to the platform source)',
      'team-a:policies/a.yaml:1: policies/ of source "team-a" is ignored: a team source carries only bundles/ (folders like it belong to the platform source)',
    ]);
  });

  it('keeps the last good files of a source that cannot be fetched, with an error naming it', () => {
    const combined = combineSources(
      { commit: 'p1', files: [] },
      new Map([
        [
          'team-a',
          {
            error: 'git fetch https://git.example.com/team-a/apps.git: HTTP 503',
            lastGood: { commit: 'aaaaaaaaaaaaaaaa', files: repo({ 'bundles/app/bundle.yaml': bundle() }) },
          },
        ],
        ['team-b', { error: 'git fetch https://git.example.com/team-b/apps.git: HTTP 404' }],
      ]),
    );
    expect(combined.files.map((f) => f.path)).toEqual(['team-a:bundles/app/bundle.yaml']);
    expect(combined.sources).toEqual({
      'team-a': {
        commit: 'aaaaaaaaaaaaaaaa',
        error: 'git fetch https://git.example.com/team-a/apps.git: HTTP 503',
      },
      'team-b': { commit: '', error: 'git fetch https://git.example.com/team-b/apps.git: HTTP 404' },
    });
    expect(combined.errors.map(formatFleetError)).toEqual([
      'sources/team-a.yaml:1: source "team-a": git fetch https://git.example.com/team-a/apps.git: HTTP 503; its bundles stay at commit aaaaaaaaaaaa',
      'sources/team-b.yaml:1: source "team-b": git fetch https://git.example.com/team-b/apps.git: HTTP 404',
    ]);
  });
});

describe('a fleet of two sources', () => {
  const platform = {
    'sources/team-a.yaml': SOURCE.replace('  tenant: team-a\n', ''),
    'bundles/web/bundle.yaml': bundle('dependsOn: [team-a/db]\n'),
    'bundles/web/app.yaml': DEPLOYMENT,
  };
  const team = (files: Record<string, string>) =>
    combineSources(
      { commit: 'p1', files: repo(platform) },
      new Map([['team-a', { commit: 't1', files: repo(files) }]]),
    ).files;

  it('names a team bundle <source>/<bundle> and orders dependsOn across sources', () => {
    const fleet = loadFleet(
      team({
        'bundles/db/bundle.yaml': bundle(),
        'bundles/db/db.yaml': DEPLOYMENT.replace('name: web', 'name: db'),
        'bundles/app/bundle.yaml': bundle('dependsOn: [web, team-a/db]\n'),
        'bundles/app/app.yaml': DEPLOYMENT.replace('name: web', 'name: app'),
      }),
    );
    expect(fleet.errors).toEqual([]);
    const plan = fleet.planCluster({ name: 'c1', labels: {} });
    expect(plan.held).toEqual([]);
    expect(plan.bundles.map((b) => [b.ref.name, b.ref.dependsOn])).toEqual([
      ['team-a/db', []],
      ['web', ['team-a/db']],
      ['team-a/app', ['team-a/db', 'web']],
    ]);
  });

  it('reports a team bundle’s errors at its prefixed path and holds only that source’s broken bundle', () => {
    const fleet = loadFleet(
      team({
        'bundles/db/bundle.yaml': bundle(),
        'bundles/db/db.yaml': DEPLOYMENT.replace('name: web', 'name: db'),
        'bundles/app/bundle.yaml': bundle('paused: maybe\n'),
        'bundles/app/app.yaml': DEPLOYMENT.replace('name: web', 'name: app'),
      }),
    );
    const plan = fleet.planCluster({ name: 'c1', labels: {} });
    expect(plan.bundles.map((b) => b.ref.name)).toEqual(['team-a/db', 'web']);
    expect(plan.held.map((h) => [h.bundle, h.errors.map(formatFleetError)])).toEqual([
      ['team-a/app', ['team-a:bundles/app/bundle.yaml:3: paused: expected true or false, got a string']],
    ]);
  });

  it('names the missing bundle of a dependsOn by its file', () => {
    const fleet = loadFleet(
      team({ 'bundles/app/bundle.yaml': bundle(), 'bundles/app/app.yaml': DEPLOYMENT }),
    );
    const plan = fleet.planCluster({ name: 'c1', labels: {} });
    expect(plan.held.map((h) => [h.bundle, h.errors.map(formatFleetError)])).toEqual([
      [
        'web',
        [
          'bundles/web/bundle.yaml:3: dependsOn[0]: unknown bundle "team-a/db" (no team-a:bundles/db/bundle.yaml)',
        ],
      ],
    ]);
  });

  it('keeps a team bundle’s relative paths inside its own source', async () => {
    const fleet = loadFleet([
      ...team({
        'bundles/app/bundle.yaml': `${bundle()}helm: {chart: ../../lib/charts/web}\n`,
      }),
      { path: 'lib/charts/web/Chart.yaml', content: 'apiVersion: v2\nname: web\nversion: 1.0.0\n' },
    ]);
    await fleet.prepare([{ name: 'c1', labels: {} }], { engine: passThroughEngine });
    const plan = fleet.planCluster({ name: 'c1', labels: {} });
    const held = plan.held.find((h) => h.bundle === 'team-a/app');
    expect(held?.errors.map(formatFleetError)).toEqual([
      expect.stringMatching(/^team-a:bundles\/app\/bundle\.yaml:\d+: .*team-a:lib\/charts\/web/),
    ]);
  });
});

describe('a source bundle’s name in the spoke and on the wire', () => {
  it('keys a platform bundle by its name and a source’s as a label value', () => {
    expect(bundleKey('web')).toBe('web');
    expect(bundleKey('team-a/web')).toBe('team-a.web');
    const long = `${'a'.repeat(40)}/${'b'.repeat(40)}`;
    const key = bundleKey(long);
    expect(key).toHaveLength(63);
    expect(labelValueProblem(key)).toBeUndefined();
    expect(bundleKey(`${'a'.repeat(40)}/${'b'.repeat(39)}c`)).not.toBe(key);
  });

  it('accepts <source>/<bundle> names and nothing looser', () => {
    expect(bundleNameProblem('team-a/web')).toBeUndefined();
    expect(bundleNameProblem('team-a/web/x')).toMatch(/not a valid bundle name/);
    expect(bundleNameProblem('platform/web')).toMatch(/without a source/);
  });

  it('carries a tenant in a bundle reference without changing tenant-less hashes', () => {
    const ref = {
      name: 'web',
      hash: `sha256:${'0'.repeat(64)}` as const,
      namespace: 'web',
      dependsOn: [],
      driftPolicy: 'correct' as const,
      paused: false,
    };
    const manifest = (refs: BundleRef[]) => ({
      apiVersion: FLOTILLA_API_VERSION as typeof FLOTILLA_API_VERSION,
      kind: 'DesiredState' as const,
      cluster: 'c1',
      generation: 1,
      commit: 'p1',
      bundles: refs,
    });
    expect(canonicalDesiredState(manifest([ref]))).toContain(
      '"name":"web","namespace":"web","paused":false}',
    );
    const tenanted = { ...ref, name: 'team-a/web', tenant: 'team-a' };
    const text = canonicalDesiredState(manifest([tenanted]));
    expect(text).toContain('"paused":false,"tenant":"team-a"}');
    expect(parseDesiredState(JSON.parse(text)).bundles[0]?.tenant).toBe('team-a');
    expect(desiredContentHash({ cluster: 'c1', bundles: [tenanted] })).not.toBe(
      desiredContentHash({ cluster: 'c1', bundles: [{ ...tenanted, tenant: undefined }] }),
    );
  });
});
