/**
 * The render engine port: what the fleet language asks of the renderer worker (Helm's and
 * kustomize's own code, in `renderer/`), without importing it. The types are a structural
 * subset of `RendererClient.render`'s, so a `RendererClient` is a `RenderEngine` as it is;
 * tests of the pure core pass a hand-written fake.
 */

/** One file of strategic-merge patches: its repo path (for errors) and its YAML. */
export interface EnginePatchFile {
  readonly file: string;
  readonly content: string;
}

/**
 * Strategic-merge patches applied by kustomize to `resources` (multi-document YAML), file
 * after file, document after document; each patch names its target by API group, kind,
 * name and, optionally, namespace (objects without one are in `namespace`).
 */
export interface PatchEngineRequest {
  readonly kind: 'patch';
  readonly resources: string;
  readonly patches: readonly EnginePatchFile[];
  readonly namespace?: string;
}

export type EngineRequest = PatchEngineRequest;

/** Why a render failed, with the file and line the engine names when it can. */
export interface EngineErrorDetail {
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
  | { readonly ok: false; readonly error: EngineErrorDetail };

/** Renders one request; a failed render is a value, a failed engine (worker died) an exception. */
export interface RenderEngine {
  render(request: EngineRequest): Promise<EngineResult>;
}
