import { loadFleet } from '@flotilla/shared';
import { describe, expect, it } from 'vitest';
import { admit, checkPolicies } from '../../../shared/src/fleet/policy.ts';
import { readRepoDir } from './helpers.ts';

// The policy step is wired into rendering but has no policies yet (a later issue adds
// ValidatingAdmissionPolicy): it must pass every render through unchanged.
describe('policy step (empty)', () => {
  const fleet = loadFleet(readRepoDir('examples/fleet-repo'));
  const plan = fleet.planCluster({ name: 'prod-eu-1', labels: {} });

  it('finds no violations in any rendered bundle', () => {
    expect(plan.bundles.length).toBeGreaterThan(0);
    for (const b of plan.bundles) expect(checkPolicies(b.rendered)).toEqual([]);
  });

  it('admits a render as the same outcome, and a failed render as it was', () => {
    const rendered = plan.bundles[0]?.rendered;
    if (!rendered) throw new Error('no bundle rendered');
    const ok = { ok: true as const, rendered };
    expect(admit(ok)).toBe(ok);
    const failed = { ok: false as const, errors: [] };
    expect(admit(failed)).toBe(failed);
  });
});
