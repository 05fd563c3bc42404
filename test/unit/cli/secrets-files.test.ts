/**
 * `flotilla secrets encrypt` and `secrets check` against a fake hub and a checkout on
 * disk, with real age keys: a file encrypted for a bundle opens with exactly the keys of
 * the clusters the bundle targets. (`sops -d` reads what the library writes:
 * test/integration/sops; the whole loop with real agents: test/integration/e2e/secrets.test.ts.)
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { decryptSopsFile, generateAgeIdentity, sopsFileRecipients } from '@flotilla/shared/sops';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../cli/src/cli.ts';
import { ExitCode } from '../../../cli/src/core/exit-codes.ts';
import type { ClusterView } from '../../../cli/src/hub/hub-client.ts';
import { captureIo, fakeFetch } from './fakes.ts';

const hubEnv = { FLOTILLA_HUB_URL: 'http://hub.test', FLOTILLA_ADMIN_KEY: 'adm_test_key' };
const SECRET = 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: s3cret-value\n';

type Key = { identity: string; recipient: string };
let keys: Record<'eu' | 'us' | 'dev' | 'group' | 'me', Key>;
let repo: string;

const view = (id: string, env: string, recipients: { name: string; recipient: string }[]): ClusterView => ({
  id,
  labels: { env },
  registeredAt: '2026-12-01T00:00:00.000Z',
  queueUrl: null,
  lastHeartbeatAt: null,
  agentVersion: null,
  kubeVersion: null,
  desiredState: null,
  recipients,
  keyRotation: null,
});

function hub(clusters: ClusterView[]) {
  return fakeFetch({
    'GET /v1/admin/clusters': ({ url }) => {
      const sel = url.searchParams.get('selector');
      const env = sel?.match(/^env=(\w+)$/)?.[1];
      return {
        status: 200,
        body: { clusters: env ? clusters.filter((c) => c.labels.env === env) : clusters },
      };
    },
  });
}

function write(path: string, content: string): void {
  mkdirSync(dirname(join(repo, path)), { recursive: true });
  writeFileSync(join(repo, path), content);
}

beforeAll(async () => {
  keys = {
    eu: await generateAgeIdentity(),
    us: await generateAgeIdentity(),
    dev: await generateAgeIdentity(),
    group: await generateAgeIdentity(),
    me: await generateAgeIdentity(),
  };
  repo = mkdtempSync(join(tmpdir(), 'flotilla-secrets-cli-'));
  write('bundles/db/bundle.yaml', 'targets:\n  - clusterSelector: env=prod\n');
});
afterAll(() => rmSync(repo, { recursive: true, force: true }));

const fleet = () => [
  view('eu-1', 'prod', [
    { name: 'cluster', recipient: keys.eu.recipient },
    { name: 'group/prod', recipient: keys.group.recipient },
  ]),
  view('us-1', 'prod', [
    { name: 'cluster', recipient: keys.us.recipient },
    { name: 'group/prod', recipient: keys.group.recipient },
  ]),
  view('dev-1', 'dev', [{ name: 'cluster', recipient: keys.dev.recipient }]),
];

async function run(args: string[], clusters = fleet(), env: Record<string, string> = {}) {
  const io = captureIo({ ...hubEnv, ...env });
  const code = await runCli(args, { ...io, cwd: repo }, { fetch: hub(clusters) });
  return { code, out: io.stdoutText(), err: io.stderrText() };
}

async function opens(content: string, key: Key): Promise<boolean> {
  return decryptSopsFile(content, 'yaml', [key.identity], { file: 'x' }).then(
    () => true,
    () => false,
  );
}

describe('secrets encrypt', () => {
  it('encrypts for exactly the clusters a bundle targets, values only, and never prints them', async () => {
    write('bundles/db/secret.yaml', SECRET);
    const r = await run(['secrets', 'encrypt', 'bundles/db/secret.yaml', '--for', 'db', '-i']);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toBe('encrypted bundles/db/secret.yaml for 2 clusters (bundle db)\n');
    const file = readFileSync(join(repo, 'bundles/db/secret.yaml'), 'utf8');
    expect(file).not.toContain('s3cret-value');
    expect(file).toContain('  name: db\n');
    expect(sopsFileRecipients(file, 'yaml').sort()).toEqual([keys.eu.recipient, keys.us.recipient].sort());
    expect(await opens(file, keys.eu)).toBe(true);
    expect(await opens(file, keys.us)).toBe(true);
    expect(await opens(file, keys.dev)).toBe(false);
    const [doc] = await decryptSopsFile(file, 'yaml', [keys.us.identity], { file: 'x' });
    expect(doc).toEqual({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'db' },
      stringData: { password: 's3cret-value' },
    });
  });

  it('takes a selector when no bundle has the name, and prints to stdout', async () => {
    write('plain.yaml', SECRET);
    const r = await run(['secrets', 'encrypt', 'plain.yaml', '--for', 'env=dev']);
    expect(r.code, r.err).toBe(0);
    expect(sopsFileRecipients(r.out, 'yaml')).toEqual([keys.dev.recipient]);
    expect(readFileSync(join(repo, 'plain.yaml'), 'utf8')).toBe(SECRET);
  });

  it("encrypts to the clusters' shared group key with --group", async () => {
    write('group.yaml', SECRET);
    const r = await run(['secrets', 'encrypt', 'group.yaml', '--for', 'db', '--group', 'prod']);
    expect(r.code, r.err).toBe(0);
    expect(sopsFileRecipients(r.out, 'yaml')).toEqual([keys.group.recipient]);
  });

  it('refuses when a cluster has reported no key, naming it', async () => {
    write('new.yaml', SECRET);
    const clusters = [...fleet(), view('new-1', 'prod', [])];
    const r = await run(['secrets', 'encrypt', 'new.yaml', '--for', 'env=prod'], clusters);
    expect(r.code).toBe(ExitCode.Failure);
    expect(r.err).toContain('no age key reported by new-1');
    const g = await run(['secrets', 'encrypt', 'new.yaml', '--for', 'env=dev', '--group', 'prod']);
    expect(g.err).toContain('no group key group/prod reported by dev-1');
  });

  it('encrypts a SOPS file again with the operator key, keeping the value', async () => {
    write('again.yaml', SECRET);
    const first = await run([
      'secrets',
      'encrypt',
      'again.yaml',
      '--for',
      'env=dev',
      '--add-recipient',
      keys.me.recipient,
      '-i',
    ]);
    expect(first.code, first.err).toBe(0);
    const without = await run(['secrets', 'encrypt', 'again.yaml', '--for', 'db']);
    expect(without.code).toBe(ExitCode.Usage);
    expect(without.err).toContain(
      'again.yaml is SOPS-encrypted already, and no age key of yours is set to open it',
    );
    const r = await run(['secrets', 'encrypt', 'again.yaml', '--for', 'db', '-i'], fleet(), {
      SOPS_AGE_KEY: keys.me.identity,
    });
    expect(r.code, r.err).toBe(0);
    const file = readFileSync(join(repo, 'again.yaml'), 'utf8');
    expect(sopsFileRecipients(file, 'yaml').sort()).toEqual([keys.eu.recipient, keys.us.recipient].sort());
    const [doc] = await decryptSopsFile(file, 'yaml', [keys.eu.identity], { file: 'x' });
    expect((doc as { stringData: { password: string } }).stringData.password).toBe('s3cret-value');
    expect(`${r.out}${r.err}${first.out}${first.err}`).not.toContain('s3cret-value');
  });
});

describe('secrets check', () => {
  it('passes when every targeted cluster holds a key of each file, and names those that do not', async () => {
    write('bundles/db/secret.yaml', SECRET);
    expect((await run(['secrets', 'encrypt', 'bundles/db/secret.yaml', '--for', 'db', '-i'])).code).toBe(0);
    const ok = await run(['secrets', 'check']);
    expect(ok.code, ok.err).toBe(0);
    expect(ok.out).toBe('1 SOPS file: every cluster that gets one can decrypt it\n');

    // A new prod cluster, and a rotated key on us-1.
    const rotated = await generateAgeIdentity();
    const clusters = [
      view('eu-1', 'prod', [{ name: 'cluster', recipient: keys.eu.recipient }]),
      view('us-1', 'prod', [{ name: 'cluster', recipient: rotated.recipient }]),
      view('ap-1', 'prod', []),
    ];
    const bad = await run(['secrets', 'check', '-o', 'json'], clusters);
    expect(bad.code).toBe(ExitCode.Failure);
    expect(JSON.parse(bad.out)).toEqual({
      checked: 1,
      uncovered: [
        {
          file: 'bundles/db/secret.yaml',
          bundle: 'db',
          clusters: [
            { cluster: 'us-1', why: 'not encrypted for any of its keys' },
            { cluster: 'ap-1', why: 'its agent has reported no key yet' },
          ],
        },
      ],
    });
  });
});
