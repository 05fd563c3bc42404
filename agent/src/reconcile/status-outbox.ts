import type { ClusterStatusReport } from '@flotilla/shared/agent';
import type { Clock } from '../clock.ts';
import { HubError } from '../hub/hub-client.ts';
import { errorFields, type Logger } from '../log.ts';
import type { AgentMetrics } from '../metrics.ts';
import type { HubHealth } from './hub-health.ts';
import type { HubPort, StatusReceipt } from './ports.ts';

export interface StatusOutboxDeps {
  readonly hub: HubPort;
  readonly health: HubHealth;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics?: AgentMetrics | undefined;
  /** The delay before the n-th retry (n ≥ 1) of a report the hub did not take. */
  readonly backoff: (failures: number) => number;
  /** Told of every answer the hub gives, so the agent learns when it is behind. */
  readonly onAnswer: (receipt: StatusReceipt) => void;
  /**
   * Asked about a report the hub refused (a 4xx other than 401 and 403): a report to send
   * instead (the same one without an optional field a hub older than it does not know),
   * or undefined to drop it.
   */
  readonly onRefused?:
    | ((report: ClusterStatusReport, error: HubError) => ClusterStatusReport | undefined)
    | undefined;
}

/**
 * Status reports on their way to the hub. At most one request is in flight; a report
 * posted meanwhile replaces any unsent one (each report is the whole status, so only
 * the newest matters). Posting never waits for the hub: callers that want to know whether
 * it was taken await the returned promise, the agent's loop does not.
 *
 * {@link run} adds what the loop needs in the background: retries with backoff while the
 * hub is away, and a heartbeat after every quiet interval, whatever the loop is busy with.
 */
export class StatusOutbox {
  readonly #deps: StatusOutboxDeps;
  #pending: ClusterStatusReport | undefined;
  #sending: Promise<boolean> | undefined;
  #lastSentAt: number;
  #wake = new AbortController();

  constructor(deps: StatusOutboxDeps) {
    this.#deps = deps;
    this.#lastSentAt = deps.clock.now();
  }

  /** The report waiting for the hub, if any. */
  get pending(): ClusterStatusReport | undefined {
    return this.#pending;
  }

  /** When the hub last took a report (ms since the epoch). */
  get lastSentAt(): number {
    return this.#lastSentAt;
  }

  /** Queues the report (replacing an unsent one) and sends it; resolves with whether the hub has taken everything queued. */
  post(report: ClusterStatusReport, signal?: AbortSignal): Promise<boolean> {
    this.#pending = report;
    this.#deps.metrics?.statusPending.set(1);
    return this.#drain(signal);
  }

  #drain(signal?: AbortSignal): Promise<boolean> {
    if (this.#sending) return this.#sending.then((ok) => (ok && this.#pending ? this.#drain(signal) : ok));
    this.#sending = (async () => {
      try {
        while (this.#pending) {
          const report = this.#pending;
          if (!(await this.#sendOne(report, signal))) return false;
          if (this.#pending === report) this.#pending = undefined;
        }
        return true;
      } finally {
        this.#sending = undefined;
        this.#deps.metrics?.statusPending.set(this.#pending ? 1 : 0);
        this.#wake.abort();
      }
    })();
    return this.#sending;
  }

  async #sendOne(report: ClusterStatusReport, signal?: AbortSignal): Promise<boolean> {
    const { hub, health, log, clock } = this.#deps;
    try {
      const receipt = await hub.postStatus(report, signal);
      health.up();
      this.#lastSentAt = clock.now();
      this.#deps.onAnswer(receipt);
      return true;
    } catch (e) {
      if (e instanceof HubError && !e.retryable && e.status !== 401 && e.status !== 403) {
        const instead = this.#deps.onRefused?.(report, e);
        if (instead) {
          // Sent next by the drain loop, unless a newer report took its place meanwhile.
          if (this.#pending === report) this.#pending = instead;
          return true;
        }
        // The hub will refuse this report however often it is sent: drop it, say why.
        log.error('the hub refused the status report; dropping it', errorFields(e));
        return true;
      }
      health.down('status', e);
      return false;
    }
  }

  /**
   * In the background until `signal` aborts: retries an unsent report with backoff while
   * the hub fails, and sends `heartbeat()` when nothing was sent for `heartbeatMs`.
   */
  async run(signal: AbortSignal, opts: { heartbeatMs: number; heartbeat: () => ClusterStatusReport }) {
    const { clock, health, backoff } = this.#deps;
    while (!signal.aborted) {
      const now = clock.now();
      const retryAt =
        this.#pending && !this.#sending
          ? now + backoff(Math.max(1, health.failures))
          : Number.POSITIVE_INFINITY;
      const heartbeatAt = this.#lastSentAt + opts.heartbeatMs;
      if (!this.#pending && !this.#sending && now >= heartbeatAt) {
        void this.post(opts.heartbeat(), signal);
        continue;
      }
      this.#wake = new AbortController();
      // While a report waits, its retry is the next thing to do; a heartbeat only when nothing waits.
      const until = this.#sending ? Number.POSITIVE_INFINITY : this.#pending ? retryAt : heartbeatAt;
      await clock.sleep(
        Number.isFinite(until) ? Math.max(0, until - now) : 2 ** 31 - 1,
        AbortSignal.any([signal, this.#wake.signal]),
      );
      if (signal.aborted) break;
      if (this.#pending && !this.#sending && clock.now() >= retryAt) void this.#drain(signal);
    }
  }
}
