import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { FleetSourceFile } from '@flotilla/shared/hub';
import { describe, expect, it } from 'vitest';
import { scheduledSync } from '../../../functions/src/http/scheduled-sync.ts';
import { addCluster, captureLog, fakeApiDeps, MemoryFleetSource } from './fakes.ts';

const exampleDir = new URL('../../../examples/fleet-repo/', import.meta.url).pathname;

function exampleFiles(): FleetSourceFile[] {
  const out: FleetSourceFile[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const full = join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else out.push({ path: relative(exampleDir, full), content: readFileSync(full, 'utf8') });
    }
  };
  walk(exampleDir);
  return out;
}

describe('scheduled sync (EventBridge handler body)', () => {
  it('syncs every cluster and logs one line with what changed and the repo errors by file and line', async () => {
    const files = exampleFiles().map((f) =>
      f.path === 'bundles/web/bundle.yaml' ? { ...f, content: `${f.content}paused: sometimes\n` } : f,
    );
    const deps = fakeApiDeps({ source: new MemoryFleetSource('a'.repeat(40), files) });
    await addCluster(deps.clusters, 'edge-eu', { env: 'prod', region: 'eu' });
    const log = captureLog();
    const report = await scheduledSync(deps, 'invocation-1', log);
    expect(report.status).toBe('synced');
    expect(report.changed.map((c) => c.clusterId)).toEqual(['edge-eu']);
    expect(report.errors.some((e) => /^bundles\/web\/bundle\.yaml:\d+: /.test(e.text))).toBe(true);
    expect(log.lines).toHaveLength(1);
    expect(log.lines[0]?.fields).toMatchObject({
      invocationId: 'invocation-1',
      status: 'synced',
      changed: 1,
    });
  });
});
