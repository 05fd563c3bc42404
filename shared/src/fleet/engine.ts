/**
 * The ports through which the pure core reaches the render engines: the render worker
 * (Helm's and kustomize's own libraries, `renderer/`), and the chart fetcher for charts
 * from Helm repositories and OCI registries (`shared/src/charts/`). The worker's client
 * (`@flotilla/renderer`) implements {@link RenderEngine}; unit tests pass plain fakes.
 */

/** File contents by path relative to the chart or the repo root, base64-encoded. */
export type EncodedFiles = Readonly<Record<string, string>>;

/** `helm template`, of a chart given as files or as a packaged archive. */
export interface EngineHelmRequest {
  readonly kind: 'helm';
  /** The chart's files at the root (Chart.yaml, templates/ …). */
  readonly files?: EncodedFiles;
  /** Base64 of a packaged chart (.tgz), instead of `files`. */
  readonly archive?: string;
  readonly releaseName: string;
  readonly namespace: string;
  readonly values?: Readonly<Record<string, unknown>>;
  readonly kubeVersion?: string;
  readonly apiVersions?: readonly string[];
  readonly skipCRDs?: boolean;
}

/** `kustomize build dir`, `dir` a path inside `files`. */
export interface EngineKustomizeRequest {
  readonly kind: 'kustomize';
  readonly files: EncodedFiles;
  readonly dir: string;
}

/** One file of strategic-merge patches: its repo path (for errors) and its YAML. */
export interface EnginePatchFile {
  readonly file: string;
  readonly content: string;
}

/**
 * Strategic-merge patches applied by kustomize to `resources` (multi-document YAML), file
 * after file, document after document; each patch names its target by API group, kind,
 * name and, optionally, namespace (objects without one are in `namespace`). What bundle
 * overlays use.
 */
export interface PatchEngineRequest {
  readonly kind: 'patch';
  readonly resources: string;
  readonly patches: readonly EnginePatchFile[];
  readonly namespace?: string;
}

export type EngineRequest = EngineHelmRequest | EngineKustomizeRequest | PatchEngineRequest;

/** Where a render failed, as far as the engine says: its message, and the template or kustomization file and line. */
export interface EngineError {
  readonly message: string;
  readonly file?: string;
  readonly line?: number;
}

/**
 * Multi-document YAML, or why not. For a `patch` request, `sources` gives each output
 * object's index in `resources` (objects a patch deleted are missing).
 */
export type EngineResult =
  | { readonly ok: true; readonly manifests: string; readonly sources?: readonly number[] }
  | { readonly ok: false; readonly error: EngineError };

/** Another name for {@link EngineError}. */
export type EngineErrorDetail = EngineError;

/** Renders charts and kustomizations; a rejected promise means the engine itself failed (it died, or cannot start). */
export interface RenderEngine {
  render(request: EngineRequest): Promise<EngineResult>;
}

/**
 * Charts from repositories: the fetcher (`shared/src/charts/`) is the port, as it is; a
 * chart request, a fetched chart (checked against its repository's digest) and the result.
 */
export type {
  ChartFetcher,
  ChartRef as ChartRequest,
  FetchedChart,
  FetchResult as ChartFetchResult,
} from '../charts/fetcher.ts';

import type { ChartFetcher } from '../charts/fetcher.ts';

/** What `Fleet.prepare` renders with. Without an engine, Helm and Kustomize bundles are broken with a message saying so. */
export interface EnginePorts {
  readonly engine?: RenderEngine;
  readonly charts?: ChartFetcher;
}

/** A chart version a sync used: which range it resolved and to what, for reports. */
export interface ResolvedChart {
  readonly bundle: string;
  readonly chart: string;
  readonly constraint: string;
  readonly version: string;
  readonly digest: string;
}
