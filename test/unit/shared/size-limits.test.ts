/**
 * Objects the API server would refuse for their size are refused when the fleet renders,
 * with file and line, so no cluster gets a desired state it cannot apply and the hub does
 * not hold a huge file's parse.
 */
import { loadFleet, planFleet } from '@flotilla/shared';
import { describe, expect, it } from 'vitest';
import { formatted, repo } from './helpers.ts';

const bundle = 'namespace: big\ntargets: [{clusterSelector: {}}]\n';
const configMap = (name: string, bytes: number) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  blob: "${'x'.repeat(bytes)}"\n`;

describe('size limits', () => {
  it('refuses a 20 MB file before parsing it, and keeps the other bundles', () => {
    const { errors, clusters } = planFleet(
      repo({
        'bundles/big/bundle.yaml': bundle,
        'bundles/big/huge.yaml': configMap('huge', 20 * 1024 * 1024),
        'bundles/small/bundle.yaml': bundle,
        'bundles/small/cm.yaml': configMap('small', 10),
      }),
      [{ name: 'edge' }],
    );
    expect(formatted(errors)).toEqual([
      'bundles/big/huge.yaml:1: bundles/big/huge.yaml is 20.0 MiB; manifest files are limited to 8.0 MiB (the API server takes at most 1.5 MiB per object: split the file, or keep large data out of git)',
    ]);
    expect(clusters[0]?.held.map((h) => h.bundle)).toEqual(['big']);
    expect(clusters[0]?.bundles.map((b) => b.ref.name)).toEqual(['small']);
  });

  it('refuses a ConfigMap with more than 1 MiB of data at its line', () => {
    const fleet = loadFleet(
      repo({
        'bundles/big/bundle.yaml': bundle,
        'bundles/big/cms.yaml': `${configMap('fine', 900 * 1024)}---\n${configMap('too-big', 1100 * 1024)}`,
      }),
    );
    expect(formatted(fleet.errors)).toEqual([
      'bundles/big/cms.yaml:8: ConfigMap "too-big" is 1.1 MiB; the API server accepts at most 1.0 MiB of data in a ConfigMap',
    ]);
  });

  it('refuses any object over 1.5 MiB, and takes one just under', () => {
    const crd = (name: string, bytes: number) =>
      `apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: ${name}\n  annotations:\n    doc: "${'d'.repeat(bytes)}"\n`;
    const fleet = loadFleet(
      repo({
        'bundles/crds/bundle.yaml': bundle,
        'bundles/crds/a.yaml': crd('ok.example.com', 1400 * 1024),
        'bundles/crds/b.yaml': crd('big.example.com', 1600 * 1024),
      }),
    );
    expect(formatted(fleet.errors)).toEqual([
      'bundles/crds/b.yaml:1: CustomResourceDefinition.apiextensions.k8s.io "big.example.com" is 1.6 MiB as JSON; the API server stores objects up to 1.5 MiB',
    ]);
  });
});

describe('a kustomization in a plain bundle', () => {
  it('is an error that says what to add to bundle.yaml, never an object shipped to clusters', () => {
    const { errors, clusters } = planFleet(
      repo({
        'bundles/shop/bundle.yaml': 'namespace: shop\ntargets: [{clusterSelector: {}}]\n',
        'bundles/shop/kustomization.yaml': 'resources: [deployment.yaml]\n',
        'bundles/shop/deployment.yaml': configMap('orders', 10),
        'bundles/shop/overlays/prod/kustomization.yaml': 'resources: [../../]\n',
      }),
      [{ name: 'edge' }],
    );
    expect(formatted(errors)).toEqual([
      'bundles/shop/kustomization.yaml:1: bundles/shop/kustomization.yaml is a kustomization, not a Kubernetes object: add "kustomize: {}" to bundles/shop/bundle.yaml to build it with kustomize',
    ]);
    expect(clusters[0]?.held.map((h) => h.bundle)).toEqual(['shop']);
  });
});
