import { createPrivateKey, hkdfSync, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KMSClient } from '@aws-sdk/client-kms';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import { RendererClient } from '@flotilla/renderer/client.ts';
import { CachingEngine } from '@flotilla/shared';
import {
  type CredentialResolver,
  createChartFetcher,
  parseChartCredentials,
  staticCredentialResolver,
} from '@flotilla/shared/charts';
import {
  type Signer,
  type SyncFanout,
  type SyncPorts,
  snapshotTenantScopes,
  type TenantScopes,
} from '@flotilla/shared/hub';
import type { EventSink } from '@flotilla/shared/notify';
import { DirectoryChartCache } from './adapters/directory-chart-cache.ts';
import { DynamoDbRegistrationTokenStore } from './adapters/dynamodb-registration-tokens.ts';
import { DynamoDbRolloutStore } from './adapters/dynamodb-rollout-store.ts';
import { DynamoDbSourceDeclarationStore } from './adapters/dynamodb-source-declarations.ts';
import { DynamoDbClusterStatusStore } from './adapters/dynamodb-status-store.ts';
import {
  DynamoDbBundleStore,
  DynamoDbClusterStore,
  DynamoDbDesiredStateStore,
  DynamoDbSyncStateStore,
  HubDb,
} from './adapters/dynamodb-stores.ts';
import { DynamoDbSyncJobStore } from './adapters/dynamodb-sync-jobs.ts';
import { DynamoDbTenantKeyStore } from './adapters/dynamodb-tenant-keys.ts';
import { fileCredentialResolver } from './adapters/file-chart-credentials.ts';
import { GitFleetSource } from './adapters/git-fleet-source.ts';
import {
  type GitCredentialResolver,
  GitSourceFetcher,
  secretCredentialResolver,
} from './adapters/git-source-fetcher.ts';
import { KmsSigner } from './adapters/kms-signer.ts';
import { Ed25519Signer } from './adapters/local-signer.ts';
import { SqsEventSink } from './adapters/sqs-event-sink.ts';
import { SqsRolloutTimer } from './adapters/sqs-rollout-timer.ts';
import { SqsSpokeQueues } from './adapters/sqs-spoke-queues.ts';
import { SqsSyncWorkQueue } from './adapters/sqs-sync-work-queue.ts';
import type { HubConfig } from './config.ts';
import { jsonLogger } from './http/log.ts';
import { rendererBinary } from './renderer.ts';

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
  readonly signer: Signer & { readonly publicKeyPem: string };
  /** Per-bundle status reported by agents. */
  readonly statuses: DynamoDbClusterStatusStore;
  /** One-time registration tokens (hub-state table). */
  readonly registrationTokens: DynamoDbRegistrationTokenStore;
  /** Tenant admin keys (hub-state table). */
  readonly tenantKeys: DynamoDbTenantKeyStore;
  /** The sources declared through the admin API (hub-state table); each sync reads them. */
  readonly declaredSources: DynamoDbSourceDeclarationStore;
  /** What each tenant owns, from the last sync's snapshot of the fleet files. */
  readonly tenantScopes: TenantScopes;
  /** Progressive rollouts, per bundle (hub-state table, documents in the bundles table). */
  readonly rollouts: DynamoDbRolloutStore;
  /** The work queue and job records of syncs that fan out, when `config.syncQueueUrl` is set. */
  readonly fanout?: SyncFanout & { readonly queue: SqsSyncWorkQueue };
  /** Rollout wakes as delayed messages on the same work queue, when `config.syncQueueUrl` is set. */
  readonly rolloutTimer?: SqsRolloutTimer;
  /** The render worker's client, when the hub renders Helm and Kustomize bundles (close it on shutdown). */
  readonly renderer?: RendererClient;
}

/** AWS client settings that do not come from the config: static credentials for local services. */
export interface ClientOverrides {
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /** A signer built elsewhere (KMS); by default one from `config.signingKeyPem`. */
  readonly signer?: Signer & { readonly publicKeyPem: string };
  /** Where fleet events go; by default the notify queue of `config.notifyQueueUrl`, or nowhere. */
  readonly events?: EventSink;
  /**
   * Credentials of the fleet sources by their `credentials.secretRef`; by default the
   * credentials file of private chart repositories (FLOTILLA_CHART_CREDENTIALS_FILE), which
   * maps the same kind of names to the same kind of credentials.
   */
  readonly sourceCredentials?: GitCredentialResolver;
}

/**
 * Builds the hub's adapters from a config whose secrets are all at hand (the local hub,
 * tests). A config that names secrets in Secrets Manager or a KMS key needs
 * {@link openHubContext} instead.
 */
