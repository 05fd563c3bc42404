/**
 * The hub-agent contract, versioned: the signed desired state and rendered bundles the hub
 * serves, the status the agent reports and the hub's answer, and the change notification
 * on the cluster's queue. Both sides import it; it imports neither.
 */
export * from './age-recipients.ts';
export * from './desired-state.ts';
export * from './ignore-differences.ts';
export * from './notification.ts';
export * from './status.ts';
