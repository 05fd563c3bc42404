/**
 * A change to the fleet, cluster by cluster: what each cluster runs now (before) against
 * what it would run (after), object by object, and the clusters grouped where they share
 * one identical change set. Pure: the caller reads both sides (the hub, a commit, a
 * checkout) and hands them in.
 */
import { sha256Hash } from '../canonical.ts';
import type { BundleRef, KubeObject, RenderedBundleDocument } from '../protocol/desired-state.ts';
import {
  fieldChanges,
  isSecret,
  objectId,
  redactPair,
  sealedStandIns,
  stableYaml,
  summarizeFields,
  unifiedDiff,
} from './object-diff.ts';

/** One bundle as a cluster has it: its settings (reference and document fields) and its objects. */
export interface BundleSide {
  readonly name: string;
  /** namespace, dependsOn, driftPolicy, paused, ignoreDifferences, healthChecks: what is not an object. */
  readonly settings: Readonly<Record<string, unknown>>;
  readonly objects: readonly KubeObject[];
}

/** What to compare for one cluster. `before` is null when it has no desired state yet. */
export interface ClusterSides {
  readonly cluster: string;
  readonly before: readonly BundleSide[] | null;
  readonly after: readonly BundleSide[];
}

/** The side of a bundle from its reference in a desired state and its rendered document. */
export function bundleSide(
  ref: Pick<BundleRef, 'name' | 'namespace' | 'dependsOn' | 'driftPolicy' | 'paused'>,
  doc: Pick<RenderedBundleDocument, 'objects' | 'ignoreDifferences' | 'healthChecks' | 'sealed'>,
): BundleSide {
  return {
    name: ref.name,
    settings: {
      namespace: ref.namespace,
      dependsOn: ref.dependsOn,
      driftPolicy: ref.driftPolicy,
      paused: ref.paused,
      ...(doc.ignoreDifferences ? { ignoreDifferences: doc.ignoreDifferences } : {}),
      ...(doc.healthChecks ? { healthChecks: doc.healthChecks } : {}),
    },
    objects: doc.sealed ? [...doc.objects, ...sealedStandIns(doc.sealed, sha256Hash)] : doc.objects,
  };
}

export type ChangeAction = 'added' | 'removed' | 'changed';

/** One object (or one bundle's settings) that differs. */
export interface ObjectChange {
  /** `group/Kind/namespace/name` for an object; `bundle/<name>` for a bundle's settings. */
  readonly id: string;
  readonly bundle: string;
  readonly kind: string;
  readonly name: string;
  readonly action: ChangeAction;
  /** One line: `web Deployment image nginx 1.27.3 -> 1.27.4`. Never a Secret value. */
  readonly summary: string;
  /** The unified diff of the YAML of both sides, Secret values redacted. */
  readonly diff: string;
}

export interface ClusterDiff {
  readonly cluster: string;
  /** Whether the cluster had no desired state before (every object is new). */
  readonly firstDesiredState: boolean;
  readonly changes: readonly ObjectChange[];
}

/** Clusters that share exactly one change set. */
export interface DiffGroup {
  /** Sorted. */
  readonly clusters: readonly string[];
  /** `web Deployment image nginx 1.27.3 -> 1.27.4; 2 more objects` */
  readonly summary: string;
  /** The changes of {@link shownFor}; the other clusters' have the same added and removed lines. */
  readonly changes: readonly ObjectChange[];
  /** The cluster whose diffs are shown: the first by name. */
  readonly shownFor: string;
  /**
   * Whether the clusters' diffs differ in their unchanged lines (a cluster's own name next to
   * the changed image, say), so that the diffs shown are exactly {@link shownFor}'s only.
   */
  readonly contextVaries: boolean;
}

export interface FleetDiff {
  /** Groups, the most clusters first (then by first cluster name). */
  readonly groups: readonly DiffGroup[];
  /** Clusters with no change, sorted. */
  readonly unchanged: readonly string[];
  /** Clusters that changed, sorted. */
  readonly changed: readonly string[];
}

