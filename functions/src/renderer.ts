import { accessSync, constants } from 'node:fs';

export class RendererNotFoundError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'RendererNotFoundError';
  }
}

/**
 * The path of the render worker (`flotilla-renderer`) the hub spawns.
 *
 * - `FLOTILLA_RENDERER` set (in AWS the CDK app sets it to the layer's
 *   `/opt/bin/flotilla-renderer`): that file, which must be executable.
 * - Unset in Lambda: an error, since nothing there can build it.
 * - Unset elsewhere (the local hub, tests): the host build of `renderer/`, built on first
 *   use and cached (`ensureRenderer` in renderer/build.ts; minutes cold, then instant).
 *
 * Takes the environment as `loadConfig` does, so callers pass `process.env` once.
 *
 * @throws {RendererNotFoundError} when the worker is not where the environment says.
 * @example
 * const client = new RendererClient({ binary: await rendererBinary(process.env) });
 */
export async function rendererBinary(env: Readonly<Record<string, string | undefined>>): Promise<string> {
  const configured = env.FLOTILLA_RENDERER?.trim();
  if (configured) {
    try {
      accessSync(configured, constants.X_OK);
    } catch (cause) {
      throw new RendererNotFoundError(
        `FLOTILLA_RENDERER is ${configured}, which is not an executable file${
          env.AWS_LAMBDA_FUNCTION_NAME ? ": is the hub's renderer layer attached to this function?" : ''
        }`,
        { cause },
      );
    }
    return configured;
  }
  if (env.AWS_LAMBDA_FUNCTION_NAME) {
    throw new RendererNotFoundError(
      "FLOTILLA_RENDERER is not set: the hub's stack sets it with the renderer layer (/opt/bin/flotilla-renderer)",
    );
  }
  const { ensureRenderer } = await import('@flotilla/renderer/build.ts');
  return ensureRenderer();
}
