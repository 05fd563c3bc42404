/**
 * Helm and Kustomize bundles of a fleet repo, rendered through `Fleet.prepare` by the real
 * render worker, and compared object for object with the reference `helm template` and
 * `kustomize build` CLIs on the same inputs. Also: renders shared between clusters,
 * per-cluster values, Kubernetes versions, and how bad input is reported.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ensureReferenceTools, ensureRenderer } from '@flotilla/renderer/build.ts';
import { RendererClient } from '@flotilla/renderer/client.ts';
import {
  type ClusterPlan,
  type EngineRequest,
  type EngineResult,
  type KubeObject,
  loadFleet,
  type RenderEngine,
  type RepoFile,
  renderFleet,
} from '@flotilla/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { readRepoDir } from '../../unit/shared/helpers.ts';

const run = promisify(execFile);
const repoRoot = new URL('../../../', import.meta.url).pathname;
const exampleDir = join(repoRoot, 'examples/fleet-repo');
const files = readRepoDir('examples/fleet-repo');

/** Counts the renders that reach the worker. */
class CountingEngine implements RenderEngine {
  readonly requests: EngineRequest[] = [];
  readonly #inner: RendererClient;
  constructor(inner: RendererClient) {
    this.#inner = inner;
  }
  render(request: EngineRequest): Promise<EngineResult> {
    this.requests.push(request);
    return this.#inner.render(request as Parameters<RendererClient['render']>[0]);
  }
}

let client: RendererClient;
let reference: { readonly helm: string; readonly kustomize: string };
const scratch = mkdtempSync(join(tmpdir(), 'flotilla-example-fleet-'));
const cliEnv = {
  ...process.env,
  HELM_CACHE_HOME: join(scratch, 'helm-cache'),
  HELM_CONFIG_HOME: join(scratch, 'helm-config'),
  HELM_DATA_HOME: join(scratch, 'helm-data'),
};

beforeAll(async () => {
  const log = (line: string) => process.stderr.write(`[example-fleet test] ${line}\n`);
  client = new RendererClient({ binary: await ensureRenderer({ log }) });
  reference = await ensureReferenceTools({ log });
}, 900_000);

afterAll(async () => {
  await client?.close();
  rmSync(scratch, { recursive: true, force: true });
});

function objectsOf(plan: ClusterPlan, bundle: string): KubeObject[] {
  const b = plan.bundles.find((x) => x.ref.name === bundle);
  if (!b) throw new Error(`${plan.cluster} has no bundle ${bundle}: ${JSON.stringify(plan.errors)}`);
  return (JSON.parse(b.rendered.canonical) as { objects: KubeObject[] }).objects;
}

/** The CLI's output as Flotilla stores it: namespaced objects in the bundle's namespace, sorted by identity. */
function asStored(yaml: string, namespace: string): KubeObject[] {
  const clusterScoped = new Set([
    'Namespace',
    'ClusterRole',
    'ClusterRoleBinding',
    'CustomResourceDefinition',
  ]);
  return parseAllDocuments(yaml)
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => o !== null)
    .map((o) =>
      clusterScoped.has(o.kind) || o.metadata.namespace
        ? o
        : { ...o, metadata: { ...o.metadata, namespace } },
    );
}

const byId = (objs: readonly KubeObject[]) =>
  [...objs].sort((a, b) => (`${a.kind}/${a.metadata.name}` < `${b.kind}/${b.metadata.name}` ? -1 : 1));

const clusters = [
  { name: 'prod-eu-1', labels: { env: 'prod', region: 'eu' }, kubeVersion: 'v1.33.2' },
  { name: 'prod-us-1', labels: { env: 'prod', region: 'us' }, kubeVersion: 'v1.33.2' },
  { name: 'staging-eu-1', labels: { env: 'staging', region: 'eu' }, kubeVersion: 'v1.32.0' },
];

