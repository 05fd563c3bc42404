/**
 * The renderer worker (renderer/, Helm v4 and kustomize linked into one Go process)
 * driven through its TypeScript client, and compared with the reference `helm` and
 * `kustomize` CLIs built from the same module versions (differential: the same
 * fixtures must give the same bytes). It needs none of the bed's services, only Go
 * to build the binaries once into the cache.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ensureReferenceTools, ensureRenderer } from '@flotilla/renderer/build.ts';
import {
  type EncodedFiles,
  RendererClient,
  RendererWorkerError,
  type RenderResult,
} from '@flotilla/renderer/client.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';

const run = promisify(execFile);
const fixtures = new URL('../../fixtures/renderer/', import.meta.url).pathname;
const chartDir = join(fixtures, 'chart');
const overrideFile = join(fixtures, 'values-override.yaml');
const override = parse(readFileSync(overrideFile, 'utf8')) as Record<string, unknown>;
const kustomizeDir = join(fixtures, 'kustomize');

/** Every file under `dir`, by slash-separated relative path, base64-encoded. */
function readTree(dir: string, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    const rel = prefix ? `${prefix}/${name}` : name;
    if (statSync(path).isDirectory()) Object.assign(out, readTree(path, rel));
    else out[rel] = readFileSync(path).toString('base64');
  }
  return out;
}

/** The objects of a multi-document YAML stream, empty documents dropped. */
function objects(yaml: string): Record<string, unknown>[] {
  return parseAllDocuments(yaml)
    .map((d) => d.toJS() as Record<string, unknown> | null)
    .filter((o): o is Record<string, unknown> => o !== null);
}

function manifests(result: RenderResult): string {
  if (!result.ok) throw new Error(`render failed: ${JSON.stringify(result.error)}`);
  return result.manifests;
}

/** Just what the assertions below read of a rendered object. */
interface KubeObject {
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly annotations?: Record<string, string> };
  readonly spec?: { readonly names?: { readonly kind: string } };
  readonly data?: Record<string, string>;
}

function find(objs: Record<string, unknown>[], kind: string, name?: string): KubeObject {
  const found = objs.find(
    (o) => o.kind === kind && (name === undefined || (o as unknown as KubeObject).metadata.name === name),
  );
  if (!found) throw new Error(`no ${kind} ${name ?? ''} among ${objs.map((o) => o.kind).join(', ')}`);
  return found as unknown as KubeObject;
}

let binary: string;
let reference: { readonly helm: string; readonly kustomize: string };
let client: RendererClient;
const helmHome = mkdtempSync(join(tmpdir(), 'flotilla-renderer-helm-'));
/** The reference CLIs get a private HOME so they read no user configuration. */
const cliEnv = {
  ...process.env,
  HELM_CACHE_HOME: join(helmHome, 'cache'),
  HELM_CONFIG_HOME: join(helmHome, 'config'),
  HELM_DATA_HOME: join(helmHome, 'data'),
};

beforeAll(async () => {
  const log = (line: string) => process.stderr.write(`[renderer test] ${line}\n`);
  const started = Date.now();
  binary = await ensureRenderer({ log });
  reference = await ensureReferenceTools({ log });
  log(`binaries ready after ${Date.now() - started} ms`);
  client = new RendererClient({ binary });
}, 900_000);

afterAll(async () => {
  await client?.close();
  rmSync(helmHome, { recursive: true, force: true });
});

const chartRequest = {
  kind: 'helm',
  files: readTree(chartDir),
  releaseName: 'demo',
  namespace: 'apps',
  values: override,
  kubeVersion: 'v1.31.0',
  apiVersions: ['monitoring.coreos.com/v1'],
} as const;

const prodRequest = { kind: 'kustomize', files: readTree(kustomizeDir), dir: 'overlays/prod' } as const;

