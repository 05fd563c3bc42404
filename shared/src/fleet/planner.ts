/**
 * The planner: one cluster's plan from the compiled bundles. It targets, picks each
 * bundle's customization, renders its variant for the cluster, and applies the isolation
 * rule: a bundle broken for the cluster (or everywhere) is held, and so is every bundle
 * that depends on it, while the rest are planned normally. A policy's Deny and a tenant's
 * refusal (a render outside its boundary, a cluster outside its selector) hold a bundle
 * the same way.
 *
 * It runs for every bundle of every cluster, so it keeps its own bookkeeping, outside the
 * bundles and renders it reads: stamps per bundle (held or selected in the current call)
 * instead of per-call sets, and, per render shared by many clusters, the one bundle
 * reference and planned entry (per target entry) that all those clusters' plans share.
 */
import type { BundleSpec } from '../bundle-spec.ts';
import { type FleetError, fleetError, normalizeFleetErrors } from '../errors.ts';
import { effectiveLabels, type Labels } from '../labels.ts';
import type { PolicySet } from '../policy/index.ts';
import type { BundleRef } from '../protocol/desired-state.ts';
import type { DeclaredClusterSpec } from '../spec-reader.ts';
import { checkTenantRender, checkTenantTargets, tenantAllowsCluster } from '../tenants/check.ts';
import type { Tenant } from '../tenants/spec.ts';
import type {
  BundleMatch,
  BundleState,
  ClusterInput,
  ClusterPlan,
  CompiledEntry,
  HeldBundle,
  PlannedBundle,
  RenderedBundle,
  RenderedObjectRef,
  RenderOutcome,
  Variant,
} from './model.ts';
import { describeRef } from './objects.ts';
import { violationsFor } from './policy.ts';
import { renderVariant } from './render.ts';
import { firstEntry, matchOne } from './targeting.ts';
import type { IsClusterScoped } from './variant.ts';

interface Candidate {
  /** The bundle's position in apply order. */
  readonly at: number;
  readonly state: BundleState;
  readonly variant: Variant;
  readonly target: CompiledEntry;
  readonly custom: CompiledEntry | undefined;
  readonly outcome: Extract<RenderOutcome, { ok: true }>;
}

/** What the planner builds once per render: the reference, and the planned entries by target entry index. */
interface RenderMemo {
  readonly ref: BundleRef;
  readonly byTarget: PlannedBundle[];
}

export class Planner {
  readonly #bundles: readonly BundleState[];
  readonly #policies: PolicySet | undefined;
  readonly #declared: ReadonlyMap<string, DeclaredClusterSpec>;
  readonly #clusterFileErrors: ReadonlyMap<string, readonly FleetError[]>;
  readonly #position: ReadonlyMap<BundleState, number>;
  /** Per bundle, the positions of the bundles in its dependsOn, in the same order. */
  readonly #dependsOn: readonly (readonly number[])[];
  // Stamps instead of per-call sets: a bundle is held (or selected) in this call when its stamp is the call's.
  readonly #heldStamp: Uint32Array;
  readonly #selectedStamp: Uint32Array;
  #stamp = 0;
  // Keyed by the render, so an entry goes when the render caches let the render go.
  readonly #memo = new WeakMap<RenderedBundle, RenderMemo>();
  readonly #isClusterScoped: IsClusterScoped | undefined;
  // A tenant's refusals of a render, checked once however many clusters share it.
  readonly #tenantChecks = new WeakMap<RenderedBundle, FleetError[]>();

  /** `bundles` in apply order, compiled; `declared` and `clusterFileErrors` from `clusters/`. */
  constructor(
    bundles: readonly BundleState[],
    declared: ReadonlyMap<string, DeclaredClusterSpec>,
    clusterFileErrors: ReadonlyMap<string, readonly FleetError[]>,
    policies?: PolicySet,
    isClusterScoped?: IsClusterScoped,
  ) {
    this.#policies = policies;
    this.#isClusterScoped = isClusterScoped;
    this.#bundles = bundles;
    this.#declared = declared;
    this.#clusterFileErrors = clusterFileErrors;
    this.#position = new Map(bundles.map((b, i) => [b, i]));
    this.#dependsOn = bundles.map((b) => b.dependsOn.map((d) => this.#position.get(d) as number));
    this.#heldStamp = new Uint32Array(bundles.length);
    this.#selectedStamp = new Uint32Array(bundles.length);
  }

  /** See `Fleet.matchBundles`. */
  matchBundles(cluster: ClusterInput): BundleMatch[] {
    const labels = this.#labelsOf(cluster);
    const out: BundleMatch[] = [];
    for (const b of this.#bundles) {
      const m = matchOne(b, cluster.name, labels);
      if (m) out.push(m);
    }
    return out;
  }

