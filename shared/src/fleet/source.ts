/**
 * The source step: where a bundle's Kubernetes objects come from, before customizations
 * and overlays. Today every bundle is `plain` (the YAML files next to its bundle.yaml).
 * Helm charts and Kustomize directories are later kinds of {@link BundleSource}: each adds
 * a member to the union (in `model.ts`) and a case here, and gives the steps after it the
 * same thing: manifest documents with file and line. (A chart renders per values set, so
 * its case will also take the variant's values from the variant step.)
 */
import { type FleetError, fleetError } from '../errors.ts';
import type { BundleSource, ManifestDoc } from './model.ts';
import { readManifests } from './objects.ts';

/**
 * Reads a bundle's source into manifest documents, recording the problems of its files
 * (with file and line) in `errors`.
 */
export function readSource(
  source: BundleSource,
  files: ReadonlyMap<string, string>,
  bundle: string,
  errors: FleetError[],
): ManifestDoc[] {
  switch (source.kind) {
    case 'plain':
      return readManifests(source.files, files, bundle, errors, false);
    case 'engine':
      // Rendered per variant and cluster by `Fleet.prepare` (engine-source.ts).
      return [];
  }
}

/**
 * Problems of a source as a whole rather than of one of its files, reported at `file`
 * (the bundle's bundle.yaml): a plain bundle with no YAML files has nothing to deploy.
 */
export function sourceProblems(source: BundleSource, bundle: string, file: string): FleetError[] {
  switch (source.kind) {
    case 'engine':
      return [];
    case 'plain':
      return source.files.length > 0
        ? []
        : [
            fleetError(
              { file, line: 1, column: 1 },
              `bundle "${bundle}" has no Kubernetes objects (add YAML files next to bundle.yaml)`,
              bundle,
            ),
          ];
  }
}
