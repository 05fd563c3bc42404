import { hubTableNames, hubTables } from '@flotilla/shared/hub/tables';
import { Match } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../functions/src/config.ts';
import { hubRoutes } from '../../../functions/src/http/routes.ts';
import { loadNotifierConfig } from '../../../functions/src/notify-config.ts';
import { apiAccess, syncAccess } from '../../../infra/src/permissions.ts';
import { rendererLayerBinary } from '../../../infra/src/renderer-layer.ts';
import {
  acknowledgements,
  actionsOf,
  type CfnValue,
  flat,
  resourcesOfType,
  roleStatements,
  synthHub,
} from './synth.ts';

// The default deployment: generated signing key in Secrets Manager, webhook on, retain.
// CloudFormation's own validation runs here too: any schema or lint finding fails the synth.
const hub = synthHub(
  { fleetRepo: { url: 'https://git.acme.test/platform/fleet.git', ref: 'release' } },
  { cfnValidation: true },
);
const { template } = hub;
// cdk-nag walks the whole tree (seconds on a busy machine): once per file, like the synth.
const nagReport = new AwsSolutionsChecks(hub.app).validateScope(hub.app);

/** The API and sync functions (the hub proper), without the notifier. */
function hubFunctions() {
  return resourcesOfType(hub, 'AWS::Lambda::Function').filter(({ id }) => /^Hub(Api|Sync)Function/.test(id));
}

function notifierFunction() {
  const fn = resourcesOfType(hub, 'AWS::Lambda::Function').find(({ id }) =>
    id.startsWith('HubNotifierFunction'),
  );
  if (!fn) throw new Error('no notifier function');
  return fn;
}

