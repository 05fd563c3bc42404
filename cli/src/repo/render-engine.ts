/**
 * The render engine for a checkout's Helm and Kustomize bundles: the same worker the hub
 * runs (`@flotilla/renderer`), so that a preview is what the hub stores. Started on the
 * first render only: a fleet of plain YAML never starts it.
 */
import { ensureRenderer } from '@flotilla/renderer/build.ts';
import { RendererClient } from '@flotilla/renderer/client.ts';
import type { EnginePorts, EngineRequest, EngineResult } from '@flotilla/shared';

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
  return {
    ports: {
      engine: {
        async render(request: EngineRequest): Promise<EngineResult> {
          client ??= start();
          return (await client).render(request as Parameters<RendererClient['render']>[0]);
        },
      },
    },
    async close() {
      if (client) await (await client).close();
    },
  };
}
