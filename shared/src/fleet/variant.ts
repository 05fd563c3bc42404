/**
 * The variant step: a bundle compiled once per customization (and once for its
 * defaults). A variant is what a customization makes of the bundle: the source's objects
 * with the customization's overlay applied, `${values.*}` resolved from the bundle's values
 * merged with the customization's, and the `ignoreDifferences` and `healthChecks` that
 * travel with it. Cluster variables stay holes in the variant's templates, filled per
 * cluster by `renderVariant`.
 */
import { type BundleSpec, type CustomizationEntry, mergeValues } from '../bundle-spec.ts';
import { type FleetError, fleetError, normalizeFleetErrors } from '../errors.ts';
import { CLUSTER_SCOPED_KINDS, groupKind } from '../kinds.ts';
import { getEntry, type YMap } from '../yaml-source.ts';
import type { RenderEngine } from './engine.ts';
import type { BundleState, ManifestDoc, Variant } from './model.ts';
import { applyOverlayWithEngine, checkOverlay } from './overlay-engine.ts';
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
  const variants: (Variant | undefined)[] = [
    variantOf(
      state,
      state.base,
      spec.values,
      `values of ${state.file}`,
      spec.ignoreDifferences,
      spec.healthChecks,
      isClusterScoped,
      budget,
    ),
  ];
  const deferred: number[] = [];
  const checked = new Set<string>();
  for (const c of spec.customizations) {
    if (c.overlay !== undefined) {
      // Bad patches are found now, without the engine; merging waits for it.
      if (!checked.has(c.overlay)) {
        checked.add(c.overlay);
        checkOverlay(
          state.base,
          state.overlays.get(c.overlay) ?? [],
          spec.namespace,
          state.name,
          state.errors,
        );
      }
      // Overlays apply with kustomize's strategic merge, in the render engine: compiled by `compileOverlayVariants`.
      deferred.push(variants.length);
      variants.push(undefined);
      continue;
    }
    variants.push(
      variantOf(
        state,
        state.base,
        mergeValues(spec.values, c.values),
        customizationOrigin(c),
        ...extras(spec, c),
        isClusterScoped,
        budget,
      ),
    );
  }
  if (state.errors.length > 0) return;
  state.variants = variants as Variant[];
  if (deferred.length > 0) state.overlayVariants = { pending: deferred, done: undefined };
}

/** A customization's ignoreDifferences and healthChecks, with the bundle's. */
function extras(
  spec: BundleSpec,
  c: CustomizationEntry,
): [BundleSpec['ignoreDifferences'], BundleSpec['healthChecks']] {
  // A customization's ignoreDifferences add to the bundle's: what the bundle leaves to others stays left.
  // A customization's checks come first: for its clusters, they win over the bundle's for the same objects.
  return [
    [...spec.ignoreDifferences, ...(c.ignoreDifferences ?? [])],
    [...(c.healthChecks ?? []), ...spec.healthChecks],
  ];
}

function variantOf(
  state: BundleState,
  docs: readonly ManifestDoc[],
  values: BundleSpec['values'],
  origin: string,
  ignoreDifferences: BundleSpec['ignoreDifferences'],
  healthChecks: BundleSpec['healthChecks'],
  isClusterScoped: IsClusterScoped,
  budget: RenderCacheBudget,
  errors: FleetError[] = state.errors,
): Variant | undefined {
  const spec = state.spec as BundleSpec;
  const compiled = compileVariant({
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
  errors.push(...compiled.errors);
  return compiled.variant;
}

/**
 * Compiles the variants of a plain bundle's customizations that apply an overlay: each
 * overlay applied once, by the render engine, whatever the clusters. Idempotent; a
 * failure (a patch kustomize refuses, no engine) is the bundle's, for every cluster it
 * targets, as any error of its files.
 */
export async function compileOverlayVariants(
  state: BundleState,
  engine: RenderEngine | undefined,
  isClusterScoped: IsClusterScoped,
  budget: RenderCacheBudget,
): Promise<void> {
  const pending = state.overlayVariants;
  if (!pending) return;
  pending.done ??= (async () => {
    const spec = state.spec as BundleSpec;
    const errors: FleetError[] = [];
    if (!engine) {
      errors.push(
        fleetError(
          spec.customizations.find((c) => c.overlay !== undefined)?.overlayPos ?? {
            file: state.file,
            line: 1,
            column: 1,
          },
          `bundle "${state.name}" applies overlays, which need the render engine (kustomize's strategic merge), and this hub runs without it`,
          state.name,
        ),
      );
    } else {
      const overlaid = new Map<string, Promise<ManifestDoc[] | undefined>>();
      for (const index of pending.pending) {
        const c = spec.customizations[index - 1] as CustomizationEntry;
        const overlay = c.overlay as string;
        let docs = overlaid.get(overlay);
        if (!docs) {
          docs = applyOverlayWithEngine(
            state.base,
            state.overlays.get(overlay) ?? [],
            spec.namespace,
            state.name,
            engine,
            errors,
          );
          overlaid.set(overlay, docs);
        }
        const got = await docs;
        if (!got) continue;
        const variant = variantOf(
          state,
          got,
          mergeValues(spec.values, c.values),
          customizationOrigin(c),
          ...extras(spec, c),
          isClusterScoped,
          budget,
          errors,
        );
        // Checked against other bundles' objects per cluster: contested-ness was settled before overlays applied.
        if (variant) variant.contested = true;
        if (variant) state.variants[index] = variant;
      }
    }
    if (errors.length > 0) {
      state.errors.push(...normalizeFleetErrors(errors));
      state.variants = [];
    }
  })();
  await pending.done;
}

function customizationOrigin(c: CustomizationEntry): string {
  return `values of bundle.yaml and customizations[${c.index}]${c.name === undefined ? '' : ` "${c.name}"`}`;
}

/** Marks variants whose static objects another bundle also defines, so only those are checked per cluster. */
export function markContested(states: readonly BundleState[]): void {
  const owners = new Map<string, Set<string>>();
  for (const s of states) {
    for (const v of s.variants) {
      if (!v) continue; // an overlay's variant, compiled later (contested then)
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
      if (!v) continue; // an overlay's variant, compiled later (contested then)
      v.contested = v.dynamicIds || v.staticIds.some((id) => (owners.get(id)?.size ?? 0) > 1);
    }
  }
}
