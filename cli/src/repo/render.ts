/**
 * The one place where the CLI renders a version of the fleet repo for clusters, so that
 * every offline preview (`flotilla diff`) renders as the hub's sync does. Async, as
 * rendering Helm and Kustomize sources runs an engine process.
 */
import {
  type ClusterInput,
  type EnginePorts,
  type FleetPlan,
  type RepoFile,
  renderFleet,
} from '@flotilla/shared';

/**
 * Renders `files` (a checkout or a commit) for `clusters`: every cluster's plan, and
 * every problem by file and line.
 *
 * @throws {FleetInputError} when the file list is inconsistent (a path given twice).
 */
export async function renderCheckout(
  files: readonly RepoFile[],
  clusters: readonly ClusterInput[],
  engine: EnginePorts,
): Promise<FleetPlan> {
  return renderFleet(files, clusters, engine);
}
