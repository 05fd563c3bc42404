import { fileURLToPath } from 'node:url';
import { type HubTableKey, hubTableNames, hubTables, spokeQueueName } from '@flotilla/shared/hub/tables';
import { ArnFormat, Duration, RemovalPolicy, Size, Stack, Validations } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import {
  HttpApi,
  HttpMethod,
  HttpNoneAuthorizer,
  HttpRoute,
  HttpRouteKey,
  HttpStage,
  LogGroupLogDestination,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import {
  Alarm,
  ComparisonOperator,
  type IMetric,
  Metric,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { AttributeType, BillingMode, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import {
  Effect,
  Grant,
  type IGrantable,
  ManagedPolicy,
  PolicyStatement,
  Role,
  ServicePrincipal,
  User,
} from 'aws-cdk-lib/aws-iam';
import { Key, KeySpec, KeyUsage } from 'aws-cdk-lib/aws-kms';
import { Architecture, type LayerVersion, Runtime } from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { type BundlingOptions, LogLevel, NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { FilterPattern, LogGroup, MetricFilter, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { type ISecret, Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { type ITopic, Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { flattenCfnReference } from 'cdk-nag/lib/utils/flatten-cfn-reference.js';
import { Construct, type IConstruct } from 'constructs';
import { hubRoutes } from '../../functions/src/http/routes.ts';
import {
  type FlotillaHubConfig,
  type ResolvedFlotillaHubConfig,
  resolveFlotillaHubConfig,
} from './config.ts';
import { apiAccess, type FunctionAccess, syncAccess } from './permissions.ts';
import { RendererLayer, rendererLayerBinary } from './renderer-layer.ts';

/**
 * Props of {@link FlotillaHub}: the hub's configuration, validated when the construct is
 * created, and the render worker its functions run.
 */
export type FlotillaHubProps = FlotillaHubConfig & {
  readonly renderer: {
    /**
     * Path of `flotilla-renderer` built for linux/arm64:
     * `await ensureRenderer({ target: lambdaRendererTarget })` from `@flotilla/renderer/build.ts`.
     * Shipped as a layer; a binary for another machine fails the synth.
     */
    readonly binary: string;
  };
};

/** Metrics the hub's log lines are turned into, in namespace `Flotilla/<prefix>`. */
export const hubMetricNames = {
  fleetRepoErrors: 'FleetRepoErrors',
  notifyFailures: 'NotifyFailures',
} as const;

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const handlerEntry = (file: string) => fileURLToPath(new URL(`../../functions/src/${file}`, import.meta.url));

/**
 * The Flotilla hub on AWS: the DynamoDB tables, the spoke dead-letter queue, the API and
 * sync functions (Node 24, arm64, bundled locally with esbuild) with the render worker as
 * a layer, the HTTP API with IAM on
 * admin routes, the sync schedule, the signing key, logs, alarms, and least-privilege
 * roles. Put it in any stack; it applies its own cdk-nag suppressions, each with a reason.
 *
 * @example
 * const hub = new FlotillaHub(stack, 'Hub', {
 *   fleetRepo: { url: 'https://github.com/acme/fleet.git', ref: 'main' },
 *   alarms: { email: 'oncall@acme.example' },
 *   renderer: { binary: await ensureRenderer({ target: lambdaRendererTarget }) },
 * });
 * hub.grantAdminAccess(adminRole);
 * new CfnOutput(stack, 'HubUrl', { value: hub.url });
 */
export class FlotillaHub extends Construct {
  readonly config: ResolvedFlotillaHubConfig;
  readonly tables: { readonly [K in HubTableKey]: Table };
  /** The DLQ the per-cluster queues (created at registration) redrive to. */
  readonly spokeDeadLetterQueue: Queue;
  /** The windows of a sync that fans out, one message each, worked by the sync function. */
  readonly syncWorkQueue: Queue;
  readonly apiFunction: NodejsFunction;
  readonly syncFunction: NodejsFunction;
  /** Fleet events the API and sync functions emit, one message each, for the notifier. */
  readonly notificationsQueue: Queue;
  /** Events the notifier failed to deliver five times (a provider down for long, a bad secret). */
  readonly notificationsDeadLetterQueue: Queue;
  /** Delivers fleet events to the providers of `notifications/` in the fleet repo. */
  readonly notifierFunction: NodejsFunction;
  /** `bin/flotilla-renderer` (linux/arm64), attached to both functions: each renders (sync, preview). */
  readonly rendererLayer: LayerVersion;
  readonly httpApi: HttpApi;
  readonly stage: HttpStage;
  /** The hub's base URL, ending in `/`. */
  readonly url: string;
  /** The secret holding the signing key, or the KMS key that is it. */
  readonly signingKey: { readonly secret: ISecret } | { readonly kmsKey: Key };
  readonly webhookSecret: Secret | undefined;
  /** `execute-api:Invoke` on every admin route: attach it to the roles of fleet admins. */
  readonly adminPolicy: ManagedPolicy;
  /**
   * Per configured tenant, `execute-api:Invoke` on that tenant's `/v1/tenants/<name>/` routes
   * only, attached to the tenant's roles and users.
   */
  readonly tenantPolicies: Readonly<Record<string, ManagedPolicy>>;
  readonly alarms: readonly Alarm[];
  /** Where alarms go: the e-mail topic the hub created, else the topic it was given. */
  readonly alarmTopic: ITopic | undefined;

  constructor(scope: Construct, id: string, props: FlotillaHubProps) {
    super(scope, id);
    const { renderer, ...hubConfig } = props;
    const config = resolveFlotillaHubConfig(hubConfig);
    this.config = config;
    const { prefix } = config;
    const removalPolicy = config.removalPolicy === 'retain' ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    if (new URL(config.fleetRepo.url).hostname.endsWith('example.com')) {
      Validations.of(this).addWarning(
        'flotilla:exampleFleetRepo',
        `fleetRepo.url is still the example (${config.fleetRepo.url}): set your fleet repo before deploying`,
      );
    }

    // Tables: names and keys come from the one definition the functions use too.
    const names = hubTableNames(prefix);
    const tables = {} as { [K in HubTableKey]: Table };
    for (const key of Object.keys(hubTables) as HubTableKey[]) {
      const def = hubTables[key];
      tables[key] = new Table(this, `Table-${def.suffix}`, {
        tableName: names[key],
        partitionKey: { name: def.partitionKey.name, type: attributeType(def.partitionKey.type) },
        ...('sortKey' in def
          ? { sortKey: { name: def.sortKey.name, type: attributeType(def.sortKey.type) } }
          : {}),
        billingMode: BillingMode.PAY_PER_REQUEST,
        pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
        encryption: TableEncryption.AWS_MANAGED,
        deletionProtection: config.removalPolicy === 'retain',
        // Items that expire (used registration tokens) name their expiry in this attribute.
        timeToLiveAttribute: (def as { readonly ttlAttribute?: string }).ttlAttribute,
        removalPolicy,
      });
    }
    this.tables = tables;

    // The functions create each cluster's queue at registration, redriving to this DLQ, which
    // they look up by name. CreateQueue on an existing queue succeeds only when the attributes
    // it passes match, so the retention here is the one the adapter asks for (14 days).
    this.spokeDeadLetterQueue = new Queue(this, 'SpokeDeadLetterQueue', {
      queueName: `${prefix}-spoke-dlq`,
      retentionPeriod: Duration.days(14),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      removalPolicy,
    });
    Validations.of(this.spokeDeadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        'This is the dead-letter queue: the per-cluster queues that redrive to it are created by the API function at registration, outside CloudFormation.',
    });

    // A sync of a big fleet hands each window of clusters to a worker invocation of the sync
    // function through this queue (docs/deploy.md, "How the sync scales"). Lambda requires a
    // visibility timeout of at least the function's timeout; a window failing five times
    // (a bug, not a blip) is parked in the DLQ and its job never completes: the next sync redoes it.
    const syncWorkDeadLetterQueue = new Queue(this, 'SyncWorkDeadLetterQueue', {
      queueName: `${prefix}-sync-work-dlq`,
      retentionPeriod: Duration.days(14),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      removalPolicy,
    });
    this.syncWorkQueue = new Queue(this, 'SyncWorkQueue', {
      queueName: `${prefix}-sync-work`,
      visibilityTimeout: Duration.minutes(15),
      retentionPeriod: Duration.days(1),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      removalPolicy,
      deadLetterQueue: { queue: syncWorkDeadLetterQueue, maxReceiveCount: 5 },
    });

    // Fleet events (docs/notifications.md): the functions emit, the notifier delivers. An
    // event whose delivery failed five times (each time after its own retries with
    // backoff) is parked in the DLQ, which alarms.
    this.notificationsDeadLetterQueue = new Queue(this, 'NotificationsDeadLetterQueue', {
      queueName: `${prefix}-notifications-dlq`,
      retentionPeriod: Duration.days(14),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      removalPolicy,
    });
    this.notificationsQueue = new Queue(this, 'NotificationsQueue', {
      queueName: `${prefix}-notifications`,
      // At least the notifier's timeout, as Lambda requires; a failed event comes back after it.
      visibilityTimeout: Duration.minutes(5),
      retentionPeriod: Duration.days(4),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      removalPolicy,
      deadLetterQueue: { queue: this.notificationsDeadLetterQueue, maxReceiveCount: 5 },
    });

    // Signing key: see docs/deploy.md for why a Secrets Manager-held key is the default.
    const signing = config.signingKey;
    if (signing.mode === 'kms') {
      const kmsKey = new Key(this, 'SigningKey', {
        keySpec: KeySpec.ECC_NIST_EDWARDS25519,
        keyUsage: KeyUsage.SIGN_VERIFY,
        description: `Flotilla hub ${prefix}: signs desired states (Ed25519)`,
        removalPolicy,
      });
      this.signingKey = { kmsKey };
    } else if (signing.mode === 'existing-secret') {
      this.signingKey = { secret: Secret.fromSecretCompleteArn(this, 'SigningKey', signing.secretArn) };
    } else {
      const secret = new Secret(this, 'SigningKey', {
        description: `Flotilla hub ${prefix}: seed of the Ed25519 key that signs desired states`,
        generateSecretString: {
          secretStringTemplate: '{}',
          generateStringKey: 'ed25519Seed',
          passwordLength: 64,
          excludePunctuation: true,
        },
        removalPolicy,
      });
      Validations.of(secret).acknowledge({
        id: 'AwsSolutions-SMG4',
        reason:
          'Every agent pins the public key at bootstrap: rotating the signing key is a planned fleet operation (docs/deploy.md), not a schedule.',
      });
      this.signingKey = { secret };
    }
    this.webhookSecret = config.webhook
      ? new Secret(this, 'WebhookSecret', {
          description: `Flotilla hub ${prefix}: HMAC secret of the fleet repo's push webhook`,
          generateSecretString: { passwordLength: 48, excludePunctuation: true },
          removalPolicy,
        })
      : undefined;
    if (this.webhookSecret) {
      Validations.of(this.webhookSecret).acknowledge({
        id: 'AwsSolutions-SMG4',
        reason:
          'The same secret is configured at the git host, which Secrets Manager cannot update: rotate it by hand at both ends (docs/deploy.md).',
      });
    }
    const credentials = config.fleetRepo.credentialsSecretArn
      ? Secret.fromSecretCompleteArn(this, 'FleetRepoCredentials', config.fleetRepo.credentialsSecretArn)
      : undefined;
    const chartCredentials = config.charts.credentialsSecretArn
      ? Secret.fromSecretCompleteArn(this, 'ChartCredentials', config.charts.credentialsSecretArn)
      : undefined;

    // The Helm and kustomize render worker, which both functions spawn: the sync renders
    // the fleet, the API renders previews. See docs/renderer.md.
    this.rendererLayer = new RendererLayer(this, 'Renderer', {
      binary: renderer.binary,
      description: `Flotilla hub ${prefix}: flotilla-renderer, the Helm and kustomize render worker (linux/arm64)`,
    }).layer;

    // Functions. Secrets reach them as ids, read at cold start; only `loadConfig` reads this.
    const commonEnv: Record<string, string> = {
      FLOTILLA_PREFIX: prefix,
      FLOTILLA_SYNC_QUEUE_URL: this.syncWorkQueue.queueUrl,
      FLOTILLA_FLEET_REPO_URL: config.fleetRepo.url,
      FLOTILLA_FLEET_REPO_REF: config.fleetRepo.ref,
      FLOTILLA_ADMIN_AUTH: 'iam',
      FLOTILLA_OFFLINE_AFTER_SECONDS: String(config.offlineAfterSeconds),
      FLOTILLA_GIT_CACHE_DIR: '/tmp/flotilla-git',
      FLOTILLA_RENDERER: rendererLayerBinary,
      ...('kmsKey' in this.signingKey
        ? { FLOTILLA_SIGNING_KMS_KEY_ID: this.signingKey.kmsKey.keyArn }
        : { FLOTILLA_SIGNING_KEY_SECRET_ID: this.signingKey.secret.secretArn }),
      ...(credentials ? { FLOTILLA_FLEET_REPO_CREDENTIALS_SECRET_ID: credentials.secretArn } : {}),
      ...(chartCredentials ? { FLOTILLA_CHART_CREDENTIALS_SECRET_ID: chartCredentials.secretArn } : {}),
      FLOTILLA_CHART_CACHE_DIR: '/tmp/flotilla-charts',
      FLOTILLA_NOTIFY_QUEUE_URL: this.notificationsQueue.queueUrl,
    };
    const retention = config.logRetentionDays as RetentionDays;
    const bundling: BundlingOptions = {
      format: OutputFormat.ESM,
      target: 'node24',
      minify: true,
      sourceMap: true,
      sourcesContent: false,
      mainFields: ['module', 'main'],
      // CommonJS dependencies call require(); an ES module bundle has to provide it.
      banner:
        "import { createRequire as __flotillaRequire } from 'node:module'; const require = __flotillaRequire(import.meta.url);",
      // The SDK clients the lock file pins, not whichever the runtime ships.
      bundleAwsSDK: true,
      externalModules: [],
      forceDockerBundling: false,
      logLevel: LogLevel.WARNING,
    };

    const apiLogs = new LogGroup(this, 'ApiLogs', { retention, removalPolicy });
    const apiRole = this.#functionRole('ApiRole', 'API', apiLogs);
    this.apiFunction = new NodejsFunction(this, 'ApiFunction', {
      description: `Flotilla hub ${prefix}: HTTP API (every route)`,
      entry: handlerEntry('api.handler.ts'),
      handler: 'handler',
      projectRoot: repoRoot,
      depsLockFilePath: `${repoRoot}package-lock.json`,
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      // Previews spawn the render worker too (35 MB idle, some 60 MB after hundreds of
      // renders, measured), which fits. More memory would buy CPU for the rare preview and
      // bill it on every agent poll, which waits on DynamoDB, not on CPU.
      memorySize: 1024,
      // API Gateway gives up after 30 s.
      timeout: Duration.seconds(29),
      ephemeralStorageSize: Size.mebibytes(2048),
      role: apiRole,
      logGroup: apiLogs,
      layers: [this.rendererLayer],
      environment: {
        ...commonEnv,
        ...(this.webhookSecret ? { FLOTILLA_WEBHOOK_SECRET_ID: this.webhookSecret.secretArn } : {}),
        ...(Object.keys(config.tenants).length > 0
          ? {
              FLOTILLA_TENANT_PRINCIPALS: JSON.stringify(
                Object.fromEntries(Object.entries(config.tenants).map(([name, t]) => [name, t.principals])),
              ),
            }
          : {}),
      },
      bundling,
    });

    const syncLogs = new LogGroup(this, 'SyncLogs', { retention, removalPolicy });
    const syncRole = this.#functionRole('SyncRole', 'scheduled sync', syncLogs);
    this.syncFunction = new NodejsFunction(this, 'SyncFunction', {
      description: `Flotilla hub ${prefix}: scheduled sync of the fleet repo`,
      entry: handlerEntry('sync.handler.ts'),
      handler: 'handler',
      projectRoot: repoRoot,
      depsLockFilePath: `${repoRoot}package-lock.json`,
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      // Lambda gives CPU in proportion to memory (one vCPU at 1,769 MB). The sync runs two
      // busy processes, Node (620 MB RSS at 100,000 clusters in bench/hub.ts) and the render
      // worker (tens of MB), so it gets ~1.7 vCPUs at 3,008 MB. Not more: new AWS accounts
      // start with a reduced Lambda memory quota, and a hub must deploy there too.
      memorySize: 3008,
      timeout: Duration.minutes(15),
      ephemeralStorageSize: Size.mebibytes(2048),
      // The next scheduled run is the retry; a failed sync changes nothing it would not redo.
      retryAttempts: 0,
      role: syncRole,
      logGroup: syncLogs,
      layers: [this.rendererLayer],
      environment: commonEnv,
      bundling,
    });
    // One window per invocation, so each is bounded by one window's work; a window that
    // throws goes back to the queue alone. At most 10 at once, so the windows' writes stay
    // within what DynamoDB on-demand absorbs without throttling.
    this.syncFunction.addEventSource(
      new SqsEventSource(this.syncWorkQueue, { batchSize: 1, maxConcurrency: 10 }),
    );

    this.#grant(apiRole, apiAccess);
    this.#grant(syncRole, syncAccess);
    for (const role of [apiRole, syncRole]) {
      if ('kmsKey' in this.signingKey) this.signingKey.kmsKey.grant(role, 'kms:GetPublicKey', 'kms:Sign');
      else role.addToPrincipalPolicy(secretRead(this.signingKey.secret));
      if (credentials) role.addToPrincipalPolicy(secretRead(credentials));
      if (chartCredentials) role.addToPrincipalPolicy(secretRead(chartCredentials));
    }
    // Fleet sources name their credentials by secretRef: the hub reads `<prefix>/sources/<secretRef>`.
    const sourceSecrets = Stack.of(this).formatArn({
      service: 'secretsmanager',
      resource: 'secret',
      resourceName: `${prefix}/sources/*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    for (const role of [apiRole, syncRole]) {
      role.addToPrincipalPolicy(
        new PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: [sourceSecrets] }),
      );
      acknowledgeWildcard(
        role,
        sourceSecrets,
        'Fleet sources name their git credentials in the fleet repo; the hub may read the secrets under its own prefix and no others.',
      );
    }
    if (this.webhookSecret) apiRole.addToPrincipalPolicy(secretRead(this.webhookSecret));
    // Either function may coordinate a sync (the API for a webhook) and so dispatch windows,
    // and either may step a rollout (a status report, a command, a sync, a wake) and so arm a
    // delayed rollout wake; the event source gave the sync role what consuming them takes.
    for (const role of [apiRole, syncRole]) this.syncWorkQueue.grantSendMessages(role);
    // Both emit fleet events (a sync's failures, status reports, offline clusters).
    for (const role of [apiRole, syncRole]) this.notificationsQueue.grantSendMessages(role);

    // The notifier: reads the queue (the event source grants that), the fleet repo, its dedup
    // claims in the hub-state table, the providers' secrets under `<prefix>/notifications/`,
    // and publishes to the configured topics and buses only.
    const notifierLogs = new LogGroup(this, 'NotifierLogs', { retention, removalPolicy });
    const notifierRole = this.#functionRole('NotifierRole', 'notifier', notifierLogs);
    this.notifierFunction = new NodejsFunction(this, 'NotifierFunction', {
      description: `Flotilla hub ${prefix}: delivers fleet events to Slack, Teams, webhooks, SNS and EventBridge`,
      entry: handlerEntry('notify.handler.ts'),
      handler: 'handler',
      projectRoot: repoRoot,
      depsLockFilePath: `${repoRoot}package-lock.json`,
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      memorySize: 512,
      timeout: Duration.minutes(2),
      ephemeralStorageSize: Size.mebibytes(1024),
      role: notifierRole,
      logGroup: notifierLogs,
      environment: {
        FLOTILLA_PREFIX: prefix,
        FLOTILLA_FLEET_REPO_URL: config.fleetRepo.url,
        FLOTILLA_FLEET_REPO_REF: config.fleetRepo.ref,
        FLOTILLA_GIT_CACHE_DIR: '/tmp/flotilla-git',
        FLOTILLA_NOTIFICATION_SECRET_PREFIX: `${prefix}/notifications/`,
        ...(credentials ? { FLOTILLA_FLEET_REPO_CREDENTIALS_SECRET_ID: credentials.secretArn } : {}),
      },
      bundling,
    });
    this.notifierFunction.addEventSource(
      // The per-provider rate limits and held summaries live in the notifier's memory, so it
      // runs as few instances as the event source allows (2). Not reserved concurrency 1:
      // the queue's pollers would be throttled and push events towards the DLQ.
      new SqsEventSource(this.notificationsQueue, {
        batchSize: 100,
        maxBatchingWindow: Duration.seconds(5),
        reportBatchItemFailures: true,
        maxConcurrency: 2,
      }),
    );
    notifierRole.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['dynamodb:PutItem', 'dynamodb:DeleteItem'],
        resources: [this.tables.hubState.tableArn],
        // Only the notifier's own items.
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['notify#*'] } },
      }),
    );
    const notificationSecrets = Stack.of(this).formatArn({
      service: 'secretsmanager',
      resource: 'secret',
      resourceName: `${prefix}/notifications/*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    notifierRole.addToPrincipalPolicy(
      new PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: [notificationSecrets] }),
    );
    acknowledgeWildcard(
      notifierRole,
      notificationSecrets,
      'Providers name their secrets in the fleet repo; the notifier may read the secrets under its own prefix and no others.',
    );
    if (credentials) notifierRole.addToPrincipalPolicy(secretRead(credentials));
    if (config.notifications.topicArns.length > 0) {
      notifierRole.addToPrincipalPolicy(
        new PolicyStatement({ actions: ['sns:Publish'], resources: [...config.notifications.topicArns] }),
      );
    }
    if (config.notifications.eventBuses.length > 0) {
      notifierRole.addToPrincipalPolicy(
        new PolicyStatement({
          actions: ['events:PutEvents'],
          resources: config.notifications.eventBuses.map((bus) =>
            Stack.of(this).formatArn({ service: 'events', resource: 'event-bus', resourceName: bus }),
          ),
        }),
      );
    }

    // HTTP API: the route table is the one the handler dispatches on.
    const accessLogs = new LogGroup(this, 'ApiAccessLogs', { retention, removalPolicy });
    this.httpApi = new HttpApi(this, 'HttpApi', {
      apiName: `${prefix}-hub`,
      description: `Flotilla hub ${prefix}`,
      createDefaultStage: false,
    });
    this.stage = new HttpStage(this, 'Stage', {
      httpApi: this.httpApi,
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: config.api.throttleRateLimit, burstLimit: config.api.throttleBurstLimit },
      accessLogSettings: {
        destination: new LogGroupLogDestination(accessLogs),
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            time: '$context.requestTime',
            ip: '$context.identity.sourceIp',
            method: '$context.httpMethod',
            path: '$context.path',
            routeKey: '$context.routeKey',
            status: '$context.status',
            responseLength: '$context.responseLength',
            latencyMs: '$context.responseLatency',
            iamCaller: '$context.identity.userArn',
            integrationError: '$context.integrationErrorMessage',
          }),
        ),
      },
    });
    this.url = this.stage.url;
    const integration = new HttpLambdaIntegration('ApiIntegration', this.apiFunction, {
      scopePermissionToRoute: false,
    });
    const iamAuthorizer = new HttpIamAuthorizer();
    const noAuthorizer = new HttpNoneAuthorizer();
    const unauthorizedRoutes: HttpRoute[] = [];
    for (const route of hubRoutes) {
      const httpRoute = new HttpRoute(this, `Route-${route.id}`, {
        httpApi: this.httpApi,
        routeKey: HttpRouteKey.with(route.path, HttpMethod[route.method]),
        integration,
        authorizer: route.auth === 'admin' || route.auth === 'tenant' ? iamAuthorizer : noAuthorizer,
      });
      if (route.auth !== 'admin' && route.auth !== 'tenant') unauthorizedRoutes.push(httpRoute);
    }
    unauthorizedRoutes.push(
      new HttpRoute(this, 'Route-default', {
        httpApi: this.httpApi,
        routeKey: HttpRouteKey.DEFAULT,
        integration,
        authorizer: noAuthorizer,
      }),
    );
    for (const route of unauthorizedRoutes) {
      Validations.of(route).acknowledge({
        id: 'AwsSolutions-APIG4',
        reason:
          'Not an admin route: authenticated inside the function. Agent routes by the cluster token, in the same consistent read that serves the request (revocation is immediate, which a cached authorizer would not give); registration by its one-time token, used up in one conditional write; the webhook by the HMAC of its body. $default only answers 404/405.',
      });
    }

    this.adminPolicy = new ManagedPolicy(this, 'AdminPolicy', {
      description: `Flotilla hub ${prefix}: call the admin routes of the hub API`,
      statements: [
        new PolicyStatement({
          actions: ['execute-api:Invoke'],
          resources: [this.#adminRoutesArn()],
        }),
      ],
    });
    acknowledgeWildcard(
      this.adminPolicy,
      this.#adminRoutesArn(),
      'Admins may call every method of every /v1/admin/ route of this one API; nothing else.',
    );

    const tenantPolicies: Record<string, ManagedPolicy> = {};
    for (const [name, { principals }] of Object.entries(config.tenants)) {
      const tenant = { name, principals };
      const routes = this.#tenantRoutesArn(tenant.name);
      const policy = new ManagedPolicy(this, `TenantPolicy-${tenant.name}`, {
        description: `Flotilla hub ${prefix}: call the routes of tenant ${tenant.name} (/v1/tenants/${tenant.name}/) of the hub API`,
        statements: [new PolicyStatement({ actions: ['execute-api:Invoke'], resources: [routes] })],
        roles: tenant.principals
          .filter((arn) => /:role\//.test(arn))
          .map((arn, i) => Role.fromRoleArn(this, `TenantRole-${tenant.name}-${i}`, arn)),
        users: tenant.principals
          .filter((arn) => /:user\//.test(arn))
          .map((arn, i) => User.fromUserArn(this, `TenantUser-${tenant.name}-${i}`, arn)),
      });
      acknowledgeWildcard(
        policy,
        routes,
        `Tenant ${tenant.name}'s admins may call every method of its own /v1/tenants/${tenant.name}/ routes of this one API; nothing else.`,
      );
      tenantPolicies[tenant.name] = policy;
    }
    this.tenantPolicies = tenantPolicies;

    new Rule(this, 'SyncSchedule', {
      description: `Flotilla hub ${prefix}: periodic sync, in case a webhook was missed`,
      schedule: Schedule.rate(Duration.minutes(config.syncIntervalMinutes)),
      targets: [new LambdaFunction(this.syncFunction, { retryAttempts: 0 })],
    });

    // Alarms.
    const namespace = `Flotilla/${prefix}`;
    new MetricFilter(this, 'FleetRepoErrorsFilter', {
      logGroup: syncLogs,
      metricNamespace: namespace,
      metricName: hubMetricNames.fleetRepoErrors,
      filterPattern: FilterPattern.all(
        FilterPattern.stringValue('$.message', '=', 'scheduled sync'),
        FilterPattern.exists('$.errors[0]'),
      ),
      metricValue: '1',
    });
    new MetricFilter(this, 'NotifyFailuresFilter', {
      logGroup: syncLogs,
      metricNamespace: namespace,
      metricName: hubMetricNames.notifyFailures,
      filterPattern: FilterPattern.all(
        FilterPattern.stringValue('$.message', '=', 'scheduled sync'),
        FilterPattern.exists('$.notifyFailures[0]'),
      ),
      metricValue: '1',
    });
    const period = Duration.minutes(Math.max(5, config.syncIntervalMinutes));
    const alarm = (alarmId: string, description: string, metric: IMetric, threshold = 1) =>
      new Alarm(this, alarmId, {
        alarmName: `${prefix}-hub-${alarmId.replace(/[A-Z]/g, (c, i) => (i ? '-' : '') + c.toLowerCase())}`,
        alarmDescription: description,
        metric,
        threshold,
        evaluationPeriods: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
    this.alarms = [
      alarm(
        'SyncFailed',
        'A scheduled sync failed (the function threw): clusters are not getting new desired states.',
        this.syncFunction.metricErrors({ period, statistic: 'Sum' }),
      ),
      alarm(
        'FleetRepoErrors',
        'The fleet repo has broken bundles: affected clusters keep their last good desired state. See the sync log.',
        new Metric({ namespace, metricName: hubMetricNames.fleetRepoErrors, period, statistic: 'Sum' }),
      ),
      alarm(
        'NotifyFailures',
        'The sync could not notify some clusters over SQS; they pick up the change on their next poll.',
        new Metric({ namespace, metricName: hubMetricNames.notifyFailures, period, statistic: 'Sum' }),
      ),
      alarm(
        'SpokeDeadLetters',
        'Notifications reached the spoke dead-letter queue: some agent is not consuming its queue.',
        this.spokeDeadLetterQueue.metricApproximateNumberOfMessagesVisible({
          period: Duration.minutes(5),
          statistic: 'Maximum',
        }),
      ),
      alarm(
        'NotificationDeadLetters',
        'Fleet events reached the notifications dead-letter queue: a provider refused them five times (see the notifier log by provider).',
        this.notificationsDeadLetterQueue.metricApproximateNumberOfMessagesVisible({
          period: Duration.minutes(5),
          statistic: 'Maximum',
        }),
      ),
      alarm(
        'ApiServerErrors',
        'The hub API answered 5xx: see the API log by requestId.',
        this.httpApi.metricServerError({ period: Duration.minutes(5), statistic: 'Sum' }),
        5,
      ),
    ];
    const topics = this.#alarmTopics();
    this.alarmTopic = topics[0];
    for (const topic of topics) {
      const action = new SnsAction(topic);
      for (const a of this.alarms) a.addAlarmAction(action);
    }
  }

  /** Lets `grantee` call every admin route (SigV4-signed, `execute-api:Invoke`). */
  grantAdminAccess(grantee: IGrantable): Grant {
    return Grant.addToPrincipal({
      grantee,
      actions: ['execute-api:Invoke'],
      resourceArns: [this.#adminRoutesArn()],
    });
  }

  #tenantRoutesArn(tenant: string): string {
    return this.httpApi.arnForExecuteApi('*', `/v1/tenants/${tenant}/*`, '$default');
  }

  #adminRoutesArn(): string {
    return this.httpApi.arnForExecuteApi('*', '/v1/admin/*', '$default');
  }

  /** A role with no managed policies: it may write its own log group, and gets the rest from {@link #grant}. */
  #functionRole(roleId: string, what: string, logGroup: LogGroup): Role {
    const role = new Role(this, roleId, {
      description: `Flotilla hub ${this.config.prefix}: ${what} function`,
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
    });
    logGroup.grantWrite(role);
    return role;
  }

  #grant(role: Role, access: FunctionAccess): void {
    for (const [key, actions] of Object.entries(access.tables) as [HubTableKey, readonly string[]][]) {
      role.addToPrincipalPolicy(
        new PolicyStatement({
          actions: actions.map((a) => `dynamodb:${a}`),
          resources: [this.tables[key].tableArn],
        }),
      );
    }
    const stack = Stack.of(this);
    const queues = stack.formatArn({
      service: 'sqs',
      resource: spokeQueueName(this.config.prefix, '*'),
      arnFormat: ArnFormat.NO_RESOURCE_NAME,
    });
    role.addToPrincipalPolicy(new PolicyStatement({ actions: [...access.spokeQueues], resources: [queues] }));
    if (access.spokeQueues.includes('sqs:DeleteQueue')) {
      // The DLQ matches the prefix too, and outlives every cluster.
      role.addToPrincipalPolicy(
        new PolicyStatement({
          effect: Effect.DENY,
          actions: ['sqs:DeleteQueue'],
          resources: [this.spokeDeadLetterQueue.queueArn],
        }),
      );
    }
    acknowledgeWildcard(
      role,
      queues,
      'Spoke queues are created per cluster at registration under a fixed name prefix; the wildcard is that prefix and nothing wider.',
    );
  }

  /** Where alarms go: a new encrypted topic with the e-mail subscription, and/or the given topic. */
  #alarmTopics(): ITopic[] {
    const { email, topicArn } = this.config.alarms;
    const topics: ITopic[] = [];
    if (email) {
      // CloudWatch can publish to an encrypted topic only with a customer managed key it may use.
      const key = new Key(this, 'AlarmTopicKey', {
        description: `Flotilla hub ${this.config.prefix}: encrypts the alarm topic`,
        enableKeyRotation: true,
        removalPolicy: this.config.removalPolicy === 'retain' ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
      });
      key.grant(new ServicePrincipal('cloudwatch.amazonaws.com'), 'kms:Decrypt', 'kms:GenerateDataKey*');
      const topic = new Topic(this, 'AlarmTopic', {
        displayName: `Flotilla hub ${this.config.prefix} alarms`,
        masterKey: key,
        enforceSSL: true,
      });
      topic.addSubscription(new EmailSubscription(email));
      topics.push(topic);
    }
    if (topicArn) topics.push(Topic.fromTopicArn(this, 'ExistingAlarmTopic', topicArn));
    return topics;
  }
}

/**
 * Acknowledges cdk-nag's IAM5 finding for one wildcard resource, named exactly as
 * cdk-nag names it, so any other wildcard on the same construct still fails.
 */
function acknowledgeWildcard(scope: IConstruct, resourceArn: string, reason: string): void {
  const resource = flattenCfnReference(Stack.of(scope).resolve(resourceArn));
  Validations.of(scope).acknowledge({ id: `AwsSolutions-IAM5[Resource::${resource}]`, reason });
}

function attributeType(type: 'S' | 'N'): AttributeType {
  return type === 'S' ? AttributeType.STRING : AttributeType.NUMBER;
}

function secretRead(secret: ISecret): PolicyStatement {
  return new PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: [secret.secretArn] });
}
