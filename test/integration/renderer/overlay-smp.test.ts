/**
 * Bundle overlays applied by kustomize's strategic merge through the render worker
 * (`applyOverlayWithEngine` with a real `RendererClient`), compared object for object
 * with the reference `kustomize build` CLI on an equivalent kustomization on disk
 * (`resources: [base.yaml]`, `patches: [{path: ...}]` in the overlay's file order).
 * The corpus is under test/fixtures/overlay-smp/<case>/{base.yaml,overlay/*.yaml}.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ensureReferenceTools, ensureRenderer } from '@flotilla/renderer/build.ts';
import { RendererClient } from '@flotilla/renderer/client.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { type FleetError, formatFleetError } from '../../../shared/src/errors.ts';
import type { RenderEngine } from '../../../shared/src/fleet/engine.ts';
import type { ManifestDoc } from '../../../shared/src/fleet/model.ts';
import { readManifests } from '../../../shared/src/fleet/objects.ts';
import { applyOverlayWithEngine } from '../../../shared/src/fleet/overlay-engine.ts';
import { getEntry, type YMap, type YNode, type YScalar } from '../../../shared/src/yaml-source.ts';

const run = promisify(execFile);
const corpus = new URL('../../fixtures/overlay-smp/', import.meta.url).pathname;
const bundle = 'shop';
const namespace = 'apps';

let client: RendererClient;
let kustomize: string;
const scratch = mkdtempSync(join(tmpdir(), 'flotilla-overlay-smp-'));

beforeAll(async () => {
  const log = (line: string) => process.stderr.write(`[overlay-smp test] ${line}\n`);
  client = new RendererClient({ binary: await ensureRenderer({ log }) });
  kustomize = (await ensureReferenceTools({ log })).kustomize;
}, 900_000);

afterAll(async () => {
  await client?.close();
  rmSync(scratch, { recursive: true, force: true });
});

/** A bundle's files as the fleet repo holds them: base objects and one overlay's patches. */
interface Case {
  readonly files: Map<string, string>;
  readonly basePaths: string[];
  readonly patchPaths: string[];
}

function bundleCase(base: string, patches: Record<string, string>): Case {
  const files = new Map<string, string>([[`bundles/${bundle}/base.yaml`, base]]);
  const patchPaths = Object.keys(patches)
    .sort()
    .map((name) => {
      const path = `bundles/${bundle}/overlays/prod/${name}`;
      files.set(path, patches[name] as string);
      return path;
    });
  return { files, basePaths: [`bundles/${bundle}/base.yaml`], patchPaths };
}

function corpusCase(name: string): Case {
  const dir = join(corpus, name);
  const patches: Record<string, string> = {};
  for (const f of readdirSync(join(dir, 'overlay')))
    patches[f] = readFileSync(join(dir, 'overlay', f), 'utf8');
  return bundleCase(readFileSync(join(dir, 'base.yaml'), 'utf8'), patches);
}

async function flotilla(c: Case, engine: RenderEngine = client) {
  const errors: FleetError[] = [];
  const base = readManifests(c.basePaths, c.files, bundle, errors, false);
  const patches = readManifests(c.patchPaths, c.files, bundle, errors, true);
  expect(errors.map(formatFleetError)).toEqual([]);
  const docs = await applyOverlayWithEngine(base, patches, namespace, bundle, engine, errors);
  return { docs, errors: errors.map(formatFleetError) };
}

/** `kustomize build` of the same base and patches: resources in order, patches in file order. */
async function reference(name: string): Promise<unknown[]> {
  const dir = join(scratch, name);
  cpSync(join(corpus, name), dir, { recursive: true });
  const patches = readdirSync(join(dir, 'overlay')).sort();
  writeFileSync(
    join(dir, 'kustomization.yaml'),
    [
      'resources: [base.yaml]',
      'sortOptions: { order: fifo }',
      'patches:',
      ...patches.map((p) => `  - path: overlay/${p}`),
      '',
    ].join('\n'),
  );
  const { stdout } = await run(kustomize, ['build', dir]);
  return parseAllDocuments(stdout).map((d) => d.toJS());
}

