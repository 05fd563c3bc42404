import { type HubTableNames, hubTableNames } from '@flotilla/shared/hub';
import { parseDuration } from '@flotilla/shared/rollout';
import { ConfigError } from './config.ts';

/** What the notifier reads from its environment, validated once at cold start. */
export interface NotifierConfig {
  readonly prefix: string;
  readonly tables: HubTableNames;
  readonly region: string;
  readonly dynamodbEndpoint: string | undefined;
  readonly sqsEndpoint: string | undefined;
  readonly secretsManagerEndpoint: string | undefined;
  readonly snsEndpoint: string | undefined;
  readonly eventBridgeEndpoint: string | undefined;
  /** The fleet repo, read for `notifications/` (the same variables as the hub's functions). */
  readonly fleetRepo: {
    readonly url: string;
    readonly ref: string;
    readonly cacheDir: string;
    readonly auth: { readonly username: string; readonly password: string } | undefined;
    readonly credentialsSecretId: string | undefined;
  };
  /**
   * Where providers' `secretRef`s are resolved: Secrets Manager secrets named
   * `<secretPrefix><secretRef>` (FLOTILLA_NOTIFICATION_SECRET_PREFIX, default
   * `<prefix>/notifications/`), or a JSON file of `{"<secretRef>": "<value>"}` for the
   * local hub (FLOTILLA_NOTIFICATION_SECRETS_FILE).
   */
  readonly secrets:
    | { readonly kind: 'secrets-manager'; readonly prefix: string }
    | { readonly kind: 'file'; readonly path: string };
  /** FLOTILLA_NOTIFY_DEDUP_WINDOW, default 10m. */
  readonly dedupWindowMs: number;
  /** How long a read of `notifications/` is reused before the repo is fetched again (FLOTILLA_NOTIFY_CONFIG_TTL, default 1m). */
  readonly configTtlMs: number;
}

export function loadNotifierConfig(env: Readonly<Record<string, string | undefined>>): NotifierConfig {
  const problems: string[] = [];
  const optionalUrl = (name: string): string | undefined => {
    const value = env[name]?.trim();
    if (!value) return undefined;
    if (!URL.canParse(value)) problems.push(`${name} is not a URL: "${value}"`);
    return value;
  };
  const duration = (name: string, fallback: number): number => {
    const text = env[name]?.trim();
    if (!text) return fallback;
    const ms = parseDuration(text);
    if (ms === undefined) problems.push(`${name} must be a duration such as 30s or 10m, got "${text}"`);
    return ms ?? fallback;
  };
  const prefix = env.FLOTILLA_PREFIX?.trim() || 'flotilla';
  if (!/^[a-z0-9][a-z0-9-]{0,19}$/.test(prefix)) {
    problems.push(`FLOTILLA_PREFIX must be 1-20 lowercase letters, digits or '-', got "${prefix}"`);
  }
  const region = env.AWS_REGION?.trim() || env.AWS_DEFAULT_REGION?.trim() || '';
  if (!region) problems.push('AWS_REGION is required');
  const repoUrl = env.FLOTILLA_FLEET_REPO_URL?.trim() ?? '';
  if (!repoUrl) problems.push('FLOTILLA_FLEET_REPO_URL is required');
  else if (!URL.canParse(repoUrl)) problems.push(`FLOTILLA_FLEET_REPO_URL is not a URL: "${repoUrl}"`);
  const user = env.FLOTILLA_FLEET_REPO_USERNAME;
  const password = env.FLOTILLA_FLEET_REPO_PASSWORD;
  const secretsFile = env.FLOTILLA_NOTIFICATION_SECRETS_FILE?.trim() || undefined;
  const secretPrefix = env.FLOTILLA_NOTIFICATION_SECRET_PREFIX?.trim() || `${prefix}/notifications/`;
  const config: NotifierConfig = {
    prefix,
    tables: problems.length === 0 ? hubTableNames(prefix) : ({} as HubTableNames),
    region,
    dynamodbEndpoint: optionalUrl('FLOTILLA_DYNAMODB_ENDPOINT'),
    sqsEndpoint: optionalUrl('FLOTILLA_SQS_ENDPOINT'),
    secretsManagerEndpoint: optionalUrl('FLOTILLA_SECRETSMANAGER_ENDPOINT'),
    snsEndpoint: optionalUrl('FLOTILLA_SNS_ENDPOINT'),
    eventBridgeEndpoint: optionalUrl('FLOTILLA_EVENTBRIDGE_ENDPOINT'),
    fleetRepo: {
      url: repoUrl,
      ref: env.FLOTILLA_FLEET_REPO_REF?.trim() || 'main',
      cacheDir: env.FLOTILLA_GIT_CACHE_DIR?.trim() || '/tmp/flotilla-git',
      auth: user && password ? { username: user, password } : undefined,
      credentialsSecretId: env.FLOTILLA_FLEET_REPO_CREDENTIALS_SECRET_ID?.trim() || undefined,
    },
    secrets: secretsFile
      ? { kind: 'file', path: secretsFile }
      : { kind: 'secrets-manager', prefix: secretPrefix },
    dedupWindowMs: duration('FLOTILLA_NOTIFY_DEDUP_WINDOW', 10 * 60_000),
    configTtlMs: duration('FLOTILLA_NOTIFY_CONFIG_TTL', 60_000),
  };
  if (problems.length > 0)
    throw new ConfigError(`invalid notifier configuration:\n  - ${problems.join('\n  - ')}`);
  return config;
}