describe('examples/fleet-repo with the render engines', () => {
  it('renders every bundle cleanly, the Helm and Kustomize ones too', async () => {
    const { clusters: plans, errors } = await renderFleet(files, clusters, { engine: client });
    expect(errors).toEqual([]);
    for (const plan of plans) {
      expect(plan.status).toBe('ok');
      expect(plan.bundles.map((b) => b.ref.name)).toContain('ingress');
      expect(plan.bundles.map((b) => b.ref.name)).toContain('shop');
    }
  });

  it('renders the ingress chart as helm template does, with each cluster values and Kubernetes version', async () => {
    const { clusters: plans } = await renderFleet(files, clusters, { engine: client });
    for (const plan of plans) {
      const c = clusters.find((x) => x.name === plan.cluster) as (typeof clusters)[number];
      const values = {
        replicaCount: c.labels.env === 'prod' ? 4 : 2,
        region: c.labels.region,
        upstream: 'storefront.web.svc.cluster.local',
      };
      const valuesFile = join(scratch, `values-${c.name}.json`);
      writeFileSync(valuesFile, JSON.stringify(values));
      const { stdout } = await run(
        reference.helm,
        [
          'template',
          'ingress',
          join(exampleDir, 'bundles/ingress/chart'),
          '--namespace',
          'ingress',
          '--include-crds',
          '--kube-version',
          c.kubeVersion,
          '-f',
          valuesFile,
        ],
        { env: cliEnv },
      );
      expect(byId(objectsOf(plan, 'ingress'))).toEqual(byId(asStored(stdout, 'ingress')));
    }
    const prodEu = objectsOf(plans[0] as ClusterPlan, 'ingress');
    const deployment = prodEu.find((o) => o.kind === 'Deployment') as KubeObject & {
      spec: { replicas: number };
    };
    expect(deployment.spec.replicas).toBe(4);
    const config = prodEu.find((o) => o.kind === 'ConfigMap') as KubeObject & {
      data: Record<string, string>;
    };
    expect(config.data.region).toBe('eu');
  });

  it('builds the shop kustomization per environment as kustomize build does', async () => {
    const { clusters: plans } = await renderFleet(files, clusters, { engine: client });
    for (const plan of plans) {
      const env = plan.labels.env as string;
      const { stdout } = await run(reference.kustomize, [
        'build',
        join(exampleDir, `bundles/shop/overlays/${env}`),
      ]);
      const objects = objectsOf(plan, 'shop');
      expect(byId(objects)).toEqual(byId(asStored(stdout, 'shop')));
      // Two mounts of one volume stay two.
      const deployment = objects.find((o) => o.kind === 'Deployment') as unknown as {
        spec: { template: { spec: { containers: { volumeMounts: unknown[] }[] } } };
      };
      expect(deployment.spec.template.spec.containers[0]?.volumeMounts).toHaveLength(2);
    }
  });

  it('renders once per distinct variant, values and Kubernetes version, however many clusters share it', async () => {
    const many = Array.from({ length: 60 }, (_, i) => ({
      name: `edge-${i}`,
      labels: { env: i % 2 === 0 ? 'prod' : 'staging', region: ['eu', 'us', 'ap'][i % 3] as string },
      kubeVersion: 'v1.33.2',
    }));
    const engine = new CountingEngine(client);
    const { errors, clusters: plans } = await renderFleet(files, many, { engine });
    expect(errors).toEqual([]);
    const helm = engine.requests.filter((r) => r.kind === 'helm').length;
    const kustomize = engine.requests.filter((r) => r.kind === 'kustomize').length;
    // ingress: env (2) x region (3); shop: one per environment.
    expect({ helm, kustomize }).toEqual({ helm: 6, kustomize: 2 });
    const hashes = new Set(plans.map((p) => p.bundles.find((b) => b.ref.name === 'ingress')?.ref.hash));
    expect(hashes.size).toBe(6);
  });

  it('a values change reaches only the clusters it targets', async () => {
    const before = await renderFleet(files, clusters, { engine: client });
    const changed = files.map((f) =>
      f.path === 'bundles/ingress/bundle.yaml'
        ? { ...f, content: f.content.replace('replicaCount: 4', 'replicaCount: 5') }
        : f,
    );
    const after = await renderFleet(changed, clusters, { engine: client });
    const hash = (plan: { clusters: readonly ClusterPlan[] }, cluster: string) =>
      plan.clusters.find((c) => c.cluster === cluster)?.bundles.find((b) => b.ref.name === 'ingress')?.ref
        .hash;
    expect(hash(after, 'prod-eu-1')).not.toBe(hash(before, 'prod-eu-1'));
    expect(hash(after, 'prod-us-1')).not.toBe(hash(before, 'prod-us-1'));
    expect(hash(after, 'staging-eu-1')).toBe(hash(before, 'staging-eu-1'));
  });
});

