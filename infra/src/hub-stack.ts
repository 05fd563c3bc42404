import { type HubTableKey, hubTables } from '@flotilla/shared/hub/tables';
import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { FlotillaHubConfig } from './config.ts';
import { FlotillaHub, type FlotillaHubProps } from './flotilla-hub.ts';

export interface FlotillaHubStackProps extends StackProps {
  readonly hub: FlotillaHubConfig;
  /** The render worker the functions run: {@link FlotillaHubProps.renderer}. */
  readonly renderer: FlotillaHubProps['renderer'];
}

/** A stack holding one {@link FlotillaHub} and the outputs operators need. */
export class FlotillaHubStack extends Stack {
  readonly hub: FlotillaHub;

  constructor(scope: Construct, id: string, props: FlotillaHubStackProps) {
    super(scope, id, props);
    const hub = new FlotillaHub(this, 'Hub', { ...props.hub, renderer: props.renderer });
    this.hub = hub;
    const output = (id: string, value: string, description: string) =>
      new CfnOutput(this, id, { value, description });

    output('HubUrl', hub.url, 'Base URL of the hub API: agents and the CLI talk to it');
    output(
      'PublicKeyUrl',
      `${hub.url}v1/admin/public-key`,
      'GET it (IAM-signed, as an admin) for the Ed25519 public key that agents pin at bootstrap',
    );
    output('AdminPolicyArn', hub.adminPolicy.managedPolicyArn, 'Attach to the IAM roles of fleet admins');
    if ('kmsKey' in hub.signingKey) {
      output('SigningKmsKeyArn', hub.signingKey.kmsKey.keyArn, 'KMS key that signs desired states');
    } else {
      output('SigningKeySecretArn', hub.signingKey.secret.secretArn, 'Secret holding the signing key');
    }
    if (hub.webhookSecret) {
      output('WebhookUrl', `${hub.url}v1/webhooks/git`, 'Push webhook URL for the fleet repo (JSON)');
      output(
        'WebhookSecretArn',
        hub.webhookSecret.secretArn,
        'The webhook secret to set at the git host: aws secretsmanager get-secret-value --secret-id <arn>',
      );
    }
    for (const key of Object.keys(hubTables) as HubTableKey[]) {
      const suffix = hubTables[key].suffix.replace(/(^|-)([a-z])/g, (_m, _d, c: string) => c.toUpperCase());
      output(`Table${suffix}`, hub.tables[key].tableName, `DynamoDB table: ${hubTables[key].suffix}`);
    }
    output(
      'SpokeDeadLetterQueueUrl',
      hub.spokeDeadLetterQueue.queueUrl,
      'Dead-letter queue of the spoke queues',
    );
    if (hub.alarmTopic) output('AlarmTopicArn', hub.alarmTopic.topicArn, 'Where the hub alarms go');
  }
}
