/**
 * The agent's pure core: object identity and order, inventories, drift comparison,
 * readiness rules, status reports and retry timing. Loads nothing heavy, so the agent can
 * import it (with the desired-state contract) and stay small.
 */
export { FLOTILLA_API_VERSION } from '../api-version.ts';
export { type ContentHash, canonicalJson, isContentHash, sha256Hash } from '../canonical.ts';
export {
  DesiredStateSignatureError,
  InvalidDesiredStateError,
  RenderedBundleIntegrityError,
} from '../errors.ts';
export { apiGroup, applyRank, CLUSTER_SCOPED_KINDS, groupKind } from '../kinds.ts';
export {
  type AgeRecipient,
  ageRecipientProblem,
  type BundleRef,
  type BundleState,
  type ChangeNotification,
  type ClusterStatusReport,
  type DesiredState,
  type DesiredTenant,
  type DriftedObject,
  entryPaths,
  type HealthCheck,
  type IgnoreDifference,
  isKubeVersion,
  type KubeObject,
  kubeVersionProblem,
  manifestEtag,
  openSignedDesiredState,
  type PathSegment,
  parseDesiredState,
  parseRenderedBundle,
  type RenderedBundleDocument,
  recipientLimits,
  recipientsProblems,
  type SealedFile,
  type SignedDesiredState,
  type StatusAnswer,
  sameRecipients,
  selects,
  withoutFields,
} from '../protocol/index.ts';
export { compileGlob, type Glob } from '../tenants/glob.ts';
export { appliedFields, coveredBy, type FieldsV1, ownedFieldDifferences, removedWhenDone } from './drift.ts';
export {
  applyWouldChange,
  CLIENT_SIDE_MANAGERS,
  type ManagedFieldsEntry,
  mergeFieldSets,
  takeOverClientSideFields,
} from './field-managers.ts';
export { assessHealth, type Health, hasReadiness, healthCheckIndex } from './health.ts';
export {
  bundleKey,
  decodeInventory,
  encodeInventory,
  type Inventory,
  type InventoryEntry,
  InventoryFormatError,
  pendingInventory,
  sameInventory,
  staleEntries,
} from './inventory.ts';
export { agentEnvironment, agentNodeArgs } from './launch.ts';
export {
  compareApplyOrder,
  describeRef,
  isClusterFoundation,
  type KubeJson,
  type ObjectRef,
  objectId,
  pruneOrder,
  rankGroups,
  refOf,
} from './objects.ts';
export { type BundleStatusInput, buildStatusReport, reportLimits } from './status.ts';
export { backoffDelay, isoTime, jittered } from './timing.ts';