  /** See `Fleet.planCluster`. */
  planCluster(cluster: ClusterInput): ClusterPlan {
    const fileErrors = this.#clusterFileErrors.get(cluster.name);
    if (fileErrors) {
      return {
        cluster: cluster.name,
        labels: cluster.labels ?? {},
        status: 'held',
        bundles: [],
        held: [],
        errors: normalizeFleetErrors(fileErrors),
      };
    }
    const labels = this.#labelsOf(cluster);
    const name = cluster.name;
    const stamp = ++this.#stamp;
    const heldStamp = this.#heldStamp;
    const selectedStamp = this.#selectedStamp;
    const held: HeldBundle[] = [];
    const hold = (at: number, h: HeldBundle) => {
      heldStamp[at] = stamp;
      held.push(h);
    };
    const ok: Candidate[] = [];
    let warnings: FleetError[] | undefined;
    const bundles = this.#bundles;
    for (let at = 0; at < bundles.length; at++) {
      const b = bundles[at] as BundleState;
      if (!b.targets || !b.exclude) {
        hold(at, { bundle: b.name, reason: 'broken', targeting: 'unknown', errors: b.errors });
        continue;
      }
      const target = firstEntry(b.targets, name, labels);
      if (!target || (b.exclude.length > 0 && firstEntry(b.exclude, name, labels))) continue;
      if (b.errors.length > 0) {
        hold(at, { bundle: b.name, reason: 'broken', targeting: 'matched', errors: b.errors });
        continue;
      }
      if (b.tenant && !tenantAllowsCluster(b.tenant, labels)) {
        const refused = checkTenantTargets(
          b.tenant,
          { name, labels },
          {
            bundle: b.name,
            file: b.file,
            line: (b.spec as BundleSpec).targets[target.ref.index]?.pos.line ?? 1,
          },
        ) as FleetError;
        hold(at, { bundle: b.name, reason: 'broken', targeting: 'matched', errors: [refused] });
        continue;
      }
      const custom = firstEntry(b.customizations, name, labels);
      let variant: Variant;
      if (b.engine) {
        const rendered = b.engine.byCluster.get(name);
        if (!rendered?.ok) {
          hold(at, {
            bundle: b.name,
            reason: 'broken',
            targeting: 'matched',
            errors: rendered ? rendered.errors : [notPrepared(b, name)],
          });
          continue;
        }
        variant = rendered.variant;
      } else {
        const compiled = b.variants[custom ? custom.ref.index + 1 : 0];
        if (!compiled) {
          // An overlay's variant, compiled by Fleet.prepare.
          hold(at, {
            bundle: b.name,
            reason: 'broken',
            targeting: 'matched',
            errors: [notPrepared(b, name)],
          });
          continue;
        }
        variant = compiled;
      }
      const outcome = renderVariant(variant, name, labels);
      if (!outcome.ok) {
        hold(at, { bundle: b.name, reason: 'broken', targeting: 'matched', errors: outcome.errors });
        continue;
      }
      if (b.tenant) {
        const refused = this.#tenantRefusals(b, outcome.rendered);
        if (refused.length > 0) {
          hold(at, { bundle: b.name, reason: 'broken', targeting: 'matched', errors: refused });
          continue;
        }
      }
      if (outcome.rendered.violations) {
        // A policy's Deny holds the bundle here, as a broken bundle; Warn and Audit only report.
        const v = violationsFor(outcome.rendered, this.#policies, labels);
        if (v.deny.length > 0) {
          hold(at, { bundle: b.name, reason: 'broken', targeting: 'matched', errors: v.deny });
          continue;
        }
        if (v.warn.length > 0) {
          warnings ??= [];
          warnings.push(...v.warn);
        }
      }
      ok.push({ at, state: b, variant, target, custom, outcome });
    }

    // Objects defined by two bundles for this cluster: both bundles are held.
    if (ok.length > 1) {
      for (const [state, errors] of findDuplicates(ok)) {
        hold(this.#position.get(state) as number, {
          bundle: state.name,
          reason: 'broken',
          targeting: 'matched',
          errors,
        });
      }
    }

    // Dependencies, in apply order so that holds cascade.
    const planned: PlannedBundle[] = [];
    for (const item of ok) {
      const b = item.state;
      if (heldStamp[item.at] === stamp) continue;
      const spec = b.spec as BundleSpec;
      if (spec.dependsOn.length > 0) {
        const deps = this.#dependsOn[item.at] as readonly number[];
        const depErrors: FleetError[] = [];
        let reason: HeldBundle['reason'] = 'broken';
        spec.dependsOn.forEach((dep, i) => {
          const d = deps[i] as number;
          if (heldStamp[d] === stamp) {
            reason = 'dependency-broken';
            depErrors.push(
              fleetError(
                dep.pos,
                `dependsOn[${dep.index}]: bundle "${dep.name}" has errors for cluster "${name}"`,
                b.name,
              ),
            );
          } else if (selectedStamp[d] !== stamp) {
            depErrors.push(
              fleetError(
                dep.pos,
                `dependsOn[${dep.index}]: bundle "${dep.name}" does not target cluster "${name}"`,
                b.name,
              ),
            );
          }
        });
        if (depErrors.length > 0) {
          hold(item.at, { bundle: b.name, reason, targeting: 'matched', errors: depErrors });
          continue;
        }
      }
      selectedStamp[item.at] = stamp;
      planned.push(this.#plannedFor(spec, item));
    }
    const warned = warnings ? { warnings: normalizeFleetErrors(warnings) } : {};
    if (held.length === 0)
      return { cluster: name, labels, status: 'ok', bundles: planned, held, errors: [], ...warned };
    held.sort((a, b) => (a.bundle < b.bundle ? -1 : 1));
    return {
      cluster: name,
      labels,
      status: 'partial',
      bundles: planned,
      held,
      errors: normalizeFleetErrors(held.flatMap((h) => h.errors)),
      ...warned,
    };
  }

  /** What the bundle's tenant refuses of a render (its namespaces, cluster-scoped kinds, bindings), once per render. */
  #tenantRefusals(b: BundleState, rendered: RenderedBundle): FleetError[] {
    let refused = this.#tenantChecks.get(rendered);
    if (!refused) {
      const spec = b.spec as BundleSpec;
      refused = checkTenantRender(b.tenant as Tenant, rendered, {
        bundle: b.name,
        file: b.file,
        namespace: spec.helm?.namespace ?? spec.namespace,
        ...(this.#isClusterScoped ? { isClusterScoped: this.#isClusterScoped } : {}),
      });
      this.#tenantChecks.set(rendered, refused);
    }
    return refused;
  }

  /** A cluster's labels: registered, overridden key by key by its `clusters/<name>.yaml`. */
  labelsOf(cluster: ClusterInput): Labels {
    return this.#labelsOf(cluster);
  }

  #labelsOf(cluster: ClusterInput): Labels {
    const declared = this.#declared.get(cluster.name);
    return declared ? effectiveLabels(cluster.labels, declared.labels) : (cluster.labels ?? {});
  }

