/**
 * The ports the chart fetcher is built with: a version resolver (the renderer
 * worker's `resolve`, which runs Helm's own code), a cache of archives by digest,
 * and the credentials of private repositories by secret name.
 */

/** What the fetcher asks the resolver; the shape of the renderer client's `resolve`. */
export type ChartVersionQuery =
  | { readonly index: string; readonly chart: string; readonly version?: string }
  | { readonly tags: readonly string[]; readonly version?: string };

export type ChartVersionAnswer =
  | {
      readonly ok: true;
      readonly chart: {
        readonly version: string;
        readonly name?: string;
        readonly urls?: readonly string[];
        readonly digest?: string;
        readonly tag?: string;
      };
    }
  | { readonly ok: false; readonly error: { readonly message: string } };

/** Picks a chart version the way Helm does (`RendererClient.resolve`). */
export type ChartVersionResolver = (query: ChartVersionQuery) => Promise<ChartVersionAnswer>;

/**
 * Chart archives by their sha256 digest (`sha256:<hex>`). An entry's bytes always
 * hash to its key: the fetcher only puts verified archives, and a cache that
 * outlives a process (a directory) should check what it reads back.
 */
export interface ChartCache {
  get(digest: string): Promise<Uint8Array | undefined>;
  put(digest: string, archive: Uint8Array): Promise<void>;
}

/** Basic-auth credentials, or a bearer token. */
export type ChartCredentials =
  | { readonly username: string; readonly password: string }
  | { readonly token: string };

/**
 * Credentials of private chart repositories by the secret name a bundle refers to
 * (`auth.secretRef`). They come from the hub's configuration, never from the fleet
 * repository; `undefined` when there is no such secret.
 */
export interface CredentialResolver {
  resolve(secretRef: string): Promise<ChartCredentials | undefined>;
}
