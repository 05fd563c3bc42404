/**
 * The fleet language's entry points. A fleet repo goes through these steps, top to bottom:
 *
 * 1. load (`load.ts`): classify and parse the repo's files once; per bundle, its spec, its
 *    targeting and its source's objects (`source.ts`: plain YAML; Helm charts and
 *    kustomizations are built by the render engines, `engine-source.ts`).
 * 2. dependencies (`dependency-graph.ts`): one pass over `dependsOn` for the apply order.
 * 3. variants (`variant.ts`): per customization, its overlay (`overlay.ts`) and values,
 *    compiled into templates with holes for cluster variables (`render.ts`).
 *    Helm and Kustomize bundles compile to their inputs per variant, rendered for the
 *    clusters by `Fleet.prepare` (async: the engines run in another process).
 * 4. plan (`planner.ts`): per cluster, target, pick the customization, render its
 *    variant into the canonical rendered bundle (`render.ts`), which the policy step
 *    checks (`policy.ts`), with a tenant's bundles checked against its boundary
 *    (`tenants/`), and hold what is broken for the cluster.
 *
 * The types the steps pass along are in `model.ts`.
 */
import { type FleetError, FleetInputError, normalizeFleetErrors } from '../errors.ts';
import type { RolloutSpec } from '../rollout-spec.ts';
import type { DeclaredClusterSpec, GroupSpec } from '../spec-reader.ts';
import { resolveDependencies } from './dependency-graph.ts';
import type { EnginePorts, ResolvedChart } from './engine.ts';
import { compileEngineVariants, prepareEngineBundles } from './engine-source.ts';
import { collectFiles, loadRepo } from './load.ts';
import type { BundleInfo, BundleMatch, BundleState, ClusterInput, ClusterPlan, RepoFiles } from './model.ts';
import { Planner } from './planner.ts';
import { RenderCacheBudget } from './render.ts';
import {
  compileOverlayVariants,
  compileVariants,
  type IsClusterScoped,
  markContested,
  scopeTable,
} from './variant.ts';

/**
 * Loads a fleet repo: parses and validates every file once, compiles each bundle and
 * customization for fast per-cluster rendering. Never throws on bad repo content: problems
 * are in {@link Fleet.errors} and make the bundles they belong to broken.
 *
 * @throws {FleetInputError} only when the file list itself is inconsistent (a path given twice).
 * @example
 * const fleet = loadFleet([{ path: 'bundles/web/bundle.yaml', content: '...' }, ...]);
 * const plan = fleet.planCluster({ name: 'prod-eu-1', labels: { env: 'prod', region: 'eu' } });
 */
export function loadFleet(files: RepoFiles): Fleet {
  return new Fleet(collectFiles(files));
}

/**
 * A loaded fleet repo at one commit. Plan clusters with {@link Fleet.planCluster}; renders
 * are cached per bundle, customization and referenced cluster-variable values, so
 * clusters that render identically share one `RenderedBundle`.
 */
export class Fleet {
  /** Every problem found while loading, sorted by file and line. */
  readonly errors: readonly FleetError[];
  /** Problems that hold nothing, sorted by file and line: plain Secrets in the repo (unless `fleet.yaml` refuses them). */
  readonly warnings: readonly FleetError[];
  /** Bundles in apply order (dependencies first, then by name). */
  readonly bundles: readonly BundleInfo[];
  readonly groups: ReadonlyMap<string, GroupSpec>;
  /** The valid rollout strategies of `rollouts/<name>.yaml`; each bundle's own is `spec.rollout`. */
  readonly rollouts: ReadonlyMap<string, RolloutSpec>;
  /** Labels declared in git under `clusters/`; they override registered labels key by key. */
  readonly declaredClusters: ReadonlyMap<string, DeclaredClusterSpec>;
  /**
   * Each valid tenant's `namespaces` globs, by name: what a desired state signs for the
   * tenants of its bundles, so the agent binds a tenant only in matching namespaces.
   */
  readonly tenantNamespaces: ReadonlyMap<string, readonly string[]>;

  readonly #planner: Planner;
  readonly #files: ReadonlyMap<string, string>;
  readonly #states: readonly BundleState[];
  readonly #isClusterScoped: IsClusterScoped;
  readonly #budget: RenderCacheBudget;
  #resolvedCharts: readonly ResolvedChart[] = [];

  /** `files` as {@link loadFleet} gives them: normalized paths, sorted. */
  constructor(files: ReadonlyMap<string, string>) {
    // 1. Load: every file parsed and validated once; each bundle's source read.
    const repo = loadRepo(files);
    const states = repo.bundles;
    // 2. Dependencies: unknown bundles, cycles and the apply order, in one pass.
    const order = resolveDependencies(states);
    // 3. Variants of every valid bundle, with overlays and values, compiled to templates;
    //    for Helm and Kustomize bundles, their inputs per variant (rendered by `prepare`).
    const isClusterScoped = scopeTable(states);
    const budget = new RenderCacheBudget(undefined, repo.policies);
    for (const state of states) {
      if (!state.spec || state.errors.length > 0) continue;
      if (state.source.kind === 'engine') compileEngineVariants(state, files);
      else compileVariants(state, isClusterScoped, budget);
    }
    this.#files = files;
    this.#states = states;
    this.#isClusterScoped = isClusterScoped;
    this.#budget = budget;
    markContested(states);
    // 4. Plans, per cluster on demand: render, policy, isolation.
    this.#planner = new Planner(
      order,
      repo.declaredClusters,
      repo.clusterFileErrors,
      repo.policies,
      isClusterScoped,
    );