describe('the minimal forms, as the fleet-repo docs write them', () => {
  it('a chart in the bundle and a kustomization with an overlay for prod render as written', async () => {
    const ingress = `targets: [{clusterSelector: {}}]
helm:
  chart: chart
  values: {replicaCount: 2}
customizations:
  - clusterSelector: env=prod
    helm: {values: {replicaCount: 4}}
`;
    const shop = `targets: [{clusterSelector: {}}]
kustomize: {dir: base}
customizations:
  - clusterSelector: env=prod
    kustomize: {dir: overlays/prod}
`;
    const repo = files
      .filter((f) => f.path.startsWith('bundles/ingress/chart/') || f.path.startsWith('bundles/shop/'))
      .filter((f) => f.path !== 'bundles/shop/bundle.yaml')
      .concat([
        { path: 'bundles/ingress/bundle.yaml', content: ingress },
        { path: 'bundles/shop/bundle.yaml', content: shop },
      ]);
    const { errors, clusters: plans } = await renderFleet(repo, clusters, { engine: client });
    expect(errors).toEqual([]);
    const replicas = (plan: ClusterPlan, bundle: string) =>
      (
        objectsOf(plan, bundle).find((o) => o.kind === 'Deployment') as unknown as {
          spec: { replicas: number };
        }
      ).spec.replicas;
    expect(plans.map((p) => [p.cluster, replicas(p, 'ingress'), replicas(p, 'shop')])).toEqual([
      ['prod-eu-1', 4, 3],
      ['prod-us-1', 4, 3],
      ['staging-eu-1', 2, 1],
    ]);
    // No namespace in bundle.yaml: the objects land in "default", as for plain bundles.
    expect(objectsOf(plans[0] as ClusterPlan, 'shop').every((o) => o.metadata.namespace === 'default')).toBe(
      true,
    );
  });
});

