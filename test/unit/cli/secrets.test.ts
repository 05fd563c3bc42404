/**
 * `flotilla secrets recipients` and `secrets rotate` against a fake hub: what they print,
 * the .sops.yaml they write, and how rotate waits and times out. The same commands run
 * against the real local hub and agents in test/integration/agent/age-keys.test.ts.
 */

import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { runCli } from '../../../cli/src/cli.ts';
import { sopsCreationRules } from '../../../cli/src/commands/secrets.ts';
import { ExitCode } from '../../../cli/src/core/exit-codes.ts';
import type { ClusterView } from '../../../cli/src/hub/hub-client.ts';
import { captureIo, fakeFetch } from './fakes.ts';

const hubEnv = { FLOTILLA_HUB_URL: 'http://hub.test', FLOTILLA_ADMIN_KEY: 'adm_test_key' };
const A = 'age1sfv6mts2pyc94rrvr5rmq8r20v2p3vr9e55nrdr6zk8qchfusagqrf2exm';
const B = 'age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj';
const G = 'age1lggyhqrw2nlhcxprm67z43rta597azn8gknawjehu9d9dl0jq3yqqvfafg';

const view = (id: string, recipients: { name: string; recipient: string }[]): ClusterView => ({
  id,
  labels: { env: 'prod' },
  registeredAt: '2024-05-01T11:00:00.000Z',
  queueUrl: null,
  lastHeartbeatAt: '2024-05-01T11:59:30.000Z',
  agentVersion: '0.1.0',
  kubeVersion: 'v1.33.2',
  desiredState: null,
  recipients,
  keyRotation: null,
});

const fleet = [
  view('eu-1', [
    { name: 'cluster', recipient: A },
    { name: 'group/prod', recipient: G },
  ]),
  view('us-1', [
    { name: 'cluster', recipient: B },
    { name: 'group/prod', recipient: G },
  ]),
  view('new-1', []),
];

describe('secrets recipients', () => {
  const hub = fakeFetch({
    'GET /v1/admin/clusters': () => ({ status: 200, body: { clusters: fleet } }),
    'GET /v1/admin/clusters/eu-1': () => ({ status: 200, body: { cluster: fleet[0] } }),
  });

  it("prints each cluster's recipients, and warns of clusters without any", async () => {
    const io = captureIo(hubEnv);
    expect(await runCli(['secrets', 'recipients', '-l', 'env=prod'], io, { fetch: hub })).toBe(0);
    const lines = io.stdoutText().trim().split('\n');
    expect(lines[0]).toMatch(/^CLUSTER\s+NAME\s+RECIPIENT$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/))).toEqual([
      ['eu-1', 'cluster', A],
      ['eu-1', 'group/prod', G],
      ['us-1', 'cluster', B],
      ['us-1', 'group/prod', G],
      ['new-1', '<none>', '<none>'],
    ]);
    expect(io.stderrText()).toMatch(/no recipients yet for new-1/);
  });

  it('prints one cluster as JSON', async () => {
    const io = captureIo(hubEnv);
    expect(
      await runCli(['secrets', 'recipients', '--cluster', 'eu-1', '-o', 'json'], io, { fetch: hub }),
    ).toBe(0);
    expect(JSON.parse(io.stdoutText())).toEqual({
      clusters: [{ cluster: 'eu-1', recipients: fleet[0]?.recipients }],
    });
  });

  it('writes a .sops.yaml creation rule with every distinct recipient, comma-joined', async () => {
    const io = captureIo(hubEnv);
    const args = [
      'secrets',
      'recipients',
      '-l',
      'env=prod',
      '--sops-yaml',
      '--path-regex',
      '^bundles/.*/secret.*\\.yaml$',
    ];
    expect(await runCli(args, io, { fetch: hub })).toBe(0);
    expect(parse(io.stdoutText())).toEqual({
      creation_rules: [
        {
          path_regex: '^bundles/.*/secret.*\\.yaml$',
          encrypted_regex: '^(data|stringData)$',
          age: `${A},${G},${B}`,
        },
      ],
    });
    expect(sopsCreationRules([A])).toBe(
      `creation_rules:\n  - encrypted_regex: ^(data|stringData)$\n    age: ${A}\n`,
    );
  });

  it('refuses -l with --cluster, --path-regex without --sops-yaml, and a rule with no recipients', async () => {
    const both = captureIo(hubEnv);
    expect(await runCli(['secrets', 'recipients', '-l', 'a=b', '--cluster', 'x'], both, { fetch: hub })).toBe(
      ExitCode.Usage,
    );
    const regex = captureIo(hubEnv);
    expect(await runCli(['secrets', 'recipients', '--path-regex', 'x'], regex, { fetch: hub })).toBe(
      ExitCode.Usage,
    );
    const none = captureIo(hubEnv);
    const empty = fakeFetch({
      'GET /v1/admin/clusters': () => ({ status: 200, body: { clusters: [fleet[2]] } }),
    });
    expect(await runCli(['secrets', 'recipients', '--sops-yaml'], none, { fetch: empty })).toBe(
      ExitCode.NotFound,
    );
    expect(none.stderrText()).toMatch(/no recipients: nothing to encrypt to/);
  });
});

describe('secrets rotate', () => {
  it('asks the hub, then waits for the request to close with a new recipient, and prints it', async () => {
    let reads = 0;
    const rotation = { id: 'rot_abcdefgh', requestedAt: '2024-05-01T12:00:00Z' };
    const hub = fakeFetch({
      'POST /v1/admin/clusters/eu-1/rotate-key': () => ({
        status: 202,
        body: { cluster: { ...fleet[0], keyRotation: rotation }, rotation },
      }),
      'GET /v1/admin/clusters/eu-1': () => {
        reads++;
        // Two reads before the agent's report arrives.
        const done = reads > 2;
        return {
          status: 200,
          body: {
            cluster: done
              ? view('eu-1', [{ name: 'cluster', recipient: B }])
              : { ...fleet[0], keyRotation: rotation },
          },
        };
      },
    });
    const io = captureIo(hubEnv);
    expect(await runCli(['secrets', 'rotate', 'eu-1'], io, { fetch: hub, sleep: async () => {} })).toBe(0);
    expect(io.stdoutText().split('\n')[0]).toBe(B);
    expect(reads).toBe(3);
  });

  it('times out with exit 8 when the agent does not report, saying the request stays open', async () => {
    let t = Date.parse('2024-05-01T12:00:00Z');
    const rotation = { id: 'rot_abcdefgh', requestedAt: '2024-05-01T12:00:00Z' };
    const hub = fakeFetch({
      'POST /v1/admin/clusters/eu-1/rotate-key': () => ({
        status: 202,
        body: { cluster: fleet[0], rotation },
      }),
      'GET /v1/admin/clusters/eu-1': () => ({
        status: 200,
        body: { cluster: { ...fleet[0], keyRotation: rotation } },
      }),
    });
    const io = captureIo(hubEnv);
    const code = await runCli(['secrets', 'rotate', 'eu-1', '--timeout', '30s'], io, {
      fetch: hub,
      now: () => new Date(t),
      sleep: async (ms: number) => {
        t += ms;
      },
    });
    expect(code).toBe(ExitCode.Timeout);
    expect(io.stderrText()).toMatch(/did not report a new age key within 30s/);
    expect(io.stderrText()).toMatch(/the request stays open/);
  });
});
