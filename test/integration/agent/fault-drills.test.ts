/**
 * Fault drills, as a new user runs into them: a bundle that never turns Ready, a hub that
 * accepts connections and never answers, a Job that deletes itself when done, and an old
 * desired state replayed by something between the agent and the hub.
 */

import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { HubClient } from '../../../agent/src/hub/hub-client.ts';
import type { KubeClient } from '../../../agent/src/kube/client.ts';
import type { DesiredStateFetch, HubPort } from '../../../agent/src/reconcile/ports.ts';
import { AGENT_VERSION } from '../../../agent/src/version.ts';
import { until } from '../../support/until.ts';
import {
  AgentHarness,
  cleanUp,
  controlPlane,
  kubeClientOf,
  namespaceManifest,
  uniqueName,
} from './harness.ts';
import { AgentProcess } from './process.ts';

const bed = inject('bed');
const plane = controlPlane(bed, 1);
let h: AgentHarness;
let kube: KubeClient;
const namespaces: string[] = [];
const processes: AgentProcess[] = [];

beforeAll(async () => {
  h = await AgentHarness.start(bed, 'drills');
  kube = await kubeClientOf(plane.kubeconfigPath);
});

afterAll(async () => {
  h?.unhangHub();
  await Promise.all(processes.map((p) => p.stop()));
  await cleanUp(kube, namespaces);
  kube.close();
  await h?.stop();
});

const namespace = (ns: string) => namespaceManifest(ns);
const settings = (value: string) =>
  `---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  value: "${value}"\n`;
const value = async (ns: string) =>
  (await kube.get<{ data: { value: string } }>(`/api/v1/namespaces/${ns}/configmaps/settings`))?.data.value;

describe('one bundle that never turns Ready', () => {
  const cluster = uniqueName('stall');
  const ns = uniqueName('stall-ns');

  it('holds up neither other bundles, nor status, nor heartbeats', async () => {
    namespaces.push(ns, `${cluster}-agent`);
    const { token, queueUrl } = await h.register(cluster);
    // No load-balancer controller runs on the bed: this Service never gets an address.
    const edge = `apiVersion: v1\nkind: Service\nmetadata:\n  name: edge\nspec:\n  type: LoadBalancer\n  selector: { app: edge }\n  ports: [{ port: 80 }]\n`;
    await h.push({
      [`${cluster}-app`]: { cluster, namespace: ns, manifests: namespace(ns) + settings('one') },
      [`${cluster}-edge`]: { cluster, namespace: ns, manifests: edge },
    });
    const agent = AgentProcess.start(
      h.agentEnv(cluster, token, {
        kubeconfigPath: plane.kubeconfigPath,
        namespace: `${cluster}-agent`,
        env: {
          ...h.sqsEnv(queueUrl),
          FLOTILLA_POLL_INTERVAL: '10m',
          FLOTILLA_RESYNC_INTERVAL: '10m',
          FLOTILLA_DRIFT_INTERVAL: '10m',
          FLOTILLA_HEARTBEAT_INTERVAL: '2s',
          // The defaults: look again after 1 s, then less often, up to every 10 s.
          FLOTILLA_RECHECK_INTERVAL: '1s',
          FLOTILLA_REQUEUE_INTERVAL: '10s',
        },
      }),
    );
    processes.push(agent);
    const states = async () =>
      Object.fromEntries(((await h.clusterStatus(cluster))?.bundles ?? []).map((b) => [b.name, b.state]));
    await until(
      'app Ready and edge NotReady on the hub',
      async () => {
        const s = await states();
        return s[`${cluster}-app`] === 'Ready' && s[`${cluster}-edge`] === 'NotReady' ? s : undefined;
      },
      { timeoutMs: 30_000 },
    );

    // Heartbeats as the hub records them, sampled while a change goes through.
    const beats = new Set<string>();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const at = (await h.clusterStatus(cluster))?.lastHeartbeatAt;
        if (at) beats.add(at);
        await new Promise((r) => setTimeout(r, 150));
      }
    })();

    const t0 = Date.now();
    await h.push({
      [`${cluster}-app`]: { cluster, namespace: ns, manifests: namespace(ns) + settings('two') },
    });
    const pushed = Date.now();
    await until('the change applied', async () => ((await value(ns)) === 'two' ? true : undefined), {
      timeoutMs: 20_000,
      intervalMs: 50,
    });
    const applied = Date.now();
    const generation = (await h.clusterStatus(cluster))?.desired?.generation;
    await until(
      'the change reported Ready',
      async () => {
        const view = await h.clusterStatus(cluster);
        const app = view?.bundles.find((b) => b.name === `${cluster}-app`);
        return app?.state === 'Ready' && app.upToDate ? true : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 50 },
    );
    const reported = Date.now();
    // Keep watching heartbeats for a few more intervals, the stuck bundle still NotReady.
    await new Promise((r) => setTimeout(r, 8_000));
    sampling = false;
    await sampler;

    const times = [...beats].map((b) => Date.parse(b)).sort((a, b) => a - b);
    const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
    process.stderr.write(
      `[drill] push ${pushed - t0} ms; applied ${applied - pushed} ms and reported Ready ${reported - pushed} ms after it (generation ${generation}); heartbeat gaps ${JSON.stringify(gaps)} ms\n`,
    );
    // Before, the agent waited out the stuck bundle's health timeout first (100 s measured).
    expect(applied - pushed).toBeLessThan(5_000);
    expect(reported - pushed).toBeLessThan(6_000);
    expect(times.length).toBeGreaterThanOrEqual(4);
    // Every interval, give or take the sampling and the hub's write.
    expect(Math.max(...gaps)).toBeLessThanOrEqual(2_000 + 1_500);
    expect((await states())[`${cluster}-edge`]).toBe('NotReady');
  });
});