describe('flotilla-renderer', () => {
  it('reports the library versions it links', async () => {
    const versions = await client.versions();
    expect(versions).toMatchObject({
      helm: 'v4.3.2',
      'kustomize/api': 'v0.21.2',
      'kustomize/kyaml': 'v0.21.2',
    });
  });

  describe('helm', () => {
    it('renders a chart exactly as helm template does', async () => {
      const ours = manifests(await client.render(chartRequest));
      const cli = await run(
        reference.helm,
        ['template', 'demo', chartDir, '--namespace', 'apps', '--include-crds', '-f', overrideFile].concat([
          '--kube-version',
          'v1.31.0',
          '--api-versions',
          'monitoring.coreos.com/v1',
        ]),
        { env: cliEnv },
      );
      expect(objects(ours)).toEqual(objects(cli.stdout));
      expect(ours).toBe(cli.stdout);

      // And the fixture exercises what it claims to, checked by hand.
      const objs = objects(ours);
      expect(objs.map((o) => `${o.kind}/${(o.metadata as { name: string }).name}`)).toEqual([
        'CustomResourceDefinition/widgets.example.flotilla.dev',
        'ConfigMap/demo-metrics', // from charts/metrics-0.3.0.tgz
        'ConfigMap/demo-web-config',
        'Service/demo-cache',
        'Deployment/demo-web',
        'ServiceMonitor/demo-web', // only with monitoring.coreos.com/v1 among the API versions
        'Job/demo-web-migrate',
      ]);
      const labels = {
        'app.kubernetes.io/name': 'web',
        'app.kubernetes.io/instance': 'demo',
        'helm.sh/chart': 'web-0.1.0',
        team: 'platform',
      };
      expect(find(objs, 'ConfigMap', 'demo-metrics').data).toEqual({
        interval: '10s',
        'global-team': 'platform',
      });
      expect(find(objs, 'ConfigMap', 'demo-web-config')).toEqual({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'demo-web-config', labels },
        // tpl over a value; .helmignore kept README.md out of .Files.
        data: { greeting: 'hello from demo in apps', 'readme-loaded': 'false' },
      });
      expect(find(objs, 'Deployment')).toEqual({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: {
          name: 'demo-web',
          labels,
          annotations: {
            'flotilla.test/secret-found': 'no', // lookup finds nothing, as in helm template
            'flotilla.test/kube-version': 'v1.31.0',
            'flotilla.test/install': 'true',
          },
        },
        spec: {
          replicas: 3,
          selector: { matchLabels: { 'app.kubernetes.io/instance': 'demo' } },
          template: {
            metadata: { labels: { 'app.kubernetes.io/instance': 'demo' } },
            spec: {
              containers: [
                { name: 'web', image: 'nginx:1.28', env: [{ name: 'CACHE_PORT', value: '6380' }] },
              ],
            },
          },
        },
      });
      expect(find(objs, 'Service').spec).toEqual({
        selector: { 'app.kubernetes.io/name': 'cache' },
        ports: [{ port: 6380, targetPort: 6380 }],
      });
      expect(find(objs, 'Job').metadata.annotations).toEqual({
        'helm.sh/hook': 'pre-install,pre-upgrade',
        'helm.sh/hook-weight': '-5',
      });
      expect(find(objs, 'CustomResourceDefinition').spec?.names?.kind).toBe('Widget');
    });

    it('leaves crds/ out with skipCRDs, marks an upgrade with isUpgrade, takes API versions', async () => {
      const objs = objects(
        manifests(await client.render({ ...chartRequest, apiVersions: [], skipCRDs: true, isUpgrade: true })),
      );
      expect(objs.map((o) => o.kind)).toEqual(['ConfigMap', 'ConfigMap', 'Service', 'Deployment', 'Job']);
      expect(find(objs, 'Deployment').metadata.annotations?.['flotilla.test/install']).toBe('false');
    });

    it('answers a values.schema.json violation with an error naming the field', async () => {
      const result = await client.render({ ...chartRequest, values: { replicaCount: 'three' } });
      expect(result.ok).toBe(false);
      if (result.ok) return;
      expect(result.error.message).toContain("- at '/replicaCount': got string, want integer");
      const cli = await run(
        reference.helm,
        ['template', 'demo', chartDir, '--set-string', 'replicaCount=three'],
        {
          env: cliEnv,
        },
      ).catch((err: { stderr: string }) => err);
      expect(cli.stderr).toBe(`Error: ${result.error.message}\n`);
    });

    it('answers a template error with the template file and line', async () => {
      const result = await client.render({
        kind: 'helm',
        files: readTree(join(fixtures, 'broken-chart')),
        releaseName: 'demo',
        namespace: 'apps',
      });
      expect(result).toEqual({
        ok: false,
        error: {
          message: 'execution error at (broken/templates/configmap.yaml:6:26): size is required',
          file: 'broken/templates/configmap.yaml',
          line: 6,
        },
      });
      const cli = await run(reference.helm, ['template', 'demo', join(fixtures, 'broken-chart')], {
        env: cliEnv,
      }).catch((err: { stderr: string }) => err);
      expect(cli.stderr.split('\n')[0]).toBe(
        'Error: execution error at (broken/templates/configmap.yaml:6:26): size is required',
      );
    });

    it('survives a panic in one request', async () => {
      // `panic` is the worker's one test hook: it panics inside the request handler.
      const pid = client.pid;
      const result = await client.render({ kind: 'panic' } as never);
      expect(result).toEqual({ ok: false, error: { message: 'renderer panic: panic requested' } });
      expect(client.pid).toBe(pid);
      expect((await client.render(chartRequest)).ok).toBe(true);
    });
  });

  describe('helm archive', () => {
    it('renders a packaged chart (helm package) exactly as helm template does with the .tgz', async () => {
      const out = join(helmHome, 'packaged');
      await run(reference.helm, ['package', chartDir, '-d', out], { env: cliEnv });
      const tgz = join(out, readdirSync(out)[0] as string);
      const { files: _files, ...options } = chartRequest;
      const ours = manifests(
        await client.render({ ...options, archive: readFileSync(tgz).toString('base64') }),
      );
      const cli = await run(
        reference.helm,
        ['template', 'demo', tgz, '--namespace', 'apps', '--include-crds', '-f', overrideFile].concat([
          '--kube-version',
          'v1.31.0',
          '--api-versions',
          'monitoring.coreos.com/v1',
        ]),
        { env: cliEnv },
      );
      expect(ours).toBe(cli.stdout);
      // The same chart as files renders the same, so the archive path loses nothing.
      expect(ours).toBe(manifests(await client.render(chartRequest)));
    });

    it('refuses an archive that is not a chart, and files with an archive', async () => {
      const notGzip = await client.render({
        kind: 'helm',
        archive: Buffer.from('not a tgz').toString('base64'),
        releaseName: 'x',
        namespace: 'y',
      });
      expect(notGzip.ok).toBe(false);
      expect(notGzip.ok ? '' : notGzip.error.message).toMatch(/^archive: /);
      const both = await client.render({
        kind: 'helm',
        archive: 'AA==',
        files: chartRequest.files,
        releaseName: 'x',
        namespace: 'y',
      } as never);
      expect(both).toEqual({
        ok: false,
        error: { message: 'a helm request takes either files or archive, not both' },
      });
    });
  });

  describe('resolve', () => {
    /** An index as `helm repo index` writes it, over `web` packaged at each version. */
    let index: string;
    const versions = ['0.9.0', '1.0.0', '1.1.0', '1.2.0-rc.1', '1.10.0', '2.0.0+build.1', '3.0.0-alpha.1'];

    beforeAll(async () => {
      const dir = join(helmHome, 'repo');
      for (const v of versions) {
        await run(reference.helm, ['package', chartDir, '--version', v, '-d', dir], { env: cliEnv });
      }
      await run(reference.helm, ['repo', 'index', dir], { env: cliEnv });
      index = readFileSync(join(dir, 'index.yaml'), 'utf8');
    });

    async function pick(version: string) {
      const result = await client.resolve({ index, chart: 'web', version });
      if (!result.ok) throw new Error(result.error.message);
      return result.chart;
    }

    it('picks from an index as helm pull --version does', async () => {
      // Helm's choices: exact wins, ranges take the newest match, empty is the newest stable.
      expect((await pick('1.0.0')).version).toBe('1.0.0');
      expect((await pick('^1.0.0')).version).toBe('1.10.0');
      expect((await pick('~1.1')).version).toBe('1.1.0');
      expect((await pick('')).version).toBe('2.0.0+build.1');
      expect((await pick('>=1.2.0-0 <1.3.0')).version).toBe('1.2.0-rc.1');
      const exact = await pick('1.10.0');
      expect(exact).toMatchObject({ name: 'web', version: '1.10.0', urls: ['web-1.10.0.tgz'] });
      expect(exact.digest).toMatch(/^[0-9a-f]{64}$/);
      // The digest is the one helm repo index recorded for that archive.
      const sha = createHash('sha256')
        .update(readFileSync(join(helmHome, 'repo', 'web-1.10.0.tgz')))
        .digest('hex');
      expect(exact.digest).toBe(sha);
    });

    it('says why no version is picked', async () => {
      expect(await client.resolve({ index, chart: 'web', version: '^4.0.0' })).toEqual({
        ok: false,
        error: {
          message:
            'no version of chart "web" matches the constraint "^4.0.0" (available: 3.0.0-alpha.1, 2.0.0+build.1, 1.10.0, 1.2.0-rc.1, 1.1.0, 1.0.0, 0.9.0)',
        },
      });
      expect(await client.resolve({ index, chart: 'db', version: '' })).toEqual({
        ok: false,
        error: { message: 'chart "db" is not in the repository index' },
      });
      const invalid = await client.resolve({ index, chart: 'web', version: 'one' });
      expect(invalid.ok ? '' : invalid.error.message).toMatch(/^invalid version constraint "one"/);
      const broken = await client.resolve({ index: 'entries: [', chart: 'web' });
      expect(broken.ok ? '' : broken.error.message).toMatch(/^invalid repository index: /);
    });

    it('picks an OCI tag as the registry client does', async () => {
      const tags = ['0.9.0', '1.0.0', '1.10.0', '1.2.0-rc.1', '2.0.0_build.1', 'latest', 'sha256-abc.sig'];
      const tag = async (version: string) => {
        const result = await client.resolve({ tags, version });
        if (!result.ok) throw new Error(result.error.message);
        return result.chart;
      };
      expect(await tag('')).toEqual({ version: '2.0.0+build.1', tag: '2.0.0_build.1' });
      expect(await tag('^1')).toEqual({ version: '1.10.0', tag: '1.10.0' });
      expect(await tag('~1.0')).toEqual({ version: '1.0.0', tag: '1.0.0' });
      // A version Helm parses as semver is pulled as that tag, without listing.
      expect(await tag('2.0.0+build.1')).toEqual({ version: '2.0.0+build.1', tag: '2.0.0_build.1' });
      expect(await tag('7.0.0')).toEqual({ version: '7.0.0', tag: '7.0.0' });
      expect(await client.resolve({ tags, version: '>=5' })).toEqual({
        ok: false,
        error: {
          message:
            'no version matches the constraint ">=5" (available: 2.0.0+build.1, 1.10.0, 1.2.0-rc.1, 1.0.0, 0.9.0)',
        },
      });
      expect(await client.resolve({ tags: ['latest'], version: '' })).toEqual({
        ok: false,
        error: { message: 'the repository has no tags that are chart versions' },
      });
    });
  });

  describe('kustomize', () => {
    it('builds an overlay exactly as kustomize build does', async () => {
      const ours = manifests(await client.render(prodRequest));
      const cli = await run(reference.kustomize, ['build', join(kustomizeDir, 'overlays/prod')]);
      expect(objects(ours)).toEqual(objects(cli.stdout));
      expect(ours).toBe(cli.stdout);

      const objs = objects(ours);
      const configMap = find(objs, 'ConfigMap');
      const configMapName = configMap.metadata.name;
      expect(configMapName).toMatch(/^prod-web-config-[a-z0-9]{10}$/);
      expect(configMap).toEqual({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: configMapName, labels: { env: 'prod' } },
        data: { LOG_LEVEL: 'info', MODE: 'prod' },
      });
      expect(find(objs, 'Service')).toEqual({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'prod-web', labels: { app: 'web', env: 'prod' } },
        spec: { ports: [{ port: 80, targetPort: 8080 }], selector: { app: 'web' } },
      });
      expect(find(objs, 'Deployment')).toEqual({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: {
          name: 'prod-web',
          labels: { app: 'web', env: 'prod' },
          annotations: { 'flotilla.test/patched': 'json6902' }, // JSON 6902 patch
        },
        spec: {
          replicas: 3, // JSON 6902 patch
          selector: { matchLabels: { app: 'web' } },
          template: {
            metadata: { labels: { app: 'web' } },
            spec: {
              containers: [
                {
                  name: 'web',
                  image: 'nginx:1.28', // images: newTag
                  envFrom: [{ configMapRef: { name: configMapName } }], // generator name with hash
                  resources: { limits: { memory: '256Mi' } }, // strategic-merge patch
                },
                {
                  name: 'sidecar',
                  image: 'registry.example.com/busybox:1.36', // images: newName
                  args: ['sleep', 'infinity'],
                },
              ],
            },
          },
        },
      });
    });

    it('cannot reach a directory above the files it was given', async () => {
      const escapeDir = join(kustomizeDir, 'overlays/escape');
      // On disk, the CLI follows ../../../outside and reads it …
      const cli = await run(reference.kustomize, ['build', escapeDir]);
      expect(cli.stdout).toContain('not-for-the-bundle');
      // … the worker only has the files of the request.
      const result = await client.render({ ...prodRequest, dir: 'overlays/escape' });
      expect(result.ok).toBe(false);
      if (result.ok) return;
      expect(result.error.message).toContain('outside');
      expect(result.error.message).not.toContain('not-for-the-bundle');
    });

    it('refuses a file outside the kustomization root, as the CLI does', async () => {
      const result = await client.render({ ...prodRequest, dir: 'overlays/file-escape' });
      expect(result.ok).toBe(false);
      if (result.ok) return;
      expect(result.error.message).toContain(
        "security; file 'base/service.yaml' is not in or below 'overlays/file-escape'",
      );
      await expect(
        run(reference.kustomize, ['build', join(kustomizeDir, 'overlays/file-escape')]),
      ).rejects.toThrow(/security; file '.*\/base\/service\.yaml' is not in or below/);
    });
  });

  describe('client', () => {
    it('answers 50 concurrent requests through one worker', async () => {
      const helmExpected = manifests(await client.render(chartRequest));
      const kustomizeExpected = manifests(await client.render(prodRequest));
      const starts = client.starts;
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          i % 2 === 0 ? client.render({ ...chartRequest, releaseName: 'demo' }) : client.render(prodRequest),
        ),
      );
      results.forEach((r, i) => {
        expect(manifests(r)).toBe(i % 2 === 0 ? helmExpected : kustomizeExpected);
      });
      expect(client.starts).toBe(starts);
    });

    it('fails the requests in flight when the worker is killed mid-batch, then restarts it', async () => {
      // Default maxInFlight (2): the slow render and the one behind it are in the worker.
      const own = new RendererClient({ binary });
      try {
        const slow: EncodedFiles = readTree(join(fixtures, 'slow-chart'));
        const request = (iterations: number) =>
          own.render({
            kind: 'helm',
            files: slow,
            releaseName: 'slow',
            namespace: 'apps',
            values: { iterations },
          });
        // Warm up so the worker is running, then send 50 requests: first a render that
        // takes seconds, then 49 quick ones, most of them still queued in the client.
        expect(manifests(await request(10))).toContain('sum: "45"');
        const firstPid = own.pid;
        const batch = [request(5_000_000), ...Array.from({ length: 49 }, () => request(100))].map((p) =>
          p.then(
            (result) => ({ result }),
            (error: unknown) => ({ error }),
          ),
        );
        await new Promise((resolve) => setTimeout(resolve, 200));
        process.kill(firstPid as number, 'SIGKILL');
        const outcomes = await Promise.all(batch);

        // The two requests the worker had fail, saying why …
        const failed = outcomes.flatMap((o) => ('error' in o ? [o.error] : []));
        expect(failed).toHaveLength(2);
        expect('error' in (outcomes[0] as object)).toBe(true);
        for (const error of failed) {
          expect(error).toBeInstanceOf(RendererWorkerError);
          expect((error as Error).message).toMatch(
            new RegExp(`^request \\d+ not rendered: renderer worker \\(pid ${firstPid}\\) killed by SIGKILL`),
          );
        }
        // … the 48 still queued never reached it: a new worker renders them.
        const rendered = outcomes.flatMap((o) => ('result' in o ? [o.result] : []));
        expect(rendered).toHaveLength(48);
        for (const r of rendered) expect(manifests(r)).toContain('sum: "4950"');
        expect(own.starts).toBe(2);
        expect(own.pid).not.toBe(firstPid);
        expect(manifests(await request(10))).toContain('sum: "45"');
      } finally {
        await own.close();
      }
    });
  });
});
