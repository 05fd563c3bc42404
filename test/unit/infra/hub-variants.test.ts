import { Match } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../functions/src/config.ts';
import { actionsOf, type CfnValue, flat, resourcesOfType, roleStatements, synthHub } from './synth.ts';

const credentialsArn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:fleet-repo-creds-AbC123';
const topicArn = 'arn:aws:sns:eu-west-1:123456789012:platform-oncall';
const chartsArn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:chart-repo-creds-XyZ789';

// Everything off the default path at once: KMS signing, no webhook, repo and chart credentials,
// alarms to a new e-mail topic and an existing one, destroy on delete, another prefix.
const hub = synthHub({
  prefix: 'edge',
  fleetRepo: { url: 'https://git.acme.test/edge/fleet.git', credentialsSecretArn: credentialsArn },
  charts: { credentialsSecretArn: chartsArn },
  signingKey: { mode: 'kms' },
  webhook: false,
  removalPolicy: 'destroy',
  syncIntervalMinutes: 15,
  logRetentionDays: 90,
  alarms: { email: 'oncall@acme.test', topicArn },
  api: { throttleRateLimit: 50, throttleBurstLimit: 100 },
  notifications: {
    topicArns: ['arn:aws:sns:eu-west-1:123456789012:fleet-events'],
    eventBuses: ['platform-events'],
  },
});
const { template } = hub;
// cdk-nag walks the whole tree (seconds on a busy machine): once per file, like the synth.
const nagReport = new AwsSolutionsChecks(hub.app).validateScope(hub.app);

describe('FlotillaHub (KMS signing, alarms by e-mail, destroy)', () => {
  it('creates an Ed25519 KMS signing key and grants only Sign and GetPublicKey on it', () => {
    template.hasResourceProperties('AWS::KMS::Key', {
      KeySpec: 'ECC_NIST_EDWARDS25519',
      KeyUsage: 'SIGN_VERIFY',
    });
    for (const role of ['HubApiRole', 'HubSyncRole']) {
      const kms = roleStatements(hub, role).filter((s) => actionsOf(s).some((a) => a.startsWith('kms:')));
      expect(kms.map((s) => [actionsOf(s).sort(), flat(s.Resource)])).toEqual([
        [['kms:GetPublicKey', 'kms:Sign'], expect.stringMatching(/^<HubSigningKey[0-9A-F]{8}\.Arn>$/)],
      ]);
    }
    template.resourceCountIs('AWS::SecretsManager::Secret', 0);
  });

  it('configures the functions for KMS, repo credentials from a secret, and no webhook', () => {
    for (const { props } of resourcesOfType(hub, 'AWS::Lambda::Function').filter(({ id }) =>
      /^Hub(Api|Sync)Function/.test(id),
    )) {
      const vars = (props.Environment as { Variables: Record<string, CfnValue> }).Variables;
      expect(vars.FLOTILLA_WEBHOOK_SECRET_ID).toBeUndefined();
      expect(vars.FLOTILLA_FLEET_REPO_CREDENTIALS_SECRET_ID).toBe(credentialsArn);
      expect(vars.FLOTILLA_CHART_CREDENTIALS_SECRET_ID).toBe(chartsArn);
      const env = Object.fromEntries(
        Object.entries(vars).map(([k, v]) => [
          k,
          typeof v === 'string' ? v : 'arn:aws:kms:eu-west-1:1:key/x',
        ]),
      );
      const config = loadConfig({ ...env, AWS_REGION: 'eu-west-1' });
      expect(config.signingKeySource.kind).toBe('kms');
      expect(config.secretIds).toEqual({
        webhookSecret: undefined,
        fleetRepoCredentials: credentialsArn,
        chartCredentials: chartsArn,
      });
      expect(config.prefix).toBe('edge');
    }
    for (const role of ['HubApiRole', 'HubSyncRole']) {
      const reads = roleStatements(hub, role).filter((s) =>
        actionsOf(s).includes('secretsmanager:GetSecretValue'),
      );
      expect(reads.map((s) => flat(s.Resource))).toEqual([
        credentialsArn,
        chartsArn,
        'arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:edge/sources/*',
      ]);
    }
  });

  it('deletes tables, queue, keys and logs with the stack when told to', () => {
    template.allResources('AWS::DynamoDB::Table', { DeletionPolicy: 'Delete' });
    template.allResourcesProperties('AWS::DynamoDB::Table', { DeletionProtectionEnabled: false });
    template.allResources('AWS::SQS::Queue', { DeletionPolicy: 'Delete' });
    template.allResources('AWS::Logs::LogGroup', { DeletionPolicy: 'Delete' });
    template.allResourcesProperties('AWS::Logs::LogGroup', { RetentionInDays: 90 });
    template.hasResourceProperties('AWS::SQS::Queue', { QueueName: 'edge-spoke-dlq' });
    template.hasResourceProperties('AWS::DynamoDB::Table', { TableName: 'edge-clusters' });
  });

  it('scopes queue rights to the new prefix', () => {
    const sqs = roleStatements(hub, 'HubSyncRole').filter(
      (s) =>
        actionsOf(s).some((a) => a.startsWith('sqs:')) &&
        !flat(s.Resource).startsWith('<HubSyncWorkQueue') &&
        !flat(s.Resource).startsWith('<HubNotificationsQueue'),
    );
    expect(sqs.map((s) => flat(s.Resource))).toEqual([
      'arn:<AWS::Partition>:sqs:<AWS::Region>:<AWS::AccountId>:edge-spoke-*',
    ]);
  });

  it('sends every alarm to an encrypted e-mail topic and to the existing topic', () => {
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'oncall@acme.test',
    });
    template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    const alarms = resourcesOfType(hub, 'AWS::CloudWatch::Alarm');
    expect(alarms).toHaveLength(6);
    for (const { props } of alarms) {
      expect(props.AlarmActions).toHaveLength(2);
      expect(props.AlarmActions).toEqual(
        expect.arrayContaining([{ Ref: expect.stringMatching(/^HubAlarmTopic/) }, topicArn]),
      );
    }
  });

  it('lets the notifier publish to the configured topics and buses and nowhere else', () => {
    const statements = roleStatements(hub, 'HubNotifierRole');
    const publish = statements.filter((s) => actionsOf(s).some((a) => /^(sns|events):/.test(a)));
    expect(publish.map((s) => [actionsOf(s), flat(s.Resource)])).toEqual([
      [['sns:Publish'], 'arn:aws:sns:eu-west-1:123456789012:fleet-events'],
      [
        ['events:PutEvents'],
        'arn:<AWS::Partition>:events:<AWS::Region>:<AWS::AccountId>:event-bus/platform-events',
      ],
    ]);
    // It reads the fleet repo with its credentials, and provider secrets under its own prefix.
    const reads = statements.filter((s) => actionsOf(s).includes('secretsmanager:GetSecretValue'));
    expect(reads.map((s) => flat(s.Resource)).sort()).toEqual([
      'arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:edge/notifications/*',
      credentialsArn,
    ]);
  });

  it('applies the schedule and throttling it was given', () => {
    template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(15 minutes)' });
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
    });
  });

  it('passes cdk-nag AwsSolutions', () => {
    const report = nagReport;
    expect(report.violations.map((v) => `${v.ruleName} ${JSON.stringify(v.violatingResources)}`)).toEqual([]);
  });
});
