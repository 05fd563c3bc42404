import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { KubeClient } from '../../../agent/src/kube/client.ts';
import { AgentHarness, cleanUp, controlPlane, kubeClientOf, uniqueName } from './harness.ts';

const bed = inject('bed');
const plane = controlPlane(bed, 0);
let h: AgentHarness;
let kube: KubeClient;
const namespaces: string[] = [];

/** What the man in the middle does to the hub's answers. */
let mode: 'pass' | 'manifest' | 'bundle' = 'pass';
let proxy: Server;
let proxyUrl: string;

/** An HTTP proxy in front of the hub that can tamper with what the agent receives. */
async function startTamperingProxy(target: string): Promise<void> {
  proxy = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', target);
      const headers = { ...req.headers, host: url.host };
      const upstream = request(url, { method: req.method, headers }, (up) => {
        const body: Buffer[] = [];
        up.on('data', (c: Buffer) => body.push(c));
        up.on('end', () => {
          let out = Buffer.concat(body);
          const outHeaders = { ...up.headers };
          if (mode === 'manifest' && up.statusCode === 200 && url.pathname.endsWith('/desired-state')) {
            const signed = JSON.parse(out.toString()) as { manifest: { commit: string } };
            signed.manifest.commit = '0000000000000000000000000000000000000000';
            out = Buffer.from(JSON.stringify(signed));
          }
          if (
            mode === 'bundle' &&
            up.statusCode === 200 &&
            /\/v1\/bundles\/[^/]+\/parts\/0$/.test(url.pathname)
          ) {
            const text = gunzipSync(out).toString();
            out = gzipSync(Buffer.from(text.replace('"value":"two"', '"value":"evil"')));
            outHeaders['x-flotilla-parts'] = '1';
          }
          outHeaders['content-length'] = String(out.length);
          res.writeHead(up.statusCode ?? 502, outHeaders).end(out);
        });
      });
      upstream.on('error', () => res.writeHead(502).end());
      upstream.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  h = await AgentHarness.start(bed, 'refuse');
  kube = await kubeClientOf(plane.kubeconfigPath);
  await startTamperingProxy(h.url);
});

afterAll(async () => {
  await cleanUp(kube, namespaces);
  kube.close();
  proxy?.closeAllConnections();
  await new Promise((r) => proxy?.close(r));
  await h?.stop();
});

const configMaps = (ns: string, value: string, extra: boolean) =>
  `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  value: ${value}\n` +
  (extra ? '---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: second\ndata:\n  value: new\n' : '');

const hubBundles = (cluster: string) => h.clusterStatus(cluster);

describe('verification before anything is applied', () => {
  const cluster = uniqueName('tamper');
  const ns = uniqueName('tamper-ns');
  let token: string;

  it('applies what verifies', async () => {
    namespaces.push(ns, `${cluster}-agent`);
    ({ token } = await h.register(cluster));
    await h.push({ [`${cluster}-app`]: { cluster, namespace: ns, manifests: configMaps(ns, 'one', false) } });
    const { agent } = await h.agent(cluster, token, {
      kubeconfigPath: plane.kubeconfigPath,
      namespace: `${cluster}-agent`,
      env: { FLOTILLA_HUB_URL: proxyUrl },
    });
    mode = 'pass';
    expect((await agent.sync()).kind).toBe('applied');
    expect(
      (await kube.get<{ data: { value: string } }>(`/api/v1/namespaces/${ns}/configmaps/settings`))?.data
        .value,
    ).toBe('one');
  });

  it('refuses a manifest whose signature does not verify: nothing of it is applied, and the refusal is reported', async () => {
    await h.push({ [`${cluster}-app`]: { cluster, namespace: ns, manifests: configMaps(ns, 'two', true) } });
    const { agent } = await h.agent(cluster, token, {
      kubeconfigPath: plane.kubeconfigPath,
      namespace: `${cluster}-agent`,
      env: { FLOTILLA_HUB_URL: proxyUrl },
    });
    expect(await agent.loadCache()).toBe(true);
    const before = agent.current?.manifest.generation;
    mode = 'manifest';
    const result = await agent.sync();
    expect(result.kind).toBe('refused');
    expect(result.kind === 'refused' && result.reason).toMatch(/does not verify with the pinned hub key/);
    expect(agent.current?.manifest.generation).toBe(before);
    expect(
      (await kube.get<{ data: { value: string } }>(`/api/v1/namespaces/${ns}/configmaps/settings`))?.data
        .value,
    ).toBe('one');
    expect(await kube.get(`/api/v1/namespaces/${ns}/configmaps/second`)).toBeUndefined();
    const view = await hubBundles(cluster);
    expect(view?.bundles[0]?.state).toBe('Failed');
    expect(view?.bundles[0]?.message).toMatch(
      /^desired state generation \d+ refused: .*does not verify.*; still enforcing generation \d+$/,
    );

    // The refusal stays visible while the agent keeps enforcing what it has.
    await agent.enforce({ detectDrift: true });
    expect((await hubBundles(cluster))?.bundles[0]?.state).toBe('Failed');
  });

  it('refuses a bundle whose content does not match its hash', async () => {
    const { agent } = await h.agent(cluster, token, {
      kubeconfigPath: plane.kubeconfigPath,
      namespace: `${cluster}-agent`,
      env: { FLOTILLA_HUB_URL: proxyUrl },
    });
    await agent.loadCache();
    mode = 'bundle';
    const result = await agent.sync();
    expect(result.kind).toBe('refused');
    expect(result.kind === 'refused' && result.reason).toMatch(/rendered bundle hash mismatch/);
    expect(
      (await kube.get<{ data: { value: string } }>(`/api/v1/namespaces/${ns}/configmaps/settings`))?.data
        .value,
    ).toBe('one');
    expect(await kube.get(`/api/v1/namespaces/${ns}/configmaps/second`)).toBeUndefined();

    mode = 'pass';
    expect((await agent.sync()).kind).toBe('applied');
    expect(
      (await kube.get<{ data: { value: string } }>(`/api/v1/namespaces/${ns}/configmaps/settings`))?.data
        .value,
    ).toBe('two');
    expect((await hubBundles(cluster))?.bundles[0]?.state).toBe('Ready');
  });
});

