import type { KubeClient } from './client.ts';

/** The part of the API server's `GET /version` answer the agent reads. */
interface VersionInfo {
  readonly gitVersion?: unknown;
}

/**
 * The API server's version, `gitVersion` of `GET /version` (e.g. `v1.33.2`): what
 * `kubectl version` prints as the server version and Helm takes as
 * `.Capabilities.KubeVersion`. Every authenticated user may read it (the
 * `system:public-info-viewer` role); the agent's own ClusterRole lists it too.
 *
 * @throws {KubeApiError} for an error answer; an Error when the answer has no `gitVersion`.
 */
export async function readServerVersion(client: KubeClient, signal?: AbortSignal): Promise<string> {
  const { body } = await client.request<VersionInfo>('GET', '/version', signal ? { signal } : {});
  const gitVersion = typeof body === 'object' && body !== null ? body.gitVersion : undefined;
  if (typeof gitVersion !== 'string') {
    throw new Error(`GET /version: the API server's answer has no gitVersion string`);
  }
  return gitVersion;
}