interface Located {
  readonly bundle: string;
  readonly object: KubeObject;
}

function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

function byId(bundles: readonly BundleSide[]): Map<string, Located> {
  const map = new Map<string, Located>();
  for (const b of bundles) for (const o of b.objects) map.set(objectId(o), { bundle: b.name, object: o });
  return map;
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function objectLabel(o: KubeObject): string {
  return `${o.metadata.name} ${o.kind}`;
}

function objectChange(
  id: string,
  before: Located | undefined,
  after: Located | undefined,
): ObjectChange | undefined {
  const [b, a] = redactPair(before?.object, after?.object);
  const bYaml = b ? stableYaml(b) : undefined;
  const aYaml = a ? stableYaml(a) : undefined;
  const moved = before && after && before.bundle !== after.bundle;
  if (bYaml === aYaml && !moved) return undefined;
  const shown = (after ?? before) as Located;
  const bundle = shown.bundle;
  const o = shown.object;
  const group = groupOf(o.apiVersion);
  const ns = o.metadata.namespace;
  const path = `${bundle}/${o.kind}${group ? `.${group}` : ''}${ns ? `/${ns}` : ''}/${o.metadata.name}`;
  let summary: string;
  let action: ChangeAction;
  if (!before) {
    action = 'added';
    summary = `${objectLabel(shown.object)} added`;
  } else if (!after) {
    action = 'removed';
    summary = `${objectLabel(shown.object)} removed`;
  } else {
    action = 'changed';
    const fields = summarizeFields(fieldChanges(b, a), isSecret(b) || isSecret(a));
    const parts = [moved ? `moved from bundle ${before.bundle}` : '', fields].filter(Boolean);
    summary = `${objectLabel(shown.object)} ${parts.join(', ')}`;
  }
  return {
    id,
    bundle,
    kind: shown.object.kind,
    name: shown.object.metadata.name,
    action,
    summary,
    diff: unifiedDiff(path, bYaml, aYaml),
  };
}

/** A missing side, as a key. */
const none: object = Object.freeze({});
/**
 * Object changes by the identity of both sides: clusters that share a rendered bundle share
 * its objects (one parsed document per hash), so a change reaching thousands of clusters is
 * redacted, printed and diffed once.
 */
const memo = new WeakMap<object, WeakMap<object, Map<string, ObjectChange | null>>>();

function memoizedChange(id: string, before: Located | undefined, after: Located | undefined) {
  const b = before?.object ?? none;
  const a = after?.object ?? none;
  const bundles = `${before?.bundle ?? ''}\0${after?.bundle ?? ''}`;
  let byAfter = memo.get(b);
  if (!byAfter) {
    byAfter = new WeakMap();
    memo.set(b, byAfter);
  }
  let byBundles = byAfter.get(a);
  if (!byBundles) {
    byBundles = new Map();
    byAfter.set(a, byBundles);
  }
  let change = byBundles.get(bundles);
  if (change === undefined) {
    change = objectChange(id, before, after) ?? null;
    byBundles.set(bundles, change);
  }
  return change ?? undefined;
}

function settingsChange(
  name: string,
  before: BundleSide | undefined,
  after: BundleSide | undefined,
): ObjectChange | undefined {
  const yaml = (s: BundleSide | undefined) =>
    s ? stableYaml({ bundle: s.name, ...s.settings } as unknown as KubeObject) : undefined;
  const bYaml = yaml(before);
  const aYaml = yaml(after);
  if (bYaml === aYaml) return undefined;
  const action: ChangeAction = !before ? 'added' : !after ? 'removed' : 'changed';
  const fields = action === 'changed' ? fieldChanges(before?.settings, after?.settings) : [];
  const summary =
    action === 'changed'
      ? `bundle ${name} ${fields
          .map((f) => f.path.replace(/[.[].*$/, ''))
          .filter((p, i, all) => all.indexOf(p) === i)
          .join(', ')} changed`
      : `bundle ${name} ${action}`;
  return {
    id: `bundle/${name}`,
    bundle: name,
    kind: 'Bundle',
    name,
    action,
    summary,
    diff: unifiedDiff(`${name}/bundle`, bYaml, aYaml),
  };
}

/** The changes of one cluster: bundle settings first, then objects by identity. */
export function diffCluster(sides: ClusterSides): ClusterDiff {
  const before = sides.before ?? [];
  const changes: ObjectChange[] = [];
  const bBundles = new Map(before.map((b) => [b.name, b]));
  const aBundles = new Map(sides.after.map((b) => [b.name, b]));
  for (const name of [...new Set([...bBundles.keys(), ...aBundles.keys()])].sort(compareText)) {
    const change = settingsChange(name, bBundles.get(name), aBundles.get(name));
    if (change) changes.push(change);
  }
  const bObjects = byId(before);
  const aObjects = byId(sides.after);
  const objectChanges: ObjectChange[] = [];
  for (const id of new Set([...bObjects.keys(), ...aObjects.keys()])) {
    const change = memoizedChange(id, bObjects.get(id), aObjects.get(id));
    if (change) objectChanges.push(change);
  }
  objectChanges.sort((x, y) => compareText(x.bundle, y.bundle) || compareText(x.id, y.id));
  changes.push(...objectChanges);
  return { cluster: sides.cluster, firstDesiredState: sides.before === null, changes };
}

/** `a; b; c; and 4 more objects`: the first few object summaries of a change set. */
export function summarizeChanges(changes: readonly ObjectChange[], shown = 3): string {
  const lines = changes.slice(0, shown).map((c) => c.summary);
  const rest = changes.length - lines.length;
  if (rest > 0) lines.push(`${rest} more ${rest === 1 ? 'change' : 'changes'}`);
  return lines.join('; ');
}

/**
 * Diffs every cluster and groups those whose change sets are identical (same objects,
 * same diffs), so that a change reaching 37 clusters reads once.
 *
 * @example
 * const d = diffFleet([{ cluster: 'a', before: [...], after: [...] }, ...]);
 * d.groups[0]; // { clusters: ['a', 'b'], summary: 'web Deployment image nginx 1.27.3 -> 1.27.4', changes }
 */
export function diffFleet(clusters: Iterable<ClusterSides>): FleetDiff {
  const groups = new Map<
    string,
    { clusters: string[]; changes: readonly ObjectChange[]; exact: string; contextVaries: boolean }
  >();
  const unchanged: string[] = [];
  const changed: string[] = [];
  const sorted = [...clusters].sort((x, y) => compareText(x.cluster, y.cluster));
  for (const sides of sorted) {
    const d = diffCluster(sides);
    if (d.changes.length === 0) {
      unchanged.push(d.cluster);
      continue;
    }
    changed.push(d.cluster);
    // Same change = same objects with the same added and removed lines; the context around
    // them may differ (a cluster's name in a neighbouring line) without splitting the group.
    const key = JSON.stringify(d.changes.map((c) => [c.id, c.bundle, c.action, changedLines(c.diff)]));
    const exact = JSON.stringify(d.changes.map((c) => c.diff));
    const group = groups.get(key);
    if (group) {
      group.clusters.push(d.cluster);
      if (group.exact !== exact) group.contextVaries = true;
    } else groups.set(key, { clusters: [d.cluster], changes: d.changes, exact, contextVaries: false });
  }
  const list: DiffGroup[] = [...groups.values()].map((g) => ({
    clusters: g.clusters,
    summary: summarizeChanges(g.changes),
    changes: g.changes,
    shownFor: g.clusters[0] as string,
    contextVaries: g.contextVaries,
  }));
  list.sort(
    (x, y) => y.clusters.length - x.clusters.length || compareText(x.clusters[0] ?? '', y.clusters[0] ?? ''),
  );
  return { groups: list, unchanged, changed };
}

/** The `+` and `-` lines of a unified diff, without its file headers. */
function changedLines(diff: string): string {
  return diff
    .split('\n')
    .filter((l) => (l.startsWith('+') || l.startsWith('-')) && !l.startsWith('+++ ') && !l.startsWith('--- '))
    .join('\n');
}
