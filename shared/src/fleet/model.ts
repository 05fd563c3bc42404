/**
 * The fleet language's model: the types every step of the render pipeline passes along
 * (load -> source -> variant -> overlays -> policy -> rendered bundle -> plan). A leaf
 * module: it imports types only, and nothing from the pipeline (biome.json enforces it),
 * so any step, and `desired-state.ts`, can import it without a cycle.
 */

import type { BundleSpec, MatchKind } from '../bundle-spec.ts';
import type { ContentHash } from '../canonical.ts';
import type { FleetError, SourcePos } from '../errors.ts';
import type { Labels } from '../labels.ts';
import type { PolicySet, PolicyViolation } from '../policy/index.ts';
import type { BundleRef, HealthCheck } from '../protocol/desired-state.ts';
import type { IgnoreDifference } from '../protocol/ignore-differences.ts';
import type { ChartLocation, RepoPathRef } from '../source-spec.ts';
import type { Tenant } from '../tenants/spec.ts';
import type { VariableRef } from '../variables.ts';
import type { YMap } from '../yaml-source.ts';

/** One file of the fleet repo, path relative to the repo root with `/` separators. */
export interface RepoFile {
  readonly path: string;
  readonly content: string;
}

/** The fleet repo as handed to the core: a list of files, or a map from path to content. */
export type RepoFiles = Iterable<RepoFile> | ReadonlyMap<string, string>;

/** A cluster to plan for: its name (the cluster id) and the labels registered with the hub. */
export interface ClusterInput {
  readonly name: string;
  readonly labels?: Labels;
  /** The cluster's Kubernetes version as its agent last reported it, e.g. v1.33.2; Helm's `.Capabilities.KubeVersion`. */
  readonly kubeVersion?: string;
}

/** Which entry of `targets`, `exclude` or `customizations` matched. */
export interface EntryRef {
  readonly index: number;
  readonly name?: string;
  readonly kind: MatchKind;
}

/**
 * How one bundle relates to one cluster: `targeted` (with the first matching target entry
 * and customization), `excluded` (a target matched but an exclude entry too), or `unknown`
 * (the bundle's targets cannot be read, so it may or may not target the cluster).
 */
export interface BundleMatch {
  readonly bundle: string;
  readonly status: 'targeted' | 'excluded' | 'unknown';
  readonly target?: EntryRef;
  readonly excludedBy?: EntryRef;
  readonly customization?: EntryRef;
}

/** Identity and origin of one rendered object. `id` is `group/Kind/namespace/name` (namespace empty for cluster-scoped objects). */
export interface RenderedObjectRef {
  readonly apiVersion: string;
  readonly kind: string;
  readonly namespace?: string;
  readonly name: string;
  readonly id: string;
  readonly file: string;
  readonly line: number;
}

/**
 * A bundle rendered for one cluster: the canonical JSON of its `RenderedBundleDocument`
 * (objects in apply order) and its `sha256:` hash. Many clusters share one instance when
 * they render identically.
 */
export interface RenderedBundle {
  readonly bundle: string;
  readonly hash: ContentHash;
  readonly canonical: string;
  readonly objects: readonly RenderedObjectRef[];
  /** What the fleet's policies say of its objects, every binding (clusters pick theirs: `policy.ts`). */
  readonly violations?: readonly PolicyViolation[];
}

/** A bundle that rendered cleanly for a cluster. */
export interface PlannedBundle {
  readonly ref: BundleRef;
  readonly target: EntryRef;
  readonly customization?: EntryRef;
  readonly rendered: RenderedBundle;
}

/**
 * A bundle that cannot be updated on a cluster: `broken` (its own errors, for this cluster
 * or everywhere) or `dependency-broken` (a bundle it depends on is held). `targeting` is
 * `unknown` when the bundle's targets could not be read. Its last good reference stays in force.
 */
export interface HeldBundle {
  readonly bundle: string;
  readonly reason: 'broken' | 'dependency-broken';
  readonly targeting: 'matched' | 'unknown';
  readonly errors: readonly FleetError[];
}

