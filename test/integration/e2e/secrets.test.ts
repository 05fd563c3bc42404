/**
 * SOPS secrets end to end: a local hub on the bed's DynamoDB Local and ElasticMQ, a fleet
 * repo on its git server, three spokes with real agents (one per control plane), each
 * with the age key its agent made in the cluster. One Secret per environment, encrypted
 * with `flotilla secrets encrypt` for exactly the clusters its bundle targets, reaches only
 * those clusters and decrypts there; no hub table, agent cache or agent log holds the
 * plaintext; a tampered file is refused with the previous Secret left in place; a rotated
 * key is found by `flotilla secrets check` and followed by encrypting again.
 */

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { DynamoDBClient, paginateListTables, paginateScan } from '@aws-sdk/client-dynamodb';
import type { ClusterStatusView } from '@flotilla/shared/hub';
import { hubTableNames } from '@flotilla/shared/hub/tables';
import { generateAgeIdentity } from '@flotilla/shared/sops';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse } from 'yaml';
import { ensureSops } from '../../bed/src/sops-build.ts';
import { LocalFleet, type LocalSpoke } from '../../support/local-fleet.ts';
import { until } from '../../support/until.ts';

const bed = inject('bed');
const id = `${process.pid % 1000}${Date.now().toString(36).slice(-4)}`;
const prefix = `se${id}`;
const namespace = `sec-${id}`;
const spokes: LocalSpoke[] = [
  { name: `se${id}-p1`, labels: { suite: id, env: 'prod' }, kubeconfigPath: '' },
  { name: `se${id}-p2`, labels: { suite: id, env: 'prod' }, kubeconfigPath: '' },
  { name: `se${id}-s1`, labels: { suite: id, env: 'staging' }, kubeconfigPath: '' },
].map((s, i) => ({ ...s, kubeconfigPath: bed.clusters[i]?.kubeconfigPath ?? '' }));
const [p1, p2, s1] = spokes as [LocalSpoke, LocalSpoke, LocalSpoke];
const agentNamespace = (s: LocalSpoke) => `flotilla-${s.name}`;
/** The values that must never leave the spokes in clear. */
const value = {
  prod: `prod-${randomBytes(12).toString('hex')}`,
  staging: `staging-${randomBytes(12).toString('hex')}`,
};
/** An operator key kept off the clusters, so that a file can be opened and encrypted again after a rotation. */
let operator: { identity: string; recipient: string };
/** The reference `sops` CLI, built from the Go module proxy. */
let sops: string;
const run = promisify(execFile);

let fleet: LocalFleet;
const fleetDir = mkdtempSync(join(tmpdir(), 'flotilla-se-e2e-fleet-'));

function write(dir: string, path: string, content: string): void {
  mkdirSync(dirname(join(dir, path)), { recursive: true });
  writeFileSync(join(dir, path), content);
}

const bundleYaml = (env: string) =>
  `namespace: ${namespace}\ntargets:\n  - clusterSelector: suite=${id},env=${env}\n`;
const secretYaml = (password: string) =>
  `apiVersion: v1\nkind: Secret\nmetadata:\n  name: db-credentials\ntype: Opaque\nstringData:\n  password: ${password}\n  user: app\n`;
const secretPath = (env: string) => `bundles/secrets-${env}/secret.yaml`;

function core(s: LocalSpoke): CoreV1Api {
  const kc = new KubeConfig();
  kc.loadFromFile(s.kubeconfigPath);
  return kc.makeApiClient(CoreV1Api);
}

async function password(s: LocalSpoke): Promise<string | undefined> {
  const secret = await core(s)
    .readNamespacedSecret({ name: 'db-credentials', namespace })
    .catch(() => undefined);
  const b64 = secret?.data?.password;
  return b64 === undefined ? undefined : Buffer.from(b64, 'base64').toString('utf8');
}