describe('bad input in Helm and Kustomize bundles', () => {
  const withFiles = (extra: Record<string, string | undefined>): RepoFile[] => {
    const out = new Map(files.map((f) => [f.path, f.content]));
    for (const [path, content] of Object.entries(extra)) {
      if (content === undefined) out.delete(path);
      else out.set(path, content);
    }
    return [...out].map(([path, content]) => ({ path, content }));
  };
  const plan = async (repo: RepoFile[], cluster = clusters[0] as (typeof clusters)[number]) => {
    const { clusters: plans, errors } = await renderFleet(repo, [cluster], { engine: client });
    return { plan: plans[0] as ClusterPlan, errors: errors.map((e) => `${e.file}:${e.line}: ${e.message}`) };
  };

  it('a template error names the template file and line in the repo; the other bundles still plan', async () => {
    const { plan: p, errors } = await plan(
      withFiles({
        'bundles/ingress/chart/templates/service.yaml':
          'apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  ports: {{ .Values.nope.port }}\n',
      }),
    );
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^bundles\/ingress\/chart\/templates\/service\.yaml:6: helm template/);
    expect(errors[0]).toContain('nil pointer');
    expect(p.held.map((h) => h.bundle)).toEqual(['ingress']);
    expect(p.bundles.map((b) => b.ref.name)).toContain('shop');
  });

  it('a value the chart schema refuses is reported against the bundle', async () => {
    const { errors } = await plan(
      withFiles({
        'bundles/ingress/bundle.yaml': (
          files.find((f) => f.path === 'bundles/ingress/bundle.yaml') as RepoFile
        ).content.replace('replicaCount: 4', 'replicaCount: 40'),
      }),
    );
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(
      /^bundles\/ingress\/bundle\.yaml:\d+: helm template of bundles\/ingress\/chart: /,
    );
    expect(errors[0]).toContain("at '/replicaCount': maximum: got 40, want 20");
  });

  it('values files take variables too, and a broken one is reported at its line', async () => {
    const bundleFile = (files.find((f) => f.path === 'bundles/ingress/bundle.yaml') as RepoFile).content;
    const withValuesFile = bundleFile.replace(
      'helm:\n  chart: chart\n',
      'helm:\n  chart: chart\n  valuesFiles: [values/site.yaml]\n',
    );
    expect(withValuesFile).not.toBe(bundleFile);
    const good = await plan(
      withFiles({
        'bundles/ingress/bundle.yaml': withValuesFile,
        'bundles/ingress/values/site.yaml': 'upstream: shop-${cluster.labels.region}.internal\n',
      }),
    );
    expect(good.errors).toEqual([]);
    const config = objectsOf(good.plan, 'ingress').find((o) => o.kind === 'ConfigMap') as KubeObject & {
      data: Record<string, string>;
    };
    // bundle.yaml's values come after the file's: its upstream wins; the file's would be shop-eu.internal.
    expect(config.data['default.conf']).toContain('proxy_pass http://storefront.web.svc.cluster.local:80;');
    const fileOnly = await plan(
      withFiles({
        'bundles/ingress/bundle.yaml': withValuesFile.replace(
          '    upstream: storefront.web.svc.cluster.local\n',
          '',
        ),
        'bundles/ingress/values/site.yaml': 'upstream: shop-${cluster.labels.region}.internal\n',
      }),
    );
    const fromFile = objectsOf(fileOnly.plan, 'ingress').find((o) => o.kind === 'ConfigMap') as KubeObject & {
      data: Record<string, string>;
    };
    expect(fromFile.data['default.conf']).toContain('proxy_pass http://shop-eu.internal:80;');
    const broken = await plan(
      withFiles({
        'bundles/ingress/bundle.yaml': withValuesFile,
        'bundles/ingress/values/site.yaml': 'upstream: [unclosed\n',
      }),
    );
    expect(broken.errors).toHaveLength(1);
    expect(broken.errors[0]).toMatch(/^bundles\/ingress\/values\/site\.yaml:\d+: /);
    const missing = await plan(withFiles({ 'bundles/ingress/bundle.yaml': withValuesFile }));
    expect(missing.errors).toEqual([
      'bundles/ingress/bundle.yaml:7: helm.valuesFiles[0]: no file bundles/ingress/values/site.yaml in the fleet repo',
    ]);
  });

  it('a chart path without a chart is reported at bundle.yaml', async () => {
    const bundleFile = (files.find((f) => f.path === 'bundles/ingress/bundle.yaml') as RepoFile).content;
    const { errors } = await plan(
      withFiles({
        'bundles/ingress/bundle.yaml': bundleFile.replace('  chart: chart\n', '  chart: charts/nope\n'),
      }),
    );
    expect(errors).toEqual([
      'bundles/ingress/bundle.yaml:6: helm.chart: no chart at bundles/ingress/charts/nope (bundles/ingress/charts/nope/Chart.yaml is missing)',
    ]);
  });

  it('a kustomization that reaches outside the fleet repo is refused', async () => {
    const { errors } = await plan(
      withFiles({
        'bundles/shop/overlays/prod/kustomization.yaml': 'resources:\n  - ../../../../../../etc\n',
      }),
    );
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(
      /^bundles\/shop\/bundle\.yaml:\d+: kustomize build bundles\/shop\/overlays\/prod: /,
    );
  });

  it('a cluster without a label its Helm values use holds the bundle for that cluster only', async () => {
    const { plan: p, errors } = await plan(files, {
      name: 'lab-9',
      labels: { env: 'prod' },
      kubeVersion: 'v1.33.2',
    } as never);
    // (The plain bundles that use the label are held too, each with its own error.)
    expect(errors.filter((e) => e.startsWith('bundles/ingress/'))).toEqual([
      'bundles/ingress/bundle.yaml:9: undefined variable ${cluster.labels.region}: cluster "lab-9" has no label "region"',
    ]);
    expect(p.held.map((h) => h.bundle)).toContain('ingress');
  });

  it('a chart whose kubeVersion the cluster does not meet is broken for that cluster', async () => {
    const { errors } = await plan(files, {
      ...(clusters[0] as (typeof clusters)[number]),
      kubeVersion: 'v1.25.0',
    });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain('kubeVersion');
  });

  it('without the render engine, the Helm and Kustomize bundles and overlays are broken and say why', async () => {
    const { clusters: plans, errors } = await renderFleet(files, clusters.slice(0, 1), {});
    expect(errors.map((e) => e.message)).toEqual([
      'dependsOn[1]: bundle "web" has errors for cluster "prod-eu-1"',
      'bundle "ingress" needs the render engine (Helm and Kustomize bundles), which this hub runs without',
      'bundle "shop" needs the render engine (Helm and Kustomize bundles), which this hub runs without',
      'bundle "web" applies overlays, which need the render engine (kustomize\'s strategic merge), and this hub runs without it',
    ]);
    expect(plans[0]?.bundles.map((b) => b.ref.name)).toContain('baseline');
  });

  it('planning without prepare holds the engine bundles rather than shipping nothing', () => {
    const p = loadFleet(files).planCluster(clusters[0] as (typeof clusters)[number]);
    // web applies an overlay for this cluster, and backups depends on web.
    expect(p.held.map((h) => h.bundle).sort()).toEqual(['backups', 'ingress', 'shop', 'web']);
  });
});

