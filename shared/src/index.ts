/**
 * Flotilla's pure domain core: reads a fleet repo (as files handed in), targets bundles at
 * clusters by label, renders and hashes each cluster's bundles, and defines the signed
 * desired-state contract between hub and agent. No I/O, no SDKs.
 */

export { FLOTILLA_API_VERSION } from './api-version.ts';
export {
  type BundleSpec,
  type CustomizationEntry,
  type DependsOnEntry,
  DriftPolicy,
  type MatchEntry,
  MatchKind,
  type MatchRule,
  type ValueLeaf,
  type ValuesTree,
} from './bundle-spec.ts';
export { type ContentHash, canonicalJson, isContentHash, sha256Hash } from './canonical.ts';
export {
  type BundleRef,
  buildDesiredState,
  canonicalDesiredState,
  type DesiredState,
  type DesiredStateInput,
  desiredContentHash,
  generateSigningKeyPair,
  type HealthCheck,
  manifestEtag,
  openSignedDesiredState,
  orderBundleRefs,
  parseDesiredState,
  parseRenderedBundle,
  publicKeyFingerprint,
  type SignedDesiredState,
  signDesiredState,
  verifyDesiredState,
} from './desired-state.ts';
export {
  compareFleetErrors,
  DesiredStateSignatureError,
  type FleetError,
  FleetInputError,
  formatFleetError,
  InvalidDesiredStateError,
  LabelSelectorSyntaxError,
  normalizeFleetErrors,
  RenderedBundleIntegrityError,
  type SourcePos,
} from './errors.ts';
export type { RenderedBundle, RenderedObjectRef } from './fleet/index.ts';
export {
  type BundleInfo,
  type BundleMatch,
  CachingEngine,
  type ChartFetcher,
  type ChartFetchResult,
  type ChartRequest,
  type ClusterInput,
  type ClusterPlan,
  type EnginePorts,
  type EngineRequest,
  type EngineResult,
  type EntryRef,
  type FetchedChart,
  Fleet,
  type FleetPlan,
  HELM_OUTPUT_FILE,
  type HeldBundle,
  loadFleet,
  type PlannedBundle,
  planFleet,
  type RenderEngine,
  type RepoFile,
  type RepoFiles,
  type ResolvedChart,
  renderFleet,
} from './fleet/index.ts';
export { apiGroup, applyRank, CLUSTER_SCOPED_KINDS } from './kinds.ts';
export {
  effectiveLabels,
  type Labels,
  labelKeyProblem,
  labelsProblems,
  labelValueProblem,
  nameProblem,
} from './labels.ts';
export type {
  KubeObject,
  RenderedBundleDocument,
  SealedFile,
  SealedObject,
} from './protocol/desired-state.ts';
export type { AgeRecipient, ChangeNotification, StatusAnswer } from './protocol/index.ts';
export {
  ageRecipientProblem,
  CLUSTER_KEY_NAME,
  GROUP_KEY_PREFIX,
  type IgnoreDifference,
  type PathSegment,
  parseFieldPath,
  parseJsonPointer,
  recipientLimits,
  recipientsProblems,
  withoutFields,
} from './protocol/index.ts';
export {
  contentBase64,
  FLEET_REPO_FOLDERS,
  FLEET_REPO_ROOT_FILES,
  isBinaryContent,
  isFleetRepoPath,
  repoFileContent,
} from './repo-content.ts';
export type { RolloutSpec } from './rollout-spec.ts';
export {
  compileSelector,
  type LabelMatcher,
  type LabelSelector,
  type LabelSelectorRequirement,
  labelSelectorProblems,
  matchesSelector,
  SelectorOperator,
} from './selector.ts';
export { formatLabelSelector, parseLabelSelector } from './selector-string.ts';
export type { DeclaredClusterSpec, GroupSpec } from './spec-reader.ts';
export { parseTemplate, type TemplatePart, type VariableRef } from './variables.ts';
