/**
 * Diffs of the fleet: per cluster, the objects a change adds, removes or changes (Secret
 * values redacted), clusters grouped by identical change sets, and text or Markdown for
 * people. `flotilla diff` feeds it the hub's desired state (or a base commit) and a checkout.
 */
export {
  type BundleSide,
  bundleSide,
  type ChangeAction,
  type ClusterDiff,
  type ClusterSides,
  type DiffGroup,
  diffCluster,
  diffFleet,
  type FleetDiff,
  type ObjectChange,
  summarizeChanges,
} from './fleet-diff.ts';
export { clusterList, formatDiffMarkdown, formatDiffText, markdownLimit } from './format.ts';
export {
  type FieldChange,
  fieldChanges,
  isSecret,
  objectId,
  redactedText,
  redactPair,
  sealedStandIns,
  stableYaml,
  summarizeFields,
  unifiedDiff,
} from './object-diff.ts';
