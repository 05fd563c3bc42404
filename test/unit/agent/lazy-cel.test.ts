import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const agentSrc = new URL('../../../agent/src/', import.meta.url).pathname;

describe('the CEL engine in the agent', () => {
  it('is not loaded until a bundle with health checks is assessed', async () => {
    // Records every module the process loads, then imports what the agent runs idle with,
    // then assesses readiness as a bundle with checks does.
    const script = `
      import { registerHooks } from 'node:module';
      const loaded = [];
      registerHooks({ load(url, context, next) { loaded.push(url); return next(url, context); } });
      const cel = () => loaded.filter((u) => u.includes('/@bufbuild/')).length;
      const sops = () => loaded.filter((u) => u.includes('/age-encryption/') || u.includes('/shared/src/sops/')).length;
      for (const m of ['runtime', 'server', 'config', 'reconcile/cluster-reconciler', 'ssa/resource-manager']) {
        await import(${JSON.stringify(agentSrc)} + m + '.ts');
      }
      const idle = cel();
      const sopsIdle = sops();
      const { health } = await import(${JSON.stringify(`${agentSrc}ssa/health.ts`)});
      const ctx = { clock: { now: () => 0, sleep: async () => {} } };
      const ref = { apiVersion: 'v1', kind: 'ConfigMap', namespace: 'a', name: 'b' };
      const live = { ...ref, metadata: { name: 'b' }, data: { ready: 'yes' } };
      const known = new Map([['/ConfigMap/a/b', live]]);
      const plain = await health(ctx, [ref], { known });
      const afterPlain = cel();
      const checked = await health(ctx, [ref], {
        known,
        healthChecks: [{ kind: 'ConfigMap', current: 'self.data.ready == "no"' }],
      });
      console.log(JSON.stringify({ idle, sopsIdle, sopsAfter: sops(), afterPlain, after: cel(), plain, checked }));
    `;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script]);
    const r = JSON.parse(stdout) as {
      idle: number;
      sopsIdle: number;
      sopsAfter: number;
      afterPlain: number;
      after: number;
      plain: { ready: boolean }[];
      checked: { ready: boolean; message: string }[];
    };
    expect(r.idle).toBe(0);
    // Nor the SOPS and age code: an agent whose bundles have no SOPS files never loads it.
    expect(r.sopsIdle).toBe(0);
    expect(r.sopsAfter).toBe(0);
    expect(r.afterPlain).toBe(0);
    expect(r.after).toBeGreaterThan(0);
    expect(r.plain[0]?.ready).toBe(true);
    expect(r.checked[0]).toMatchObject({
      ready: false,
      message: 'health check: self.data.ready == "no" is false',
    });
  });
});