describe('helm and kustomize together', () => {
  it("gives the chart's output to the kustomization as manifests.yaml, as kustomize build would see it", async () => {
    const repo = [
      ...files.filter((f) => !f.path.startsWith('bundles/ingress/bundle.yaml')),
      {
        path: 'bundles/ingress/bundle.yaml',
        content: [
          'namespace: ingress',
          'targets: [{clusterSelector: {}}]',
          'helm: {chart: chart, values: {region: eu}}',
          'kustomize: {dir: post}',
          '',
        ].join('\n'),
      },
      {
        path: 'bundles/ingress/post/kustomization.yaml',
        content: [
          'resources: [manifests.yaml]',
          'commonAnnotations: {team.example.com/owner: edge}',
          'patches:',
          '  - target: {kind: Deployment}',
          '    patch: |-',
          '      - op: replace',
          '        path: /spec/replicas',
          '        value: 7',
          '',
        ].join('\n'),
      },
    ];
    const { clusters: plans, errors } = await renderFleet(repo, clusters.slice(0, 1), { engine: client });
    expect(errors).toEqual([]);
    // The reference: helm template into manifests.yaml, then kustomize build of the same directory.
    const dir = join(scratch, 'post');
    cpSync(join(exampleDir, 'bundles/ingress'), join(scratch, 'ingress'), { recursive: true });
    const valuesFile = join(scratch, 'post-values.json');
    writeFileSync(valuesFile, JSON.stringify({ region: 'eu' }));
    const helm = await run(
      reference.helm,
      [
        'template',
        'ingress',
        join(scratch, 'ingress/chart'),
        '--namespace',
        'ingress',
        '--include-crds',
        '--kube-version',
        'v1.33.2',
        '-f',
        valuesFile,
      ],
      { env: cliEnv },
    );
    cpSync(join(scratch, 'ingress'), dir, { recursive: true });
    writeFileSync(join(dir, 'kustomization.yaml'), (repo.at(-1) as RepoFile).content);
    writeFileSync(join(dir, 'manifests.yaml'), helm.stdout);
    const kust = await run(reference.kustomize, ['build', dir]);
    const objects = objectsOf(plans[0] as ClusterPlan, 'ingress');
    expect(byId(objects)).toEqual(byId(asStored(kust.stdout, 'ingress')));
    expect(
      (objects.find((o) => o.kind === 'Deployment') as unknown as { spec: { replicas: number } }).spec
        .replicas,
    ).toBe(7);
  });
});
