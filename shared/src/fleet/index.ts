/**
 * The fleet language: a fleet repo's files in, one plan per cluster out. The pipeline,
 * one module per step, read top to bottom:
 *
 * - `model.ts`: the types every step passes along (a leaf: imports no step).
 * - `fleet.ts`: {@link loadFleet} and {@link Fleet}, the public entry points.
 * - `render.ts`: a variant compiled to templates, and rendered for a cluster into the
 *   canonical `RenderedBundle` (what the hub stores, keyed by its hash).
 */
export { Fleet, type FleetPlan, loadFleet, planFleet } from './fleet.ts';
export type {
  BundleInfo,
  BundleMatch,
  ClusterInput,
  ClusterPlan,
  EntryRef,
  HeldBundle,
  PlannedBundle,
  RenderedBundle,
  RenderedObjectRef,
  RepoFile,
  RepoFiles,
} from './model.ts';