describe('an apply error in one object', () => {
  it('is reported with the object and the API server message, while other bundles proceed', async () => {
    const cluster = uniqueName('broken');
    const ns = uniqueName('broken-ns');
    namespaces.push(ns, `${cluster}-agent`);
    const { token } = await h.register(cluster);
    const bad = `apiVersion: v1
kind: ConfigMap
metadata:
  name: fine
data: { ok: "yes" }
---
apiVersion: v1
kind: Service
metadata:
  name: broken
spec:
  ports: [{ port: 70000 }]
`;
    await h.push({
      [`${cluster}-base`]: {
        cluster,
        manifests: `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns}\n`,
      },
      [`${cluster}-bad`]: { cluster, namespace: ns, dependsOn: [`${cluster}-base`], manifests: bad },
      [`${cluster}-good`]: {
        cluster,
        namespace: ns,
        dependsOn: [`${cluster}-base`],
        manifests: 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: good\ndata: { ok: "yes" }\n',
      },
    });
    const { agent } = await h.agent(cluster, token, {
      kubeconfigPath: plane.kubeconfigPath,
      namespace: `${cluster}-agent`,
    });
    await agent.sync();
    const byName = new Map(agent.lastOutcome?.bundles.map((b) => [b.name, b]));
    const failed = byName.get(`${cluster}-bad`);
    expect(failed?.state).toBe('Failed');
    expect(failed?.failedObject).toBe(`/Service/${ns}/broken`);
    expect(failed?.message).toMatch(
      new RegExp(
        `^applying Service ${ns}/broken: Service "broken" is invalid: .*spec.ports\\[0\\].port: Invalid value: 70000: must be between 1 and 65535`,
      ),
    );
    expect(byName.get(`${cluster}-good`)?.state).toBe('Ready');
    expect(byName.get(`${cluster}-base`)?.state).toBe('Ready');
    // The rest of the failed bundle was applied all the same.
    expect(await kube.get(`/api/v1/namespaces/${ns}/configmaps/fine`)).toBeDefined();
    expect(agent.lastOutcome?.complete).toBe(false);

    const view = await hubBundles(cluster);
    const reported = view?.bundles.find((b) => b.name === `${cluster}-bad`);
    expect(reported?.state).toBe('Failed');
    expect(reported?.message).toContain('must be between 1 and 65535');
    expect(view?.appliedGeneration).toBeNull();

    // Fixed in git: applied, and the generation counts as applied.
    await h.push({
      [`${cluster}-bad`]: {
        cluster,
        namespace: ns,
        dependsOn: [`${cluster}-base`],
        manifests: bad.replace('70000', '8080'),
      },
    });
    await agent.sync();
    expect(agent.lastOutcome?.bundles.every((b) => b.state === 'Ready')).toBe(true);
    expect((await hubBundles(cluster))?.appliedGeneration).toBe(agent.current?.manifest.generation);
  });
});
