/**
 * The sync with several fleet sources, on in-memory ports: each declared source is read on
 * its own; one that fails keeps its last good bundles (and says so), a scheduled sync
 * reads a source only when its interval has passed, and the desired state names the
 * platform's commit while the sync state records each source's.
 */
import { formatFleetError, parseDesiredState } from '@flotilla/shared';
import { type FleetSourceFile, type SourceFetcher, syncFleet } from '@flotilla/shared/hub';
import type { FleetSourceSpec, SourceSnapshot } from '@flotilla/shared/sources';
import { describe, expect, it } from 'vitest';
import { matchRoute } from '../../../functions/src/http/routes.ts';
import { addCluster, fakeApiDeps, MemoryFleetSource } from './fakes.ts';

const SOURCE = `apiVersion: flotilla.dev/v1alpha1
kind: FleetSource
metadata: {name: team-a}
spec:
  repo: https://git.example.com/team-a/apps.git
  ref: {branch: main}
  path: deploy
  interval: 5m
`;

const configMap = (name: string, value: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}}\ndata: {value: "${value}"}\n`;
const BUNDLE = 'namespace: apps\ntargets: [{clusterSelector: {}}]\n';

const platformFiles = (source = SOURCE): FleetSourceFile[] => [
  { path: 'sources/team-a.yaml', content: source },
  { path: 'bundles/web/bundle.yaml', content: BUNDLE },
  { path: 'bundles/web/cm.yaml', content: configMap('web', 'p') },
];

/** A fetcher that serves what a test sets, or fails with what it sets. */
class FakeFetcher implements SourceFetcher {
  snapshot: SourceSnapshot | Error = { commit: 't1', files: [] };
  calls: string[] = [];
  async fetch(source: FleetSourceSpec): Promise<SourceSnapshot> {
    this.calls.push(source.name);
    if (this.snapshot instanceof Error) throw this.snapshot;
    return this.snapshot;
  }
}

const teamFiles = (value: string) => [
  { path: 'bundles/app/bundle.yaml', content: BUNDLE },
  { path: 'bundles/app/cm.yaml', content: configMap('app', value) },
];

async function setup() {
  const fetcher = new FakeFetcher();
  fetcher.snapshot = { commit: 't1', files: teamFiles('v1') };
  let now = new Date('2024-05-01T12:00:00Z');
  const source = new MemoryFleetSource('p'.repeat(40), platformFiles());
  const deps = fakeApiDeps({ source, sourceFetcher: fetcher, now: () => now });
  await addCluster(deps.clusters, 'c1');
  const desired = async () => {
    const head = await deps.desiredStates.current('c1');
    return parseDesiredState(JSON.parse(head?.manifest ?? '{}'));
  };
  const dataValue = async (bundle: string) => {
    const ref = (await desired()).bundles.find((b) => b.name === bundle);
    const stored = ref ? await deps.bundles.get(ref.hash) : undefined;
    return stored ? /"value":"(\w+)"/.exec(new TextDecoder().decode(stored))?.[1] : undefined;
  };
  return {
    fetcher,
    deps,
    source,
    desired,
    dataValue,
    advance: (ms: number) => (now = new Date(now.getTime() + ms)),
  };
}

describe('a sync of several sources', () => {
  it('delivers the team source’s bundles as team-a/<bundle> and records each source’s commit', async () => {
    const s = await setup();
    const report = await syncFleet(s.deps, { holder: 'api:test' });
    expect(report.errors).toEqual([]);
    const state = await s.desired();
    expect(state.commit).toBe('p'.repeat(40));
    expect(state.bundles.map((b) => b.name)).toEqual(['team-a/app', 'web']);
    expect((await s.deps.syncState.get())?.sources).toEqual({
      'team-a': { commit: 't1', fetchedAt: '2024-05-01T12:00:00.000Z', key: expect.any(String) },
    });
  });

  it('keeps a source’s last good bundles when it cannot be fetched, with an error naming it', async () => {
    const s = await setup();
    await syncFleet(s.deps, { holder: 'api:test' });
    s.fetcher.snapshot = new Error('git fetch https://git.example.com/team-a/apps.git: HTTP 503');
    s.source.files = platformFiles().map((f) =>
      f.path === 'bundles/web/cm.yaml' ? { ...f, content: configMap('web', 'p2') } : f,
    );
    const report = await syncFleet(s.deps, { holder: 'api:test' });
    expect(report.errors.map(formatFleetError)).toEqual([
      'sources/team-a.yaml:1: source "team-a": git fetch https://git.example.com/team-a/apps.git: HTTP 503; its bundles stay at commit t1',
    ]);
    expect(await s.dataValue('team-a/app')).toBe('v1');
    expect(await s.dataValue('web')).toBe('p2');
    expect((await s.deps.syncState.get())?.sources?.['team-a']).toMatchObject({
      commit: 't1',
      error: 'git fetch https://git.example.com/team-a/apps.git: HTTP 503',
    });
  });

  it('reads a source on a scheduled sync only once its interval has passed', async () => {
    const s = await setup();
    await syncFleet(s.deps, { holder: 'schedule:1' });
    s.fetcher.snapshot = { commit: 't2', files: teamFiles('v2') };
    s.advance(60_000);
    await syncFleet(s.deps, { holder: 'schedule:2' });
    expect(s.fetcher.calls).toEqual(['team-a']);
    expect(await s.dataValue('team-a/app')).toBe('v1');
    s.advance(5 * 60_000);
    await syncFleet(s.deps, { holder: 'schedule:3' });
    expect(s.fetcher.calls).toEqual(['team-a', 'team-a']);
    expect(await s.dataValue('team-a/app')).toBe('v2');
  });

  it('keeps a source’s bundles, held, when its declaration breaks', async () => {
    const s = await setup();
    await syncFleet(s.deps, { holder: 'api:test' });
    s.source.files = platformFiles(SOURCE.replace('{branch: main}', '{brunch: main}'));
    const report = await syncFleet(s.deps, { holder: 'api:test' });
    expect(s.fetcher.calls).toEqual(['team-a']);
    expect(report.errors.map(formatFleetError)).toEqual(
      expect.arrayContaining([
        'sources/team-a.yaml:1: source "team-a": its declaration (sources/team-a.yaml) has errors; its bundles stay at commit t1',
        'sources/team-a.yaml:1: source "team-a" is not declared, or its declaration has errors: its bundles are held',
      ]),
    );
    expect(await s.dataValue('team-a/app')).toBe('v1');
  });
});

describe('a source bundle in a route', () => {
  it('takes team-a/web whole, written with a slash or team-a%2Fweb, and a command as the last segment', () => {
    for (const path of ['/v1/admin/rollouts/team-a%2Fweb', '/v1/admin/rollouts/team-a/web']) {
      const m = matchRoute('GET', path);
      expect(m.kind === 'route' ? [m.route.id, m.params] : m).toEqual([
        'getRollout',
        { bundle: 'team-a/web' },
      ]);
    }
    const command = matchRoute('POST', '/v1/admin/rollouts/team-a/web/pause');
    expect(command.kind === 'route' ? [command.route.id, command.params] : command).toEqual([
      'rolloutCommand',
      { bundle: 'team-a/web/pause' },
    ]);
  });
});
