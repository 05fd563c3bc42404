import { canonicalJson, loadFleet, planFleet, sha256Hash } from '@flotilla/shared';
import { describe, expect, it } from 'vitest';
import { readRepoDir, shuffled } from './helpers.ts';

const clusters = [
  { name: 'prod-eu-1', labels: { env: 'prod', region: 'eu' } },
  { name: 'prod-us-1', labels: { env: 'prod', region: 'us' } },
  { name: 'staging-eu-1', labels: { env: 'staging', region: 'eu' } },
];

function snapshot(files: ReturnType<typeof readRepoDir>, order = clusters) {
  const plan = planFleet(files, order);
  return plan.clusters.map((c) => ({
    cluster: c.cluster,
    bundles: c.bundles.map((b) => [b.ref.name, b.ref.hash, b.rendered.canonical]),
  }));
}

describe('determinism', () => {
  const files = readRepoDir('examples/fleet-repo');

  it('renders twice to byte-identical output', () => {
    expect(snapshot(files)).toEqual(snapshot(files));
  });

  it('gives identical hashes whatever the file and cluster order', () => {
    const reference = snapshot(files);
    for (const seed of [1, 2, 3, 42]) {
      expect(snapshot(shuffled(files, seed), shuffled(clusters, seed))).toEqual(reference);
    }
  });

  it('gives identical output whatever the order of keys in labels', () => {
    const fleet = loadFleet(files);
    const a = fleet.planCluster({ name: 'prod-eu-1', labels: { env: 'prod', region: 'eu' } });
    const b = loadFleet(files).planCluster({ name: 'prod-eu-1', labels: { region: 'eu', env: 'prod' } });
    expect(b.bundles.map((x) => x.ref)).toEqual(a.bundles.map((x) => x.ref));
  });

  it('hashes the canonical JSON of the rendered bundle', () => {
    const plan = loadFleet(files).planCluster(clusters[0] as (typeof clusters)[0]);
    for (const b of plan.bundles) {
      expect(b.rendered.hash).toBe(sha256Hash(b.rendered.canonical));
      expect(b.rendered.hash).toMatch(/^sha256:[0-9a-f]{64}$/);
      // The text is already canonical: re-canonicalizing the parsed document changes nothing.
      expect(canonicalJson(JSON.parse(b.rendered.canonical))).toBe(b.rendered.canonical);
    }
  });

  it('shares one render among clusters that render identically', () => {
    const fleet = loadFleet(files);
    const a = fleet.planCluster({ name: 'a', labels: { env: 'prod', region: 'eu' } });
    const b = fleet.planCluster({ name: 'b', labels: { env: 'prod', region: 'eu' } });
    const crdsA = a.bundles.find((x) => x.ref.name === 'backup-crds');
    const crdsB = b.bundles.find((x) => x.ref.name === 'backup-crds');
    expect(crdsA?.rendered).toBe(crdsB?.rendered);
    // cluster-info uses ${cluster.name}: different clusters, different content.
    const baseA = a.bundles.find((x) => x.ref.name === 'baseline');
    const baseB = b.bundles.find((x) => x.ref.name === 'baseline');
    expect(baseA?.ref.hash).not.toBe(baseB?.ref.hash);
  });
});

describe('canonicalJson', () => {
  it('sorts keys, drops whitespace and keeps JSON number and string forms', () => {
    expect(
      canonicalJson({ b: [3, 1.5, -0, 1e21], a: { é: 'x', Z: null, a: true }, c: 'quote " and \n' }),
    ).toBe('{"a":{"Z":null,"a":true,"é":"x"},"b":[3,1.5,0,1e+21],"c":"quote \\" and \\n"}');
  });

  it('refuses values JSON cannot represent', () => {
    expect(() => canonicalJson({ a: Number.NaN })).toThrow(TypeError);
    expect(() => canonicalJson({ a: 1n })).toThrow(TypeError);
  });
});