async function cli(args: string[], env?: Record<string, string>): Promise<string> {
  const r = await fleet.flotilla(args, env ? { env } : {});
  expect(r.code, `flotilla ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

async function encrypt(env: 'prod' | 'staging', extra: string[] = [], cliEnv?: Record<string, string>) {
  await cli(
    [
      'secrets',
      'encrypt',
      join(fleet.repo.dir, secretPath(env)),
      '--for',
      `secrets-${env}`,
      '--repo',
      fleet.repo.dir,
      '-i',
      '--add-recipient',
      operator.recipient,
      ...extra,
    ],
    cliEnv,
  );
}

async function pushAndSync(message: string): Promise<string> {
  const p = await fleet.push(message, () => {});
  await fleet.waitInSync({ commit: p.commit, timeoutMs: 90_000 });
  return p.commit;
}

async function clusterStatus(s: LocalSpoke): Promise<ClusterStatusView> {
  const status = await fleet.status();
  return status.clusters.find((c) => c.id === s.name) as ClusterStatusView;
}

async function recipients(s: LocalSpoke): Promise<string[]> {
  const { cluster } = await fleet.admin<{ cluster: { recipients?: { recipient: string }[] } }>(
    'GET',
    `/v1/admin/clusters/${s.name}`,
  );
  return (cluster.recipients ?? []).map((r) => r.recipient);
}

/** Every form a plaintext value could take in storage: as is, base64 (a Secret's data), and JSON-escaped. */
function forms(v: string): string[] {
  return [v, Buffer.from(v).toString('base64').replace(/=+$/, '')];
}

beforeAll(async () => {
  expect(bed.clusters.length, 'the bed needs three spoke control planes').toBeGreaterThanOrEqual(3);
  operator = await generateAgeIdentity();
  sops = (await ensureSops()).path;
  write(
    fleetDir,
    'bundles/base/bundle.yaml',
    `namespace: ${namespace}\ntargets:\n  - clusterSelector: suite=${id}\n`,
  );
  write(
    fleetDir,
    'bundles/base/namespace.yaml',
    `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${namespace}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: base\ndata:\n  suite: "${id}"\n`,
  );
  fleet = await LocalFleet.start({ bed, repoName: `se-e2e-${id}`, fleetFrom: fleetDir, prefix });
  await Promise.all(
    spokes.map((s) =>
      fleet.bootstrap([s], {
        namespace: agentNamespace(s),
        notify: 'sqs',
        agentEnv: {
          FLOTILLA_HEARTBEAT_INTERVAL: '1s',
          FLOTILLA_BACKOFF_MIN: '200ms',
          FLOTILLA_BACKOFF_MAX: '2s',
        },
      }),
    ),
  );
  await fleet.waitInSync({ timeoutMs: 120_000 });
  await until(
    'every agent reported its age recipient',
    async () => ((await Promise.all(spokes.map(recipients))).every((r) => r.length > 0) ? true : undefined),
    { timeoutMs: 60_000 },
  );
}, 300_000);

afterAll(async () => {
  await fleet?.stop();
  rmSync(fleetDir, { recursive: true, force: true });
  for (const s of spokes) {
    for (const ns of [namespace, agentNamespace(s)])
      await core(s)
        .deleteNamespace({ name: ns })
        .catch(() => undefined);
  }
}, 120_000);

describe('SOPS secrets through the fleet', () => {
  it('reaches only the clusters of its environment, decrypted there, encrypted everywhere else', async () => {
    for (const env of ['prod', 'staging'] as const) {
      fleet.repo.write(`bundles/secrets-${env}/bundle.yaml`, bundleYaml(env));
      fleet.repo.write(secretPath(env), secretYaml(value[env]));
      await encrypt(env);
      const file = readFileSync(join(fleet.repo.dir, secretPath(env)), 'utf8');
      for (const f of forms(value[env])) expect(file).not.toContain(f);
      expect(file).toContain('name: db-credentials');
      // The reference tool reads what `flotilla secrets encrypt` wrote (here with the operator's key).
      const { stdout } = await run(sops, ['-d', join(fleet.repo.dir, secretPath(env))], {
        env: { ...process.env, SOPS_AGE_KEY: operator.identity },
      });
      expect(parse(stdout)).toEqual(parse(secretYaml(value[env])));
    }
    const check = await fleet.flotilla(['secrets', 'check', '--repo', fleet.repo.dir]);
    expect(check.code, check.stderr).toBe(0);
    expect(check.stdout).toBe('2 SOPS files: every cluster that gets one can decrypt it\n');
    await pushAndSync('per-environment database credentials');

    expect(await password(p1)).toBe(value.prod);
    expect(await password(p2)).toBe(value.prod);
    expect(await password(s1)).toBe(value.staging);
    for (const s of spokes) {
      const c = await clusterStatus(s);
      const env = s.labels.env as string;
      expect(c.bundles.map((b) => [b.name, b.state])).toEqual([
        ['base', 'Ready'],
        [`secrets-${env}`, 'Ready'],
      ]);
    }
  }, 180_000);

  it('leaves no plaintext in any hub table, agent cache or agent log', async () => {
    // DynamoDB Local keeps one database per access key: the local hub's (LocalFleet signs as `local`).
    const db = new DynamoDBClient({
      endpoint: bed.dynamodb.endpoint,
      region: bed.region,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    // Every table the hub made (some are made on first use): hubTableNames lists them all.
    const names = new Set(Object.values(hubTableNames(prefix)));
    const tables: string[] = [];
    for await (const page of paginateListTables({ client: db }, {}))
      tables.push(...(page.TableNames ?? []).filter((t) => names.has(t)));
    expect(tables.length).toBeGreaterThan(3);
    let items = 0;
    let ciphertexts = 0;
    for (const TableName of tables) {
      for await (const page of paginateScan({ client: db }, { TableName })) {
        for (const item of page.Items ?? []) {
          items++;
          // Bundles are stored compressed or chunked in places: decode every binary attribute too.
          const text = JSON.stringify(item, (_k, v: unknown) =>
            v instanceof Uint8Array ? Buffer.from(v).toString('latin1') : v,
          );
          const decoded = decodeBinaries(item);
          for (const v of Object.values(value))
            for (const f of forms(v)) {
              expect(text, `${TableName} holds a secret value`).not.toContain(f);
              expect(decoded, `${TableName} holds a secret value`).not.toContain(f);
            }
          if (decoded.includes('ENC[AES256_GCM')) ciphertexts++;
        }
      }
    }
    expect(items).toBeGreaterThan(0);
    // The search looked where the files are: the hub does hold them, encrypted.
    expect(ciphertexts).toBeGreaterThan(0);

    for (const s of spokes) {
      const api = core(s);
      const ns = agentNamespace(s);
      const secrets = await api.listNamespacedSecret({ namespace: ns });
      const maps = await api.listNamespacedConfigMap({ namespace: ns });
      const stored = JSON.stringify([secrets.items, maps.items]);
      const decodedData = [...secrets.items, ...maps.items]
        .flatMap((o) => Object.values((o as { data?: Record<string, string> }).data ?? {}))
        .map((d) => `${d}\n${Buffer.from(d, 'base64').toString('latin1')}`)
        .join('\n');
      // The cache holds the bundles, their SOPS files encrypted.
      expect(decodedData, `${ns} caches the encrypted file`).toContain('ENC[AES256_GCM');
      for (const v of Object.values(value))
        for (const f of forms(v)) {
          expect(stored, `${ns} holds a secret value`).not.toContain(f);
          expect(decodedData, `${ns} holds a secret value`).not.toContain(f);
        }
    }
    const agents = JSON.parse(await cli(['local-agent', 'list', '-o', 'json'])) as {
      agents: { cluster: string; logFile: string }[];
    };
    const logs = agents.agents.filter((a) => spokes.some((s) => s.name === a.cluster));
    expect(logs).toHaveLength(spokes.length);
    for (const a of logs) {
      const log = readFileSync(a.logFile, 'utf8');
      expect(log.length).toBeGreaterThan(0);
      for (const v of Object.values(value)) for (const f of forms(v)) expect(log, a.logFile).not.toContain(f);
      expect(log).not.toContain('AGE-SECRET-KEY-');
    }
  }, 120_000);

  /**
   * Four ways a file can be wrong, each pushed with a new ConfigMap in the same bundle: both
   * prod clusters fail the bundle with that way's own message, apply nothing of it (no
   * ConfigMap) and keep the Secret they had; staging carries on.
   */
  const refusals: { name: string; bad: (good: string) => Promise<string>; message: RegExp }[] = [
    {
      name: 'a flipped ciphertext byte',
      bad: async (good) =>
        good.replace(
          /(password: ENC\[AES256_GCM,data:)(.)/,
          (_m, head: string, c: string) => `${head}${c === 'A' ? 'B' : 'A'}`,
        ),
      message: /^bundles\/secrets-prod\/secret\.yaml: stringData\.password fails authentication/,
    },
    {
      name: 'a changed MAC',
      bad: async (good) =>
        good.replace(
          /(mac: ENC\[AES256_GCM,data:)(.)/,
          (_m, head: string, c: string) => `${head}${c === 'A' ? 'B' : 'A'}`,
        ),
      message: /^bundles\/secrets-prod\/secret\.yaml: MAC mismatch: the stored MAC fails authentication/,
    },
    {
      name: "a file for another cluster's key",
      bad: async () => {
        // Well formed and intact, encrypted for the staging cluster only.
        const plain = join(fleetDir, 'other.yaml');
        writeFileSync(plain, secretYaml('for-someone-else'));
        return cli(['secrets', 'encrypt', plain, '--for', 'env=staging']);
      },
      message: /^bundles\/secrets-prod\/secret\.yaml: not encrypted for this cluster/,
    },
    {
      name: 'a truncated file',
      // Cut before the MAC: still YAML with SOPS metadata, so the hub passes it on.
      bad: async (good) => good.slice(0, good.indexOf('\n  mac:') + 1),
      // Without its rule (cut off too), the file says every value is encrypted: a clear one is malformed.
      message: /^bundles\/secrets-prod\/secret\.yaml: apiVersion is not an ENC\[AES256_GCM,.*\] value$/,
    },
  ];

  for (const refusal of refusals) {
    it(`refuses ${refusal.name} on every cluster, applying nothing of it and keeping the previous Secret`, async () => {
      const path = join(fleet.repo.dir, secretPath('prod'));
      const good = readFileSync(path, 'utf8');
      const bad = await refusal.bad(good);
      expect(bad).not.toBe(good);
      expect(bad).toContain('sops:');
      try {
        writeFileSync(path, bad);
        fleet.repo.write(
          'bundles/secrets-prod/marker.yaml',
          'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: secrets-prod-marker\ndata:\n  at: refused\n',
        );
        const p = await fleet.push(`prod credentials: ${refusal.name}`, () => {});
        await fleet.waitFor(
          'both prod clusters to refuse the file',
          (s) =>
            s.sync?.commit === p.commit &&
            [p1, p2].every((x) =>
              s.clusters
                .find((c) => c.id === x.name)
                ?.bundles.some((b) => b.name === 'secrets-prod' && b.upToDate && b.state === 'Failed'),
            ),
          { timeoutMs: 60_000 },
        );
        for (const x of [p1, p2]) {
          const b = (await clusterStatus(x)).bundles.find((b) => b.name === 'secrets-prod');
          expect(b?.message).toMatch(refusal.message);
          for (const f of [...forms(value.prod), 'for-someone-else']) expect(b?.message).not.toContain(f);
          expect(await password(x)).toBe(value.prod);
          const marker = await core(x)
            .readNamespacedConfigMap({ name: 'secrets-prod-marker', namespace })
            .catch(() => undefined);
          expect(marker, 'nothing of a bundle with a refused file is applied').toBeUndefined();
        }
        expect((await clusterStatus(s1)).bundles.every((b) => b.state === 'Ready')).toBe(true);
      } finally {
        writeFileSync(path, good);
        fleet.repo.remove('bundles/secrets-prod/marker.yaml');
        await pushAndSync(`restore prod credentials after ${refusal.name}`);
        expect(await password(p1)).toBe(value.prod);
      }
    }, 180_000);
  }

  it('follows a rotated key: check finds the cluster, encrypting again reaches it', async () => {
    const before = await recipients(p1);
    const rotated = await cli(['secrets', 'rotate', p1.name, '--timeout', '60s']);
    const after = await recipients(p1);
    expect(after).not.toEqual(before);
    expect(rotated).toContain(after[0] as string);

    const check = await fleet.flotilla(['secrets', 'check', '--repo', fleet.repo.dir]);
    expect(check.code).toBe(1);
    expect(check.stdout).toContain(`bundles/secrets-prod/secret.yaml`);
    expect(check.stdout).toContain(p1.name);
    expect(check.stdout).not.toContain(p2.name);

    // The operator opens the file with their own key and encrypts it again for the bundle's clusters.
    const path = join(fleet.repo.dir, secretPath('prod'));
    const old = readFileSync(path, 'utf8');
    await encrypt('prod', [], { SOPS_AGE_KEY: operator.identity });
    const again = readFileSync(path, 'utf8');
    expect(again).not.toBe(old);
    expect(again).toContain(after[0] as string);
    for (const f of forms(value.prod)) expect(again).not.toContain(f);
    const recheck = await fleet.flotilla(['secrets', 'check', '--repo', fleet.repo.dir]);
    expect(recheck.code, recheck.stdout).toBe(0);

    const hashBefore = (await clusterStatus(p1)).bundles.find((b) => b.name === 'secrets-prod')?.desiredHash;
    await pushAndSync('prod credentials for the rotated key');
    const b = (await clusterStatus(p1)).bundles.find((b) => b.name === 'secrets-prod');
    expect(b?.desiredHash).not.toBe(hashBefore);
    expect(b?.appliedHash).toBe(b?.desiredHash);
    expect(b?.state).toBe('Ready');
    expect(await password(p1)).toBe(value.prod);
  }, 180_000);
});

/** The item's values, binary ones also gunzipped where they are gzip (stored bundles), for searching. */
function decodeBinaries(item: Record<string, unknown>): string {
  const out: string[] = [];
  const visit = (v: unknown) => {
    if (v instanceof Uint8Array) {
      const buf = Buffer.from(v);
      out.push(buf.toString('latin1'));
      try {
        out.push(gunzipSync(buf).toString('utf8'));
      } catch {}
    } else if (v && typeof v === 'object') for (const x of Object.values(v)) visit(x);
    else if (typeof v === 'string') out.push(v);
  };
  visit(item);
  return out.join('\n');
}
