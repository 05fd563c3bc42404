/**
 * The agent on one of the bed's control planes reports that kube-apiserver's version; the
 * local hub keeps it in DynamoDB Local and shows it where clusters are listed.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { HubClient, HubError } from '../../../agent/src/hub/hub-client.ts';
import { AGENT_VERSION } from '../../../agent/src/version.ts';
import { AgentHarness, controlPlane, eventually, kubectl, uniqueName } from './harness.ts';

const bed = inject('bed');
const plane = controlPlane(bed, 1);
let h: AgentHarness;

beforeAll(async () => {
  h = await AgentHarness.start(bed, 'kubever');
});

afterAll(async () => {
  await h?.stop();
});

/** The API server's version as kubectl reads it: the reference the agent's report is held to. */
function serverVersion(): string {
  const out = JSON.parse(kubectl(bed, plane.kubeconfigPath, 'version', '-o', 'json')) as {
    serverVersion?: { gitVersion?: string };
  };
  const version = out.serverVersion?.gitVersion;
  if (!version) throw new Error(`kubectl version printed no server version: ${JSON.stringify(out)}`);
  return version;
}

describe("the cluster's Kubernetes version, from the agent to the hub", () => {
  const cluster = uniqueName('kv');
  let token: string;

  it('is read from the bed kube-apiserver, reported, stored and listed', async () => {
    const expected = serverVersion();
    expect(expected).toMatch(/^v1\.\d+\.\d+/);
    ({ token } = await h.register(cluster));
    const before = (await (await h.admin(`/v1/admin/clusters/${cluster}`)).json()) as {
      cluster: { kubeVersion: string | null };
    };
    expect(before.cluster.kubeVersion).toBeNull();

    const { agent } = await h.agent(cluster, token, {
      kubeconfigPath: plane.kubeconfigPath,
      namespace: uniqueName('kv-agent'),
    });
    // A step of the agent: read the version, and report it at once (waited for when called as a step).
    expect(await agent.checkKubeVersion()).toBe(expected);

    const listing = (await (await h.admin('/v1/admin/clusters')).json()) as {
      clusters: { id: string; kubeVersion: string | null; agentVersion: string | null }[];
    };
    expect(listing.clusters.find((c) => c.id === cluster)).toMatchObject({
      kubeVersion: expected,
      agentVersion: AGENT_VERSION,
    });
    expect((await h.clusterStatus(cluster))?.kubeVersion).toBe(expected);
  });

  it('keeps the version when an agent reports none, and refuses a malformed one by field name', async () => {
    const expected = serverVersion();
    const hub = new HubClient({ baseUrl: h.url, clusterId: cluster, token, agentVersion: '0.0.1-old' });
    try {
      // An older agent: a heartbeat without the field.
      await hub.postStatus({
        apiVersion: 'flotilla.dev/v1alpha1',
        kind: 'ClusterStatus',
        agentVersion: '0.0.1-old',
      });
      const status = await eventually(async () => {
        const s = await h.clusterStatus(cluster);
        return s?.agentVersion === '0.0.1-old' ? s : undefined;
      });
      expect(status.kubeVersion).toBe(expected);

      const refused = await hub
        .postStatus({
          apiVersion: 'flotilla.dev/v1alpha1',
          kind: 'ClusterStatus',
          agentVersion: '0.0.1-old',
          kubeVersion: '1.33',
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(refused).toBeInstanceOf(HubError);
      expect(refused).toMatchObject({ status: 400, code: 'invalid_request', fields: ['kubeVersion'] });
      expect((await h.clusterStatus(cluster))?.kubeVersion).toBe(expected);
    } finally {
      hub.close();
    }
  });

  it('reaches the hub from a running agent, with the rest of its status', async () => {
    const expected = serverVersion();
    const other = uniqueName('kv-run');
    const registered = await h.register(other);
    const { agent } = await h.agent(other, registered.token, {
      kubeconfigPath: plane.kubeconfigPath,
      namespace: uniqueName('kv-agent'),
    });
    const stop = new AbortController();
    const running = agent.run(stop.signal);
    try {
      const status = await eventually(
        async () => {
          const s = await h.clusterStatus(other);
          return s?.kubeVersion ? s : undefined;
        },
        30_000,
        'the running agent to report its Kubernetes version',
      );
      expect(status.kubeVersion).toBe(expected);
      expect(status.connection).toBe('Online');
    } finally {
      stop.abort();
      await running;
    }
  });
});
