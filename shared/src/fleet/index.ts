/**
 * The fleet language: a fleet repo's files in, one plan per cluster out. `fleet.ts` lists
 * the steps in order, one module each (load, source, dependency graph, variant, overlay,
 * render, policy, planner); `model.ts` holds the types they pass along.
 */
export type {
  ChartFetcher,
  ChartFetchResult,
  ChartRequest,
  EncodedFiles,
  EnginePorts,
  EngineRequest,
  EngineResult,
  FetchedChart,
  RenderEngine,
  ResolvedChart,
} from './engine.ts';
export { CachingEngine } from './engine-cache.ts';
export { HELM_OUTPUT_FILE } from './engine-source.ts';
export { Fleet, type FleetPlan, loadFleet, planFleet, renderFleet } from './fleet.ts';
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
