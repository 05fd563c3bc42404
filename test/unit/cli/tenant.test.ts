import { describe, expect, it } from 'vitest';
import { runCli } from '../../../cli/src/cli.ts';
import { ExitCode } from '../../../cli/src/core/exit-codes.ts';
import { captureIo, fakeFetch } from './fakes.ts';

const tenantKey = 'flt_t_team-a.0123456789abcdefghijklmnopqrstuvwxyzABCDEFG';
const hub = 'http://hub.test';
const emptyStatus = {
  generatedAt: '2024-05-01T12:00:00Z',
  offlineAfterSeconds: 180,
  sync: null,
  summary: { clusters: 0, online: 0, offline: 0, inSync: 0, clusterStates: {}, bundleStates: {} },
  clusters: [],
  rollouts: [],
};

describe("flotilla as a tenant's admin", () => {
  it('calls the tenant routes when the key is a tenant key, with the bundle name as one path segment', async () => {
    const seen: Parameters<typeof fakeFetch>[1] & object = [];
    const fetch = fakeFetch(
      {
        'GET /v1/tenants/team-a/status': () => ({ status: 200, body: emptyStatus }),
        'POST /v1/tenants/team-a/rollouts/team-a%2Fweb/pause': () => ({
          status: 200,
          body: {
            rollout: { bundle: 'team-a/web', status: 'paused', waves: [], events: [] },
            released: [],
            reverted: [],
            generationsWritten: 0,
          },
        }),
      },
      seen,
    );
    const env = { FLOTILLA_HUB_URL: hub, FLOTILLA_ADMIN_KEY: tenantKey };
    expect(await runCli(['status'], captureIo(env), { fetch })).toBe(ExitCode.Ok);
    await runCli(['rollout', 'pause', 'team-a/web', '-o', 'json'], captureIo(env), { fetch });
    expect(seen.map((s) => `${s.method} ${new URL(s.url).pathname}`)).toEqual([
      'GET /v1/tenants/team-a/status',
      'POST /v1/tenants/team-a/rollouts/team-a%2Fweb/pause',
    ]);
    expect(seen[0]?.headers.get('authorization')).toBe(`Bearer ${tenantKey}`);
  });

  it('takes --tenant with the admin key, and refuses a --tenant that contradicts a tenant key', async () => {
    const seen: Parameters<typeof fakeFetch>[1] & object = [];
    const fetch = fakeFetch(
      {
        'POST /v1/tenants/team-b/sync': () => ({
          status: 202,
          body: {
            status: 'queued',
            clusters: 0,
            changed: [],
            unchanged: 0,
            errors: [],
            itemsWritten: 0,
            notified: 0,
            notifyFailures: [],
            conflictsRetried: 0,
          },
        }),
      },
      seen,
    );
    const admin = captureIo({ FLOTILLA_HUB_URL: hub, FLOTILLA_ADMIN_KEY: 'adm_platform-key-0123456789' });
    expect(await runCli(['sync', '--tenant', 'team-b'], admin, { fetch })).toBe(ExitCode.Ok);
    expect(seen.map((s) => new URL(s.url).pathname)).toEqual(['/v1/tenants/team-b/sync']);

    const wrong = captureIo({ FLOTILLA_HUB_URL: hub, FLOTILLA_ADMIN_KEY: tenantKey });
    expect(await runCli(['status', '--tenant', 'team-b'], wrong, { fetch })).toBe(ExitCode.Config);
    expect(wrong.stderrText()).toContain(
      '--tenant names tenant "team-b", but the admin key is a key of tenant "team-a"',
    );
    const bad = captureIo({
      FLOTILLA_HUB_URL: hub,
      FLOTILLA_ADMIN_KEY: 'adm_x-0123456789',
      FLOTILLA_TENANT: 'Team_B',
    });
    expect(await runCli(['status'], bad, { fetch })).toBe(ExitCode.Config);
    expect(bad.stderrText()).toContain('FLOTILLA_TENANT: expected a tenant name');
  });

  it('has tenant key create, list and revoke for the platform admin, and help for the groups', async () => {
    const seen: { url: string; method: string; headers: Headers; body: string | undefined }[] = [];
    const fetch = fakeFetch(
      {
        'POST /v1/admin/tenants/team-a/keys': () => ({
          status: 201,
          body: {
            key: tenantKey,
            tenantKey: {
              id: 'abcdef012345',
              tenant: 'team-a',
              description: null,
              createdBy: null,
              createdAt: '',
            },
          },
        }),
        'DELETE /v1/admin/tenants/team-a/keys/abcdef012345': () => ({ status: 204 }),
      },
      seen,
    );
    const env = { FLOTILLA_HUB_URL: hub, FLOTILLA_ADMIN_KEY: 'adm_platform-key-0123456789' };
    const create = captureIo(env);
    expect(
      await runCli(['tenant', 'key', 'create', 'team-a', '--description', 'ci'], create, { fetch }),
    ).toBe(ExitCode.Ok);
    expect(create.stdoutText()).toBe(`${tenantKey}\n`);
    expect(JSON.parse(seen[0]?.body ?? '{}')).toEqual({ description: 'ci' });
    expect(
      await runCli(['tenant', 'key', 'revoke', 'team-a', 'abcdef012345'], captureIo(env), { fetch }),
    ).toBe(ExitCode.Ok);
    const help = captureIo();
    expect(await runCli(['tenant', '--help'], help)).toBe(ExitCode.Ok);
    expect(help.stdoutText()).toContain('tenant key create');
    const sub = captureIo();
    expect(await runCli(['tenant', 'key', 'frob'], sub)).toBe(ExitCode.Usage);
    expect(sub.stderrText()).toContain('unknown command "tenant key frob"');
  });
});
