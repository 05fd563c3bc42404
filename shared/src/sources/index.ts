/**
 * Fleet sources: the git repositories the hub reads besides its own (the platform
 * source). Declared in the platform source (`sources/<name>.yaml`, read by
 * {@link loadSourceSpecs}); their `bundles/` join the platform's files in one combined
 * tree ({@link combineSources}) under `<source>:`, and their bundles are named
 * `<source>/<bundle>`.
 */
export {
  bundleFileOf,
  type CombinedTree,
  combineSources,
  type FailedSource,
  type SourceOutcome,
  type SourceSnapshot,
  sourcePath,
} from './combine.ts';
export {
  bundleNameProblem,
  DEFAULT_SOURCE_INTERVAL_MS,
  type FleetSourceSpec,
  loadSourceSpecs,
  MIN_SOURCE_INTERVAL_MS,
  PLATFORM_SOURCE,
  readFleetSource,
  repoUrlProblem,
  SOURCES_FOLDER,
  type SourceFile,
  type SourceRef,
  sourceOfBundle,
  sourceOfPath,
} from './spec.ts';
