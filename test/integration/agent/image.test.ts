/**
 * The agent's image, as far as a machine without Docker can build it: agent/Dockerfile's
 * own steps (its COPY lines, its `npm install --omit=dev` of the agent workspace, its
 * compile-cache warm-up) reproduced into a clean directory, then its exact ENTRYPOINT run
 * as the pod runs it: the Deployment's environment, the bootstrap Secret's keys as files,
 * a TokenRequest token and the CA in the service-account directory, KUBERNETES_SERVICE_HOST
 * and PORT. A Dockerfile that installs too little, copies too little or starts the agent
 * wrongly fails here.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { KubeClient } from '../../../agent/src/kube/client.ts';
import { agentManifests, clusterRbacName } from '../../../cli/src/bootstrap/manifests.ts';
import { repoRoot } from '../../bed/src/bed.ts';
import { type ReproducedImage, reproduceImage } from './dockerfile.ts';
import {
  AgentHarness,
  cleanUp,
  controlPlane,
  eventually,
  kubeClientOf,
  namespaceManifest,
  uniqueName,
} from './harness.ts';
import { AgentPod, installAgentObjects } from './pod.ts';

const bed = inject('bed');
const plane = controlPlane(bed, 1);
const cluster = uniqueName('image');
const agentNs = uniqueName('image-agent');
const appNs = uniqueName('image-app');
const podName = `flotilla-agent-${uniqueName('p')}`;
let h: AgentHarness;
let kube: KubeClient;
let root: string;
let image: ReproducedImage;
let pod: AgentPod | undefined;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'flotilla-image-'));
  h = await AgentHarness.start(bed, 'image');
  kube = await kubeClientOf(plane.kubeconfigPath);
}, 60_000);

afterAll(async () => {
  await pod?.stop();
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
  if (root) rmSync(root, { recursive: true, force: true });
});

/** The container's environment as the Deployment bootstrap installs sets it, field references resolved. */
function deploymentEnv(): Record<string, string> {
  const deployment = agentManifests({
    clusterId: cluster,
    namespace: agentNs,
    image: 'x',
    secretData: {},
  }).find((o) => o.kind === 'Deployment') as unknown as {
    spec: {
      template: {
        spec: {
          containers: {
            env: { name: string; value?: string; valueFrom?: { fieldRef: { fieldPath: string } } }[];
          }[];
        };
      };
    };
  };
  const fields: Record<string, string> = { 'metadata.namespace': agentNs, 'metadata.name': podName };
  const env: Record<string, string> = {};
  for (const e of deployment.spec.template.spec.containers[0]?.env ?? []) {
    const value = e.value ?? fields[e.valueFrom?.fieldRef.fieldPath ?? ''];
    if (value === undefined) throw new Error(`no value for ${e.name}`);
    env[e.name] = value;
  }
  return env;
}

describe('the agent image (agent/Dockerfile)', () => {
  it("installs the agent's production dependencies and warms its compile cache, by the Dockerfile's own steps", () => {
    image = reproduceImage({
      dockerfile: readFileSync(join(repoRoot, 'agent/Dockerfile'), 'utf8'),
      context: repoRoot,
      root,
      path: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`,
    });
    expect(image.ran.some((c) => /npm install --omit=dev/.test(c))).toBe(true);
    // Only production dependencies: no test runner, no Kubernetes client library.
    expect(() => readFileSync(join(image.workdir, 'node_modules/vitest/package.json'))).toThrow();
    expect(() =>
      readFileSync(join(image.workdir, 'node_modules/@kubernetes/client-node/package.json')),
    ).toThrow();
    expect(image.entrypoint.at(-1)).toBe('agent/src/main.ts');
  }, 300_000);

  it('runs its ENTRYPOINT as the pod does: it applies a bundle and reports Ready', async () => {
    const { token } = await h.register(cluster);
    const secretData = await installAgentObjects(plane.kubeconfigPath, {
      clusterId: cluster,
      namespace: agentNs,
      hubUrl: h.url,
      token,
      hubPublicKeyPem: h.publicKeyPem,
    });
    await h.push({
      app: {
        cluster,
        namespace: appNs,
        manifests: namespaceManifest(appNs, {
          name: 'from-the-image',
          data: { built: 'by agent/Dockerfile' },
        }),
      },
    });
    const [file, ...args] = image.entrypoint;
    pod = AgentPod.start({
      kubeconfigPath: plane.kubeconfigPath,
      namespace: agentNs,
      secretData,
      // `node` of the image is the Node of this run (the same version, .node-version).
      command: [file === 'node' ? process.execPath : (file as string), ...args],
      cwd: image.workdir,
      env: {
        ...image.env,
        ...deploymentEnv(),
        // The Deployment's :8080 would clash with other programs on this machine.
        FLOTILLA_HTTP_ADDR: '127.0.0.1:0',
      },
    });
    const started = await pod.waitForLog('flotilla agent started');
    expect(started.kubernetes).toBe(`https://127.0.0.1:${new URL(plane.server).port}`);
    expect(started.leaderElection).toEqual({ leaseName: 'flotilla-agent-leader', identity: podName });
    const status = await eventually(
      async () => {
        const c = await h.clusterStatus(cluster);
        return c?.bundles.find((b) => b.name === 'app' && b.reportedState === 'Ready' && b.upToDate);
      },
      90_000,
      'the bundle Ready at the hub',
    ).catch((e: unknown) => {
      throw new Error(`${(e as Error).message}\n${pod?.log()}`);
    });
    expect(status.state).toBe('Ready');
    const cm = await kube.get<{ data: Record<string, string> }>(
      `/api/v1/namespaces/${appNs}/configmaps/from-the-image`,
    );
    expect(cm?.data).toEqual({ built: 'by agent/Dockerfile' });
    const ready = await fetch(`${started.http as string}/readyz`);
    expect(await ready.json()).toMatchObject({ ok: true, role: 'leader' });
    // Its compile cache came from the build: the agent did not strip TypeScript at start.
    expect(image.env.NODE_COMPILE_CACHE).toBe(join(image.workdir, '.compile-cache'));
    expect(pod.lines.filter((l) => l.level === 'error')).toEqual([]);
  }, 180_000);
});
