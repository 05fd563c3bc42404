/**
 * What `applyOverlayWithEngine` asks of the render engine and how it reads the answers,
 * against a hand-written fake engine. What the real engine does with the patches is
 * tested against `kustomize build` in test/integration/renderer/overlay-smp.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { FleetError } from '../../../shared/src/errors.ts';
import type {
  EngineRequest,
  EngineResult,
  PatchEngineRequest,
  RenderEngine,
} from '../../../shared/src/fleet/engine.ts';
import { readManifests } from '../../../shared/src/fleet/objects.ts';
import { applyOverlayWithEngine } from '../../../shared/src/fleet/overlay-engine.ts';
import { parseYamlFile, type YNode } from '../../../shared/src/yaml-source.ts';
import { formatted } from './helpers.ts';

/** Answers every patch request with the resources unchanged, or with a canned answer. */
class FakeEngine implements RenderEngine {
  readonly requests: PatchEngineRequest[] = [];
  readonly answer: EngineResult | undefined;
  constructor(answer?: EngineResult) {
    this.answer = answer;
  }
  async render(any: EngineRequest): Promise<EngineResult> {
    if (any.kind !== 'patch') throw new Error(`unexpected ${any.kind} request`);
    const request = any;
    this.requests.push(request);
    if (this.answer) return this.answer;
    const count = parseYamlFile('x', request.resources).documents.length;
    return { ok: true, manifests: request.resources, sources: [...Array(count).keys()] };
  }
}

const BASE = 'bundles/web/base.yaml';
const base = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  mode: "dev"
`;

async function apply(patchFiles: Record<string, string>, engine: RenderEngine) {
  const files = new Map([[BASE, base], ...Object.entries(patchFiles)]);
  const errors: FleetError[] = [];
  const docs = await applyOverlayWithEngine(
    readManifests([BASE], files, 'web', errors, false),
    readManifests(Object.keys(patchFiles).sort(), files, 'web', errors, true),
    'apps',
    'web',
    engine,
    errors,
  );
  return { docs, errors: formatted(errors) };
}

const toJs = (n: YNode): unknown =>
  n.kind === 'scalar'
    ? n.value
    : n.kind === 'seq'
      ? n.items.map(toJs)
      : Object.fromEntries(n.entries.map((e) => [e.key, toJs(e.value)]));

describe('applyOverlayWithEngine', () => {
  it('sends runs of strategic-merge patches, file by file, with scalar styles kept', async () => {
    const engine = new FakeEngine();
    const { docs, errors } = await apply(
      {
        'bundles/web/overlays/prod/a.yaml':
          'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web }\nspec:\n  replicas: ${values.n}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: { name: settings }\ndata: { mode: "${cluster.name}" }\n',
        'bundles/web/overlays/prod/b.yaml':
          'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: settings }\n$patch: json-merge\ndata: { extra: "1" }\n',
        'bundles/web/overlays/prod/c.yaml':
          'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: settings }\n$patch: delete\n',
      },
      engine,
    );
    expect(errors).toEqual([]);
    // a.yaml, then b.yaml applied here, then c.yaml: two requests.
    expect(engine.requests.map((r) => r.patches.map((p) => p.file))).toEqual([
      ['bundles/web/overlays/prod/a.yaml'],
      ['bundles/web/overlays/prod/c.yaml'],
    ]);
    const first = engine.requests[0] as PatchEngineRequest;
    expect(first.namespace).toBe('apps');
    expect(first.patches[0]?.content).toContain('replicas: ${values.n}\n');
    expect(first.patches[0]?.content).toContain('mode: "${cluster.name}"\n');
    expect(first.resources).toContain('mode: "dev"\n');
    // The json-merge patch reached the second request's resources; the fake applies nothing itself.
    expect(engine.requests[1]?.resources).toContain('extra: "1"');
    expect(docs?.map((d) => [d.file, d.pos.line, toJs(d.node)])).toEqual([
      [
        BASE,
        1,
        { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' }, spec: { replicas: 1 } },
      ],
      [
        BASE,
        8,
        {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: 'settings' },
          data: { mode: 'dev', extra: '1' },
        },
      ],
    ]);
  });

  it("points an engine error at the patch document on the engine's line", async () => {
    const engine = new FakeEngine({
      ok: false,
      error: {
        message: 'patch of Deployment.apps "web": boom',
        file: 'bundles/web/overlays/prod/a.yaml',
        line: 6,
      },
    });
    const { docs, errors } = await apply(
      {
        'bundles/web/overlays/prod/a.yaml':
          '# first\n\napiVersion: v1\nkind: ConfigMap\nmetadata: { name: settings }\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web }\n',
      },
      engine,
    );
    expect(docs).toBeUndefined();
    // The engine saw the documents re-written, the second starting on its line 6; the error names the source's line 7.
    expect(engine.requests[0]?.patches[0]?.content.split('\n')[5]).toBe('apiVersion: apps/v1');
    expect(errors).toEqual(['bundles/web/overlays/prod/a.yaml:7: patch of Deployment.apps "web": boom']);
  });

  it('points an engine error without a file at the object on that line of the resources', async () => {
    const engine = new FakeEngine({
      ok: false,
      error: { message: 'object 1 of the resources: bad', line: 7 },
    });
    const patch = 'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web }\nspec: { replicas: 2 }\n';
    const { errors } = await apply({ 'bundles/web/overlays/prod/a.yaml': patch }, engine);
    // The resources as sent: the Deployment on lines 1-6, `---` on 7, the ConfigMap from line 8.
    expect(engine.requests[0]?.resources.split('\n')[6]).toBe('---');
    expect(errors).toEqual(['bundles/web/base.yaml:1: object 1 of the resources: bad']);
    const later = new FakeEngine({
      ok: false,
      error: { message: 'object 1 of the resources: bad', line: 8 },
    });
    expect((await apply({ 'bundles/web/overlays/prod/a.yaml': patch }, later)).errors).toEqual([
      'bundles/web/base.yaml:8: object 1 of the resources: bad',
    ]);
  });

  it('reports targets it cannot find without asking the engine', async () => {
    const engine = new FakeEngine();
    const { docs, errors } = await apply(
      {
        'bundles/web/overlays/prod/a.yaml':
          'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: settings }\n$patch: delete\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: { name: settings }\ndata: { a: "1" }\n---\napiVersion: v1\nkind: Secret\nmetadata: { name: web, namespace: other }\n',
      },
      engine,
    );
    expect(docs).toBeUndefined();
    expect(engine.requests).toEqual([]);
    expect(errors).toEqual([
      'bundles/web/overlays/prod/a.yaml:6: patch target ConfigMap "settings" not found in bundle "web"',
      'bundles/web/overlays/prod/a.yaml:11: patch target Secret "other/web" not found in bundle "web"',
    ]);
  });

  it('refuses an engine answer that does not account for its objects', async () => {
    const engine = new FakeEngine({ ok: true, manifests: 'a: 1\n---\nb: 2\n', sources: [0] });
    const patch = 'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web }\nspec: { replicas: 2 }\n';
    await expect(apply({ 'bundles/web/overlays/prod/a.yaml': patch }, engine)).rejects.toThrow(
      'render engine answered a patch request with 2 objects for 1 sources',
    );
  });
});
