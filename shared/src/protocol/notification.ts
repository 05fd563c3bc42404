/** The message the hub puts on a cluster's SQS queue when its desired state changed: enough for the agent to skip a fetch it does not need. */
export interface ChangeNotification {
  readonly kind: 'desired-state-changed';
  readonly clusterId: string;
  readonly generation: number;
  readonly etag: string;
}
