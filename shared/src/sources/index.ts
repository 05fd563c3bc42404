/**
 * Fleet sources: the git repositories the hub reads besides its own (the platform
 * source). Declared in the platform source (`sources/<name>.yaml`, read by
 * {@link loadSourceSpecs}) or through the admin API ({@link parseFleetSourceJson}, the same
 * validator); their `bundles/` join the platform's files in one combined
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
  API_SOURCES_PREFIX,
  apiSourceFile,
  bundleNameProblem,
  DEFAULT_SOURCE_INTERVAL_MS,
  type FleetSourceDocument,
  type FleetSourceSpec,
  fleetSourceDocument,
  loadSourceSpecs,
  MIN_SOURCE_INTERVAL_MS,
  PLATFORM_SOURCE,
  parseFleetSourceJson,
  readFleetSource,
  repoUrlProblem,
  SOURCES_FOLDER,
  type SourceFile,
  type SourceProblem,
  type SourceRef,
  sourceOfBundle,
  sourceOfPath,
  sourceProblemError,
  validateFleetSource,
} from './spec.ts';