describe('a hub that accepts connections and never answers', () => {
  const cluster = uniqueName('hang');
  const ns = uniqueName('hang-ns');

  it('holds up no drift correction', async () => {
    namespaces.push(ns, `${cluster}-agent`);
    const { token } = await h.register(cluster);
    await h.push({
      [`${cluster}-app`]: { cluster, namespace: ns, manifests: namespace(ns) + settings('kept') },
    });
    const agent = AgentProcess.start(
      h.agentEnv(cluster, token, {
        kubeconfigPath: plane.kubeconfigPath,
        namespace: `${cluster}-agent`,
        env: {
          FLOTILLA_POLL_INTERVAL: '1s',
          FLOTILLA_DRIFT_INTERVAL: '1s',
          FLOTILLA_HEARTBEAT_INTERVAL: '1s',
          FLOTILLA_HUB_TIMEOUT: '30s',
        },
      }),
    );
    processes.push(agent);
    await until('the first apply', async () => ((await value(ns)) === 'kept' ? true : undefined), {
      timeoutMs: 30_000,
    });
    h.hangHub();
    try {
      // Let a poll and a status report get stuck on the hub first.
      await new Promise((r) => setTimeout(r, 2_500));
      await kube.request('PATCH', `/api/v1/namespaces/${ns}/configmaps/settings`, {
        body: { data: { value: 'edited by hand' } },
        contentType: 'application/merge-patch+json',
      });
      const edited = Date.now();
      await until('the hand edit corrected', async () => ((await value(ns)) === 'kept' ? true : undefined), {
        timeoutMs: 20_000,
        intervalMs: 100,
      });
      const corrected = Date.now() - edited;
      process.stderr.write(`[drill] hand edit corrected ${corrected} ms after, the hub hanging\n`);
      // Each stuck hub call takes FLOTILLA_HUB_TIMEOUT (30 s): the correction did not wait for one.
      expect(corrected).toBeLessThan(10_000);
    } finally {
      h.unhangHub();
    }
  });
});

describe('a Job that deletes itself when done', () => {
  const cluster = uniqueName('ttl');
  const ns = uniqueName('ttl-ns');
  const job = (arg: string) =>
    `---\napiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\nspec:\n  ttlSecondsAfterFinished: 0\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{ name: migrate, image: registry.example.com/migrate:1, args: ["${arg}"] }]\n`;
  const jobUid = async () =>
    (await kube.get<{ metadata: { uid: string } }>(`/apis/batch/v1/namespaces/${ns}/jobs/migrate`))?.metadata
      .uid;

  /** Waits for the Job to exist and then to be removed by its TTL; returns its uid. */
  async function runsOnce(): Promise<string> {
    const uid = await until('the Job', jobUid, { timeoutMs: 30_000, intervalMs: 100 });
    await until(
      'the Job removed by its TTL',
      async () => ((await jobUid()) === undefined ? true : undefined),
      {
        timeoutMs: 60_000,
        intervalMs: 100,
      },
    );
    return uid;
  }

  it('runs once under driftPolicy correct, and again only when it changes in git', async () => {
    namespaces.push(ns, `${cluster}-agent`);
    const { token } = await h.register(cluster);
    await h.push({
      [`${cluster}-jobs`]: {
        cluster,
        namespace: ns,
        driftPolicy: 'correct',
        manifests: namespace(ns) + job('up'),
      },
    });
    const agent = AgentProcess.start(
      h.agentEnv(cluster, token, {
        kubeconfigPath: plane.kubeconfigPath,
        namespace: `${cluster}-agent`,
        env: { FLOTILLA_POLL_INTERVAL: '1s', FLOTILLA_DRIFT_INTERVAL: '1s' },
      }),
    );
    processes.push(agent);
    const first = await runsOnce();
    // Five drift checks later, it has not been created again.
    const quietUntil = Date.now() + 5_000;
    while (Date.now() < quietUntil) {
      expect(await jobUid()).toBeUndefined();
      await new Promise((r) => setTimeout(r, 100));
    }
    const view = await h.clusterStatus(cluster);
    expect(view?.bundles[0]?.state, view?.bundles[0]?.message).toBe('Ready');
    expect(agent.lines.filter((l) => l.message === 'drift corrected')).toEqual([]);

    // Changed in git: applied (and run) once more.
    await h.push({
      [`${cluster}-jobs`]: {
        cluster,
        namespace: ns,
        driftPolicy: 'correct',
        manifests: namespace(ns) + job('up --again'),
      },
    });
    const second = await runsOnce();
    expect(second).not.toBe(first);
    await new Promise((r) => setTimeout(r, 3_000));
    expect(await jobUid()).toBeUndefined();
  });
});

