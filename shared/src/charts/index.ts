/**
 * Charts from Helm HTTP repositories and OCI registries: fetched, verified against
 * the repository's digest, cached by digest. See docs/fleet-repo.md, "Charts from
 * repositories".
 */

export { MemoryChartCache, type MemoryChartCacheOptions } from './cache.ts';
export { ChartCredentialsError, parseChartCredentials, staticCredentialResolver } from './credentials.ts';
export { ChartFetchError, type ChartFetchFailure, chartFetchFailures, redactUrl } from './errors.ts';
export {
  type ChartFetcher,
  type ChartFetcherOptions,
  type ChartRef,
  createChartFetcher,
  type FetchedChart,
  type FetchResult,
  helmChartLayerMediaType,
  ociManifestMediaType,
} from './fetcher.ts';
export type {
  ChartCache,
  ChartCredentials,
  ChartVersionAnswer,
  ChartVersionQuery,
  ChartVersionResolver,
  CredentialResolver,
} from './ports.ts';
