import type { ClusterStatusStore, Signer, SpokeQueues, SyncPorts } from '@flotilla/shared/hub';
import type { HubConfig } from '../config.ts';
import type { Logger } from './log.ts';

/**
 * What the API needs: the hub's ports and the few settings it reads. The hub context
 * built at cold start is one; unit tests pass fakes.
 */
export interface ApiDeps extends SyncPorts {
  readonly queues: SpokeQueues;
  readonly statuses: ClusterStatusStore;
  readonly signer: Signer & { readonly publicKeyPem: string };
  readonly config: Pick<HubConfig, 'adminAuth' | 'adminKeySha256' | 'webhookSecret' | 'offlineAfterSeconds'> &
    Partial<Pick<HubConfig, 'tenantPrincipals'>> & {
      readonly fleetRepo: Pick<HubConfig['fleetRepo'], 'ref'>;
    };
  readonly log?: Logger;
}
