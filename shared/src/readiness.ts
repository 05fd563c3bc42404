/**
 * What the agent makes of one live object, from the built-in rules (`agent/health.ts`) or a
 * bundle's CEL checks (`health-checks.ts`). Its own module so both can share it without
 * the fleet language importing the agent's core.
 */
export interface Health {
  readonly ready: boolean;
  /** Why it is not ready (empty when ready). */
  readonly message: string;
  /** Not ready and will not become ready by waiting (a failed Job, a stalled rollout). */
  readonly failed?: boolean;
}
