import { describe, expect, it } from 'vitest';
import { findCommand, runCli, splitCommand } from '../../../cli/src/cli.ts';
import { commands } from '../../../cli/src/commands/index.ts';
import { ExitCode } from '../../../cli/src/core/exit-codes.ts';
import type { ClusterView } from '../../../cli/src/hub/hub-client.ts';
import { captureIo, fakeFetch } from './fakes.ts';

const hubEnv = { FLOTILLA_HUB_URL: 'http://hub.test', FLOTILLA_ADMIN_KEY: 'adm_test_key' };

const cluster = (id: string, labels: Record<string, string>): ClusterView => ({
  id,
  labels,
  registeredAt: '2024-05-01T11:00:00.000Z',
  queueUrl: null,
  lastHeartbeatAt: '2024-05-01T11:59:30.000Z',
  agentVersion: '0.1.0',
  kubeVersion: 'v1.33.2',
  desiredState: { generation: 3, etag: 'sha256:e', commit: 'abc' },
});

const now = () => new Date('2024-05-01T12:00:00Z');

describe('finding the command', () => {
  it('takes group commands as two words and leaves global flags and their values in place', () => {
    expect(splitCommand(['--hub', 'http://x', 'token', 'create', '--ttl', '1h'])).toEqual({
      words: ['token', 'create'],
      rest: ['--hub', 'http://x', '--ttl', '1h'],
    });
    expect(splitCommand(['-o', 'json', 'clusters', '-l', 'env=prod'])).toEqual({
      words: ['clusters'],
      rest: ['-o', 'json', '-l', 'env=prod'],
    });
    expect(splitCommand(['label', 'c1', 'env=prod', 'canary-'])).toEqual({
      words: ['label'],
      rest: ['c1', 'env=prod', 'canary-'],
    });
    expect(findCommand(['cluster', 'list'])?.name).toBe('clusters');
  });
});

describe('help and usage errors', () => {
  it('shows the command list with --help (exit 0) and without a command (exit 2)', async () => {
    const io = captureIo();
    expect(await runCli(['--help'], io)).toBe(ExitCode.Ok);
    expect(io.stdoutText()).toMatch(/Usage: flotilla <command>/);
    for (const c of commands) expect(io.stdoutText()).toContain(c.name);
    const bare = captureIo();
    expect(await runCli([], bare)).toBe(ExitCode.Usage);
    expect(bare.stderrText()).toMatch(/Commands:/);
  });

  it('has --help on every command, with its flags, the global flags and examples', async () => {
    for (const c of commands) {
      const io = captureIo();
      expect(await runCli([...c.name.split(' '), '--help'], io), c.name).toBe(ExitCode.Ok);
      const text = io.stdoutText();
      expect(text, c.name).toContain(`Usage: flotilla ${c.usage}`);
      expect(text, c.name).toContain('Global flags:');
      for (const [flag, spec] of Object.entries(c.options))
        if (!spec.hidden) expect(text, c.name).toContain(`--${flag}`);
      expect(c.examples?.length ?? 0, `${c.name} has examples`).toBeGreaterThan(0);
    }
    const group = captureIo();
    expect(await runCli(['token', '--help'], group)).toBe(ExitCode.Ok);
    expect(group.stdoutText()).toMatch(/token create/);
  });

  it('exits 2 for an unknown command, an unknown flag, a missing or extra argument, a bad value', async () => {
    const cases: [string[], RegExp][] = [
      [['frobnicate'], /unknown command "frobnicate"/],
      [['token', 'frob'], /unknown command "token frob"/],
      [['clusters', '--colour'], /Unknown option '--colour'/],
      [['bootstrap'], /missing argument: flotilla bootstrap <cluster>/],
      [['cluster', 'remove', 'a', 'b'], /unexpected argument "b"/],
      [['bootstrap', 'Bad_Name'], /cluster name "Bad_Name" is not a valid name/],
      [['clusters', '-l', 'env in (prod'], /-l: .*expected "," or "\)"/],
      [['token', 'create', '--ttl', '10s'], /--ttl 10s: must be from 1m to 30d/],
      [['clusters', '-o', 'wide'], /expected one of table, json, yaml/],
      [['bootstrap', 'c1', '--notify', 'pigeon'], /--notify "pigeon"/],
    ];
    for (const [argv, message] of cases) {
      const io = captureIo(hubEnv);
      const code = await runCli(argv, io, { fetch: fakeFetch({}), now });
      expect(code, argv.join(' ')).toBe(ExitCode.Usage);
      expect(io.stderrText(), argv.join(' ')).toMatch(message);
    }
  });
});

