/**
 * Two replicas of the agent, real processes launched as `bootstrap --run-agent local`
 * launches them (each its own pod process, service-account token and identity), on one
 * cluster: one leads on the Lease and applies; `kill -9` of the leader's agent process
 * leaves the Lease to expire, the standby takes it within about a lease duration, and
 * applies a change pushed after the kill.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { KubeClient } from '../../../agent/src/kube/client.ts';
import { type LocalAgentRecord, ProcessLocalAgents } from '../../../cli/src/bootstrap/local-agent.ts';
import { agentNames, clusterRbacName } from '../../../cli/src/bootstrap/manifests.ts';
import {
  AgentHarness,
  cleanUp,
  controlPlane,
  eventually,
  kubeClientOf,
  namespaceManifest,
  uniqueName,
} from './harness.ts';
import { currentContext, installAgentObjects } from './pod.ts';

const bed = inject('bed');
const plane = controlPlane(bed, 2);
const cluster = uniqueName('lead');
const agentNs = uniqueName('lead-agent');
const appNs = uniqueName('lead-app');
const stateDirs = [0, 1].map(() => mkdtempSync(join(tmpdir(), 'flotilla-lead-')));
const replicas = stateDirs.map(
  (stateDir) =>
    new ProcessLocalAgents({
      stateDir,
      baseEnv: { PATH: process.env.PATH, HOME: process.env.HOME },
    }),
);
let h: AgentHarness;
let kube: KubeClient;

interface Lease {
  spec: { holderIdentity?: string; leaseDurationSeconds?: number; leaseTransitions?: number };
}

const lease = () =>
  kube.get<Lease>(`/apis/coordination.k8s.io/v1/namespaces/${agentNs}/leases/${agentNames.leaderLease}`);

/** The agent's identity without FLOTILLA_POD_NAME: this machine's name and its pid. */
const identityOf = (r: LocalAgentRecord) => `${hostname()}_${r.agentPid}`;

function bundle(value: string) {
  return {
    app: {
      cluster,
      namespace: appNs,
      manifests: namespaceManifest(appNs, { name: 'settings', data: { value } }),
    },
  };
}

async function configValue(): Promise<string | undefined> {
  const cm = await kube.get<{ data?: { value?: string } }>(`/api/v1/namespaces/${appNs}/configmaps/settings`);
  return cm?.data?.value;
}

beforeAll(async () => {
  h = await AgentHarness.start(bed, 'lead');
  kube = await kubeClientOf(plane.kubeconfigPath);
}, 60_000);

afterAll(async () => {
  for (const r of replicas) await r.stop(cluster).catch(() => false);
  await cleanUp(
    kube,
    [agentNs, appNs],
    [
      `/apis/rbac.authorization.k8s.io/v1/clusterroles/${encodeURIComponent(clusterRbacName(agentNs))}`,
      `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/${encodeURIComponent(clusterRbacName(agentNs))}`,
    ],
  );
  kube?.close();
  await h?.stop();
  for (const d of stateDirs) rmSync(d, { recursive: true, force: true });
});

describe('two agent replicas with leader election', () => {
  it('one leads and applies; kill -9 of the leader hands over within a lease duration, and the change pushed after it is applied', async () => {
    const { token } = await h.register(cluster);
    const secret = await installAgentObjects(plane.kubeconfigPath, {
      clusterId: cluster,
      namespace: agentNs,
      hubUrl: h.url,
      token,
      hubPublicKeyPem: h.publicKeyPem,
    });
    await h.push(bundle('one'));
    const pod = {
      kubeconfig: plane.kubeconfigPath,
      context: currentContext(plane.kubeconfigPath),
      namespace: agentNs,
      serviceAccount: agentNames.serviceAccount,
    };
    const env = {
      FLOTILLA_NAMESPACE: agentNs,
      FLOTILLA_HTTP_ADDR: '127.0.0.1:0',
      FLOTILLA_POLL_INTERVAL: '1s',
      FLOTILLA_HEARTBEAT_INTERVAL: '2s',
      FLOTILLA_BACKOFF_MIN: '100ms',
      FLOTILLA_BACKOFF_MAX: '2s',
    };
    const records = [];
    for (const r of replicas) records.push((await r.ensure(cluster, { secret, env, pod })).record);
    const ids = records.map(identityOf);
    expect(new Set(ids).size).toBe(2);

    await eventually(
      async () => ((await configValue()) === 'one' ? true : undefined),
      60_000,
      'bundle v1 applied',
    );
    const held = await eventually(
      async () => {
        const l = await lease();
        return l?.spec.holderIdentity && ids.includes(l.spec.holderIdentity) ? l : undefined;
      },
      30_000,
      'a replica holding the Lease',
    );
    expect(held.spec.leaseDurationSeconds).toBe(15);
    const leader = ids.indexOf(held.spec.holderIdentity as string);
    const standby = 1 - leader;
    const leaderRecord = records[leader] as LocalAgentRecord;
    // Both answer their probes; the standby says it stands by.
    const probe = async (r: LocalAgentRecord, path: string) => {
      // A replica that came up second may not have logged its address yet on a loaded machine.
      const started = await eventually(
        async () =>
          readFileSync(r.logFile, 'utf8')
            .split('\n')
            .flatMap((l) => {
              try {
                return [JSON.parse(l) as { message?: string; http?: string }];
              } catch {
                return [];
              }
            })
            .find((l) => l.message === 'flotilla agent started' && l.http),
        30_000,
        `the "flotilla agent started" line of ${r.logFile}`,
      );
      const res = await fetch(`${started.http}${path}`);
      return { status: res.status, body: (await res.json()) as { role?: string } };
    };
    expect(await probe(records[standby] as LocalAgentRecord, '/readyz')).toMatchObject({
      status: 200,
      body: { role: 'standby' },
    });
    expect((await probe(records[standby] as LocalAgentRecord, '/healthz')).status).toBe(200);
    expect(await probe(leaderRecord, '/readyz')).toMatchObject({ status: 200, body: { role: 'leader' } });

    process.kill(leaderRecord.agentPid as number, 'SIGKILL');
    const killedAt = Date.now();
    await h.push(bundle('two'));
    const taken = await eventually(
      async () => ((await lease())?.spec.holderIdentity === ids[standby] ? Date.now() : undefined),
      40_000,
      'the standby holding the Lease',
    );
    const takeoverSeconds = (taken - killedAt) / 1000;
    // The Lease lasts 15 s from the leader's last renewal, seen by the standby, which tries
    // every 2 s (jittered up to 2.4 s): a bit more than 15 s at worst, never much less.
    expect(takeoverSeconds).toBeGreaterThan(10);
    expect(takeoverSeconds).toBeLessThan(22);
    await eventually(
      async () => ((await configValue()) === 'two' ? true : undefined),
      30_000,
      'bundle v2 applied by the new leader',
    );
    const status = await eventually(
      async () => {
        const c = await h.clusterStatus(cluster);
        return c?.bundles.find((b) => b.name === 'app' && b.reportedState === 'Ready' && b.upToDate);
      },
      30_000,
      'bundle v2 Ready at the hub',
    );
    expect(status.state).toBe('Ready');
    expect((await lease())?.spec.leaseTransitions).toBeGreaterThanOrEqual(1);
    process.stderr.write(`[leader-election] takeover after kill -9: ${takeoverSeconds.toFixed(1)} s\n`);
  }, 180_000);
});
