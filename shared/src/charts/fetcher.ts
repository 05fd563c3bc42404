/**
 * Fetches Helm charts from Helm HTTP repositories and OCI registries, verifies
 * each archive against the digest its repository publishes, and caches archives
 * by that digest. Which version a constraint picks is Helm's own decision: the
 * resolver is the renderer worker's `resolve`, which runs Helm's code.
 *
 * A failure is a value (`{ ok: false, reason, error }`) naming the repository,
 * chart and version and saying why; it never contains credentials. The caller
 * keeps its last good render.
 */
import { createHash } from 'node:crypto';
import { ChartFetchError, type ChartFetchFailure, redactUrl } from './errors.ts';
import { type HttpGetOptions, httpGet, readBody, statusError } from './http-client.ts';
import type { ChartCache, ChartCredentials, ChartVersionResolver, CredentialResolver } from './ports.ts';

/**
 * A chart in a repository. HTTP: `repo` is the repository URL and `chart` the
 * chart's name. OCI: `chart` is `oci://host[:port]/path/name` and `repo` is absent.
 */
export interface ChartRef {
  readonly repo?: string;
  readonly chart: string;
  /** A version or a semver constraint (`^1.2`, `>=1.0 <2`); absent or empty: the newest stable. */
  readonly version?: string;
  /** Credentials of a private repository, by secret name (see CredentialResolver). */
  readonly auth?: { readonly secretRef: string };
}

export interface FetchedChart {
  readonly name: string;
  /** The version the constraint resolved to: record it with the render. */
  readonly version: string;
  /** `sha256:<hex>` of the archive, as the index or the OCI manifest names it. */
  readonly digest: string;
  /** The packaged chart (.tgz), for the renderer's `archive` field. */
  readonly archive: Uint8Array;
  /** Where it came from: the archive URL, or `oci://host/path/name:tag`. */
  readonly source: string;
  /** Served from the cache, not downloaded. */
  readonly fromCache: boolean;
}

export type FetchResult =
  | { readonly ok: true; readonly chart: FetchedChart }
  | { readonly ok: false; readonly reason: ChartFetchFailure; readonly error: string };

export interface ChartFetcherOptions {
  readonly resolve: ChartVersionResolver;
  readonly cache: ChartCache;
  readonly credentials: CredentialResolver;
  /** Defaults to the global fetch. */
  readonly fetch?: typeof fetch;
  /** Per request (index, tags, manifest, archive). Default 30 s. */
  readonly timeoutMs?: number;
  /** Largest archive accepted, in bytes. Default 20 MiB (Helm charts are kilobytes to a few MB). */
  readonly maxArchiveBytes?: number;
  /**
   * Registries (`host:port`) spoken to over plain HTTP instead of HTTPS, as
   * `helm pull --plain-http`: a test registry on loopback. Empty by default.
   */
  readonly plainHttpRegistries?: readonly string[];
}

export interface ChartFetcher {
  fetchChart(ref: ChartRef): Promise<FetchResult>;
}

const defaultMaxArchiveBytes = 20 * 1024 * 1024;

/** OCI media types of a Helm chart (Helm's pkg/registry constants). */
export const ociManifestMediaType = 'application/vnd.oci.image.manifest.v1+json';
export const helmChartLayerMediaType = 'application/vnd.cncf.helm.chart.content.v1.tar+gzip';

/**
 * @example
 * const fetcher = createChartFetcher({
 *   resolve: (q) => renderer.resolve(q),
 *   cache: new MemoryChartCache(),
 *   credentials: staticCredentialResolver(new Map()),
 * });
 * const result = await fetcher.fetchChart({ repo: 'https://charts.example.com', chart: 'web', version: '^1.2' });
 * if (result.ok) await renderer.render({ kind: 'helm', archive: encodeArchive(result.chart.archive), ... });
 */
export function createChartFetcher(opts: ChartFetcherOptions): ChartFetcher {
  const http: HttpGetOptions = { fetch: opts.fetch ?? globalThis.fetch, timeoutMs: opts.timeoutMs ?? 30_000 };
  const plainHttp = new Set(opts.plainHttpRegistries ?? []);
  return {
    async fetchChart(ref) {
      try {
        const credentials = await credentialsOf(opts.credentials, ref);
        const chart = ref.chart.startsWith('oci://')
          ? await fetchFromRegistry(opts, http, plainHttp, ref, credentials)
          : await fetchFromRepository(opts, http, ref, credentials);
        return { ok: true, chart };
      } catch (err) {
        if (!(err instanceof ChartFetchError)) throw err;
        return { ok: false, reason: err.reason, error: `${describe(ref)}: ${err.message}` };
      }
    },
  };
}

