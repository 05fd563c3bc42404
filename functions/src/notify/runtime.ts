import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SNSClient } from '@aws-sdk/client-sns';
import {
  type Clock,
  type DedupStore,
  httpTransport,
  Notifier,
  type ProviderTransport,
  type SecretResolver,
  systemClock,
  transportsByType,
} from '@flotilla/shared/notify';
import { eventBridgeTransport, snsTransport } from '../adapters/aws-notification-transports.ts';
import { DynamoDbNotificationDedup } from '../adapters/dynamodb-notification-dedup.ts';
import { HubDb } from '../adapters/dynamodb-stores.ts';
import { GitFleetSource } from '../adapters/git-fleet-source.ts';
import {
  fileNotificationSecrets,
  secretsManagerNotificationSecrets,
} from '../adapters/notification-secrets.ts';
import type { Logger } from '../http/log.ts';
import type { NotifierConfig } from '../notify-config.ts';
import { fleetRepoNotificationConfig, type NotificationConfigSource } from './config-source.ts';

/** The notifier's engine and adapters, built once per runtime. */
export interface NotifierRuntime {
  readonly notifier: Notifier;
  readonly config: NotificationConfigSource;
  readonly clock: Clock;
  readonly log: Logger;
}

export interface NotifierOverrides {
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
  readonly clock?: Clock;
  readonly config?: NotificationConfigSource;
  readonly dedup?: DedupStore;
  readonly secrets?: SecretResolver;
  /** Replaces the transports of the given provider types. */
  readonly transports?: Partial<Record<'sns' | 'eventbridge', ProviderTransport>>;
}

/**
 * Builds the notifier as a Lambda cold start does: the fleet repo's credentials (when
 * in Secrets Manager) are read first, then the clients. In AWS the dedup claims live in
 * the hub-state table; providers' secrets in Secrets Manager under the configured prefix.
 */
export async function openNotifier(
  config: NotifierConfig,
  log: Logger,
  overrides: NotifierOverrides = {},
): Promise<NotifierRuntime> {
  const aws = (endpoint: string | undefined) => ({
    region: config.region,
    ...(overrides.credentials ? { credentials: overrides.credentials } : {}),
    ...(endpoint ? { endpoint } : {}),
  });
  let secretsManager: SecretsManagerClient | undefined;
  const sm = () => {
    secretsManager ??= new SecretsManagerClient(aws(config.secretsManagerEndpoint));
    return secretsManager;
  };
  let auth = config.fleetRepo.auth;
  if (config.fleetRepo.credentialsSecretId) {
    const res = await sm().send(
      new GetSecretValueCommand({ SecretId: config.fleetRepo.credentialsSecretId }),
    );
    const parsed = JSON.parse(res.SecretString ?? '{}') as { username?: unknown; password?: unknown };
    if (typeof parsed.username !== 'string' || typeof parsed.password !== 'string') {
      throw new Error(
        `secret ${config.fleetRepo.credentialsSecretId}: expected JSON {"username": "...", "password": "..."}`,
      );
    }
    auth = { username: parsed.username, password: parsed.password };
  }
  const clock = overrides.clock ?? systemClock;
  const secrets =
    overrides.secrets ??
    (config.secrets.kind === 'file'
      ? fileNotificationSecrets(config.secrets.path)
      : secretsManagerNotificationSecrets(sm(), config.secrets.prefix));
  const dedup =
    overrides.dedup ??
    new DynamoDbNotificationDedup(new HubDb(new DynamoDBClient(aws(config.dynamodbEndpoint)), config.tables));
  const http = httpTransport({ secrets, now: () => clock.now() });
  const transport = transportsByType({
    slack: http,
    msteams: http,
    webhook: http,
    sns: overrides.transports?.sns ?? snsTransport(new SNSClient(aws(config.snsEndpoint))),
    eventbridge:
      overrides.transports?.eventbridge ??
      eventBridgeTransport(new EventBridgeClient(aws(config.eventBridgeEndpoint))),
  });
  const notifier = new Notifier({ transport, dedup, clock, log }, { dedupWindowMs: config.dedupWindowMs });
  const source =
    overrides.config ??
    fleetRepoNotificationConfig(
      new GitFleetSource({
        url: config.fleetRepo.url,
        ref: config.fleetRepo.ref,
        cacheDir: config.fleetRepo.cacheDir,
        ...(auth ? { auth } : {}),
      }),
      { ttlMs: config.configTtlMs, log },
    );
  return { notifier, config: source, clock, log };
}
