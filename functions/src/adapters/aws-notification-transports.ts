/**
 * The AWS providers: `sns` publishes to a topic, `eventbridge` puts an event on a bus.
 * Both send the webhook JSON (`{"kind": "event", "event": ...}` or the summary), with the
 * event type and severity as SNS message attributes (for subscription filter policies)
 * and as the EventBridge detail-type.
 */
import { type EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import {
  messageTitle,
  type OutboundMessage,
  type ProviderTransport,
  type SendResult,
  webhookPayload,
} from '@flotilla/shared/notify';

export function snsTransport(sns: Pick<SNSClient, 'send'>): ProviderTransport {
  return {
    async send(provider, message): Promise<SendResult> {
      if (provider.type !== 'sns') return { ok: false, retryable: false, error: 'not an sns provider' };
      try {
        await sns.send(
          new PublishCommand({
            TopicArn: provider.topicArn,
            Subject: messageTitle(message)
              .replace(/[^\x20-\x7e]/g, '')
              .slice(0, 100),
            Message: JSON.stringify(webhookPayload(message)),
            MessageAttributes: {
              type: { DataType: 'String', StringValue: eventType(message) },
              severity: { DataType: 'String', StringValue: severity(message) },
            },
          }),
        );
        return { ok: true };
      } catch (err) {
        return awsFailure(err);
      }
    },
  };
}

export function eventBridgeTransport(events: Pick<EventBridgeClient, 'send'>): ProviderTransport {
  return {
    async send(provider, message): Promise<SendResult> {
      if (provider.type !== 'eventbridge')
        return { ok: false, retryable: false, error: 'not an eventbridge provider' };
      try {
        const res = await events.send(
          new PutEventsCommand({
            Entries: [
              {
                EventBusName: provider.eventBus,
                Source: provider.source,
                DetailType: eventType(message),
                Detail: JSON.stringify(webhookPayload(message)),
                ...(message.kind === 'event' ? { Time: new Date(message.event.at) } : {}),
              },
            ],
          }),
        );
        const failed = res.Entries?.[0];
        if ((res.FailedEntryCount ?? 0) > 0) {
          return {
            ok: false,
            retryable: failed?.ErrorCode === 'ThrottlingException' || failed?.ErrorCode === 'InternalFailure',
            error: `PutEvents: ${failed?.ErrorCode ?? 'failed'}`,
          };
        }
        return { ok: true };
      } catch (err) {
        return awsFailure(err);
      }
    },
  };
}

function eventType(message: OutboundMessage): string {
  return message.kind === 'event' ? message.event.type : 'flotilla.summary';
}

function severity(message: OutboundMessage): string {
  return message.kind === 'event' ? message.event.severity : message.summary.severity;
}

/** Throttling, 5xx and network errors are retried; access denied, a missing topic, a bad request are not. */
function awsFailure(err: unknown): SendResult {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number }; $retryable?: unknown };
  const status = e.$metadata?.httpStatusCode;
  const retryable =
    status === undefined ||
    status >= 500 ||
    status === 429 ||
    e.$retryable !== undefined ||
    /Throttl/.test(e.name ?? '');
  return { ok: false, retryable, error: `${e.name ?? 'Error'}${status ? ` (HTTP ${status})` : ''}` };
}