describe('FlotillaHub (default configuration): synthesized template', () => {
  it('creates the five hub tables from the shared definitions: on demand, PITR, encrypted, retained', () => {
    const names = hubTableNames('flotilla');
    template.resourceCountIs('AWS::DynamoDB::Table', Object.keys(hubTables).length);
    for (const [key, def] of Object.entries(hubTables)) {
      const keySchema: { AttributeName: string; KeyType: string }[] = [
        { AttributeName: def.partitionKey.name, KeyType: 'HASH' },
      ];
      if ('sortKey' in def) keySchema.push({ AttributeName: def.sortKey.name, KeyType: 'RANGE' });
      template.hasResource('AWS::DynamoDB::Table', {
        Properties: {
          TableName: names[key as keyof typeof names],
          KeySchema: keySchema,
          BillingMode: 'PAY_PER_REQUEST',
          PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
          SSESpecification: { SSEEnabled: true },
          DeletionProtectionEnabled: true,
        },
        DeletionPolicy: 'Retain',
        UpdateReplacePolicy: 'Retain',
      });
      const ttl = (def as { ttlAttribute?: string }).ttlAttribute;
      template.hasResourceProperties('AWS::DynamoDB::Table', {
        TableName: names[key as keyof typeof names],
        TimeToLiveSpecification: ttl ? { AttributeName: ttl, Enabled: true } : Match.absent(),
      });
    }
  });

  it('creates the spoke DLQ under the fixed prefix, encrypted, TLS-only, with the retention the adapter asks for', () => {
    // The spoke DLQ, the sync work queue and the notifications queue, each of these with its own DLQ.
    template.resourceCountIs('AWS::SQS::Queue', 5);
    template.hasResourceProperties('AWS::SQS::Queue', {
      QueueName: 'flotilla-spoke-dlq',
      MessageRetentionPeriod: 14 * 24 * 3600,
      SqsManagedSseEnabled: true,
    });
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('runs the three functions on nodejs24.x, arm64, with their own log groups and retention', () => {
    const fns = resourcesOfType(hub, 'AWS::Lambda::Function');
    expect(fns).toHaveLength(3);
    for (const { props } of fns) {
      expect(props.Runtime).toBe('nodejs24.x');
      expect(props.Architectures).toEqual(['arm64']);
      expect(props.Handler).toBe('index.handler');
      expect(flat((props.LoggingConfig as Record<string, CfnValue>).LogGroup as CfnValue)).toMatch(
        /^<Hub(Api|Sync|Notifier)Logs/,
      );
    }
    template.resourceCountIs('AWS::Logs::LogGroup', 4);
    template.allResourcesProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
  });

  it('ships the render worker as an arm64 layer that both functions (sync, previews) have, with FLOTILLA_RENDERER', () => {
    const layers = resourcesOfType(hub, 'AWS::Lambda::LayerVersion');
    expect(layers).toHaveLength(1);
    const [layer] = layers;
    expect(layer?.props).toMatchObject({
      CompatibleArchitectures: ['arm64'],
      CompatibleRuntimes: ['nodejs24.x'],
    });
    expect(rendererLayerBinary).toBe('/opt/bin/flotilla-renderer');
    const fns = hubFunctions();
    expect(fns.map(({ id }) => id.replace(/[0-9A-F]{8}$/, '')).sort()).toEqual([
      'HubApiFunction',
      'HubSyncFunction',
    ]);
    // The notifier renders nothing.
    expect(notifierFunction().props.Layers).toBeUndefined();
    for (const { props } of fns) {
      expect(props.Architectures).toEqual(['arm64']);
      expect(props.Layers).toEqual([{ Ref: layer?.id }]);
      const vars = (props.Environment as { Variables: Record<string, CfnValue> }).Variables;
      expect(vars.FLOTILLA_RENDERER).toBe(rendererLayerBinary);
    }
  });

  it('sizes the sync for two busy processes (Node and the worker) and keeps the API at 1 GB', () => {
    const memory = Object.fromEntries(
      resourcesOfType(hub, 'AWS::Lambda::Function').map(({ id, props }) => [
        id.replace(/[0-9A-F]{8}$/, ''),
        [props.MemorySize, props.Timeout],
      ]),
    );
    expect(memory).toEqual({
      HubApiFunction: [1024, 29],
      HubSyncFunction: [3008, 900],
      HubNotifierFunction: [512, 120],
    });
  });

  it('gives the functions the configuration their own loadConfig accepts, with secrets as ids only', () => {
    for (const { props } of hubFunctions()) {
      const vars = (props.Environment as { Variables: Record<string, CfnValue> }).Variables;
      const env = Object.fromEntries(
        Object.entries(vars).map(([k, v]) => [
          k,
          typeof v === 'string'
            ? v
            : `arn:aws:secretsmanager:eu-west-1:123456789012:secret:${flat(v)}-AbCdEf`,
        ]),
      );
      expect(env.FLOTILLA_SIGNING_KEY).toBeUndefined();
      expect(env.FLOTILLA_WEBHOOK_SECRET).toBeUndefined();
      const config = loadConfig({ ...env, AWS_REGION: 'eu-west-1' });
      expect(config).toMatchObject({
        prefix: 'flotilla',
        adminAuth: 'iam',
        fleetRepo: { url: 'https://git.acme.test/platform/fleet.git', ref: 'release' },
        signingKeySource: { kind: 'secret' },
      });
      expect(config.tables).toEqual(hubTableNames('flotilla'));
    }
  });

  it('routes every hub route to the API function: IAM on admin and tenant routes, none elsewhere, plus $default', () => {
    template.resourceCountIs('AWS::ApiGatewayV2::Route', hubRoutes.length + 1);
    template.resourceCountIs('AWS::ApiGatewayV2::Integration', 1);
    template.hasResourceProperties('AWS::ApiGatewayV2::Integration', {
      IntegrationType: 'AWS_PROXY',
      PayloadFormatVersion: '2.0',
    });
    for (const route of hubRoutes) {
      template.hasResourceProperties('AWS::ApiGatewayV2::Route', {
        RouteKey: `${route.method} ${route.path}`,
        AuthorizationType: route.auth === 'admin' || route.auth === 'tenant' ? 'AWS_IAM' : 'NONE',
      });
    }
    template.hasResourceProperties('AWS::ApiGatewayV2::Route', {
      RouteKey: '$default',
      AuthorizationType: 'NONE',
    });
    const adminRoutes = resourcesOfType(hub, 'AWS::ApiGatewayV2::Route').filter(
      ({ props }) => props.AuthorizationType === 'AWS_IAM',
    );
    expect(adminRoutes.map(({ props }) => props.RouteKey).sort()).toEqual(
      hubRoutes
        .filter((r) => r.auth === 'admin' || r.auth === 'tenant')
        .map((r) => `${r.method} ${r.path}`)
        .sort(),
    );
  });

  it('serves the $default stage with access logs and throttling', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      AccessLogSettings: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('requestId') },
      DefaultRouteSettings: { ThrottlingRateLimit: 1000, ThrottlingBurstLimit: 2000 },
    });
  });

  it('syncs on a schedule', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(5 minutes)',
      State: 'ENABLED',
      Targets: [
        Match.objectLike({ Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^HubSyncFunction'), 'Arn'] } }),
      ],
    });
  });

  it('keeps the signing key and the webhook secret in generated Secrets Manager secrets', () => {
    template.resourceCountIs('AWS::SecretsManager::Secret', 2);
    template.hasResourceProperties('AWS::SecretsManager::Secret', {
      GenerateSecretString: {
        GenerateStringKey: 'ed25519Seed',
        SecretStringTemplate: '{}',
        PasswordLength: 64,
      },
    });
    template.hasResource('AWS::SecretsManager::Secret', { DeletionPolicy: 'Retain' });
    template.resourceCountIs('AWS::KMS::Key', 0);
  });

  it('grants the API function exactly its table actions, per table', () => {
    const statements = roleStatements(hub, 'HubApiRole');
    for (const [key, actions] of Object.entries(apiAccess.tables)) {
      const logicalId = `HubTable${hubTables[key as keyof typeof hubTables].suffix.replace(/-/g, '')}`;
      const onTable = statements.filter((s) =>
        new RegExp(`^<${logicalId}[0-9A-F]{8}\\.Arn>$`).test(flat(s.Resource)),
      );
      expect(onTable.flatMap(actionsOf).sort()).toEqual(actions.map((a) => `dynamodb:${a}`).sort());
    }
  });

  it('hands sync windows to the sync function through an encrypted queue, one window per invocation', () => {
    template.hasResourceProperties('AWS::SQS::Queue', {
      QueueName: 'flotilla-sync-work',
      // Lambda requires at least the function's timeout.
      VisibilityTimeout: 15 * 60,
      SqsManagedSseEnabled: true,
      RedrivePolicy: { deadLetterTargetArn: Match.anyValue(), maxReceiveCount: 5 },
    });
    template.hasResourceProperties('AWS::SQS::Queue', {
      QueueName: 'flotilla-sync-work-dlq',
      SqsManagedSseEnabled: true,
    });
    const mappings = resourcesOfType(hub, 'AWS::Lambda::EventSourceMapping').filter(({ props }) =>
      flat(props.FunctionName ?? '').startsWith('<HubSyncFunction'),
    );
    expect(mappings).toHaveLength(1);
    expect(mappings[0]?.props).toMatchObject({ BatchSize: 1, ScalingConfig: { MaximumConcurrency: 10 } });
    expect(flat(mappings[0]?.props.FunctionName ?? '')).toMatch(/^<HubSyncFunction/);
    expect(flat(mappings[0]?.props.EventSourceArn ?? '')).toMatch(/^<HubSyncWorkQueue[0-9A-F]{8}\.Arn>$/);
    for (const { props } of hubFunctions()) {
      const env = (props.Environment as { Variables: Record<string, CfnValue> }).Variables;
      expect(flat(env.FLOTILLA_SYNC_QUEUE_URL ?? '')).toMatch(/^<HubSyncWorkQueue[0-9A-F]{8}>$/);
    }
  });

  it('lets both functions send sync windows and rollout wakes, and only the sync function consume them', () => {
    const onWorkQueue = (role: string) =>
      roleStatements(hub, role)
        .filter((s) => /^<HubSyncWorkQueue[0-9A-F]{8}\.Arn>$/.test(flat(s.Resource)))
        .flatMap(actionsOf)
        .sort();
    expect(onWorkQueue('HubApiRole')).toEqual([
      'sqs:GetQueueAttributes',
      'sqs:GetQueueUrl',
      'sqs:SendMessage',
    ]);
    expect(onWorkQueue('HubSyncRole')).toEqual(
      [
        'sqs:ChangeMessageVisibility',
        'sqs:DeleteMessage',
        'sqs:GetQueueAttributes',
        'sqs:GetQueueAttributes',
        'sqs:GetQueueUrl',
        'sqs:GetQueueUrl',
        'sqs:ReceiveMessage',
        'sqs:SendMessage',
      ].sort(),
    );
  });

  it('scopes queue rights to the spoke prefix and leaves registration rights out of the sync role', () => {
    const prefixArn = 'arn:<AWS::Partition>:sqs:<AWS::Region>:<AWS::AccountId>:flotilla-spoke-*';
    const api = roleStatements(hub, 'HubApiRole');
    const sync = roleStatements(hub, 'HubSyncRole');
    // The sync work queue's statements are the test above's.
    const sqsOf = (ss: typeof api) =>
      ss.filter(
        (s) =>
          actionsOf(s).some((a) => a.startsWith('sqs:')) &&
          !flat(s.Resource).startsWith('<HubSyncWorkQueue') &&
          !flat(s.Resource).startsWith('<HubNotificationsQueue'),
      );
    expect(sqsOf(api).filter((s) => s.Effect === 'Allow')).toEqual([
      expect.objectContaining({ Resource: expect.anything() }),
    ]);
    expect(flat(sqsOf(api).find((s) => s.Effect === 'Allow')?.Resource ?? '')).toBe(prefixArn);
    expect(actionsOf(sqsOf(api).find((s) => s.Effect === 'Allow') as never).sort()).toEqual(
      [...apiAccess.spokeQueues].sort(),
    );
    const deny = sqsOf(api).find((s) => s.Effect === 'Deny');
    expect(deny && actionsOf(deny)).toEqual(['sqs:DeleteQueue']);
    expect(flat(deny?.Resource ?? '')).toMatch(/^<HubSpokeDeadLetterQueue.*\.Arn>$/);

    expect(sqsOf(sync).map((s) => [actionsOf(s), flat(s.Resource)])).toEqual([
      [[...syncAccess.spokeQueues], prefixArn],
    ]);
    const syncActions = sync.flatMap(actionsOf);
    expect(syncActions).not.toContain('sqs:CreateQueue');
    expect(syncActions).not.toContain('dynamodb:DeleteItem');
    expect(sync.some((s) => flat(s.Resource).startsWith('<HubTablebundlestatus'))).toBe(false);
  });

  it('lets each function read only the secrets it needs', () => {
    const reads = (role: string) =>
      roleStatements(hub, role)
        .filter((s) => actionsOf(s).includes('secretsmanager:GetSecretValue'))
        .map((s) => flat(s.Resource).replace(/[0-9A-F]{8}>$/, '>'))
        .sort();
    // Fleet sources' git credentials: only the secrets under the hub's own prefix.
    const sources =
      'arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:flotilla/sources/*';
    expect(reads('HubApiRole')).toEqual(['<HubSigningKey>', '<HubWebhookSecret>', sources]);
    expect(reads('HubSyncRole')).toEqual(['<HubSigningKey>', sources]);
  });

  it('uses no wildcard resource but the spoke-queue prefix and the admin routes', () => {
    const statements = [
      ...resourcesOfType(hub, 'AWS::IAM::Policy'),
      ...resourcesOfType(hub, 'AWS::IAM::ManagedPolicy'),
    ].flatMap(
      ({ props }) =>
        (props.PolicyDocument as { Statement: { Effect: string; Resource: CfnValue }[] }).Statement,
    );
    const wildcards = statements
      .filter((s) => s.Effect === 'Allow')
      .flatMap((s) => (Array.isArray(s.Resource) ? s.Resource : [s.Resource]).map(flat))
      .filter((r) => r.includes('*'));
    expect([...new Set(wildcards)].sort()).toEqual([
      'arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<HubHttpApi6072509C>/$default/*/v1/admin/*',
      'arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:flotilla/notifications/*',
      'arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:flotilla/sources/*',
      'arn:<AWS::Partition>:sqs:<AWS::Region>:<AWS::AccountId>:flotilla-spoke-*',
    ]);
    // The layer lives in the same stack: deploying it is the deployer's right, not the functions'.
    expect(statements.filter((s) => JSON.stringify(s).includes('lambda:'))).toEqual([]);
    // No role gets an AWS managed policy.
    for (const { props } of resourcesOfType(hub, 'AWS::IAM::Role'))
      expect(props.ManagedPolicyArns).toBeUndefined();
  });

  it('alarms on sync failures, fleet repo errors, notify failures, dead letters and API 5xx', () => {
    template.resourceCountIs('AWS::CloudWatch::Alarm', 6);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'Errors',
      Namespace: 'AWS/Lambda',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: Match.stringLikeRegexp('^HubSyncFunction') } }],
      Threshold: 1,
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Namespace: 'AWS/SQS',
      Threshold: 1,
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: '5xx',
      Namespace: 'AWS/ApiGateway',
    });
    for (const metric of ['FleetRepoErrors', 'NotifyFailures']) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: metric,
        Namespace: 'Flotilla/flotilla',
      });
    }
    template.hasResourceProperties('AWS::Logs::MetricFilter', {
      FilterPattern: '{ ($.message = "scheduled sync") && ($.errors[0] = "*") }',
      MetricTransformations: [
        { MetricName: 'FleetRepoErrors', MetricNamespace: 'Flotilla/flotilla', MetricValue: '1' },
      ],
    });
  });

  it('outputs the hub URL, where to get the public key, the secrets and the table names', () => {
    const outputs = template.toJSON().Outputs as Record<string, { Value: CfnValue }>;
    expect(Object.keys(outputs).sort()).toEqual(
      [
        'AdminPolicyArn',
        'HubUrl',
        'PublicKeyUrl',
        'SigningKeySecretArn',
        'SpokeDeadLetterQueueUrl',
        'TableBundleStatus',
        'TableBundles',
        'TableClusters',
        'TableDesiredStates',
        'TableHubState',
        'WebhookSecretArn',
        'WebhookUrl',
      ].sort(),
    );
    expect(flat(outputs.PublicKeyUrl?.Value ?? '')).toMatch(
      /^https:\/\/<HubHttpApi.*>\.execute-api\..*\/v1\/admin\/public-key$/,
    );
  });

  it('passes cdk-nag AwsSolutions, every acknowledgement with a reason', () => {
    const report = nagReport;
    expect(report.violations.map((v) => `${v.ruleName} ${JSON.stringify(v.violatingResources)}`)).toEqual([]);
    expect(report.success).toBe(true);
    const acks = acknowledgements(hub.app);
    for (const a of acks) expect(a.reason.length).toBeGreaterThan(40);
    const rules = [
      ...new Set(acks.map((a) => a.id.replace(/^Annotation::/, '').replace(/\[.*$/, ''))),
    ].sort();
    expect(rules).toEqual([
      'AwsSolutions-APIG4',
      'AwsSolutions-IAM5',
      'AwsSolutions-SMG4',
      'AwsSolutions-SQS3',
    ]);
    // APIG4 only on the routes that are not admin or tenant routes.
    const apig4 = acks.filter((a) => a.id.includes('APIG4')).map((a) => a.path.split('/').pop());
    expect(apig4.sort()).toEqual(
      [
        ...hubRoutes.filter((r) => r.auth !== 'admin' && r.auth !== 'tenant').map((r) => `Route-${r.id}`),
        'Route-default',
      ].sort(),
    );
  });
});

