/**
 * The variant step: a bundle compiled once per customization (and once for its
 * defaults). A variant is what a customization makes of the bundle: the source's objects
 * with the customization's overlay applied, `${values.*}` resolved from the bundle's values
 * merged with the customization's, and the `ignoreDifferences` and `healthChecks` that
 * travel with it. Cluster variables stay holes in the variant's templates, filled per
 * cluster by `renderVariant`.
 */
import { type BundleSpec, type CustomizationEntry, mergeValues } from '../bundle-spec.ts';
import { CLUSTER_SCOPED_KINDS, groupKind } from '../kinds.ts';
import { getEntry, type YMap } from '../yaml-source.ts';
import type { BundleState, ManifestDoc, Variant } from './model.ts';
import { applyOverlay } from './overlay.ts';
import { compileVariant, type RenderCacheBudget } from './render.ts';

export type IsClusterScoped = (group: string, kind: string) => boolean;

/**
 * Whether a group/kind is cluster-scoped: from the CustomResourceDefinitions any bundle of
 * the repo carries, else from the built-in Kubernetes kinds.
 */
export function scopeTable(states: readonly BundleState[]): IsClusterScoped {
  const fromCrds = new Map<string, boolean>();
  for (const s of states) for (const [gk, scoped] of crdScopes(s.base)) fromCrds.set(gk, scoped);
  return (group, kind) => {
    const gk = groupKind(group, kind);
    return fromCrds.get(gk) ?? CLUSTER_SCOPED_KINDS.has(gk);
  };
}

/** The scope of each kind the CustomResourceDefinitions among `docs` define, by group/kind. */
export function crdScopes(docs: readonly ManifestDoc[]): Map<string, boolean> {
  const out = new Map<string, boolean>();
  for (const doc of docs) {
    const str = (m: YMap | undefined, key: string): string | undefined => {
      const v = m ? getEntry(m, key)?.value : undefined;
      return v?.kind === 'scalar' && typeof v.value === 'string' ? v.value : undefined;
    };
    if (str(doc.node, 'kind') !== 'CustomResourceDefinition') continue;
    const specNode = getEntry(doc.node, 'spec')?.value;
    const spec = specNode?.kind === 'map' ? specNode : undefined;
    const namesNode = spec ? getEntry(spec, 'names')?.value : undefined;
    const group = str(spec, 'group');
    const kind = str(namesNode?.kind === 'map' ? namesNode : undefined, 'kind');
    const scope = str(spec, 'scope');
    if (group && kind && scope) out.set(groupKind(group, kind), scope === 'Cluster');
  }
  return out;
}

/**
 * Compiles a valid bundle's variants into `state.variants`: one for the bundle's defaults,
 * then one per customization, each its overlay (if any) applied to the source's objects,
 * its values merged over the bundle's, and its ignoreDifferences and healthChecks. Leaves
 * `state.variants` empty and records errors on the state when any variant fails.
 */
export function compileVariants(
  state: BundleState,
  isClusterScoped: IsClusterScoped,
  budget: RenderCacheBudget,
): void {
  const spec = state.spec as BundleSpec;
  const overlaid = new Map<string, ManifestDoc[] | undefined>();
  const variantFor = (
    docs: readonly ManifestDoc[],
    values: BundleSpec['values'],
    origin: string,
    ignoreDifferences: BundleSpec['ignoreDifferences'],
    healthChecks: BundleSpec['healthChecks'],
  ) => {
    const { variant, errors } = compileVariant({
      bundle: state.name,
      namespace: spec.namespace,
      docs,
      values,
      valuesOrigin: origin,
      ignoreDifferences,
      isClusterScoped,
      budget,
      healthChecks,
    });
    state.errors.push(...errors);
    return variant;
  };
  const variants: (Variant | undefined)[] = [
    variantFor(state.base, spec.values, `values of ${state.file}`, spec.ignoreDifferences, spec.healthChecks),
  ];
  for (const c of spec.customizations) {
    let docs: ManifestDoc[] | undefined = state.base;
    if (c.overlay !== undefined) {
      if (!overlaid.has(c.overlay)) {
        overlaid.set(
          c.overlay,
          applyOverlay(
            state.base,
            state.overlays.get(c.overlay) ?? [],
            spec.namespace,
            state.name,
            state.errors,
          ),
        );
      }
      docs = overlaid.get(c.overlay);
    }
    if (!docs) continue;
    // A customization's ignoreDifferences add to the bundle's: what the bundle leaves to others stays left.
    const ignore = [...spec.ignoreDifferences, ...(c.ignoreDifferences ?? [])];
    // A customization's checks come first: for its clusters, they win over the bundle's for the same objects.
    const checks = [...(c.healthChecks ?? []), ...spec.healthChecks];
    variants.push(
      variantFor(docs, mergeValues(spec.values, c.values), customizationOrigin(c), ignore, checks),
    );
  }
  if (state.errors.length === 0) state.variants = variants as Variant[];
}

function customizationOrigin(c: CustomizationEntry): string {
  return `values of bundle.yaml and customizations[${c.index}]${c.name === undefined ? '' : ` "${c.name}"`}`;
}

/** Marks variants whose static objects another bundle also defines, so only those are checked per cluster. */
export function markContested(states: readonly BundleState[]): void {
  const owners = new Map<string, Set<string>>();
  for (const s of states) {
    for (const v of s.variants) {
      for (const id of v.staticIds) {
        let set = owners.get(id);
        if (!set) {
          set = new Set();
          owners.set(id, set);
        }
        set.add(s.name);
      }
    }
  }
  for (const s of states) {
    for (const v of s.variants) {
      v.contested = v.dynamicIds || v.staticIds.some((id) => (owners.get(id)?.size ?? 0) > 1);
    }
  }
}