export function createHubContext(config: HubConfig, overrides: ClientOverrides = {}): HubContext {
  if (!overrides.signer && !config.signingKeyPem) {
    throw new Error(
      `the signing key is in ${config.signingKeySource.kind === 'kms' ? 'KMS' : 'Secrets Manager'}: build the hub context with \`await openHubContext(config)\``,
    );
  }
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
  const bundles = new DynamoDbBundleStore(db);
  const syncState = new DynamoDbSyncStateStore(db);
  // One worker per runtime, started on the first render; renders cached by their inputs across syncs.
  const renderer = config.rendererBinary
    ? new RendererClient({ binary: config.rendererBinary, maxInFlight: 4 })
    : undefined;
  const charts = renderer
    ? createChartFetcher({
        resolve: (query) => renderer.resolve(query),
        cache: new DirectoryChartCache(config.chartCacheDir),
        credentials: chartCredentials(config),
        plainHttpRegistries: config.plainHttpRegistries,
      })
    : undefined;
  const fanout = config.syncQueueUrl
    ? {
        queue: new SqsSyncWorkQueue(sqs, config.syncQueueUrl),
        jobs: new DynamoDbSyncJobStore(db),
        thresholdWindows: config.syncFanoutWindows,
        newJobId: () => randomUUID(),
      }
    : undefined;
  const now = () => new Date();
  // Without a work queue (a hub too small to fan out, or the local hub's default) rollout
  // timers step on reports and the schedule (the local hub's one-second ticker).
  const rolloutTimer = config.syncQueueUrl
    ? new SqsRolloutTimer(sqs, config.syncQueueUrl, { now, log: jsonLogger() })
    : undefined;
  // Fleet events for the notifier: its queue in AWS, or a sink handed in (the local hub's).
  const events =
    overrides.events ??
    (config.notifyQueueUrl ? new SqsEventSink(sqs, config.notifyQueueUrl, jsonLogger()) : undefined);
  return {
    ...(fanout ? { fanout } : {}),
    ...(events ? { events } : {}),
    ...(rolloutTimer ? { rolloutTimer } : {}),
    ...(renderer && charts ? { renderer, engine: { engine: new CachingEngine(renderer), charts } } : {}),
    config,
    dynamodb,
    sqs,
    queues,
    clusters: new DynamoDbClusterStore(db),
    desiredStates: new DynamoDbDesiredStateStore(db),
    bundles,
    rollouts: new DynamoDbRolloutStore(db, bundles),
    syncState,
    statuses: new DynamoDbClusterStatusStore(db),
    registrationTokens: new DynamoDbRegistrationTokenStore(db),
    tenantKeys: new DynamoDbTenantKeyStore(db),
    declaredSources: new DynamoDbSourceDeclarationStore(db),
    tenantScopes: snapshotTenantScopes({ syncState, bundles }),
    notifier: queues,
    signer: overrides.signer ?? new Ed25519Signer(config.signingKeyPem),
    source: new GitFleetSource({
      url: config.fleetRepo.url,
      ref: config.fleetRepo.ref,
      cacheDir: config.fleetRepo.cacheDir,
      ...(config.fleetRepo.auth ? { auth: config.fleetRepo.auth } : {}),
    }),
    // The other sources the platform declares, each in a cache directory of its own beside the platform's.
    sourceFetcher: new GitSourceFetcher({
      cacheDir: join(config.fleetRepo.cacheDir, 'sources'),
      credentials: overrides.sourceCredentials ?? chartCredentials(config),
    }),
    now,
  };
}

/** Where private chart repositories' credentials come from: a secret read at cold start, a file, or nowhere. */
function chartCredentials(config: HubConfig): CredentialResolver {
  if (config.chartCredentialsJson !== undefined) {
    return staticCredentialResolver(
      parseChartCredentials(config.chartCredentialsJson, `secret ${config.secretIds.chartCredentials}`),
    );
  }
  if (config.chartCredentialsFile) return fileCredentialResolver(config.chartCredentialsFile);
  return staticCredentialResolver(new Map());
}

/** Reads one secret's value; Secrets Manager in AWS, a fake in tests. */
export type SecretReader = (secretId: string) => Promise<string>;

/**
 * The hub's context as a Lambda cold start builds it: first the secrets the config
 * names in Secrets Manager (signing key, webhook secret, fleet repo credentials) and
 * the KMS signing key's public half, then the adapters. Secrets stay out of the
 * function's environment; only their ids are there.
 *
 * @example
 * export const handler = createApiHandler(await openHubContext(loadConfig(process.env)));
 */
export async function openHubContext(
  config: HubConfig,
  overrides: ClientOverrides & {
    readonly readSecret?: SecretReader;
    readonly kms?: Pick<KMSClient, 'send'>;
  } = {},
): Promise<HubContext> {
  const readSecret = overrides.readSecret ?? secretsManagerReader(config, overrides);
  // A worker that is not where FLOTILLA_RENDERER says is a deployment error, found at cold start.
  if (config.rendererBinary) await rendererBinary({ FLOTILLA_RENDERER: config.rendererBinary });
  const resolved = await resolveHubSecrets(config, readSecret);
  const source = config.signingKeySource;
  const signer =
    overrides.signer ??
    (source.kind === 'kms'
      ? await KmsSigner.open(
          overrides.kms ??
            new KMSClient({
              region: config.region,
              ...(overrides.credentials ? { credentials: overrides.credentials } : {}),
              ...(config.kmsEndpoint ? { endpoint: config.kmsEndpoint } : {}),
            }),
          source.keyId,
        )
      : undefined);
  // A source's credentials.secretRef names a Secrets Manager secret under the hub's prefix,
  // holding what FLOTILLA_FLEET_REPO_CREDENTIALS_SECRET_ID's secret holds.
  return createHubContext(resolved, {
    sourceCredentials: secretCredentialResolver((ref) => readSecret(`${config.sourceSecretPrefix}${ref}`)),
    ...overrides,
    ...(signer ? { signer } : {}),
  });
}