/**
 * Everything one cluster should run at this commit. `status` is `ok` (every targeted bundle
 * rendered), `partial` (some bundles are held) or `held` (the cluster's own
 * `clusters/<name>.yaml` is broken, so its labels are unknown and nothing is planned).
 */
export interface ClusterPlan {
  readonly cluster: string;
  readonly labels: Labels;
  readonly status: 'ok' | 'partial' | 'held';
  /** In apply order: every bundle after those it depends on, otherwise by name. */
  readonly bundles: readonly PlannedBundle[];
  readonly held: readonly HeldBundle[];
  /** Every error that affects this cluster, sorted. */
  readonly errors: readonly FleetError[];
  /** Policy warnings (Warn and Audit bindings) on the bundles it gets; absent when none. */
  readonly warnings?: readonly FleetError[];
}

/** A bundle of the repo as loaded: its spec when valid, and its load-time errors. */
export interface BundleInfo {
  readonly name: string;
  /** bundles/<name>/bundle.yaml */
  readonly file: string;
  readonly spec?: BundleSpec;
  readonly errors: readonly FleetError[];
}

/** Plain Kubernetes YAML: every `.yaml`/`.yml` file of the bundle's directory but bundle.yaml and overlays/. */
export interface PlainSource {
  readonly kind: 'plain';
  /** Repo paths, sorted. */
  readonly files: readonly string[];
}

/**
 * Objects the render engines build (`engine-source.ts`): a Helm chart, a kustomization,
 * or a chart whose output a kustomization then changes. Rendered per variant and, for
 * Helm, per distinct set of cluster values and Kubernetes version.
 */
export interface EngineSource {
  readonly kind: 'engine';
  readonly helm: boolean;
  readonly kustomize: boolean;
}

/** Where a bundle's objects come from (see `source.ts`). */
export type BundleSource = PlainSource | EngineSource;

/** What a render engine made of an engine bundle for one cluster: its variant, or why there is none. */
export type EngineOutcome =
  | { readonly ok: true; readonly variant: Variant }
  | { readonly ok: false; readonly errors: readonly FleetError[] };

/** Helm values compiled for one variant: canonical JSON with holes for cluster variables. */
export interface CompiledHelmValues {
  readonly json: StrTemplate;
  readonly vars: readonly ClusterVariable[];
  /** Per variable: the label key, or null for the cluster name. */
  readonly varKeys: readonly (string | null)[];
}

/**
 * What one customization (or the bundle's defaults) makes of an engine bundle, before
 * any cluster: the chart and its values with holes for cluster variables, and the
 * kustomization directory.
 */
export interface EngineVariant {
  /** 0 for the bundle's defaults, i + 1 for customizations[i]. */
  readonly index: number;
  /** For messages: `values of bundles/web/bundle.yaml` or with `customizations[1] "prod"`. */
  readonly origin: string;
  readonly helm?: {
    readonly chart: ChartLocation;
    readonly version?: string;
    readonly values: CompiledHelmValues;
  };
  readonly kustomizeDir?: RepoPathRef;
  readonly ignoreDifferences: readonly IgnoreDifference[];
  readonly healthChecks: readonly HealthCheck[];
}

/** An engine bundle's variants, and its renders per cluster (filled by `Fleet.prepare`). */
export interface EngineRenders {
  readonly variants: readonly EngineVariant[];
  readonly byCluster: Map<string, EngineOutcome>;
}

/** A manifest document as read from a file, before or after overlays. */
export interface ManifestDoc {
  readonly file: string;
  readonly pos: SourcePos;
  readonly node: YMap;
  /** Set for a document of a SOPS-encrypted file, which travels as committed (`sealed.ts`). */
  readonly sealed?: SealedSource;
}

/** A SOPS-encrypted file as committed; the documents read from it share one. */
export interface SealedSource {
  readonly file: string;
  readonly format: 'yaml' | 'json';
  readonly content: string;
}

/** An entry of `targets`, `exclude` or `customizations`, compiled to a test on a cluster. */
export interface CompiledEntry {
  readonly ref: EntryRef;
  readonly test: (cluster: string, labels: Labels) => boolean;
}

