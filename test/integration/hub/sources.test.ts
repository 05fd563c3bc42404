/**
 * Several fleet sources on the bed: a platform repo that declares a tenant and two team
 * sources, and the team repos on the bed's real git server, synced by the hub into
 * DynamoDB Local. The team bundle is delivered as `team-a/app`, a tenant violation is held
 * while it is, a commit in the team repo is picked up on the next sync, and a source on a
 * semver range reads the highest matching tag.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { formatFleetError, openSignedDesiredState, parseRenderedBundle } from '@flotilla/shared';
import { previewTargets, registerCluster, syncFleet } from '@flotilla/shared/hub';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FleetWorkingCopy } from '../../support/fleet-git.ts';
import { createTestHub } from '../../support/hub.ts';

const bed = inject('bed');
const run = Date.now();
let platform: FleetWorkingCopy;
let teamA: FleetWorkingCopy;
let teamB: FleetWorkingCopy;
let hub: Awaited<ReturnType<typeof createTestHub>>;
const folders: string[] = [];

/** A folder holding `files`, for a working copy's first commit. */
function folder(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-sources-'));
  folders.push(dir);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}

const configMap = (name: string, namespace: string, value: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}, namespace: ${namespace}}\ndata: {value: "${value}"}\n`;
const BUNDLE = 'namespace: team-a\ntargets:\n  - clusterSelector: {}\n';

const TENANT = `apiVersion: flotilla.dev/v1alpha1
kind: Tenant
metadata: {name: team-a}
spec:
  namespaces: ["team-a", "team-a-*"]
  clusterSelector: {matchLabels: {team-a: enabled}}
`;

const source = (name: string, url: string, ref: string, extra = '') => `apiVersion: flotilla.dev/v1alpha1
kind: FleetSource
metadata: {name: ${name}}
spec:
  repo: ${url}
  ref: ${ref}
