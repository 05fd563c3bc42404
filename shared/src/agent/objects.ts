import { apiGroup, applyRank } from '../kinds.ts';

/** Where one Kubernetes object lives: enough to address it on the API server. */
export interface ObjectRef {
  readonly apiVersion: string;
  readonly kind: string;
  /** Empty for cluster-scoped objects. */
  readonly namespace: string;
  readonly name: string;
}

/** A Kubernetes object as plain JSON, as the agent handles it. */
export interface KubeJson {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
    readonly [key: string]: unknown;
  };
  readonly [key: string]: unknown;
}

/**
 * `group/Kind/namespace/name`, the identity the hub's status report and the rendered
 * bundle use (the core group and cluster scope are empty segments: `/Namespace//web`).
 * The version is left out on purpose: `apps/v1` and `apps/v1beta2` address one object.
 */
export function objectId(ref: ObjectRef): string {
  return `${apiGroup(ref.apiVersion)}/${ref.kind}/${ref.namespace}/${ref.name}`;
}

/** The reference of an object, namespace as written (empty when it has none). */
export function refOf(object: KubeJson): ObjectRef {
  return {
    apiVersion: object.apiVersion,
    kind: object.kind,
    namespace: object.metadata.namespace ?? '',
    name: object.metadata.name,
  };
}

/** `Kind namespace/name`, as people read it in logs. */
export function describeRef(ref: ObjectRef): string {
  return ref.namespace ? `${ref.kind} ${ref.namespace}/${ref.name}` : `${ref.kind} ${ref.name}`;
}

/** Whether the object defines API types or the namespaces others live in: these go first. */
export function isClusterFoundation(ref: Pick<ObjectRef, 'apiVersion' | 'kind'>): boolean {
  return (
    (ref.kind === 'Namespace' && apiGroup(ref.apiVersion) === '') ||
    (ref.kind === 'CustomResourceDefinition' && apiGroup(ref.apiVersion) === 'apiextensions.k8s.io')
  );
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Apply order: by {@link applyRank} (namespaces and definitions first, custom resources last), then by id. */
export function compareApplyOrder(a: ObjectRef, b: ObjectRef): number {
  return applyRank(a.kind) - applyRank(b.kind) || compareText(objectId(a), objectId(b));
}

/** Refs in prune order: the reverse of apply order, so custom resources go before their definitions and namespaces last. */
export function pruneOrder<T extends ObjectRef>(refs: readonly T[]): T[] {
  return [...refs].sort((a, b) => compareApplyOrder(b, a));
}

/**
 * Splits items, kept in the given order, into runs of equal {@link applyRank} of their
 * kind: each run may be applied concurrently, runs one after the other.
 */
export function rankGroups<T>(items: readonly T[], kindOf: (item: T) => string): T[][] {
  const sorted = [...items].sort((a, b) => applyRank(kindOf(a)) - applyRank(kindOf(b)));
  const groups: T[][] = [];
  let rank = Number.NaN;
  for (const item of sorted) {
    const r = applyRank(kindOf(item));
    if (r !== rank) {
      groups.push([]);
      rank = r;
    }
    groups[groups.length - 1]?.push(item);
  }
  return groups;
}