/** The result of rendering a variant for one cluster. */
export type RenderOutcome =
  | {
      readonly ok: true;
      readonly rendered: RenderedBundle;
    }
  | { readonly ok: false; readonly errors: readonly FleetError[] };

/** Bounds the memory of render caches: each cache charges what it keeps (see `RenderCacheBudget`). */
export interface RenderBudget {
  charge(chars: number): void;
  /** The fleet's policies, which every render passes before any cluster gets it. */
  readonly policies?: PolicySet | undefined;
}

/** Literal text with holes for cluster variables: lits.length === vars.length + 1. */
export interface StrTemplate {
  readonly lits: readonly string[];
  readonly vars: readonly number[];
}

/** One object of a variant: its identity and its canonical JSON, with holes for cluster variables. */
export interface ObjectTemplate {
  readonly apiVersion: string;
  readonly kind: string;
  readonly group: string;
  readonly rank: number;
  readonly pos: SourcePos;
  readonly namespace: StrTemplate | undefined;
  readonly name: StrTemplate;
  readonly json: StrTemplate;
  readonly dynamicId: boolean;
  /** Set when the identity has no variables. */
  readonly ref: RenderedObjectRef | undefined;
}

/** A cluster variable (`${cluster.name}`, `${cluster.labels.*}`) that a variant references. */
export interface ClusterVariable {
  readonly ref: Exclude<VariableRef, { kind: 'values' }>;
  readonly pos: SourcePos;
}

/**
 * A bundle compiled for one customization (or for its defaults): templates with holes for
 * cluster variables only (values are resolved at compile time), plus a cache of renders
 * keyed by the values of the cluster variables it actually references.
 */
export interface Variant {
  readonly bundle: string;
  readonly vars: readonly ClusterVariable[];
  /** Per variable: the label key, or null for the cluster name. */
  readonly varKeys: readonly (string | null)[];
  readonly objects: readonly ObjectTemplate[];
  readonly dynamicIds: boolean;
  readonly staticIds: readonly string[];
  /** `"ignoreDifferences":[...],` ready to splice into the canonical JSON, or empty. */
  readonly ignoreJson: string;
  /** Whether to check this variant's objects against other bundles' objects for one cluster. Set after all bundles compile. */
  contested: boolean;
  readonly cache: Map<string, RenderOutcome> | undefined;
  readonly budget: RenderBudget;
  /** `,"healthChecks":[...]` in canonical JSON, or empty when the variant has no checks (the hash stays as before). */
  readonly healthChecksJson: string;
  /** The identities of its SOPS-encrypted objects, which are not in `objects`. */
  readonly sealedRefs: readonly RenderedObjectRef[];
  /** `,"sealed":[...]` in canonical JSON, or empty when the variant has no SOPS files (the hash stays as before). */
  readonly sealedJson: string;
}

/** A bundle as it moves through the pipeline: filled by load, linked by the dependency graph, compiled by the variant step. */
export interface BundleState {
  readonly name: string;
  readonly file: string;
  readonly spec: BundleSpec | undefined;
  readonly errors: FleetError[];
  targets: CompiledEntry[] | undefined;
  exclude: CompiledEntry[] | undefined;
  customizations: CompiledEntry[];
  /** Where its objects come from. */
  readonly source: BundleSource;
  /** The source's objects, before customizations. */
  base: ManifestDoc[];
  /** Each overlay's patches, by overlay name. */
  overlays: Map<string, ManifestDoc[]>;
  /** Compiled by the variant step: index 0 for the bundle's defaults, i + 1 for customizations[i]. */
  variants: Variant[];
  /** The states of spec.dependsOn, in the same order (filled once all bundles are known). */
  dependsOn: BundleState[];
  /** Engine bundles only: their renders per cluster, filled by `Fleet.prepare`. */
  engine?: EngineRenders;
  /** The tenant of the bundle's fleet source, whose boundary the planner holds it to; absent: trusted. */
  tenant?: Tenant;
  /**
   * Plain bundles with overlays: the indexes in `variants` of customizations that apply
   * one, compiled by `Fleet.prepare` (kustomize's strategic merge runs in the engine).
   */
  overlayVariants?: { readonly pending: readonly number[]; done: Promise<void> | undefined };
}
