import { describe, expect, it } from 'vitest';
import { runCli } from '../../../cli/src/cli.ts';
import { ExitCode } from '../../../cli/src/core/exit-codes.ts';
import { captureIo, fakeFetch } from './fakes.ts';

const hub = 'http://hub.test';
const env = { FLOTILLA_HUB_URL: hub, FLOTILLA_ADMIN_KEY: 'adm_platform-key-0123456789' };
const view = (name: string, origin: 'repo' | 'api', lastFetch: unknown) => ({
  name,
  origin,
  declaredAt: origin === 'repo' ? `sources/${name}.yaml` : `api:sources/${name}`,
  tenant: name === 'team-x' ? 'team-x' : null,
  document: {
    apiVersion: 'flotilla.dev/v1alpha1',
    kind: 'FleetSource',
    metadata: { name },
    spec: { repo: `https://git.example.com/${name}.git`, ref: { branch: 'main' }, interval: '1m' },
  },
  lastFetch,
});

describe('flotilla source', () => {
  it('add sends the FleetSource document its flags make, and refuses two refs before calling the hub', async () => {
    const seen: Parameters<typeof fakeFetch>[1] & object = [];
    const fetch = fakeFetch(
      { 'POST /v1/admin/sources': () => ({ status: 201, body: { source: view('team-x', 'api', null) } }) },
      seen,
    );
    const io = captureIo(env);
    const args = ['source', 'add', 'team-x', '--repo', 'https://git.example.com/team-x.git', '--tag', 'v1'];
    const flags = [
      '--path',
      'deploy',
      '--tenant',
      'team-x',
      '--interval',
      '30s',
      '--secret-ref',
      'team-x-git',
    ];
    expect(await runCli([...args, ...flags], io, { fetch })).toBe(ExitCode.Ok);
    expect(JSON.parse(seen[0]?.body ?? '')).toEqual({
      apiVersion: 'flotilla.dev/v1alpha1',
      kind: 'FleetSource',
      metadata: { name: 'team-x' },
      spec: {
        repo: 'https://git.example.com/team-x.git',
        ref: { tag: 'v1' },
        path: 'deploy',
        tenant: 'team-x',
        interval: '30s',
        credentials: { secretRef: 'team-x-git' },
      },
    });
    expect(io.stdoutText()).toContain('source team-x declared');

    const two = captureIo(env);
    expect(await runCli([...args, '--branch', 'main'], two, { fetch })).toBe(ExitCode.Usage);
    expect(two.stderrText()).toContain('give exactly one of --branch, --tag, --semver (got --branch, --tag)');
    expect(seen).toHaveLength(1);
  });

  it('list prints a table with each source’s origin and last fetch, and its fetch error', async () => {
    const fetch = fakeFetch({
      'GET /v1/admin/sources': () => ({
        status: 200,
        body: {
          sources: [
            view('team-a', 'repo', {
              commit: 'a'.repeat(40),
              fetchedAt: new Date().toISOString(),
              error: null,
            }),
            view('team-x', 'api', { commit: '', fetchedAt: '', error: 'repository not found' }),
          ],
        },
      }),
    });
    const io = captureIo(env);
    expect(await runCli(['source', 'list'], io, { fetch })).toBe(ExitCode.Ok);
    const lines = io.stdoutText().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+ORIGIN\s+TENANT\s+REPO\s+REF\s+PATH\s+LAST FETCH$/);
    expect(lines[1]).toMatch(
      /^team-a\s+repo\s+<none>\s+https:\/\/git.example.com\/team-a.git\s+branch main\s+<none>\s+aaaaaaaaaaaa \(/,
    );
    expect(lines[2]).toMatch(/^team-x\s+api\s+team-x\s+/);
    expect(lines).toContain('source team-x: repository not found');
  });
});
