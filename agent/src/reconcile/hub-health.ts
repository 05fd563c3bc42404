import { HubError } from '../hub/hub-client.ts';
import { errorFields, type Logger } from '../log.ts';
import type { AgentMetrics } from '../metrics.ts';

/**
 * Whether the hub answers, from the last requests' outcomes: counts consecutive failures
 * (the backoff follows them), logs the first failure and the recovery once each, and keeps
 * `flotilla_agent_hub_reachable` and the error counter up to date.
 */
export class HubHealth {
  #failures = 0;
  readonly #log: Logger;
  readonly #metrics: AgentMetrics | undefined;

  constructor(log: Logger, metrics?: AgentMetrics) {
    this.#log = log;
    this.#metrics = metrics;
  }

  /** Consecutive failed requests; 0 while the hub answers. */
  get failures(): number {
    return this.#failures;
  }

  up(): void {
    if (this.#failures > 0) this.#log.info('the hub answers again', { failures: this.#failures });
    this.#failures = 0;
    this.#metrics?.hubUp.set(1);
  }

  down(operation: string, err: unknown): void {
    this.#failures++;
    this.#metrics?.hubUp.set(0);
    this.#metrics?.hubErrors.inc({ operation });
    const fields = { operation, failures: this.#failures, ...errorFields(err) };
    if (err instanceof HubError && !err.retryable) this.#log.error('the hub refused a request', fields);
    else if (this.#failures === 1)
      this.#log.warn('the hub is unreachable; enforcing the desired state in hand', fields);
    else this.#log.debug('the hub is still unreachable', fields);
  }
}
