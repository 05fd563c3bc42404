import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { SyncPorts } from '@flotilla/shared/hub';
import { DynamoDbClusterStatusStore } from './adapters/dynamodb-status-store.ts';
import {
  DynamoDbBundleStore,
  DynamoDbClusterStore,
  DynamoDbDesiredStateStore,
  DynamoDbSyncStateStore,
  HubDb,
} from './adapters/dynamodb-stores.ts';
import { GitFleetSource } from './adapters/git-fleet-source.ts';
import { Ed25519Signer } from './adapters/local-signer.ts';
import { SqsSpokeQueues } from './adapters/sqs-spoke-queues.ts';
import type { HubConfig } from './config.ts';

/** The hub's adapters, built once per runtime (cold start) and shared by every request. */
export interface HubContext extends SyncPorts {
  readonly config: HubConfig;
  readonly dynamodb: DynamoDBClient;
  readonly sqs: SQSClient;
  readonly queues: SqsSpokeQueues;
  readonly clusters: DynamoDbClusterStore;
  readonly desiredStates: DynamoDbDesiredStateStore;
  readonly bundles: DynamoDbBundleStore;
  readonly syncState: DynamoDbSyncStateStore;
  readonly signer: Ed25519Signer;
  /** Per-bundle status reported by agents. */
  readonly statuses: DynamoDbClusterStatusStore;
}

/** AWS client settings that do not come from the config: static credentials for local services. */
export interface ClientOverrides {
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
}

export function createHubContext(config: HubConfig, overrides: ClientOverrides = {}): HubContext {
  const dynamodb = new DynamoDBClient({
    region: config.region,
    ...(overrides.credentials ? { credentials: overrides.credentials } : {}),
    ...(config.dynamodbEndpoint ? { endpoint: config.dynamodbEndpoint } : {}),
  });
  const sqs = new SQSClient({
    region: config.region,
    ...(overrides.credentials ? { credentials: overrides.credentials } : {}),
    ...(config.sqsEndpoint ? { endpoint: config.sqsEndpoint } : {}),
  });
  const db = new HubDb(dynamodb, config.tables);
  const queues = new SqsSpokeQueues(sqs, config.prefix);
  return {
    config,
    dynamodb,
    sqs,
    queues,
    clusters: new DynamoDbClusterStore(db),
    desiredStates: new DynamoDbDesiredStateStore(db),
    bundles: new DynamoDbBundleStore(db),
    syncState: new DynamoDbSyncStateStore(db),
    statuses: new DynamoDbClusterStatusStore(db),
    notifier: queues,
    signer: new Ed25519Signer(config.signingKeyPem),
    source: new GitFleetSource({
      url: config.fleetRepo.url,
      ref: config.fleetRepo.ref,
      cacheDir: config.fleetRepo.cacheDir,
      ...(config.fleetRepo.auth ? { auth: config.fleetRepo.auth } : {}),
    }),
    now: () => new Date(),
  };
}
