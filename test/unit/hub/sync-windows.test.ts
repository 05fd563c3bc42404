import { gzipSync } from 'node:zlib';
import { type FleetSourceFile, syncFleet } from '@flotilla/shared/hub';
import { describe, expect, it } from 'vitest';
import { gzipExact } from '../../../functions/src/adapters/dynamodb-stores.ts';
import { addCluster, fakeApiDeps, MemoryBundleStore, MemoryFleetSource } from './fakes.ts';

/** Two bundles: one every cluster shares, one that names the cluster (a bundle of its own each). */
function fleetFiles(image: string): FleetSourceFile[] {
  const bundle = (name: string, data: string): FleetSourceFile[] => [
    {
      path: `bundles/${name}/bundle.yaml`,
      content: `namespace: ${name}\ntargets:\n  - clusterSelector: {}\n`,
    },
    {
      path: `bundles/${name}/config.yaml`,
      content: `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n${data}`,
    },
  ];
  return [...bundle('shared', `  image: ${image}\n`), ...bundle('own', '  cluster: ${cluster.name}\n')];
}

/** Records, in order, what the sync hands to the bundle store and the notifier. */
function recordingDeps(files: FleetSourceFile[]) {
  const events: string[] = [];
  const putSizes: number[] = [];
  const notifySizes: number[] = [];
  const puts = new Map<string, number>();
  const bundles = new (class extends MemoryBundleStore {
    override async putMany(list: readonly { readonly hash: string; readonly content: Uint8Array }[]) {
      events.push('put');
      putSizes.push(list.length);
      for (const b of list) puts.set(b.hash, (puts.get(b.hash) ?? 0) + 1);
      return super.putMany(list);
    }
  })();
  const source = new MemoryFleetSource('a'.repeat(40), files);
  const deps = fakeApiDeps({
    bundles,
    source,
    notifier: {
      notify: async (changes) => {
        events.push('notify');
        notifySizes.push(changes.length);
        return { sent: changes.length, failed: [] };
      },
    },
  });
  return { deps, source, events, putSizes, notifySizes, puts };
}

describe('sync of a big fleet', () => {
  it('holds one window of clusters at a time: stores, commits and notifies it before planning the next', async () => {
    const r = recordingDeps(fleetFiles('v1'));
    for (let i = 0; i < 60; i++) await addCluster(r.deps.clusters, `c${String(i).padStart(3, '0')}`);

    const report = await syncFleet(r.deps, { holder: 'test', windowClusters: 10 });

    expect(report.changed).toHaveLength(60);
    expect(report.notified).toBe(60);
    // The fleet snapshot, then per window its 10 own bundles (and the shared one, once).
    expect(r.putSizes).toEqual([1, 11, 10, 10, 10, 10, 10]);
    expect(r.notifySizes).toEqual([10, 10, 10, 10, 10, 10]);
    // The first window is told before the last window's bundles are stored.
    expect(r.events.indexOf('notify')).toBeLessThan(r.events.lastIndexOf('put'));
  });

  it('walks the cluster listing a page at a time, never the whole listing at once', async () => {
    const r = recordingDeps(fleetFiles('v1'));
    for (let i = 0; i < 23; i++) await addCluster(r.deps.clusters, `c${String(i).padStart(3, '0')}`);
    r.deps.clusters.list = async () => {
      throw new Error('the sync must page through the clusters');
    };
    const pages: number[] = [];
    const original = r.deps.clusters.pages.bind(r.deps.clusters);
    r.deps.clusters.pages = async function* (size: number) {
      for await (const page of original(size)) {
        pages.push(page.length);
        yield page;
      }
    };
    const report = await syncFleet(r.deps, { holder: 'test', windowClusters: 10 });
    expect(pages).toEqual([10, 10, 3]);
    expect(report.clusters).toBe(23);
    expect(report.changed).toHaveLength(23);
  });

  it('stores each bundle once and writes nothing on a no-op, even when it forgets which it stored', async () => {
    const r = recordingDeps(fleetFiles('v1'));
    for (let i = 0; i < 25; i++) await addCluster(r.deps.clusters, `c${String(i).padStart(3, '0')}`);

    const full = await syncFleet(r.deps, { holder: 'test', windowClusters: 4, rememberedBundles: 1 });
    // 25 bundles of their own, one shared, the snapshot: each written exactly once.
    expect(r.puts.size).toBe(27);
    expect([...r.puts.values()].every((n) => n === 1)).toBe(true);
    expect(full.itemsWritten).toBe(27 + 2 * 25);
    expect(full.changed.map((c) => c.generation)).toEqual(Array(25).fill(1));

    r.source.commit = 'b'.repeat(40);
    const noop = await syncFleet(r.deps, { holder: 'test', windowClusters: 4, rememberedBundles: 1 });
    expect(noop.itemsWritten).toBe(0);
    expect(noop.changed).toEqual([]);
    expect(r.notifySizes.reduce((a, b) => a + b, 0)).toBe(25);

    r.source.commit = 'c'.repeat(40);
    r.source.files = fleetFiles('v2');
    const change = await syncFleet(r.deps, { holder: 'test', windowClusters: 4, rememberedBundles: 1 });
    expect(change.changed).toHaveLength(25);
    expect(change.changed.every((c) => c.generation === 2)).toBe(true);
    expect(change.itemsWritten).toBe(2 + 2 * 25); // the new shared bundle and snapshot, 25 commits
    expect([...r.puts.values()].every((n) => n === 1)).toBe(true);
  });
});

describe('bundle compression', () => {
  it('keeps exactly the compressed bytes, not the zlib block they were written into', () => {
    const content = new TextEncoder().encode('kind: ConfigMap\n'.repeat(40));
    const packed = gzipExact(content);
    expect(packed.buffer.byteLength).toBe(packed.byteLength);
    expect(Buffer.from(packed)).toEqual(gzipSync(content));
  });
});
