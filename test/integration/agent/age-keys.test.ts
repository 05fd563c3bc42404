/**
 * The cluster's age key on the bed: made by the agent in a real kube-apiserver at its first
 * start (once, however many replicas start), its recipient reported to the local hub and
 * kept in DynamoDB Local, rotated through `flotilla secrets rotate` with the old identity
 * kept, group keys an operator installs reported too, and all of it done with the Role of
 * the agent's own namespace alone.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { KubeApiError, KubeClient } from '../../../agent/src/kube/client.ts';
import type { Logger } from '../../../agent/src/log.ts';
import type { Agent } from '../../../agent/src/reconcile/agent.ts';
import {
  AgeKeyStore,
  identityFingerprint,
  parseIdentities,
} from '../../../agent/src/secrets/age-key-store.ts';
import { repoRoot } from '../../bed/src/bed.ts';
import { runFlotilla } from '../../support/cli-run.ts';
import { serviceAccountConnection } from '../../support/service-account.ts';
import { AgentHarness, cleanUp, controlPlane, eventually, kubeClientOf, uniqueName } from './harness.ts';

const bed = inject('bed');
const plane = controlPlane(bed, 0);
let h: AgentHarness;
let kube: KubeClient;
const namespaces: string[] = [];

interface SecretObject {
  metadata: {
    name: string;
    resourceVersion: string;
    creationTimestamp: string;
    annotations?: Record<string, string>;
  };
  data: Record<string, string>;
}

interface HubCluster {
  recipients: { name: string; recipient: string }[];
  keyRotation: { id: string } | null;
}

beforeAll(async () => {
  h = await AgentHarness.start(bed, 'agekeys');
  kube = await kubeClientOf(plane.kubeconfigPath);
});

afterAll(async () => {
  await cleanUp(kube, namespaces);
  kube?.close();
  await h?.stop();
});

function agentNamespace(prefix: string): string {
  const ns = uniqueName(prefix);
  namespaces.push(ns);
  return ns;
}

async function keySecret(ns: string): Promise<SecretObject> {
  const secret = await kube.get<SecretObject>(`/api/v1/namespaces/${ns}/secrets/flotilla-age-key`);
  if (!secret) throw new Error(`no Secret ${ns}/flotilla-age-key`);
  return secret;
}

function identitiesOf(secret: SecretObject): string[] {
  return parseIdentities(Buffer.from(secret.data.identities ?? '', 'base64').toString('utf8')).identities;
}

async function hubCluster(cluster: string): Promise<HubCluster> {
  const res = await h.admin(`/v1/admin/clusters/${cluster}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { cluster: HubCluster }).cluster;
}

function memoryLog(): Logger & { text: () => string } {
  const lines: unknown[] = [];
  const at = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    lines.push({ level, message, fields });
  };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    text: () => JSON.stringify(lines),
  };
}

describe("a cluster's age key, from the spoke to the hub", () => {
  const cluster = uniqueName('age');
  const ns = agentNamespace('age-agent');
  let token: string;
  let firstRecipient: string;
  let firstIdentity: string;
  const cli = () => ({
    hubUrl: h.url,
    adminKey: h.adminKey,
    stateDir: mkdtempSync(join(tmpdir(), 'flotilla-age-cli-')),
  });

  it('is made in the cluster at the first start, kept across a restart, and only its recipient reaches the hub', async () => {
    ({ token } = await h.register(cluster));
    expect((await hubCluster(cluster)).recipients).toEqual([]);
    const log = memoryLog();
    const first = await h.agent(cluster, token, { kubeconfigPath: plane.kubeconfigPath, namespace: ns, log });
    const reported = await first.agent.checkRecipients();

    const secret = await keySecret(ns);
    const identities = identitiesOf(secret);
    expect(identities).toHaveLength(1);
    firstIdentity = identities[0] as string;
    firstRecipient = await identityToRecipient(firstIdentity);
    expect(reported).toEqual([{ name: 'cluster', recipient: firstRecipient }]);
    // The recipient is recorded beside the key, so a restart need not load age to derive it.
    expect(secret.metadata.annotations?.['flotilla.dev/recipient']).toBe(
      `${identityFingerprint(firstIdentity)} ${firstRecipient}`,
    );
    expect((await hubCluster(cluster)).recipients).toEqual([{ name: 'cluster', recipient: firstRecipient }]);

    // A restarted agent (a new runtime on the same namespace) finds the key, and writes nothing.
    const second = await h.agent(cluster, token, {
      kubeconfigPath: plane.kubeconfigPath,
      namespace: ns,
      log,
    });
    expect(await second.agent.checkRecipients()).toEqual(reported);
    const after = await keySecret(ns);
    expect(after.metadata.resourceVersion).toBe(secret.metadata.resourceVersion);
    expect(identitiesOf(after)).toEqual(identities);

    // The identity is nowhere but in the cluster: not in what the hub shows, not in the agent's log.
    const listing = await (await h.admin('/v1/admin/clusters')).text();
    const status = await (await h.admin('/v1/admin/status')).text();
    for (const text of [listing, status, log.text()]) {
      expect(text).not.toContain(firstIdentity);
      expect(text).not.toMatch(/AGE-SECRET-KEY/i);
    }
    expect(log.text()).toContain(firstRecipient);
  });

  it('is made once when several replicas start at the same moment', async () => {
    const race = agentNamespace('age-race');
    await kube.request('POST', '/api/v1/namespaces', {
      body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: race } },
    });
    // One client each, so the creates really go out side by side.
    const clients = await Promise.all(Array.from({ length: 4 }, () => kubeClientOf(plane.kubeconfigPath)));
    try {
      const results = await Promise.all(
        clients.map((c) => new AgeKeyStore(c, { namespace: race, managedBy: 'flotilla-agent' }).ensure()),
      );
      expect(new Set(results.map((r) => r.identities[0])).size).toBe(1);
      expect(results.filter((r) => r.created)).toHaveLength(1);
      expect(identitiesOf(await keySecret(race))).toEqual(results[0]?.identities);
    } finally {
      for (const c of clients) c.close();
    }
  });

  it('reports an identity replaced by hand with its own recipient, not the one recorded before', async () => {
    const byHand = agentNamespace('age-hand');
    await kube.request('POST', '/api/v1/namespaces', {
      body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: byHand } },
    });
    const store = new AgeKeyStore(kube, { namespace: byHand, managedBy: 'flotilla-agent' });
    await store.ensure();
    const restored = await generateIdentity();
    const secret = await keySecret(byHand);
    // An operator restores a backed-up key into the Secret and leaves the annotation as it was.
    await kube.request('PUT', `/api/v1/namespaces/${byHand}/secrets/flotilla-age-key`, {
      body: { ...secret, data: { identities: Buffer.from(`${restored}\n`).toString('base64') } },
    });
    expect(await store.recipients()).toEqual([
      { name: 'cluster', recipient: await identityToRecipient(restored) },
    ]);
  });

  describe('with the agent running', () => {
    let agent: Agent;
    let keys: AgeKeyStore;
    const stop = new AbortController();
    let running: Promise<void>;
    const log = memoryLog();

    beforeAll(async () => {
      const runtime = await h.agent(cluster, token, {
        kubeconfigPath: plane.kubeconfigPath,
        namespace: ns,
        log,
        // Rotation requests ride on status answers: a short heartbeat makes them quick.
        env: { FLOTILLA_HEARTBEAT_INTERVAL: '1s' },
      });
      agent = runtime.agent;
      keys = runtime.secretKeys;
      running = agent.run(stop.signal);
    });

    afterAll(async () => {
      stop.abort();
      await running;
    });

    it('rotates with `flotilla secrets rotate`: a new recipient at the hub, the old identity kept', async () => {
      const run = await runFlotilla(cli(), ['secrets', 'rotate', cluster, '--timeout', '60s', '-o', 'json']);
      expect(run.code, run.stderr).toBe(0);
      const out = run.json<{ previous: string; recipient: string; rotation: { id: string } }>();
      expect(out.previous).toBe(firstRecipient);
      expect(out.recipient).toMatch(/^age1/);
      expect(out.recipient).not.toBe(firstRecipient);

      const secret = await keySecret(ns);
      const identities = identitiesOf(secret);
      expect(identities).toHaveLength(2);
      expect(await identityToRecipient(identities[0] as string)).toBe(out.recipient);
      // Files still encrypted to the old key keep decrypting until they are encrypted again.
      expect(identities[1]).toBe(firstIdentity);
      expect(secret.metadata.annotations?.['flotilla.dev/key-rotation']).toBe(out.rotation.id);
      expect((await keys.identities()).slice(0, 2)).toEqual(identities);

      const atHub = await hubCluster(cluster);
      expect(atHub.recipients).toEqual([{ name: 'cluster', recipient: out.recipient }]);
      expect(atHub.keyRotation).toBeNull();
      // The request is done: later heartbeats do not rotate again.
      const rv = secret.metadata.resourceVersion;
      await new Promise((r) => setTimeout(r, 2500));
      expect((await keySecret(ns)).metadata.resourceVersion).toBe(rv);
      expect(log.text()).not.toMatch(/AGE-SECRET-KEY/i);
    });

    it('reports a group key an operator installs, and `secrets recipients` prints it', async () => {
      const groupIdentity = await generateIdentity();
      const groupRecipient = await identityToRecipient(groupIdentity);
      const keyFile = `# created: 2026-01-01T00:00:00Z\n# public key: ${groupRecipient}\n${groupIdentity}\n`;
      for (const [name, content] of [
        ['env-prod', keyFile],
        ['env-broken', 'not a key\n'],
      ] as const) {
        await kube.request('POST', `/api/v1/namespaces/${ns}/secrets`, {
          body: {
            apiVersion: 'v1',
            kind: 'Secret',
            metadata: { name, labels: { 'flotilla.dev/age-key': 'group' } },
            data: { identity: Buffer.from(content).toString('base64') },
          },
        });
      }
      const recipients = await agent.checkRecipients();
      expect(recipients?.map((r) => r.name)).toEqual(['cluster', 'group/env-prod']);
      expect(recipients?.[1]?.recipient).toBe(groupRecipient);
      expect(keys.problems).toEqual([
        { secret: 'env-broken', message: '"identity" holds no age X25519 identity (1 unreadable lines)' },
      ]);
      expect((await keys.identities()).at(-1)).toBe(groupIdentity);
      await eventually(async () => ((await hubCluster(cluster)).recipients.length === 2 ? true : undefined));

      const listed = await runFlotilla(cli(), ['secrets', 'recipients', '--cluster', cluster, '-o', 'json']);
      expect(listed.code, listed.stderr).toBe(0);
      expect(
        listed.json<{ clusters: { recipients: { name: string; recipient: string }[] }[] }>().clusters[0]
          ?.recipients,
      ).toEqual(recipients);
      const sops = await runFlotilla(cli(), ['secrets', 'recipients', '--cluster', cluster, '--sops-yaml']);
      expect(sops.code, sops.stderr).toBe(0);
      expect(parse(sops.stdout)).toEqual({
        creation_rules: [
          {
            encrypted_regex: '^(data|stringData)$',
            age: (recipients ?? []).map((r) => r.recipient).join(','),
          },
        ],
      });
    });
  });
});

describe('the RBAC the key store needs', () => {
  it("is the agent's Role in its own namespace, which gives no Secret of another namespace", async () => {
    const ns = agentNamespace('age-rbac');
    const other = agentNamespace('age-other');
    // The agent's ServiceAccount and namespaced state Role from agent/deploy, moved to this namespace.
    const docs = ['namespace.yaml', 'serviceaccount.yaml', 'rbac.yaml'].flatMap((file) =>
      parseAllDocuments(
        readFileSync(`${repoRoot}/agent/deploy/${file}`, 'utf8').replaceAll('flotilla-system', ns),
      )
        .map((d) => d.toJSON() as { kind: string; metadata: { name: string } })
        .filter((o) => !o.kind.startsWith('Cluster')),
    );
    expect(docs.map((d) => d.kind).sort()).toEqual([
      'Namespace',
      'Role',
      'Role',
      'RoleBinding',
      'RoleBinding',
      'ServiceAccount',
    ]);
    for (const o of docs) {
      const collection =
        o.kind === 'Namespace'
          ? '/api/v1/namespaces'
          : o.kind === 'ServiceAccount'
            ? `/api/v1/namespaces/${ns}/serviceaccounts`
            : `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/${o.kind.toLowerCase()}s`;
      await kube.request('POST', collection, { body: o });
    }
    await kube.request('POST', '/api/v1/namespaces', {
      body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: other } },
    });
    await kube.request('POST', `/api/v1/namespaces/${other}/secrets`, {
      body: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db' }, stringData: { password: 'x' } },
    });
    const asAgent = new KubeClient(await serviceAccountConnection(kube, plane.kubeconfigPath, ns));
    try {
      const store = new AgeKeyStore(asAgent, { namespace: ns, managedBy: 'flotilla-agent' });
      // The RoleBinding reaches the API server's authorizer within moments.
      const made = await eventually(() => store.ensure(), 10_000, 'the Role to take effect');
      expect(made.created).toBe(true);
      expect(await store.recipients()).toHaveLength(1);
      expect((await store.rotate('rot_rbac_0001')).rotated).toBe(true);
      expect(await store.identities()).toHaveLength(2);
      for (const path of [`/api/v1/namespaces/${other}/secrets`, `/api/v1/namespaces/${other}/secrets/db`]) {
        const refused = await asAgent.request('GET', path).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(refused, path).toBeInstanceOf(KubeApiError);
        expect((refused as KubeApiError).status, path).toBe(403);
      }
    } finally {
      asAgent.close();
    }
  });
});
