import {
  loadFleet,
  parseFieldPath,
  parseJsonPointer,
  parseRenderedBundle,
  RenderedBundleIntegrityError,
  sha256Hash,
  withoutFields,
} from '@flotilla/shared';
import { describe, expect, it } from 'vitest';
import { repo } from './helpers.ts';

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      containers: [{ name: web, image: web:1 }]
`;

function rendered(bundleYaml: string, cluster = { name: 'c1', labels: { env: 'prod' } }) {
  const fleet = loadFleet(
    repo({ 'bundles/web/bundle.yaml': bundleYaml, 'bundles/web/deploy.yaml': deployment }),
  );
  const plan = fleet.planCluster(cluster);
  expect(plan.errors).toEqual([]);
  const b = plan.bundles[0];
  if (!b) throw new Error('not planned');
  return b.rendered;
}

describe('ignoreDifferences in the rendered bundle', () => {
  it('leaves a bundle without it byte for byte as before (no churn of existing hashes)', () => {
    const r = rendered('targets: [{ clusterName: c1 }]\n');
    expect(
      r.canonical.startsWith(
        '{"apiVersion":"flotilla.dev/v1alpha1","bundle":"web","kind":"RenderedBundle","objects":[',
      ),
    ).toBe(true);
    // Pinned before the field existed (commit 9e0970e): the same input hashes the same.
    expect(r.hash).toBe(PINNED_HASH);
  });

  it('carries the entries, canonically, and the agent reads them back strictly', () => {
    const r = rendered(`targets: [{ clusterName: c1 }]
ignoreDifferences:
  - { group: apps, kind: Deployment, jsonPointers: [/spec/replicas] }
customizations:
  - clusterSelector: env=prod
    ignoreDifferences:
      - group: apps
        kind: Deployment
        name: web
        fieldPaths: [".spec.template.spec.containers[name=web].image"]
`);
    expect(r.canonical).toContain(
      '"bundle":"web","ignoreDifferences":[{"group":"apps","jsonPointers":["/spec/replicas"],"kind":"Deployment"},' +
        '{"fieldPaths":[".spec.template.spec.containers[name=web].image"],"group":"apps","kind":"Deployment","name":"web"}],"kind":"RenderedBundle"',
    );
    const doc = parseRenderedBundle(r.canonical, r.hash);
    expect(doc.ignoreDifferences).toHaveLength(2);
    // Another cluster, not matched by the customization, gets the bundle's entries only.
    const other = rendered(
      `targets: [{ clusterSelector: {} }]
ignoreDifferences:
  - { group: apps, kind: Deployment, jsonPointers: [/spec/replicas] }
customizations:
  - clusterSelector: env=prod
    ignoreDifferences: [{ group: apps, kind: Deployment, jsonPointers: [/spec/paused] }]
`,
      { name: 'c2', labels: { env: 'dev' } },
    );
    expect(parseRenderedBundle(other.canonical, other.hash).ignoreDifferences).toEqual([
      { group: 'apps', kind: 'Deployment', jsonPointers: ['/spec/replicas'] },
    ]);
  });

  it('is refused by the agent when malformed', () => {
    const bad = (ignore: unknown) => {
      const text = JSON.stringify({
        apiVersion: 'flotilla.dev/v1alpha1',
        bundle: 'web',
        ignoreDifferences: ignore,
        kind: 'RenderedBundle',
        objects: [],
      });
      return () => parseRenderedBundle(text, sha256Hash(text));
    };
    expect(bad([{ group: 'apps', kind: 'Deployment', jsonPointers: ['spec'] }])).toThrow(
      'rendered bundle web: ignoreDifferences[0].jsonPointers[0]: "spec" must start with "/"',
    );
    expect(bad([{ group: 'apps', kind: 'Deployment' }])).toThrow(RenderedBundleIntegrityError);
    expect(bad([{ group: 'apps', kind: 'Deployment', jsonPointers: ['/a'], extra: 1 }])).toThrow(
      'ignoreDifferences[0].extra: unknown field',
    );
    expect(bad([])).toThrow('ignoreDifferences: expected a non-empty list');
  });
});

describe('paths', () => {
  const object = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', labels: { 'app.kubernetes.io/name': 'web', tier: 'front' } },
    spec: {
      replicas: 2,
      template: {
        spec: {
          containers: [
            { name: 'web', image: 'web:1', ports: [{ containerPort: 80 }] },
            { name: 'sidecar', image: 'proxy:1' },
          ],
        },
      },
    },
  };
  const strip = (...paths: string[]) =>
    withoutFields(
      object,
      paths.map((p) => {
        const parsed = p.startsWith('/') ? parseJsonPointer(p) : parseFieldPath(p);
        if (!parsed.ok) throw new Error(parsed.problem);
        return parsed.segments;
      }),
    );

  it('removes fields by JSON pointer and by field path, leaving the input as it was', () => {
    const out = strip('/spec/replicas', '.spec.template.spec.containers[name=web].image');
    expect(out.spec).toEqual({
      template: {
        spec: {
          containers: [
            { name: 'web', ports: [{ containerPort: 80 }] },
            { name: 'sidecar', image: 'proxy:1' },
          ],
        },
      },
    });
    expect(object.spec.replicas).toBe(2);
    expect(object.spec.template.spec.containers[0]?.image).toBe('web:1');
  });

  it('reads quoted keys, escaped pointer tokens and list indexes; a path to nothing removes nothing', () => {
    expect(strip('metadata.labels["app.kubernetes.io/name"]').metadata.labels).toEqual({ tier: 'front' });
    expect(strip('/metadata/labels/app.kubernetes.io~1name').metadata.labels).toEqual({ tier: 'front' });
    expect(strip('/spec/template/spec/containers/1').spec.template.spec.containers).toHaveLength(1);
    expect(
      strip('.spec.template.spec.containers[0].ports[0]').spec.template.spec.containers[0]?.ports,
    ).toEqual([]);
    expect(strip('.spec.template.spec.containers[name=db].image')).toBe(object);
    expect(strip('/spec/nothing/here')).toBe(object);
  });

  it('rejects paths that name the object itself', () => {
    expect(parseJsonPointer('/kind')).toMatchObject({ ok: false });
    expect(parseFieldPath('.metadata.namespace')).toMatchObject({ ok: false });
    expect(parseFieldPath('.')).toMatchObject({ ok: false });
    expect(parseFieldPath('.metadata.labels')).toMatchObject({ ok: true });
  });
});

const PINNED_HASH = 'sha256:8de0df0153b2d6d997a0fc4d062eda0e544b01ed14084d0f3f345b440d556ed7';