describe('configuration', () => {
  it('exits 3 without a hub URL or admin credentials, saying how to set them', async () => {
    const noHub = captureIo();
    expect(await runCli(['clusters'], noHub)).toBe(ExitCode.Config);
    expect(noHub.stderrText()).toMatch(/no hub URL: pass --hub <url>, set FLOTILLA_HUB_URL/);
    const noKey = captureIo({ FLOTILLA_HUB_URL: 'http://hub.test' });
    expect(await runCli(['clusters'], noKey, { fetch: fakeFetch({}) })).toBe(ExitCode.Config);
    expect(noKey.stderrText()).toMatch(/no admin credentials/);
    expect(noKey.stderrText()).toMatch(/hint: set FLOTILLA_ADMIN_KEY/);
    const badUrl = captureIo({ FLOTILLA_HUB_URL: 'ftp://x' });
    expect(await runCli(['clusters'], badUrl)).toBe(ExitCode.Config);
    expect(badUrl.stderrText()).toMatch(/FLOTILLA_HUB_URL: expected an http\(s\) URL/);
  });

  it('takes flags over the environment over the config file, and warns about a readable admin key', async () => {
    const files: Record<string, string> = {
      '/home/u/.config/flotilla/config.yaml': 'hub: http://from-file\nadminKey: adm_file\n',
    };
    const seen: { url: string; headers: Headers }[] = [];
    const fetch = fakeFetch(
      { 'GET /v1/admin/clusters': () => ({ status: 200, body: { clusters: [] } }) },
      seen as never,
    );
    const readFile = (p: string) => {
      const text = files[p];
      if (text === undefined) throw Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' });
      return text;
    };
    const run = async (argv: string[], env: Record<string, string>) => {
      const io = { ...captureIo(env), homeDir: '/home/u', env: { ...env } };
      const code = await runCli(argv, io, { fetch, readFile, fileMode: () => 0o644 });
      return { code, io };
    };
    const fromFile = await run(['clusters'], {});
    expect(fromFile.code).toBe(0);
    expect(fromFile.io.stderrText()).toMatch(/holds the admin key and others can read it: chmod 600/);
    expect(seen.at(-1)?.url).toBe('http://from-file/v1/admin/clusters');
    expect(seen.at(-1)?.headers.get('authorization')).toBe('Bearer adm_file');
    await run(['clusters'], { FLOTILLA_HUB_URL: 'http://from-env', FLOTILLA_ADMIN_KEY: 'adm_env' });
    expect(seen.at(-1)?.url).toBe('http://from-env/v1/admin/clusters');
    expect(seen.at(-1)?.headers.get('authorization')).toBe('Bearer adm_env');
    await run(['clusters', '--hub', 'http://from-flag/'], { FLOTILLA_HUB_URL: 'http://from-env' });
    expect(seen.at(-1)?.url).toBe('http://from-flag/v1/admin/clusters');

    files['/home/u/.config/flotilla/config.yaml'] = 'hub: http://x\nadmin_key: oops\n';
    const bad = await run(['clusters'], {});
    expect(bad.code).toBe(ExitCode.Config);
    expect(bad.io.stderrText()).toMatch(/unknown key "admin_key"/);
  });
});

describe('hub answers and exit codes', () => {
  const failing = (status: number, code: string, message: string) =>
    fakeFetch({
      'GET /v1/admin/clusters/c1': () => ({ status, body: { error: { code, message } } }),
      'DELETE /v1/admin/clusters/c1': () => ({ status, body: { error: { code, message } } }),
    });

  it('maps 401, 404, 409, 400 and 5xx to 6, 4, 5, 2 and 7, with the hub message', async () => {
    const cases: [number, string, number][] = [
      [401, 'unauthenticated', ExitCode.Unauthorized],
      [403, 'forbidden', ExitCode.Unauthorized],
      [404, 'not_found', ExitCode.NotFound],
      [409, 'conflict', ExitCode.Conflict],
      [400, 'invalid_request', ExitCode.Usage],
      [500, 'internal', ExitCode.Unavailable],
    ];
    for (const [status, code, exit] of cases) {
      const io = captureIo(hubEnv);
      expect(
        await runCli(['cluster', 'remove', 'c1'], io, { fetch: failing(status, code, `nope ${status}`) }),
        String(status),
      ).toBe(exit);
      expect(io.stderrText()).toContain(`error: nope ${status}`);
    }
  });

  it('exits 7 when the hub cannot be reached', async () => {
    const io = captureIo(hubEnv);
    const down = (async () => {
      throw new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } });
    }) as unknown as typeof fetch;
    expect(await runCli(['clusters'], io, { fetch: down })).toBe(ExitCode.Unavailable);
    expect(io.stderrText()).toMatch(/cannot reach the hub at http:\/\/hub.test: ECONNREFUSED/);
  });

  it('exits 1 and says it is a bug for anything unexpected', async () => {
    const io = captureIo(hubEnv);
    const broken = (async () =>
      new Response('{"clusters": null}', { status: 200 })) as unknown as typeof fetch;
    expect(await runCli(['clusters'], io, { fetch: broken, now })).toBe(ExitCode.Failure);
    expect(io.stderrText()).toMatch(/looks like a bug/);
  });
});