  // One reference and one planned entry per render (and target entry), shared by every cluster that gets that
  // render: plans stay small, and desired-state serialization can cache per reference.
  #plannedFor(spec: BundleSpec, item: Candidate): PlannedBundle {
    const rendered = item.outcome.rendered;
    // A variant without a render cache renders anew for every cluster (it names the cluster): nothing to share.
    let memo = item.variant.cache ? this.#memo.get(rendered) : undefined;
    if (!memo) {
      memo = {
        ref: {
          name: spec.name,
          hash: rendered.hash,
          namespace: spec.namespace,
          dependsOn: spec.dependsOn.map((d) => d.name).sort(),
          driftPolicy: spec.driftPolicy,
          paused: spec.paused,
          ...(item.state.tenant ? { tenant: item.state.tenant.name } : {}),
        },
        byTarget: [],
      };
      if (item.variant.cache) this.#memo.set(rendered, memo);
    }
    const index = item.target.ref.index;
    let planned = memo.byTarget[index];
    if (!planned) {
      planned = item.custom
        ? { ref: memo.ref, target: item.target.ref, customization: item.custom.ref, rendered }
        : { ref: memo.ref, target: item.target.ref, rendered };
      memo.byTarget[index] = planned;
    }
    return planned;
  }
}

function notPrepared(b: BundleState, cluster: string): FleetError {
  return fleetError(
    { file: b.file, line: 1, column: 1 },
    `bundle "${b.name}" was not rendered for cluster "${cluster}" (Helm and Kustomize bundles and overlays render in Fleet.prepare, before planning)`,
    b.name,
  );
}

function findDuplicates(ok: readonly Candidate[]): Map<BundleState, FleetError[]> {
  const out = new Map<BundleState, FleetError[]>();
  let full = false;
  let contested = 0;
  for (const o of ok) {
    if (o.variant.dynamicIds) full = true;
    if (o.variant.contested) contested++;
  }
  if (!full && contested < 2) return out;
  const seen = new Map<string, { state: BundleState; ref: RenderedObjectRef }>();
  const add = (state: BundleState, error: FleetError) => {
    const list = out.get(state) ?? [];
    list.push(error);
    out.set(state, list);
  };
  for (const item of ok) {
    if (!full && !item.variant.contested) continue;
    for (const ref of item.outcome.rendered.objects) {
      const first = seen.get(ref.id);
      if (!first) {
        seen.set(ref.id, { state: item.state, ref });
        continue;
      }
      if (first.state === item.state) continue;
      const what = describeRef(ref);
      add(
        first.state,
        fleetError(
          { file: first.ref.file, line: first.ref.line, column: 1 },
          `duplicate object ${what}: also defined by bundle "${item.state.name}" at ${ref.file}:${ref.line}`,
          first.state.name,
        ),
      );
      add(
        item.state,
        fleetError(
          { file: ref.file, line: ref.line, column: 1 },
          `duplicate object ${what}: also defined by bundle "${first.state.name}" at ${first.ref.file}:${first.ref.line}`,
          item.state.name,
        ),
      );
    }
  }
  return out;
}