function toJs(node: YNode): unknown {
  if (node.kind === 'scalar') return node.value;
  if (node.kind === 'seq') return node.items.map(toJs);
  return Object.fromEntries(node.entries.map((e) => [e.key, toJs(e.value)]));
}

function at(node: YNode, ...path: (string | number)[]): YNode {
  let cur: YNode = node;
  for (const step of path) {
    if (typeof step === 'number') {
      if (cur.kind !== 'seq') throw new Error(`not a list at ${step}`);
      cur = cur.items[step] as YNode;
    } else {
      if (cur.kind !== 'map') throw new Error(`not a mapping at ${step}`);
      const e = getEntry(cur, step);
      if (!e) throw new Error(`no ${step}`);
      cur = e.value;
    }
  }
  return cur;
}

const cases = readdirSync(corpus).sort();

describe('bundle overlays with kustomize strategic merge', () => {
  it('covers the corpus', () => {
    expect(cases).toEqual([
      'containers',
      'custom-resource',
      'delete',
      'element-order',
      'mounts',
      'namespaced',
      'ports',
      'replace',
      'replace-lists',
      'variables',
    ]);
  });

  it.each(cases)('%s: equals kustomize build, object for object', async (name) => {
    const { docs, errors } = await flotilla(corpusCase(name));
    expect(errors).toEqual([]);
    const ours = (docs as ManifestDoc[]).map((d) => toJs(d.node));
    expect(ours).toEqual(await reference(name));
  });

  it('keeps merge-key semantics that a name-only merge gets wrong (checked by hand)', async () => {
    const mounts = (await flotilla(corpusCase('mounts'))).docs as ManifestDoc[];
    const pod = at(mounts[0]?.node as YMap, 'spec', 'template', 'spec');
    expect(toJs(at(pod, 'containers', 0, 'volumeMounts'))).toEqual(
      expect.arrayContaining([
        { name: 'data', mountPath: '/var/lib/db', subPath: 'db' },
        { name: 'data', mountPath: '/var/log/db', subPath: 'logs', readOnly: true },
        { name: 'data', mountPath: '/var/backup', subPath: 'backup' },
        { name: 'config', mountPath: '/etc/db' },
      ]),
    );
    expect(toJs(at(pod, 'containers', 0, 'volumeMounts'))).toHaveLength(4);

    const ports = (await flotilla(corpusCase('ports'))).docs as ManifestDoc[];
    expect(toJs(at(ports[0]?.node as YMap, 'spec', 'template', 'spec', 'containers', 0, 'ports'))).toEqual(
      expect.arrayContaining([
        { name: 'dns', containerPort: 53, protocol: 'UDP' },
        { name: 'dns-stream', containerPort: 53, protocol: 'TCP' },
        { name: 'metrics', containerPort: 9153 },
        { name: 'health', containerPort: 8080 },
      ]),
    );

    const probe = (await flotilla(corpusCase('custom-resource'))).docs as ManifestDoc[];
    expect(toJs(at(probe[0]?.node as YMap, 'spec'))).toEqual({
      interval: '30s',
      targets: [{ name: 'api', url: 'https://api.shop.example/livez' }],
      alerting: { channel: 'ops', severity: 'critical' },
    });

    const deleted = (await flotilla(corpusCase('delete'))).docs as ManifestDoc[];
    expect(deleted.map((d) => toJs(at(d.node, 'metadata', 'name')))).toEqual(['web', 'settings']);
  });

  it('keeps plain scalars plain and quoted ones quoted, for variables', async () => {
    const docs = (await flotilla(corpusCase('variables'))).docs as ManifestDoc[];
    const node = docs[0]?.node as YMap;
    const replicas = at(node, 'spec', 'replicas') as YScalar;
    expect([replicas.value, replicas.quoted]).toEqual(['${values.prodReplicas}', false]);
    const port = at(
      node,
      'spec',
      'template',
      'spec',
      'containers',
      0,
      'ports',
      0,
      'containerPort',
    ) as YScalar;
    expect([port.value, port.quoted]).toEqual(['${values.port}', false]);
    const region = at(node, 'metadata', 'labels', 'region') as YScalar;
    expect([region.value, region.quoted]).toEqual(['${cluster.labels.region}', true]);
    const env = at(node, 'spec', 'template', 'spec', 'containers', 0, 'env', 0, 'value') as YScalar;
    expect([env.value, env.quoted]).toEqual(['${cluster.name}', true]);
  });

  it('maps every value back to the file and line that wrote it', async () => {
    const docs = (await flotilla(corpusCase('variables'))).docs as ManifestDoc[];
    const doc = docs[0] as ManifestDoc;
    const base = `bundles/${bundle}/base.yaml`;
    const patch = `bundles/${bundle}/overlays/prod/vars.yaml`;
    expect([doc.file, doc.pos.line]).toEqual([base, 1]);
    const pos = (...path: (string | number)[]) => {
      const p = at(doc.node, ...path).pos;
      return `${p.file}:${p.line}`;
    };
    expect(pos('spec', 'replicas')).toBe(`${patch}:7`);
    expect(pos('spec', 'selector', 'matchLabels', 'app')).toBe(`${base}:10`);
    expect(pos('spec', 'template', 'spec', 'containers', 0, 'image')).toBe(`${base}:17`);
    expect(pos('spec', 'template', 'spec', 'containers', 0, 'ports', 0, 'containerPort')).toBe(`${base}:19`);
    expect(pos('spec', 'template', 'spec', 'containers', 0, 'env', 0, 'value')).toBe(`${patch}:14`);
  });

  it('maps values inside merged list items to the base or the patch', async () => {
    const docs = (await flotilla(corpusCase('containers'))).docs as ManifestDoc[];
    const containers = at(docs[0]?.node as YMap, 'spec', 'template', 'spec', 'containers');
    const named = (list: YNode, name: string): YMap => {
      const items = list.kind === 'seq' ? list.items : [];
      const found = items.find((i) => i.kind === 'map' && toJs(at(i, 'name')) === name);
      if (found?.kind !== 'map') throw new Error(`no item ${name}`);
      return found;
    };
    const line = (n: YNode) => `${n.pos.file}:${n.pos.line}`;
    const web = named(containers, 'web');
    const base = `bundles/${bundle}/base.yaml`;
    expect(line(at(named(at(web, 'env'), 'REGION'), 'value'))).toBe(`${base}:24`);
    expect(line(at(named(at(web, 'env'), 'LOG_LEVEL'), 'value'))).toBe(
      `bundles/${bundle}/overlays/prod/deployment.yaml:16`,
    );
    expect(line(at(named(containers, 'metrics'), 'env', 0, 'value'))).toBe(
      `bundles/${bundle}/overlays/prod/more.yaml:16`,
    );
    expect(line(at(named(containers, 'sidecar'), 'image'))).toBe(`${base}:29`);
  });

  it("keeps Flotilla's targeting: the version does not count, the bundle namespace is the default", async () => {
    const base = [
      'apiVersion: apps/v1',
      'kind: Deployment',
      'metadata: { name: web }',
      'spec: { replicas: 1 }',
      '---',
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata: { name: jobs, namespace: batch }',
      'data: { a: "1" }',
      '',
    ].join('\n');
    const { docs, errors } = await flotilla(
      bundleCase(base, {
        'a.yaml':
          'apiVersion: apps/v1beta2\nkind: Deployment\nmetadata: { name: web, namespace: apps }\nspec: { replicas: 3 }\n',
        'b.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: jobs }\ndata: { b: "2" }\n',
      }),
    );
    expect(errors).toEqual([]);
    expect((docs as ManifestDoc[]).map((d) => toJs(d.node))).toEqual([
      { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' }, spec: { replicas: 3 } },
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'jobs', namespace: 'batch' },
        data: { a: '1', b: '2' },
      },
    ]);
  });

  it('applies json-merge patches between strategic-merge ones, in file order', async () => {
    const base =
      'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web }\nspec:\n  template:\n    spec:\n      containers:\n        - { name: web, image: web:1 }\n        - { name: log, image: log:1 }\n';
    const { docs, errors } = await flotilla(
      bundleCase(base, {
        '1.yaml':
          'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web }\nspec: { template: { spec: { containers: [{ name: web, image: web:2 }] } } }\n',
        '2.yaml':
          'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web }\n$patch: json-merge\nspec: { template: { spec: { containers: [{ name: only, image: only:1 }] } } }\n',
        '3.yaml':
          'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web }\nspec: { template: { spec: { containers: [{ name: extra, image: extra:1 }] } } }\n',
      }),
    );
    expect(errors).toEqual([]);
    // The json-merge patch replaced the list; kustomize's merge then puts the new item first.
    expect(
      toJs(at((docs as ManifestDoc[])[0]?.node as YMap, 'spec', 'template', 'spec', 'containers')),
    ).toEqual([
      { name: 'extra', image: 'extra:1' },
      { name: 'only', image: 'only:1' },
    ]);
  });

  describe('errors', () => {
    const base = 'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web }\nspec: { replicas: 1 }\n';

    it('a patch that targets nothing names its file and line, and the target', async () => {
      const { docs, errors } = await flotilla(
        bundleCase(base, {
          'ok.yaml':
            'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web }\nspec: { replicas: 2 }\n',
          'typo.yaml':
            '# wrong name\napiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web }\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: wbe\n',
        }),
      );
      expect(docs).toBeUndefined();
      expect(errors).toEqual([
        `bundles/${bundle}/overlays/prod/typo.yaml:6: patch target Deployment.apps "wbe" not found in bundle "${bundle}"`,
      ]);
    });

    it('the worker itself refuses a patch that targets nothing, naming file and line', async () => {
      const result = await client.render({
        kind: 'patch',
        resources: base,
        namespace,
        patches: [
          {
            file: 'overlays/prod/p.yaml',
            content:
              'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web }\n---\n\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: other\n',
          },
        ],
      });
      expect(result).toEqual({
        ok: false,
        error: {
          message: 'patch target Service "other/web" not found',
          file: 'overlays/prod/p.yaml',
          line: 6,
        },
      });
      // kustomize build refuses it too.
      const dir = join(scratch, 'no-target');
      cpSync(join(corpus, 'containers'), dir, { recursive: true });
      writeFileSync(join(dir, 'p.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: { name: web }\n');
      writeFileSync(join(dir, 'kustomization.yaml'), 'resources: [base.yaml]\npatches: [{ path: p.yaml }]\n');
      await expect(run(kustomize, ['build', dir])).rejects.toThrow(
        /no resource matches strategic merge patch/,
      );
    });

    it('the worker names the line of an object it cannot read', async () => {
      const result = await client.render({
        kind: 'patch',
        resources: `${base}---\napiVersion: v1\nkind: ConfigMapList\nitems:\n  - { apiVersion: v1, kind: ConfigMap, metadata: { name: a } }\n  - { apiVersion: v1, kind: ConfigMap, metadata: { name: b } }\n`,
        patches: [],
      });
      expect(result.ok).toBe(false);
      if (result.ok) return;
      expect(result.error.file).toBeUndefined();
      expect(result.error.line).toBe(6);
      expect(result.error.message).toMatch(/^object 1 of the resources: expected 1 resource, found 2/);
    });

    it('what kustomize refuses to merge is reported at the patch', async () => {
      const withPod =
        `${base}  template:\n    spec:\n      containers: [{ name: web, image: web:1 }]\n`.replace(
          'spec: { replicas: 1 }\n',
          'spec:\n',
        );
      const { docs, errors } = await flotilla(
        bundleCase(withPod, {
          'bad.yaml':
            'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web }\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web }\nspec:\n  template:\n    spec:\n      containers: web\n',
        }),
      );
      expect(docs).toBeUndefined();
      expect(errors).toEqual([
        `bundles/${bundle}/overlays/prod/bad.yaml:5: patch of Deployment.apps "web": wrong node kind: expected SequenceNode but got ScalarNode`,
      ]);
    });
  });
});