describe('output', () => {
  const fetch = fakeFetch({
    'GET /v1/admin/clusters': ({ url }) => ({
      status: 200,
      body: {
        clusters:
          url.searchParams.get('selector') === 'env=prod'
            ? [cluster('prod-eu-1', { env: 'prod', region: 'eu' })]
            : [cluster('prod-eu-1', { env: 'prod', region: 'eu' }), cluster('dev-1', { env: 'dev' })],
      },
    }),
  });

  it('prints a table by default, the whole value with -o json and -o yaml', async () => {
    const table = captureIo(hubEnv);
    expect(await runCli(['clusters', '-l', 'env=prod'], table, { fetch, now })).toBe(0);
    expect(table.stdoutText()).toBe(
      'NAME        LABELS               AGENT   KUBERNETES   HEARTBEAT   GENERATION   REGISTERED\nprod-eu-1   env=prod,region=eu   0.1.0   v1.33.2      30s ago     3            1h ago\n',
    );
    const json = captureIo(hubEnv);
    expect(await runCli(['clusters', '-o', 'json'], json, { fetch, now })).toBe(0);
    expect(JSON.parse(json.stdoutText()).clusters.map((c: ClusterView) => c.id)).toEqual([
      'prod-eu-1',
      'dev-1',
    ]);
    const yaml = captureIo(hubEnv);
    expect(await runCli(['-o', 'yaml', 'clusters'], yaml, { fetch, now })).toBe(0);
    expect(yaml.stdoutText()).toMatch(/^clusters:\n {2}- id: prod-eu-1\n/);
  });

  it('prints a new registration token alone on stdout, so it can be captured', async () => {
    const io = captureIo(hubEnv);
    const create = fakeFetch({
      'POST /v1/admin/registration-tokens': ({ init }) => ({
        status: 201,
        body: {
          token: 'frt_abc',
          registrationToken: {
            id: '0123456789ab',
            state: 'active',
            labels: JSON.parse(String(init.body)).labels,
            expiresAt: '2024-05-01T13:00:00Z',
          },
        },
      }),
    });
    expect(
      await runCli(['token', 'create', '--ttl', '1h', '--label', 'env=edge'], io, { fetch: create, now }),
    ).toBe(0);
    expect(io.stdoutText()).toBe('frt_abc\n');
    expect(io.stderrText()).toMatch(
      /registers one cluster until 2024-05-01T13:00:00Z \(1h\), with labels env=edge/,
    );
  });

  it('never prints a rotated cluster token unless asked to', async () => {
    const rotate = fakeFetch({
      'POST /v1/admin/clusters/c1/rotate-token': () => ({
        status: 200,
        body: { clusterId: 'c1', token: 'flt_c1.SECRET' },
      }),
    });
    const quiet = captureIo(hubEnv);
    expect(await runCli(['cluster', 'rotate-token', 'c1', '-o', 'json'], quiet, { fetch: rotate })).toBe(0);
    expect(quiet.stdoutText() + quiet.stderrText()).not.toContain('SECRET');
    const shown = captureIo(hubEnv);
    expect(await runCli(['cluster', 'rotate-token', 'c1', '--show-token'], shown, { fetch: rotate })).toBe(0);
    expect(shown.stdoutText()).toMatch(/^flt_c1\.SECRET\n/);
  });
});

describe('diff takes its own output formats and exit codes', () => {
  it('takes -o text|markdown, refuses table/json/yaml, and exits 2 on every kind of trouble', async () => {
    const json = captureIo(hubEnv);
    expect(await runCli(['diff', '--repo', '.', '-o', 'json'], json)).toBe(2);
    expect(json.stderrText()).toContain('error: -o/--output "json": expected one of text, markdown');
    const noRepo = captureIo(hubEnv);
    expect(await runCli(['diff'], noRepo)).toBe(2);
    expect(noRepo.stderrText()).toContain('error: --repo <checkout> is required');
    const missing = captureIo(hubEnv);
    expect(await runCli(['diff', '--repo', '/no/such/fleet', '-o', 'markdown'], missing)).toBe(2);
    expect(missing.stderrText()).toContain('error: --repo /no/such/fleet: no such directory');
    // Without a hub URL the usual exit is 3; diff keeps to diff(1)'s 2.
    const noHub = captureIo({});
    expect(
      await runCli(
        ['diff', '--repo', new URL('../../../examples/fleet-repo', import.meta.url).pathname],
        noHub,
      ),
    ).toBe(2);
    expect(noHub.stderrText()).toContain('error: no hub URL');
    const twice = captureIo({});
    const fleet = new URL('../../../examples/fleet-repo', import.meta.url).pathname;
    expect(
      await runCli(
        ['diff', '--repo', fleet, '--base', 'HEAD', '--cluster', 'a=env=prod', '--cluster', 'a=env=dev'],
        twice,
      ),
    ).toBe(2);
    expect(twice.stderrText()).toBe('error: --cluster a is given twice\n');
  });
});
