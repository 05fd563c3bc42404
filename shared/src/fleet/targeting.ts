/**
 * Targeting: the entries of `targets`, `exclude` and `customizations` compiled once into
 * tests on a cluster's name and labels, and which entry a cluster matches (first wins).
 */
import type { MatchEntry } from '../bundle-spec.ts';
import type { Labels } from '../labels.ts';
import { compileSelector, type LabelMatcher } from '../selector.ts';
import type { BundleMatch, BundleState, CompiledEntry, EntryRef } from './model.ts';

/** Compiles one entry; a group that is missing or broken matches no cluster (its error is reported at load). */
export function compileEntry(entry: MatchEntry, groups: ReadonlyMap<string, LabelMatcher>): CompiledEntry {
  const ref: EntryRef =
    entry.name === undefined
      ? { index: entry.index, kind: entry.rule.kind }
      : { index: entry.index, name: entry.name, kind: entry.rule.kind };
  const rule = entry.rule;
  if (rule.kind === 'clusterName') {
    const want = rule.clusterName;
    return { ref, test: (cluster) => cluster === want };
  }
  const matcher = rule.kind === 'clusterSelector' ? compileSelector(rule.selector) : groups.get(rule.group);
  if (!matcher) return { ref, test: () => false };
  return { ref, test: (_cluster, labels) => matcher(labels) };
}

/** The first entry that matches the cluster, if any. */
export function firstEntry(
  entries: readonly CompiledEntry[],
  cluster: string,
  labels: Labels,
): CompiledEntry | undefined {
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as CompiledEntry;
    if (e.test(cluster, labels)) return e;
  }
  return undefined;
}

/** How one bundle relates to one cluster, or undefined when it does not target it. */
export function matchOne(b: BundleState, cluster: string, labels: Labels): BundleMatch | undefined {
  if (!b.targets || !b.exclude) return { bundle: b.name, status: 'unknown' };
  const target = firstEntry(b.targets, cluster, labels)?.ref;
  if (!target) return undefined;
  const excludedBy = firstEntry(b.exclude, cluster, labels)?.ref;
  if (excludedBy) return { bundle: b.name, status: 'excluded', target, excludedBy };
  const customization = firstEntry(b.customizations, cluster, labels)?.ref;
  return customization
    ? { bundle: b.name, status: 'targeted', target, customization }
    : { bundle: b.name, status: 'targeted', target };
}
