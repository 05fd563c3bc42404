/**
 * SOPS files in Helm, Kustomize and overlaid bundles, rendered by the real render worker:
 * the files next to bundle.yaml travel beside the engine's output as committed, and an
 * encrypted object coming out of a kustomization is an error with the supported pattern.
 */
import { ensureRenderer } from '@flotilla/renderer/build.ts';
import { RendererClient } from '@flotilla/renderer/client.ts';
import { type ClusterPlan, formatFleetError, loadFleet, parseRenderedBundle } from '@flotilla/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repo } from '../../unit/shared/helpers.ts';

const SOPS = `sops:
  age:
    - recipient: age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq
      enc: |
        -----BEGIN AGE ENCRYPTED FILE-----
        YWdlLWVuY3J5cHRpb24ub3JnL3YxCg==
        -----END AGE ENCRYPTED FILE-----
  lastmodified: "2026-12-07T00:00:00Z"
  mac: ENC[AES256_GCM,data:bWFj,iv:aXY=,tag:dGFn,type:str]
  encrypted_regex: ^(data|stringData)$
  version: 3.13.3
`;
const secret = (name: string) =>
  `apiVersion: v1\nkind: Secret\nmetadata:\n  name: ${name}\nstringData:\n  password: ENC[AES256_GCM,data:c2VjcmV0,iv:aXY=,tag:dGFn,type:str]\n${SOPS}`;

let client: RendererClient;

function rendered(plan: ClusterPlan, bundle: string) {
  const b = plan.bundles.find((x) => x.ref.name === bundle);
  if (!b)
    throw new Error(`${plan.cluster} has no ${bundle}: ${plan.errors.map(formatFleetError).join('\n')}`);
  return parseRenderedBundle(b.rendered.canonical, b.rendered.hash);
}

describe('SOPS files beside the render engines', () => {
  const files = {
    'bundles/grafana/bundle.yaml':
      'namespace: monitoring\ntargets: [{ clusterSelector: {} }]\nhelm:\n  chart: chart\n  values: { adminSecret: grafana-admin }\n',
    'bundles/grafana/chart/Chart.yaml': 'apiVersion: v2\nname: grafana\nversion: 1.0.0\n',
    'bundles/grafana/chart/templates/deploy.yaml':
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: grafana\ndata:\n  secret: {{ .Values.adminSecret }}\n',
    'bundles/grafana/admin.sops.yaml': secret('grafana-admin'),
    'bundles/shop/bundle.yaml':
      'namespace: shop\ntargets: [{ clusterSelector: {} }]\nkustomize: { dir: base }\n',
    'bundles/shop/base/kustomization.yaml': 'resources: [cm.yaml]\n',
    'bundles/shop/base/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shop\n',
    'bundles/shop/db.sops.yaml': secret('shop-db'),
    'bundles/bad/bundle.yaml':
      'namespace: bad\ntargets: [{ clusterSelector: {} }]\nkustomize: { dir: base }\n',
    'bundles/bad/base/kustomization.yaml': 'resources: [secret.yaml]\n',
    'bundles/bad/base/secret.yaml': secret('inside'),
    // In the kustomization's directory but not one of its resources: the engine's, not carried.
    'bundles/shop/base/unused.sops.yaml': secret('unused'),
    'bundles/web/bundle.yaml':
      'namespace: web\ntargets: [{ clusterSelector: {} }]\ncustomizations:\n  - { clusterName: c1, overlay: prod }\n',
    'bundles/web/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  mode: dev\n',
    'bundles/web/secret.sops.yaml': secret('web-tls'),
    'bundles/web/overlays/prod/cm.yaml':
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  mode: prod\n',
  };
  const fleet = loadFleet(repo(files));
  beforeAll(async () => {
    client = new RendererClient({ binary: await ensureRenderer() });
    await fleet.prepare([{ name: 'c1' }], { engine: client });
  }, 900_000);
  afterAll(async () => {
    await client?.close();
  });

  it("carry a Helm bundle's SOPS file beside the chart's output, as committed", () => {
    const doc = rendered(fleet.planCluster({ name: 'c1' }), 'grafana');
    expect(doc.objects.map((o) => o.metadata.name)).toEqual(['grafana']);
    expect(doc.sealed).toEqual([
      {
        file: 'bundles/grafana/admin.sops.yaml',
        format: 'yaml',
        content: files['bundles/grafana/admin.sops.yaml'],
        objects: [{ apiVersion: 'v1', kind: 'Secret', name: 'grafana-admin', namespace: 'monitoring' }],
      },
    ]);
  });

  it("carry a Kustomize bundle's SOPS file beside the kustomization's output", () => {
    const doc = rendered(fleet.planCluster({ name: 'c1' }), 'shop');
    expect(doc.objects.map((o) => o.metadata.name)).toEqual(['shop']);
    expect(doc.sealed?.map((f) => [f.file, f.content === files['bundles/shop/db.sops.yaml']])).toEqual([
      ['bundles/shop/db.sops.yaml', true],
    ]);
  });

  it('refuse an encrypted object coming out of a kustomization (attributed to it), naming the hint', () => {
    const plan = fleet.planCluster({ name: 'c1' });
    expect(plan.held.find((h) => h.bundle === 'bad')?.errors.map(formatFleetError)).toEqual([
      'bundles/bad/base/kustomization.yaml:1: the render produced a SOPS-encrypted object, which the engine would change under its MAC: put SOPS files next to bundle.yaml, outside the chart and the kustomization, and they travel with the bundle as committed',
    ]);
  });

  it('leave a SOPS file untouched by an overlay of its bundle', () => {
    const doc = rendered(fleet.planCluster({ name: 'c1' }), 'web');
    expect(doc.objects.map((o) => [o.metadata.name, (o as { data?: unknown }).data])).toEqual([
      ['web', { mode: 'prod' }],
    ]);
    expect(doc.sealed?.[0]?.content).toBe(files['bundles/web/secret.sops.yaml']);
  });
});
