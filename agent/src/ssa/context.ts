import type { Clock } from '../clock.ts';
import { KubeApiError, type KubeClient } from '../kube/client.ts';
import type { ResourceInfo, RestMapper } from '../kube/discovery.ts';
import type { Limiter } from './limiter.ts';
import type { Owner } from './types.ts';

/**
 * What every verb of the resource manager works with: one client, one owner, one REST
 * mapper, one limiter on requests in flight, one clock. The verbs (`apply.ts`,
 * `diff.ts`, `delete.ts`, `read.ts`, `health.ts`) are functions of it, one file each, as
 * fluxcd/pkg `ssa` keeps one file per verb of its manager.
 */
export interface ManagerContext {
  /** Reads (lists, gets, discovery): the agent's own identity. */
  readonly client: KubeClient;
  /**
   * Writes (applies and their dry runs, ownership patches, deletes): `client`, or for a
   * tenant's bundles a client impersonating the tenant's service account.
   */
  readonly writer: KubeClient;
  /** The tenant the writes are made for, when `writer` impersonates one. */
  readonly tenant?: string | undefined;
  readonly owner: Owner;
  readonly mapper: RestMapper;
  readonly limit: Limiter;
  readonly clock: Clock;
}

/** The owner's label key for `name`, e.g. `flotilla.dev/bundle`. */
export function ownerLabel(ctx: Pick<ManagerContext, 'owner'>, name: string): string {
  return `${ctx.owner.group}/${name}`;
}

/** The resource behind an object's apiVersion and kind, or a 404 saying its CRD may be missing. */
export async function resourceOf(
  ctx: ManagerContext,
  ref: { readonly apiVersion: string; readonly kind: string },
): Promise<ResourceInfo> {
  const info = await ctx.mapper.find(ref.apiVersion, ref.kind);
  if (!info) {
    throw new KubeApiError(
      404,
      `no matches for kind "${ref.kind}" in version "${ref.apiVersion}": is its CustomResourceDefinition installed?`,
      'NotFound',
    );
  }
  return info;
}
