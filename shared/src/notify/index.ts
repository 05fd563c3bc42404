export {
  type AlertSpec,
  DEFAULT_RATE_LIMIT,
  emptyNotificationConfig,
  globMatches,
  isNotificationFile,
  loadNotifications,
  NOTIFICATIONS_DIR,
  type NotificationConfig,
  type ProviderSpec,
  ProviderType,
  type RateLimit,
} from './config.ts';
export {
  backoffMs,
  type Clock,
  DEFAULT_RETRY_POLICY,
  type DeliveryOutcome,
  type ProviderTransport,
  parseRetryAfter,
  type RetryPolicy,
  type SendResult,
  sendWithRetry,
  systemClock,
  TokenBucket,
} from './delivery.ts';
export {
  EventSeverity,
  type EventSink,
  type FleetEvent,
  FleetEventType,
  noEvents,
} from './events.ts';
export {
  type HttpTransportOptions,
  httpTransport,
  type ProviderSecret,
  parseProviderSecret,
  type SecretResolver,
  staticSecretResolver,
  transportsByType,
} from './http-transport.ts';
export { AlertMatcher, severityAtLeast } from './match.ts';
export {
  type EventSummary,
  messageTitle,
  type OutboundMessage,
  slackPayload,
  summarize,
  summaryText,
  teamsPayload,
  webhookPayload,
} from './message.ts';
export {
  DEFAULT_DEDUP_WINDOW_MS,
  type DedupStore,
  type DeliveryReport,
  MemoryDedupStore,
  Notifier,
  type NotifierOptions,
  type NotifierPorts,
  type NotifyLog,
} from './notifier.ts';
export { SIGNATURE_HEADER, signWebhook, TIMESTAMP_HEADER, verifyWebhook } from './signature.ts';