function secretsManagerReader(config: HubConfig, overrides: ClientOverrides): SecretReader {
  let client: SecretsManagerClient | undefined;
  return async (secretId) => {
    client ??= new SecretsManagerClient({
      region: config.region,
      ...(overrides.credentials ? { credentials: overrides.credentials } : {}),
      ...(config.secretsManagerEndpoint ? { endpoint: config.secretsManagerEndpoint } : {}),
    });
    const res = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
    if (res.SecretString === undefined) throw new Error(`secret ${secretId} has no string value`);
    return res.SecretString;
  };
}

/** The config with the values of the secrets it names filled in; a config naming none comes back as is. */
export async function resolveHubSecrets(config: HubConfig, readSecret: SecretReader): Promise<HubConfig> {
  const { signingKeySource: source, secretIds } = config;
  const [signing, webhook, credentials, chartCredentialsJson] = await Promise.all([
    source.kind === 'secret' ? readSecret(source.secretId) : undefined,
    secretIds.webhookSecret ? readSecret(secretIds.webhookSecret) : undefined,
    secretIds.fleetRepoCredentials ? readSecret(secretIds.fleetRepoCredentials) : undefined,
    secretIds.chartCredentials ? readSecret(secretIds.chartCredentials) : undefined,
  ]);
  const problems: string[] = [];
  let signingKeyPem = config.signingKeyPem;
  if (signing !== undefined && source.kind === 'secret') {
    try {
      signingKeyPem = signingKeyFromSecret(signing);
    } catch (err) {
      problems.push(`secret ${source.secretId}: ${(err as Error).message}`);
    }
  }
  if (webhook !== undefined && webhook.length < 16) {
    problems.push(`secret ${secretIds.webhookSecret}: the webhook secret must be at least 16 characters`);
  }
  let auth = config.fleetRepo.auth;
  if (credentials !== undefined) {
    const parsed = parseJson(credentials);
    if (typeof parsed?.username === 'string' && typeof parsed.password === 'string') {
      auth = { username: parsed.username, password: parsed.password };
    } else {
      problems.push(
        `secret ${secretIds.fleetRepoCredentials}: expected JSON {"username": "...", "password": "..."}`,
      );
    }
  }
  if (chartCredentialsJson !== undefined) {
    try {
      parseChartCredentials(chartCredentialsJson, `secret ${secretIds.chartCredentials}`);
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  if (problems.length > 0) throw new Error(`invalid hub secrets:\n  - ${problems.join('\n  - ')}`);
  return {
    ...config,
    ...(chartCredentialsJson === undefined ? {} : { chartCredentialsJson }),
    signingKeyPem,
    webhookSecret: webhook ?? config.webhookSecret,
    fleetRepo: { ...config.fleetRepo, auth },
  };
}

/** PKCS#8 DER of an Ed25519 private key is this fixed prefix and the 32-byte seed (RFC 8410). */
const ed25519Pkcs8Prefix = Buffer.from('302e020100300506032b657004220420', 'hex');

/**
 * The signing key held in a secret: a PKCS#8 PEM (brought by the operator), or
 * `{"ed25519Seed": "..."}`, random text that Secrets Manager generated at deploy time,
 * from which the key is derived with HKDF-SHA256 so it never exists outside AWS.
 */
export function signingKeyFromSecret(value: string): string {
  if (value.includes('PRIVATE KEY')) {
    const key = createPrivateKey(value);
    if (key.asymmetricKeyType !== 'ed25519') {
      throw new Error(`the signing key must be Ed25519, got ${key.asymmetricKeyType}`);
    }
    return value;
  }
  const seedText = parseJson(value)?.ed25519Seed;
  if (typeof seedText !== 'string' || seedText.length < 32) {
    throw new Error(
      'expected an Ed25519 private key (PKCS#8 PEM) or JSON {"ed25519Seed": "<at least 32 random characters>"}',
    );
  }
  const seed = Buffer.from(hkdfSync('sha256', seedText, '', 'flotilla desired-state signing key v1', 32));
  return createPrivateKey({ key: Buffer.concat([ed25519Pkcs8Prefix, seed]), format: 'der', type: 'pkcs8' })
    .export({ type: 'pkcs8', format: 'pem' })
    .toString();
}

function parseJson(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
