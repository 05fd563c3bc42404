import { appliedFields, coveredBy, ownedFieldDifferences, withoutFields } from '@flotilla/shared/agent';
import { patchApply } from './apply.ts';
import type { ManagerContext } from './context.ts';
import { getAll } from './read.ts';
import type { DriftReport, PreparedObject } from './types.ts';

/**
 * Drift of each object: a cheap comparison with the live object first, then, for those
 * that may differ, a server-side dry-run apply compared with the live object on the
 * fields this manager owns (as the dry run's managedFields say), leaving out the fields
 * of `ignoreDifferences`. Nothing is changed.
 */
export async function diffAll(
  ctx: ManagerContext,
  prepared: readonly PreparedObject[],
  opts: { labelSelector?: string } = {},
): Promise<DriftReport[]> {
  const lives = await getAll(
    ctx,
    prepared.map((p) => p.ref),
    opts,
  );
  return Promise.all(
    prepared.map(async (p): Promise<DriftReport> => {
      const read = lives.get(p.id);
      if (!read) return { id: p.id, ref: p.ref, drifted: true, missing: true, fields: [] };
      // Fields left to other managers are never drift, whoever owns them at the moment.
      const ignored = p.ignored ?? [];
      const live = withoutFields(read, ignored);
      if (coveredBy(p.object, live))
        return { id: p.id, ref: p.ref, drifted: false, missing: false, fields: [] };
      const expected = withoutFields((await patchApply(ctx, p, true)).body, ignored);
      const owned = appliedFields(expected, ctx.owner.field);
      const fields = owned ? ownedFieldDifferences(expected, live, owned) : ['.'];
      return { id: p.id, ref: p.ref, drifted: fields.length > 0, missing: false, fields };
    }),
  );
}