describe('an older desired state replayed between the agent and the hub', () => {
  const cluster = uniqueName('replay');
  const ns = uniqueName('replay-ns');
  const second = `---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: added-later\ndata:\n  value: "2"\n`;

  it('is refused, before and after a restart, and nothing added since is pruned', async () => {
    namespaces.push(ns, `${cluster}-agent`);
    const { token } = await h.register(cluster);
    await h.push({
      [`${cluster}-app`]: { cluster, namespace: ns, manifests: namespace(ns) + settings('one') },
    });
    const real = new HubClient({
      baseUrl: h.url,
      clusterId: cluster,
      token,
      agentVersion: AGENT_VERSION,
      timeoutMs: 10_000,
    });
    // What a replaying proxy recorded of generation 1.
    const recorded = await real.fetchDesiredState(undefined);
    expect(recorded.kind).toBe('modified');
    let replay: DesiredStateFetch | undefined;
    const proxy: HubPort = {
      fetchDesiredState: (etag, signal) =>
        replay ? Promise.resolve(replay) : real.fetchDesiredState(etag, signal),
      fetchBundle: (hash, signal) => real.fetchBundle(hash, signal),
      postStatus: (report, signal) => real.postStatus(report, signal),
    };
    const opts = {
      kubeconfigPath: plane.kubeconfigPath,
      namespace: `${cluster}-agent`,
      overrides: { hub: proxy },
    };
    const { agent } = await h.agent(cluster, token, opts);
    expect((await agent.sync()).kind).toBe('applied');
    await h.push({
      [`${cluster}-app`]: { cluster, namespace: ns, manifests: namespace(ns) + settings('one') + second },
    });
    const g1 =
      recorded.kind === 'modified'
        ? (recorded.body as { manifest: { generation: number } }).manifest.generation
        : 0;
    const newer = await agent.sync();
    expect(newer.kind).toBe('applied');
    const g2 = newer.kind === 'applied' ? newer.generation : 0;
    expect(g2).toBeGreaterThan(g1);
    expect(await kube.get(`/api/v1/namespaces/${ns}/configmaps/added-later`)).toBeDefined();

    replay = recorded;
    const refused = await agent.sync();
    expect(refused.kind === 'refused' && refused.reason).toMatch(
      new RegExp(`^generation ${g1} is older than generation ${g2}, the newest this agent has verified`),
    );
    expect(await kube.get(`/api/v1/namespaces/${ns}/configmaps/added-later`)).toBeDefined();
    const app = (await h.clusterStatus(cluster))?.bundles[0];
    // The hub hears of it: a report on the replayed generation's bundles (not the hub's current ones, so shown Pending).
    expect(app?.reportedState).toBe('Failed');
    expect(app?.message).toMatch(
      new RegExp(`^desired state generation ${g1} refused: generation ${g1} is older than generation ${g2}`),
    );

    // A restarted agent still knows the newer generation from its namespace.
    const restarted = await h.agent(cluster, token, opts);
    expect(await restarted.agent.loadCache()).toBe(true);
    expect(restarted.agent.highestGeneration).toBe(g2);
    expect((await restarted.agent.sync()).kind).toBe('refused');
    expect(restarted.metrics.refusals.value({ reason: 'replay' })).toBe(1);
    expect(await kube.get(`/api/v1/namespaces/${ns}/configmaps/added-later`)).toBeDefined();

    // The hub's own answer again: enforced as before.
    replay = undefined;
    expect((await restarted.agent.sync()).kind).toBe('unchanged');
    real.close();
  });
});