describe('FlotillaHub (default configuration): the notifier', () => {
  it('has a notifications queue with a DLQ after five receives, both encrypted', () => {
    template.hasResourceProperties('AWS::SQS::Queue', {
      QueueName: 'flotilla-notifications',
      VisibilityTimeout: 300,
      SqsManagedSseEnabled: true,
      RedrivePolicy: {
        deadLetterTargetArn: {
          'Fn::GetAtt': [Match.stringLikeRegexp('^HubNotificationsDeadLetterQueue'), 'Arn'],
        },
        maxReceiveCount: 5,
      },
    });
    template.hasResourceProperties('AWS::SQS::Queue', {
      QueueName: 'flotilla-notifications-dlq',
      MessageRetentionPeriod: 14 * 24 * 3600,
      SqsManagedSseEnabled: true,
    });
  });

  it('consumes it in batches with partial batch failures, at most two instances at a time', () => {
    const mappings = resourcesOfType(hub, 'AWS::Lambda::EventSourceMapping').filter(({ props }) =>
      flat(props.FunctionName ?? '').startsWith('<HubNotifierFunction'),
    );
    expect(mappings).toHaveLength(1);
    expect(mappings[0]?.props).toMatchObject({
      BatchSize: 100,
      MaximumBatchingWindowInSeconds: 5,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 2 },
    });
    expect(flat(mappings[0]?.props.EventSourceArn ?? '')).toMatch(
      /^<HubNotificationsQueue[0-9A-F]{8}\.Arn>$/,
    );
    // Not reserved concurrency: it would throttle the pollers.
    expect(notifierFunction().props.ReservedConcurrentExecutions).toBeUndefined();
  });

  it('gives the notifier the configuration its loadNotifierConfig accepts, and no signing key', () => {
    const vars = (notifierFunction().props.Environment as { Variables: Record<string, CfnValue> }).Variables;
    expect(Object.keys(vars).filter((k) => k.includes('SIGNING'))).toEqual([]);
    const config = loadNotifierConfig({ ...(vars as Record<string, string>), AWS_REGION: 'eu-west-1' });
    expect(config).toMatchObject({
      prefix: 'flotilla',
      fleetRepo: { url: 'https://git.acme.test/platform/fleet.git', ref: 'release' },
      secrets: { kind: 'secrets-manager', prefix: 'flotilla/notifications/' },
      dedupWindowMs: 600_000,
    });
  });

  it('lets the API and sync functions emit events, and nothing else send to the queue', () => {
    for (const role of ['HubApiRole', 'HubSyncRole']) {
      const onQueue = roleStatements(hub, role)
        .filter((s) => /^<HubNotificationsQueue[0-9A-F]{8}\.Arn>$/.test(flat(s.Resource)))
        .flatMap(actionsOf)
        .sort();
      expect(onQueue).toEqual(['sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:SendMessage']);
    }
    for (const { props } of hubFunctions()) {
      const env = (props.Environment as { Variables: Record<string, CfnValue> }).Variables;
      expect(flat(env.FLOTILLA_NOTIFY_QUEUE_URL ?? '')).toMatch(/^<HubNotificationsQueue[0-9A-F]{8}>$/);
    }
  });

  it('grants the notifier only its queue, its own dedup items, its secrets and its logs', () => {
    const statements = roleStatements(hub, 'HubNotifierRole');
    const summary = statements
      .map((s) => [actionsOf(s).sort().join(','), flat(s.Resource).replace(/[0-9A-F]{8}(\.Arn)?>/, '>')])
      .sort();
    expect(summary).toEqual(
      [
        ['dynamodb:DeleteItem,dynamodb:PutItem', '<HubTablehubstate>'],
        ['logs:CreateLogStream,logs:PutLogEvents', '<HubNotifierLogs>'],
        [
          'secretsmanager:GetSecretValue',
          'arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:flotilla/notifications/*',
        ],
        [
          'sqs:ChangeMessageVisibility,sqs:DeleteMessage,sqs:GetQueueAttributes,sqs:GetQueueUrl,sqs:ReceiveMessage',
          '<HubNotificationsQueue>',
        ],
      ].sort(),
    );
    const dynamo = statements.find((s) => actionsOf(s).includes('dynamodb:PutItem')) as unknown as {
      Condition: unknown;
    };
    expect(dynamo.Condition).toEqual({ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['notify#*'] } });
  });

  it('alarms when events reach the notifications DLQ', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'flotilla-hub-notification-dead-letters',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [
        {
          Name: 'QueueName',
          Value: { 'Fn::GetAtt': [Match.stringLikeRegexp('^HubNotificationsDeadLetterQueue'), 'QueueName'] },
        },
      ],
    });
  });
});