function describe(ref: ChartRef): string {
  const version = ref.version ? `version "${ref.version}"` : 'newest stable version';
  if (ref.chart.startsWith('oci://')) return `chart ${redactUrl(ref.chart)} (${version})`;
  return `chart "${ref.chart}" (${version}) from ${ref.repo ? redactUrl(ref.repo) : '(no repo)'}`;
}

async function credentialsOf(
  resolver: CredentialResolver,
  ref: ChartRef,
): Promise<ChartCredentials | undefined> {
  if (!ref.auth) return undefined;
  const found = await resolver.resolve(ref.auth.secretRef);
  if (!found)
    throw new ChartFetchError('auth-refused', `no credentials named "${ref.auth.secretRef}" are configured`);
  return found;
}

function authorizationOf(credentials: ChartCredentials): string {
  return 'token' in credentials
    ? `Bearer ${credentials.token}`
    : `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
}

function authHint(ref: ChartRef, credentials: ChartCredentials | undefined): string {
  return credentials
    ? `the credentials "${ref.auth?.secretRef}" were refused`
    : 'no credentials were given (auth.secretRef)';
}

function sha256(data: Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

async function cached(
  cache: ChartCache,
  digest: string,
  download: () => Promise<Uint8Array>,
): Promise<{ archive: Uint8Array; fromCache: boolean }> {
  const hit = await cache.get(digest);
  if (hit) return { archive: hit, fromCache: true };
  const archive = await download();
  await cache.put(digest, archive);
  return { archive, fromCache: false };
}

async function readArchive(
  http: HttpGetOptions,
  url: URL,
  res: Response,
  maxBytes: number,
  what: string,
): Promise<Uint8Array> {
  const tooBig = () =>
    new ChartFetchError('invalid', `${what} is larger than the ${maxBytes} bytes an archive may have`);
  const declared = Number(res.headers.get('content-length') ?? '0');
  if (declared > maxBytes) {
    await res.body?.cancel();
    throw tooBig();
  }
  const body = await readBody(http, url, res);
  if (body.byteLength > maxBytes) throw tooBig();
  return body;
}

function checkDigest(archive: Uint8Array, expected: string, what: string): void {
  const actual = sha256(archive);
  if (actual !== expected)
    throw new ChartFetchError(
      'digest-mismatch',
      `${what} has digest ${actual} but the repository says ${expected}; refusing it`,
    );
}

/** `helm pull --repo URL CHART --version V`: index.yaml, Helm's choice, the archive, its digest. */
async function fetchFromRepository(
  opts: ChartFetcherOptions,
  http: HttpGetOptions,
  ref: ChartRef,
  credentials: ChartCredentials | undefined,
): Promise<FetchedChart> {
  if (!ref.repo) throw new ChartFetchError('invalid', 'a chart needs repo (a Helm repository URL) or oci://');
  let base: URL;
  try {
    base = new URL(ref.repo.endsWith('/') ? ref.repo : `${ref.repo}/`);
  } catch {
    throw new ChartFetchError('invalid', 'repo is not a URL');
  }
  if (base.protocol !== 'https:' && base.protocol !== 'http:')
    throw new ChartFetchError('invalid', `repo must be an http(s) URL, not ${base.protocol}`);
  if (base.username || base.password)
    throw new ChartFetchError('invalid', 'repo URL must not carry credentials; use auth.secretRef');

  // Credentials go to the repository's own host only, as Helm does without --pass-credentials.
  const headersFor = (url: URL): Record<string, string> =>
    credentials && url.origin === base.origin ? { authorization: authorizationOf(credentials) } : {};

  const indexUrl = new URL('index.yaml', base);
  const indexRes = await httpGet(http, indexUrl, headersFor(indexUrl));
  if (!indexRes.ok) throw await statusError(indexUrl, indexRes, authHint(ref, credentials));
  const index = new TextDecoder().decode(await readBody(http, indexUrl, indexRes));

  const picked = await opts.resolve({ index, chart: ref.chart, version: ref.version ?? '' });
  if (!picked.ok) throw resolveError(picked.error.message);
  const { version, urls, digest } = picked.chart;
  const first = urls?.[0];
  if (!first) throw new ChartFetchError('invalid', `the index lists no URL for version ${version}`);
  if (!digest || !/^[0-9a-f]{64}$/.test(digest))
    throw new ChartFetchError(
      'invalid',
      `the index has no sha256 digest for version ${version}, so the archive cannot be verified`,
    );
  const archiveUrl = new URL(first, base);
  const expected = `sha256:${digest}`;
  const { archive, fromCache } = await cached(opts.cache, expected, async () => {
    const res = await httpGet(http, archiveUrl, headersFor(archiveUrl));
    if (!res.ok) throw await statusError(archiveUrl, res, authHint(ref, credentials));
    const what = `version ${version} (${redactUrl(archiveUrl)})`;
    const body = await readArchive(
      http,
      archiveUrl,
      res,
      opts.maxArchiveBytes ?? defaultMaxArchiveBytes,
      what,
    );
    checkDigest(body, expected, what);
    return body;
  });
  return {
    name: picked.chart.name ?? ref.chart,
    version,
    digest: expected,
    archive,
    source: redactUrl(archiveUrl),
    fromCache,
  };
}

function resolveError(message: string): ChartFetchError {
  return new ChartFetchError(
    /^no version|has no versions|is not in the repository index|no tags/.test(message)
      ? 'no-matching-version'
      : 'invalid',
    message,
  );
}

interface OciReference {
  readonly host: string;
  readonly repository: string;
  readonly name: string;
}

function parseOci(chart: string): OciReference {
  const m = /^oci:\/\/([^/@\s]+)\/([a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)$/.exec(
    chart,
  );
  if (!m?.[1] || !m[2])
    throw new ChartFetchError(
      'invalid',
      'expected oci://host[:port]/path/name in lower case, without a tag (the version goes in version)',
    );
  if (m[1].includes(':') && !/^[^:]+:\d+$/.test(m[1]))
    throw new ChartFetchError('invalid', 'the registry must be host or host:port');
  return { host: m[1], repository: m[2], name: m[2].slice(m[2].lastIndexOf('/') + 1) };
}

/**
 * `helm pull oci://host/path/name --version V` over the registry v2 API: tags,
 * Helm's choice, the manifest, the chart layer's blob, its digest. Anonymous,
 * basic and bearer-token (WWW-Authenticate challenge) access, as registries ask.
 */
async function fetchFromRegistry(
  opts: ChartFetcherOptions,
  http: HttpGetOptions,
  plainHttp: ReadonlySet<string>,
  ref: ChartRef,
  credentials: ChartCredentials | undefined,
): Promise<FetchedChart> {
  const oci = parseOci(ref.chart);
  const api = new URL(`${plainHttp.has(oci.host) ? 'http' : 'https'}://${oci.host}/v2/${oci.repository}/`);
  const session = new RegistrySession(http, oci, credentials, authHint(ref, credentials));

  const tags = await listTags(session, new URL('tags/list', api));
  const picked = await opts.resolve({ tags, version: ref.version ?? '' });
  if (!picked.ok) throw resolveError(picked.error.message);
  const version = picked.chart.version;
  const tag = picked.chart.tag ?? version.replaceAll('+', '_');

  const manifestUrl = new URL(`manifests/${encodeURIComponent(tag)}`, api);
  const manifestRes = await session.get(manifestUrl, ociManifestMediaType);
  if (manifestRes.status === 404) {
    await manifestRes.body?.cancel();
    throw new ChartFetchError(
      'no-matching-version',
      `no tag ${tag} in the repository (tags: ${tags.join(', ') || 'none'})`,
    );
  }
  if (!manifestRes.ok) throw await statusError(manifestUrl, manifestRes, session.hint);
  let manifest: { layers?: { mediaType?: string; digest?: string }[] };
  try {
    manifest = JSON.parse(new TextDecoder().decode(await readBody(http, manifestUrl, manifestRes)));
  } catch (err) {
    if (err instanceof ChartFetchError) throw err;
    throw new ChartFetchError('invalid', `the manifest of tag ${tag} is not JSON`);
  }
  const layer = manifest.layers?.find((l) => l.mediaType === helmChartLayerMediaType);
  if (!layer?.digest)
    throw new ChartFetchError(
      'invalid',
      `tag ${tag} has no ${helmChartLayerMediaType} layer: it is not a Helm chart`,
    );
  const digest = layer.digest;
  if (!/^sha256:[0-9a-f]{64}$/.test(digest))
    throw new ChartFetchError('invalid', `tag ${tag}: unsupported layer digest ${digest.slice(0, 80)}`);

  const { archive, fromCache } = await cached(opts.cache, digest, async () => {
    const blobUrl = new URL(`blobs/${digest}`, api);
    const res = await session.get(blobUrl, helmChartLayerMediaType);
    if (!res.ok) throw await statusError(blobUrl, res, session.hint);
    const what = `version ${version} (tag ${tag})`;
    const body = await readArchive(http, blobUrl, res, opts.maxArchiveBytes ?? defaultMaxArchiveBytes, what);
    checkDigest(body, digest, what);
    return body;
  });
  return {
    name: oci.name,
    version,
    digest,
    archive,
    source: `oci://${oci.host}/${oci.repository}:${tag}`,
    fromCache,
  };
}

async function listTags(session: RegistrySession, first: URL): Promise<string[]> {
  const tags: string[] = [];
  let url: URL | undefined = first;
  // Registries page long tag lists with a Link header; a bound keeps a loop finite.
  for (let page = 0; url && page < 100; page++) {
    const res = await session.get(url, 'application/json');
    if (res.status === 404) {
      await res.body?.cancel();
      throw new ChartFetchError('not-found', `the registry has no repository ${session.oci.repository}`);
    }
    if (!res.ok) throw await statusError(url, res, session.hint);
    let body: { tags?: unknown };
    try {
      body = JSON.parse(new TextDecoder().decode(await readBody(session.http, url, res)));
    } catch (err) {
      if (err instanceof ChartFetchError) throw err;
      throw new ChartFetchError('invalid', 'the tag list is not JSON');
    }
    if (Array.isArray(body.tags)) tags.push(...body.tags.filter((t): t is string => typeof t === 'string'));
    const next = /<([^>]+)>;\s*rel="?next"?/.exec(res.headers.get('link') ?? '')?.[1];
    url = next ? new URL(next, url) : undefined;
  }
  return tags;
}

/** One fetch's conversation with a registry: answers its auth challenge once, then reuses the answer. */
class RegistrySession {
  readonly http: HttpGetOptions;
  readonly oci: OciReference;
  readonly credentials: ChartCredentials | undefined;
  readonly hint: string;
  #authorization: string | undefined;

  constructor(
    http: HttpGetOptions,
    oci: OciReference,
    credentials: ChartCredentials | undefined,
    hint: string,
  ) {
    this.http = http;
    this.oci = oci;
    this.credentials = credentials;
    this.hint = hint;
  }

  async get(url: URL, accept: string): Promise<Response> {
    const headers = (): Record<string, string> =>
      this.#authorization ? { accept, authorization: this.#authorization } : { accept };
    const res = await httpGet(this.http, url, headers());
    if (res.status !== 401) return res;
    await res.body?.cancel();
    this.#authorization = await this.#answer(res.headers.get('www-authenticate') ?? '');
    return httpGet(this.http, url, headers());
  }

  async #answer(challenge: string): Promise<string> {
    const scheme = /^\s*(\w+)/.exec(challenge)?.[1]?.toLowerCase();
    const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    const creds = this.credentials;
    if (scheme === 'basic') {
      if (!creds || 'token' in creds)
        throw new ChartFetchError(
          'auth-refused',
          `the registry asks for a username and password; ${creds ? 'a token was given' : this.hint}`,
        );
      return authorizationOf(creds);
    }
    if (scheme !== 'bearer' || !params.realm)
      throw new ChartFetchError(
        'auth-refused',
        `the registry asks for unsupported authentication (${scheme})`,
      );
    if (creds && 'token' in creds) return authorizationOf(creds);
    // Docker token flow: ask the realm for a pull token, with basic credentials if any.
    let tokenUrl: URL;
    try {
      tokenUrl = new URL(params.realm);
    } catch {
      throw new ChartFetchError('invalid', 'the registry named an invalid token realm');
    }
    if (params.service) tokenUrl.searchParams.set('service', params.service);
    tokenUrl.searchParams.set('scope', params.scope ?? `repository:${this.oci.repository}:pull`);
    const res = await httpGet(this.http, tokenUrl, creds ? { authorization: authorizationOf(creds) } : {});
    if (!res.ok) throw await statusError(tokenUrl, res, this.hint);
    let body: { token?: unknown; access_token?: unknown };
    try {
      body = JSON.parse(new TextDecoder().decode(await readBody(this.http, tokenUrl, res)));
    } catch (err) {
      if (err instanceof ChartFetchError) throw err;
      throw new ChartFetchError('invalid', `the token service ${redactUrl(tokenUrl)} answered no JSON`);
    }
    const token = typeof body.token === 'string' ? body.token : body.access_token;
    if (typeof token !== 'string' || token === '')
      throw new ChartFetchError('auth-refused', `the token service ${redactUrl(tokenUrl)} gave no token`);
    return `Bearer ${token}`;
  }
}
