/**
 * The render engine for a checkout's Helm and Kustomize bundles: the same worker the hub
 * runs (`@flotilla/renderer`), so that a preview is what the hub stores. Started on the
 * first render only: a fleet of plain YAML never starts it.
 */

import { readFileSync } from 'node:fs';
import { ensureRenderer } from '@flotilla/renderer/build.ts';
import { RendererClient } from '@flotilla/renderer/client.ts';
import type { EnginePorts, EngineRequest, EngineResult } from '@flotilla/shared';
import {
  createChartFetcher,
  MemoryChartCache,
  parseChartCredentials,
  staticCredentialResolver,
} from '@flotilla/shared/charts';

export interface LocalEngine {
  readonly ports: EnginePorts;
  close(): Promise<void>;
}

/**
 * @param env FLOTILLA_RENDERER names a worker binary; otherwise it is built from this
 *   checkout of Flotilla (once, cached).
 * @param progress where build progress goes (stderr).
 */
export function localEngine(
  env: Readonly<Record<string, string | undefined>>,
  progress: (line: string) => void,
): LocalEngine {
  let client: Promise<RendererClient> | undefined;
  const start = async () => {
    const binary = env.FLOTILLA_RENDERER?.trim() || (await ensureRenderer({ log: progress }));
    return new RendererClient({ binary, maxInFlight: 2 });
  };
  const credentialsFile = env.FLOTILLA_CHART_CREDENTIALS_FILE?.trim();
  return {
    ports: {
      engine: {
        async render(request: EngineRequest): Promise<EngineResult> {
          client ??= start();
          return (await client).render(request as Parameters<RendererClient['render']>[0]);
        },
      },
      // Charts from repositories, fetched and checked as the hub does (kept for this run only).
      charts: createChartFetcher({
        resolve: async (query) => {
          client ??= start();
          return (await client).resolve(query);
        },
        cache: new MemoryChartCache(),
        credentials: credentialsFile
          ? staticCredentialResolver(
              parseChartCredentials(readFileSync(credentialsFile, 'utf8'), credentialsFile),
            )
          : staticCredentialResolver(new Map()),
        plainHttpRegistries: (env.FLOTILLA_PLAIN_HTTP_REGISTRIES ?? '')
          .split(',')
          .map((r) => r.trim())
          .filter((r) => r !== ''),
      }),
    },
    async close() {
      if (client) await (await client).close();
    },
  };
}