${extra}`;

async function manifestOf(id: string) {
  const stored = await hub.desiredStates.current(id);
  if (!stored) throw new Error(`no desired state for ${id}`);
  return openSignedDesiredState(
    { manifest: JSON.parse(stored.manifest), signature: stored.signature, keyId: stored.keyId },
    hub.publicKeyPem,
  );
}

async function dataValue(id: string, bundle: string): Promise<string | undefined> {
  const ref = (await manifestOf(id)).bundles.find((b) => b.name === bundle);
  if (!ref) return undefined;
  const bytes = await hub.bundles.get(ref.hash);
  const objects = parseRenderedBundle(Buffer.from(bytes ?? []).toString('utf8'), ref.hash).objects;
  return (objects[0] as { data?: { value?: string } } | undefined)?.data?.value;
}

beforeAll(async () => {
  teamA = await FleetWorkingCopy.create(
    bed.git,
    `team-a-${run}`,
    folder({
      'README.md': 'The team-a apps.\n',
      'deploy/bundles/app/bundle.yaml': BUNDLE,
      'deploy/bundles/app/cm.yaml': configMap('app', 'team-a', 'v1'),
      'deploy/bundles/evil/bundle.yaml': BUNDLE,
      'deploy/bundles/evil/cm.yaml': configMap('evil', 'kube-system', 'x'),
      'deploy/policies/mine.yaml': 'ignored: true\n',
      // A kustomization and a chart with a values file, all inside the source: the real engines render them.
      'deploy/bundles/kust/bundle.yaml': `${BUNDLE}kustomize: {}\n`,
      'deploy/bundles/kust/kustomization.yaml': 'resources: [cm.yaml]\nnamePrefix: k-\n',
      'deploy/bundles/kust/cm.yaml': configMap('kust', 'team-a', 'kustomized'),
      'deploy/bundles/chart/bundle.yaml': `${BUNDLE}helm:\n  chart: chart\n  valuesFiles: [values-team.yaml]\n`,
      'deploy/bundles/chart/values-team.yaml': 'value: from-values\n',
      'deploy/bundles/chart/chart/Chart.yaml': 'apiVersion: v2\nname: tool\nversion: 1.0.0\n',
      'deploy/bundles/chart/chart/values.yaml': 'value: default\n',
      'deploy/bundles/chart/chart/templates/cm.yaml':
        'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: chart, namespace: team-a}\ndata: {value: "{{ .Values.value }}"}\n',
    }),
  );
  teamB = await FleetWorkingCopy.create(
    bed.git,
    `team-b-${run}`,
    folder({
      'bundles/tool/bundle.yaml': 'namespace: tools\ntargets:\n  - clusterSelector: {}\n',
      'bundles/tool/cm.yaml': configMap('tool', 'tools', '1.0.0'),
    }),
  );
  teamB.git('tag', 'v1.0.0');
  teamB.write('bundles/tool/cm.yaml', configMap('tool', 'tools', '1.1.0'));
  teamB.commit('1.1.0');
  teamB.git('tag', 'v1.1.0');
  teamB.write('bundles/tool/cm.yaml', configMap('tool', 'tools', '2.0.0'));
  teamB.commit('2.0.0');
  teamB.git('tag', 'v2.0.0');
  teamB.git('push', '--quiet', teamB.url, '--tags');

  platform = await FleetWorkingCopy.create(
    bed.git,
    `platform-${run}`,
    folder({
      'tenants/team-a.yaml': TENANT,
      'sources/team-a.yaml': source(
        'team-a',
        teamA.url,
        '{branch: main}',
        '  path: deploy\n  tenant: team-a\n',
      ),
      'sources/team-b.yaml': source('team-b', teamB.url, '{semver: "^1.0.0"}'),
      'bundles/web/bundle.yaml': 'namespace: web\ntargets:\n  - clusterSelector: {}\n',
      'bundles/web/cm.yaml': configMap('web', 'web', 'p1'),
    }),
  );
  hub = await createTestHub(bed, platform.url);
  await registerCluster(hub, { name: 'dev-1', labels: { 'team-a': 'enabled' } });
});

afterAll(async () => {
  for (const copy of [platform, teamA, teamB]) copy?.dispose();
  for (const dir of folders) rmSync(dir, { recursive: true, force: true });
  await hub?.renderer?.close();
});

describe('fleet sources (git server, DynamoDB Local)', () => {
  it('delivers each source’s bundles by full name and holds the tenant’s violation', async () => {
    const report = await syncFleet(hub, { holder: 'api:test' });
    expect(report.status).toBe('synced');
    expect(report.commit).toBe(platform.git('rev-parse', 'HEAD'));
    expect(report.errors.map(formatFleetError)).toEqual([
      `team-a:bundles/evil/cm.yaml:1: tenant "team-a" may not write into namespace "kube-system" (allowed: team-a, team-a-*): ConfigMap kube-system/evil`,
    ]);
    expect(report.warnings?.map(formatFleetError)).toContain(
      'team-a:policies/mine.yaml:1: policies/ of source "team-a" is ignored: a team source carries only bundles/ (folders like it belong to the platform source)',
    );
    const manifest = await manifestOf('dev-1');
    expect(manifest.commit).toBe(platform.git('rev-parse', 'HEAD'));
    expect(manifest.bundles.map((b) => [b.name, b.tenant])).toEqual([
      ['team-a/app', 'team-a'],
      ['team-a/chart', 'team-a'],
      ['team-a/kust', 'team-a'],
      ['team-b/tool', undefined],
      ['web', undefined],
    ]);
    // The namespaces the agent may bind team-a in, signed with the rest.
    expect(manifest.tenants).toEqual([{ name: 'team-a', namespaces: ['team-a', 'team-a-*'] }]);
    expect(await dataValue('dev-1', 'team-a/app')).toBe('v1');
    expect(await dataValue('dev-1', 'team-a/kust')).toBe('kustomized');
    expect(await dataValue('dev-1', 'team-a/chart')).toBe('from-values');
    // The highest tag in ^1.0.0: v1.1.0, not v2.0.0.
    expect(await dataValue('dev-1', 'team-b/tool')).toBe('1.1.0');
    const state = await hub.syncState.get();
    expect(state?.commit).toBe(platform.git('rev-parse', 'HEAD'));
    expect(state?.sources?.['team-a']?.commit).toBe(teamA.git('rev-parse', 'HEAD'));
    expect(state?.sources?.['team-b']?.commit).toBe(teamB.git('rev-parse', 'v1.1.0^{commit}'));
  });

  it('previews the repository’s tip with the sources’ bundles', async () => {
    const preview = await previewTargets(hub, { source: { kind: 'repo' } });
    expect(preview.bundles.map((b) => [b.name, b.file, b.clusters, b.held])).toEqual([
      ['team-a/app', 'team-a:bundles/app/bundle.yaml', ['dev-1'], []],
      ['team-a/chart', 'team-a:bundles/chart/bundle.yaml', ['dev-1'], []],
      ['team-a/evil', 'team-a:bundles/evil/bundle.yaml', [], ['dev-1']],
      ['team-a/kust', 'team-a:bundles/kust/bundle.yaml', ['dev-1'], []],
      ['team-b/tool', 'team-b:bundles/tool/bundle.yaml', ['dev-1'], []],
      ['web', 'bundles/web/bundle.yaml', ['dev-1'], []],
    ]);
  });

  it('picks up a commit in the team repo on the next sync', async () => {
    teamA.write('deploy/bundles/app/cm.yaml', configMap('app', 'team-a', 'v2'));
    const commit = teamA.commit('app v2');
    const report = await syncFleet(hub, { holder: 'api:test' });
    expect(report.changed.map((c) => c.clusterId)).toEqual(['dev-1']);
    expect(await dataValue('dev-1', 'team-a/app')).toBe('v2');
    expect((await hub.syncState.get())?.sources?.['team-a']?.commit).toBe(commit);
    expect((await manifestOf('dev-1')).commit).toBe(platform.git('rev-parse', 'HEAD'));
  });

  it('keeps a source’s last good bundles when its repository cannot be read', async () => {
    platform.write(
      'sources/team-a.yaml',
      source(
        'team-a',
        `${bed.git.url}/gone-${run}.git`,
        '{branch: main}',
        '  path: deploy\n  tenant: team-a\n',
      ),
    );
    platform.commit('team-a moves to a repo that does not exist');
    const report = await syncFleet(hub, { holder: 'api:test' });
    expect(report.errors.map(formatFleetError)).toContainEqual(
      expect.stringMatching(
        /^sources\/team-a\.yaml:1: source "team-a": git fetch .*gone-.*; its bundles stay at commit [0-9a-f]{12}$/,
      ),
    );
    expect(await dataValue('dev-1', 'team-a/app')).toBe('v2');
    expect((await hub.syncState.get())?.sources?.['team-a']?.error).toMatch(/^git fetch /);
  });
});
