import { type HubTableNames, hubTableNames } from '@flotilla/shared/hub';
import { parseTenantPrincipals, type TenantPrincipals } from './http/caller.ts';

/** Everything the hub's functions read from their environment, validated once at cold start. */
export interface HubConfig {
  /** Prefix of every table and spoke queue of this hub. */
  readonly prefix: string;
  readonly tables: HubTableNames;
  readonly region: string;
  /** Set for DynamoDB Local, LocalStack or another endpoint; unset in AWS. */
  readonly dynamodbEndpoint: string | undefined;
  readonly sqsEndpoint: string | undefined;
  readonly fleetRepo: {
    readonly url: string;
    readonly ref: string;
    readonly cacheDir: string;
    readonly auth: { readonly username: string; readonly password: string } | undefined;
  };
  /**
   * Ed25519 private key (PKCS#8 PEM) the hub signs desired states with. Empty until
   * `openHubContext` has read it when it comes from Secrets Manager, and in KMS mode.
   */
  readonly signingKeyPem: string;
  /**
   * Where the signing key lives: in the environment (`pem`: local hub, tests), in a
   * Secrets Manager secret read once at cold start (`secret`), or in KMS, never leaving
   * it (`kms`: an ECC_NIST_EDWARDS25519 key).
   */
  readonly signingKeySource:
    | { readonly kind: 'pem' }
    | { readonly kind: 'secret'; readonly secretId: string }
    | { readonly kind: 'kms'; readonly keyId: string };
  /**
   * Secrets Manager secrets read once at cold start instead of plain environment values
   * (in AWS): the webhook secret (the secret's whole value) and the fleet repo's HTTP
   * credentials (`{"username": ..., "password": ...}`).
   */
  readonly secretIds: {
    readonly webhookSecret: string | undefined;
    readonly fleetRepoCredentials: string | undefined;
    readonly chartCredentials: string | undefined;
  };
  readonly secretsManagerEndpoint: string | undefined;
  readonly kmsEndpoint: string | undefined;
  /** Seconds without a heartbeat after which a cluster counts as Offline. */
  readonly offlineAfterSeconds: number;
  /** Seconds a bundle may stay NotReady on its content before `bundle.not-ready` (FLOTILLA_NOT_READY_AFTER_SECONDS, default 600). */
  readonly notReadyAfterSeconds: number;
  /** The SQS queue fleet events go to, for the notifier (FLOTILLA_NOTIFY_QUEUE_URL); unset: events go nowhere. */
  readonly notifyQueueUrl: string | undefined;
  /**
   * The render worker for Helm and Kustomize bundles (FLOTILLA_RENDERER; in Lambda the
   * layer's /opt/bin/flotilla-renderer). Unset: the local hub builds it; elsewhere those
   * bundles are broken with a message saying so.
   */
  readonly rendererBinary: string | undefined;
  /** Charts from repositories, by digest (FLOTILLA_CHART_CACHE_DIR; default /tmp/flotilla-charts, Lambda's /tmp). */
  readonly chartCacheDir: string;
  /**
   * Credentials of private chart repositories, by the name bundles give in
   * `helm.auth.secretRef`: a JSON file (FLOTILLA_CHART_CREDENTIALS_FILE), or the text of a
   * Secrets Manager secret (FLOTILLA_CHART_CREDENTIALS_SECRET_ID) once `openHubContext` has read it.
   */
  readonly chartCredentialsFile: string | undefined;
  readonly chartCredentialsJson: string | undefined;
  /** Registries (`host:port`) spoken to over plain HTTP (FLOTILLA_PLAIN_HTTP_REGISTRIES, comma-separated): local test registries only. */
  readonly plainHttpRegistries: readonly string[];
  /**
   * In AWS, a fleet source's `credentials.secretRef` names the Secrets Manager secret
   * `<sourceSecretPrefix><secretRef>` (FLOTILLA_SOURCE_SECRET_PREFIX, default
   * `<prefix>/sources/`), so the hub's role reads those secrets and no others.
   */
  readonly sourceSecretPrefix: string;
  /**
   * How admin routes are authorised: `iam` (API Gateway's IAM authorizer already checked
   * the caller; the handler requires its identity in the request context) or `key` (a
   * bearer admin key, checked against `adminKeySha256`; for the local hub).
   */
  readonly adminAuth: 'iam' | 'key';
  /** Hex SHA-256 of the admin key, when `adminAuth` is `key`. */
  readonly adminKeySha256: string | undefined;
  /**
   * IAM principals that are a tenant's admins (FLOTILLA_TENANT_PRINCIPALS, JSON of tenant to
   * ARNs; mode `iam`): they may call only that tenant's `/v1/tenants/<tenant>/` routes.
   */
  readonly tenantPrincipals: TenantPrincipals;
  /** Shared secret of the git push webhook (HMAC-SHA256 of the body); webhooks are off when unset. */
  readonly webhookSecret: string | undefined;
  /**
   * The work queue a big sync hands its windows to (FLOTILLA_SYNC_QUEUE_URL); unset, every
   * sync runs in one invocation.
   */
  readonly syncQueueUrl: string | undefined;
  /**
   * A fleet of more windows (of 500 clusters) than this is synced by worker invocations
   * (FLOTILLA_SYNC_FANOUT_WINDOWS, default 20: fan-out past 10,000 clusters).
   */
  readonly syncFanoutWindows: number;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/**
 * Reads and validates the hub's configuration. Every problem is reported at once,
 * naming the variable, so a misconfigured function fails at start-up and not on
 * its first request.
 */
export function loadConfig(env: Readonly<Record<string, string | undefined>>): HubConfig {
  const problems: string[] = [];
  const required = (name: string): string => {
    const value = env[name]?.trim();
    if (!value) problems.push(`${name} is required`);
    return value ?? '';
  };
  const optionalUrl = (name: string): string | undefined => {
    const value = env[name]?.trim();
    if (!value) return undefined;
    if (!URL.canParse(value)) problems.push(`${name} is not a URL: "${value}"`);
    return value;
  };
  const prefix = env.FLOTILLA_PREFIX?.trim() || 'flotilla';
  if (!/^[a-z0-9][a-z0-9-]{0,19}$/.test(prefix)) {
    problems.push(`FLOTILLA_PREFIX must be 1-20 lowercase letters, digits or '-', got "${prefix}"`);
  }
  const region = env.AWS_REGION?.trim() || env.AWS_DEFAULT_REGION?.trim() || '';
  if (!region) problems.push('AWS_REGION is required');
  const repoUrl = required('FLOTILLA_FLEET_REPO_URL');
  if (repoUrl && !URL.canParse(repoUrl)) problems.push(`FLOTILLA_FLEET_REPO_URL is not a URL: "${repoUrl}"`);
  const signingKeySecretId = env.FLOTILLA_SIGNING_KEY_SECRET_ID?.trim() || undefined;
  const signingKmsKeyId = env.FLOTILLA_SIGNING_KMS_KEY_ID?.trim() || undefined;
  const signingSources = [env.FLOTILLA_SIGNING_KEY?.trim(), signingKeySecretId, signingKmsKeyId].filter(
    Boolean,
  );
  if (signingSources.length > 1) {
    problems.push(
      'set only one of FLOTILLA_SIGNING_KEY, FLOTILLA_SIGNING_KEY_SECRET_ID and FLOTILLA_SIGNING_KMS_KEY_ID',
    );
  }
  const signingKeyPem = signingKeySecretId || signingKmsKeyId ? '' : required('FLOTILLA_SIGNING_KEY');
  if (signingKeyPem && !signingKeyPem.includes('PRIVATE KEY')) {
    problems.push('FLOTILLA_SIGNING_KEY must be a PEM-encoded PKCS#8 private key');
  }
  const webhookSecretId = env.FLOTILLA_WEBHOOK_SECRET_ID?.trim() || undefined;
  if (webhookSecretId && env.FLOTILLA_WEBHOOK_SECRET) {
    problems.push('set only one of FLOTILLA_WEBHOOK_SECRET and FLOTILLA_WEBHOOK_SECRET_ID');
  }
  const credentialsSecretId = env.FLOTILLA_FLEET_REPO_CREDENTIALS_SECRET_ID?.trim() || undefined;
  if (credentialsSecretId && (env.FLOTILLA_FLEET_REPO_USERNAME || env.FLOTILLA_FLEET_REPO_PASSWORD)) {
    problems.push(
      'set either FLOTILLA_FLEET_REPO_USERNAME/PASSWORD or FLOTILLA_FLEET_REPO_CREDENTIALS_SECRET_ID, not both',
    );
  }
  const offline = Number(env.FLOTILLA_OFFLINE_AFTER_SECONDS ?? '180');
  if (!Number.isInteger(offline) || offline < 10) {
    problems.push(
      `FLOTILLA_OFFLINE_AFTER_SECONDS must be an integer of at least 10, got "${env.FLOTILLA_OFFLINE_AFTER_SECONDS}"`,
    );
  }
  const notReady = Number(env.FLOTILLA_NOT_READY_AFTER_SECONDS ?? '600');
  if (!Number.isInteger(notReady) || notReady < 10) {
    problems.push(
      `FLOTILLA_NOT_READY_AFTER_SECONDS must be an integer of at least 10, got "${env.FLOTILLA_NOT_READY_AFTER_SECONDS}"`,
    );
  }
  const adminKeySha256 = env.FLOTILLA_ADMIN_KEY_SHA256?.trim().toLowerCase() || undefined;
  const adminAuth = env.FLOTILLA_ADMIN_AUTH?.trim() || (adminKeySha256 ? 'key' : 'iam');
  if (adminAuth !== 'iam' && adminAuth !== 'key') {
    problems.push(`FLOTILLA_ADMIN_AUTH must be "iam" or "key", got "${adminAuth}"`);
  }
  if (adminAuth === 'key' && !adminKeySha256) {
    problems.push('FLOTILLA_ADMIN_KEY_SHA256 is required when FLOTILLA_ADMIN_AUTH is "key"');
  }
  if (adminKeySha256 && !/^[0-9a-f]{64}$/.test(adminKeySha256)) {
    problems.push('FLOTILLA_ADMIN_KEY_SHA256 must be 64 hex digits (the SHA-256 of the admin key)');
  }
  const tenantPrincipals = parseTenantPrincipals(env.FLOTILLA_TENANT_PRINCIPALS);
  problems.push(...tenantPrincipals.problems);
  const webhookSecret = env.FLOTILLA_WEBHOOK_SECRET || undefined;
  if (webhookSecret !== undefined && webhookSecret.length < 16) {
    problems.push('FLOTILLA_WEBHOOK_SECRET must be at least 16 characters');
  }
  const fanoutWindows = Number(env.FLOTILLA_SYNC_FANOUT_WINDOWS ?? '20');
  if (!Number.isInteger(fanoutWindows) || fanoutWindows < 0) {
    problems.push(
      `FLOTILLA_SYNC_FANOUT_WINDOWS must be a non-negative integer, got "${env.FLOTILLA_SYNC_FANOUT_WINDOWS}"`,
    );
  }
  const user = env.FLOTILLA_FLEET_REPO_USERNAME;
  const password = env.FLOTILLA_FLEET_REPO_PASSWORD;
  const config: HubConfig = {
    prefix,
    tables: problems.length === 0 ? hubTableNames(prefix) : ({} as HubTableNames),
    region,
    dynamodbEndpoint: optionalUrl('FLOTILLA_DYNAMODB_ENDPOINT'),
    sqsEndpoint: optionalUrl('FLOTILLA_SQS_ENDPOINT'),
    fleetRepo: {
      url: repoUrl,
      ref: env.FLOTILLA_FLEET_REPO_REF?.trim() || 'main',
      cacheDir: env.FLOTILLA_GIT_CACHE_DIR?.trim() || '/tmp/flotilla-git',
      auth: user && password ? { username: user, password } : undefined,
    },
    signingKeyPem,
    signingKeySource: signingKmsKeyId
      ? { kind: 'kms', keyId: signingKmsKeyId }
      : signingKeySecretId
        ? { kind: 'secret', secretId: signingKeySecretId }
        : { kind: 'pem' },
    secretIds: {
      webhookSecret: webhookSecretId,
      fleetRepoCredentials: credentialsSecretId,
      chartCredentials: env.FLOTILLA_CHART_CREDENTIALS_SECRET_ID?.trim() || undefined,
    },
    secretsManagerEndpoint: optionalUrl('FLOTILLA_SECRETSMANAGER_ENDPOINT'),
    kmsEndpoint: optionalUrl('FLOTILLA_KMS_ENDPOINT'),
    offlineAfterSeconds: offline,
    notReadyAfterSeconds: notReady,
    notifyQueueUrl: optionalUrl('FLOTILLA_NOTIFY_QUEUE_URL'),
    rendererBinary: env.FLOTILLA_RENDERER?.trim() || undefined,
    chartCacheDir: env.FLOTILLA_CHART_CACHE_DIR?.trim() || '/tmp/flotilla-charts',
    chartCredentialsFile: env.FLOTILLA_CHART_CREDENTIALS_FILE?.trim() || undefined,
    chartCredentialsJson: undefined,
    sourceSecretPrefix: env.FLOTILLA_SOURCE_SECRET_PREFIX?.trim() || `${prefix}/sources/`,
    plainHttpRegistries: (env.FLOTILLA_PLAIN_HTTP_REGISTRIES ?? '')
      .split(',')
      .map((r) => r.trim())
      .filter((r) => r !== ''),
    adminAuth: adminAuth === 'key' ? 'key' : 'iam',
    adminKeySha256,
    tenantPrincipals: tenantPrincipals.principals,
    webhookSecret,
    syncQueueUrl: optionalUrl('FLOTILLA_SYNC_QUEUE_URL'),
    syncFanoutWindows: fanoutWindows,
  };
  if (problems.length > 0)
    throw new ConfigError(`invalid hub configuration:\n  - ${problems.join('\n  - ')}`);
  return config;
}