    this.groups = repo.groups;
    this.rollouts = repo.rollouts;
    this.declaredClusters = repo.declaredClusters;
    this.tenantNamespaces = new Map(
      [...repo.tenants].map(([name, t]) => [name, t.namespaces.map((g) => g.pattern)]),
    );
    this.bundles = order.map((s) => ({
      name: s.name,
      file: s.file,
      ...(s.spec && s.errors.length === 0 ? { spec: s.spec } : {}),
      errors: normalizeFleetErrors(s.errors),
    }));
    this.errors = normalizeFleetErrors([...repo.errors, ...states.flatMap((s) => s.errors)]);
    this.warnings = repo.warnings;
  }

  /** Whether any bundle is built by Helm or kustomize, so that planning needs {@link Fleet.prepare} first. */
  get needsEngine(): boolean {
    return this.#states.some((s) => s.source.kind === 'engine' || s.overlayVariants !== undefined);
  }

  /** Whether a Helm bundle renders with each cluster's own Kubernetes version (no `helm.kubeVersion` override). */
  get usesClusterKubeVersion(): boolean {
    return this.#states.some((s) => s.spec?.helm !== undefined && s.spec.helm.kubeVersion === undefined);
  }

  /** The chart versions {@link Fleet.prepare} resolved so far, per bundle. */
  get resolvedCharts(): readonly ResolvedChart[] {
    return this.#resolvedCharts;
  }

  /**
   * Applies overlays (kustomize's strategic merge, once per overlay) and renders the Helm
   * and Kustomize bundles for `clusters` with the render engine: one
   * render per bundle and distinct variant, values and Kubernetes version, however many
   * clusters share it. Call it before {@link Fleet.planCluster} for those clusters; a
   * cluster planned without it has its engine bundles held. Renders stay
   * attached to their clusters until {@link Fleet.forget}. Without an engine in
   * `ports`, those bundles are broken with a message saying so.
   */
  async prepare(clusters: Iterable<ClusterInput>, ports: EnginePorts): Promise<void> {
    if (!this.needsEngine) return;
    await Promise.all(
      this.#states.map((s) => compileOverlayVariants(s, ports.engine, this.#isClusterScoped, this.#budget)),
    );
    const resolved = await prepareEngineBundles(this.#states, [...clusters], {
      files: this.#files,
      isClusterScoped: this.#isClusterScoped,
      budget: this.#budget,
      labelsOf: (c) => this.#planner.labelsOf(c),
      ports,
    });
    const known = new Set(this.#resolvedCharts.map((r) => `${r.bundle}\u0000${r.digest}`));
    const added = resolved.filter((r) => !known.has(`${r.bundle}\u0000${r.digest}`));
    if (added.length > 0) this.#resolvedCharts = [...this.#resolvedCharts, ...added];
  }

  /** Drops what {@link Fleet.prepare} kept for these clusters: a sync forgets each window once planned. */
  forget(clusters: Iterable<string>): void {
    const names = [...clusters];
    for (const s of this.#states) {
      if (!s.engine) continue;
      for (const name of names) s.engine.byCluster.delete(name);
    }
  }

  /**
   * Which bundles a cluster gets and why: for every bundle whose targets match it (or
   * cannot be read), the first matching target entry, the exclude entry that removed it,
   * and the customization it gets (first match wins). This is what `flotilla targets` shows.
   */
  matchBundles(cluster: ClusterInput): BundleMatch[] {
    return this.#planner.matchBundles(cluster);
  }

  /**
   * Plans one cluster: targets, picks customizations, renders every targeted bundle and
   * applies the isolation rule. A bundle that is broken (for every cluster or just this
   * one: an undefined label variable, an object another bundle also defines, a dependency
   * that does not target the cluster) is held, and so is every bundle depending on it;
   * the rest of the cluster's bundles are planned normally.
   */
  planCluster(cluster: ClusterInput): ClusterPlan {
    return this.#planner.planCluster(cluster);
  }
}

/**
 * {@link planFleet} with the render engine: loads, renders the Helm and Kustomize bundles
 * for the clusters, and plans them. What the hub and the CLI's previews use.
 */
export async function renderFleet(
  files: RepoFiles | Fleet,
  clusters: Iterable<ClusterInput>,
  ports: EnginePorts,
): Promise<FleetPlan> {
  const fleet = files instanceof Fleet ? files : loadFleet(files);
  const list = [...clusters];
  await fleet.prepare(list, ports);
  return planFleet(fleet, list);
}

/** The result of planning a whole fleet: every cluster's plan, and all errors (load and render) sorted. */
export interface FleetPlan {
  readonly fleet: Fleet;
  /** Sorted by cluster name. */
  readonly clusters: readonly ClusterPlan[];
  readonly errors: readonly FleetError[];
}

/**
 * Loads a repo (or takes an already loaded {@link Fleet}) and plans every given cluster.
 * For large fleets prefer `loadFleet` once and `fleet.planCluster` per cluster, streaming
 * results out, so that renders of unique bundles need not all be held at once.
 *
 * @example
 * const { clusters, errors } = planFleet(files, [{ name: 'prod-eu-1', labels: { env: 'prod' } }]);
 */
export function planFleet(files: RepoFiles | Fleet, clusters: Iterable<ClusterInput>): FleetPlan {
  const fleet = files instanceof Fleet ? files : loadFleet(files);
  const seen = new Set<string>();
  const list = [...clusters].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const plans: ClusterPlan[] = [];
  const errors: FleetError[] = [...fleet.errors];
  for (const c of list) {
    if (seen.has(c.name)) throw new FleetInputError(`cluster "${c.name}" is given twice`);
    seen.add(c.name);
    const plan = fleet.planCluster(c);
    plans.push(plan);
    errors.push(...plan.errors);
  }
  return { fleet, clusters: plans, errors: normalizeFleetErrors(errors) };
}
