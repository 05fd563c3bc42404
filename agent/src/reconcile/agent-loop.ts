import { jittered } from '@flotilla/shared/agent';
import type { Clock } from '../clock.ts';
import { HubError } from '../hub/hub-client.ts';
import { errorFields, type Logger } from '../log.ts';
import type { QueueMessage, QueuePort, ReconcileOutcome, VerifiedDesiredState } from './ports.ts';

/** What a fetch from the hub brought, verified. */
export type Fetched =
  | { readonly kind: 'new'; readonly state: VerifiedDesiredState }
  | { readonly kind: 'unchanged' }
  | { readonly kind: 'none'; readonly message: string }
  | { readonly kind: 'refused'; readonly reason: string };

/** How often the loop does what, in milliseconds. */
export interface AgentIntervals {
  /** Without SQS (or while SQS fails): how often to ask the hub for its desired state, with If-None-Match. */
  readonly pollMs: number;
  /** Full resync: fetch, apply and look for drift whatever the notifications said (jittered by 20%). */
  readonly resyncMs: number;
  /** How often to look for drift, from the desired state in hand (the hub is not needed). */
  readonly driftMs: number;
  /** How often to send a heartbeat (the last status again) when nothing else was sent. */
  readonly heartbeatMs: number;
  /** The longest wait before looking again while bundles are NotReady or wait for a dependency. */
  readonly requeueMs: number;
  /** The first such wait; it doubles while nothing changes, up to `requeueMs`. Default 1 s. */
  readonly recheckMs?: number;
  readonly backoffMinMs: number;
  readonly backoffMaxMs: number;
  /** How often to read the API server's version, so a control-plane upgrade reaches the hub. Default 10 min. */
  readonly kubeVersionMs?: number;
}

/** The agent's steps, as the loop drives them (see `Agent`). */
export interface AgentSteps {
  /** Loads and verifies the desired state cached in the cluster; whether there was one. */
  loadCache(): Promise<boolean>;
  /** Asks the hub and verifies what comes. @throws {HubError} when the hub cannot be reached. */
  fetch(signal: AbortSignal): Promise<Fetched>;
  /** Makes a verified desired state the one enforced (cached, announced). */
  adopt(state: VerifiedDesiredState, signal: AbortSignal): Promise<void>;
  reconcile(
    state: VerifiedDesiredState,
    opts: { detectDrift: boolean; trigger: string; signal: AbortSignal },
  ): Promise<ReconcileOutcome | undefined>;
  /** Reconciles the desired state in hand, if any. */
  enforce(opts: {
    detectDrift: boolean;
    trigger?: string;
    signal: AbortSignal;
  }): Promise<ReconcileOutcome | undefined>;
  /** Posts the current status, in the background. */
  publish(signal: AbortSignal): void;
  /** The ETag of the desired state in hand. */
  currentEtag(): string | undefined;
  /** Consecutive failed requests to the hub. */
  hubFailures(): number;
  /** Whether a status answer said the hub has a newer desired state (a fetch clears it). */
  behind(): boolean;
  /** The delay before the n-th retry (n ≥ 1) while the hub fails. */
  backoff(failures: number): number;
}

export interface AgentLoopPorts {
  readonly queue?: QueuePort | undefined;
  readonly clock: Clock;
  readonly log: Logger;
  /** Called when the loop goes to sleep after work; not awaited. */
  readonly settle?: (() => unknown) | undefined;
}

/** When the loop does what next (ms since the epoch; Infinity for not planned). */
interface Deadlines {
  /** Ask the hub (a poll, or a retry after a failure). */
  fetch: number;
  /** Fetch and reconcile with drift detection, whatever the notifications said. */
  resync: number;
  /** Look for drift in the desired state in hand. */
  drift: number;
  /** Look again at bundles that are not ready, or wait for a dependency. */
  requeue: number;
}

/** Work the loop took from a finished fetch. */
type Handover =
  | {
      readonly kind: 'apply';
      readonly state: VerifiedDesiredState;
      readonly full: boolean;
      readonly batch: QueueMessage[];
    }
  | { readonly kind: 'resync'; readonly batch: QueueMessage[] };

/**
 * The agent's scheduler: when to fetch, reconcile, look for drift and look again, as
 * named deadlines on an injected clock. Fetches run beside reconciles and hand over what
 * they verified; SQS notifications wake it; nothing it awaits waits for the hub.
 *
 * 1. Load the cached desired state and, if there is one, enforce it at once.
 * 2. Fetch from the hub, in the background: at start, on each SQS notification (or every
 *    poll interval without SQS), at each full resync, and when a status answer says the
 *    hub has a newer generation; back off exponentially, with jitter, while the hub fails.
 * 3. Reconcile: each new desired state as soon as it is verified; look for drift every
 *    drift interval, hub or no hub; look again soon while bundles are not ready (after
 *    `recheckMs`, doubling while nothing changes, up to `requeueMs`).
 */
export class AgentLoop {
  readonly #steps: AgentSteps;
  readonly #ports: AgentLoopPorts;
  readonly #iv: AgentIntervals;
  readonly #pending: QueueMessage[] = [];
  #wakeController = new AbortController();
  #queueHealthy = true;
  #fetching: Promise<void> | undefined;
  #handover: Handover | undefined;
  /** Requeues in a row that found every bundle as before: the next one waits twice as long. */
  #requeueStreak = 0;
  #lastRequeueStates = '';
  /** When the step in progress started; undefined while the loop sleeps. */
  busySince: number | undefined;

  constructor(steps: AgentSteps, ports: AgentLoopPorts, intervals: AgentIntervals) {
    this.#steps = steps;
    this.#ports = ports;
    this.#iv = intervals;
  }

  /** Ends the current sleep: something (a status answer) asks for attention. */
  wake(): void {
    this.#wakeController.abort();
  }

  #now(): number {
    return this.#ports.clock.now();
  }

  /** When to look again at bundles that are not ready: soon at first, less often while nothing changes. */
  #requeueAt(outcome: ReconcileOutcome | undefined): number {
    if (!outcome?.requeue) {
      this.#requeueStreak = 0;
      return Number.POSITIVE_INFINITY;
    }
    const states = outcome.bundles.map((b) => `${b.name}=${b.state}:${b.message ?? ''}`).join('\n');
    this.#requeueStreak = states === this.#lastRequeueStates ? this.#requeueStreak + 1 : 0;
    this.#lastRequeueStates = states;
    const delay = Math.min(
      this.#iv.requeueMs,
      (this.#iv.recheckMs ?? 1_000) * 2 ** Math.min(this.#requeueStreak, 20),
    );
    return this.#now() + delay;
  }

  /** Reads the queue until `signal` aborts, waking the loop on each notification; backs off while it fails. */
  async #receive(signal: AbortSignal): Promise<void> {
    const { queue, log, clock } = this.#ports;
    if (!queue) return;
    let failures = 0;
    while (!signal.aborted) {
      try {
        const messages = await queue.receive(signal);
        failures = 0;
        this.#queueHealthy = true;
        if (messages.length > 0) {
          this.#pending.push(...messages);
          this.wake();
        }
      } catch (e) {
        if (signal.aborted) break;
        failures++;
        if (this.#queueHealthy)
          log.warn('cannot read the SQS queue; polling the hub meanwhile', errorFields(e));
        this.#queueHealthy = false;
        this.wake();
        await clock.sleep(this.#steps.backoff(failures), signal);
      }
    }
  }

  /** A fetch beside whatever the loop does; what it brings is handed over when it ends. */
  #fetchInBackground(
    at: Deadlines,
    full: boolean,
    batch: QueueMessage[],
    polling: boolean,
    signal: AbortSignal,
  ) {
    const { clock, log } = this.#ports;
    const iv = this.#iv;
    const done = async () => {
      try {
        const result = await this.#steps.fetch(signal);
        at.fetch = polling ? this.#now() + jittered(iv.pollMs, 0.1, clock.random) : this.#now() + iv.resyncMs;
        if (full) at.resync = this.#now() + jittered(iv.resyncMs, 0.2, clock.random);
        if (result.kind === 'new') this.#handover = { kind: 'apply', state: result.state, full, batch };
        else if (result.kind === 'unchanged' && full) this.#handover = { kind: 'resync', batch };
        else {
          if (result.kind === 'none') this.#steps.publish(signal);
          await this.#deleteMessages(batch);
        }
      } catch (e) {
        if (!(e instanceof HubError)) log.error('sync failed', errorFields(e));
        // Messages stay on the queue: SQS shows them again after their visibility timeout.
        at.fetch = this.#now() + this.#steps.backoff(Math.max(1, this.#steps.hubFailures()));
        if (full) at.resync = at.fetch;
      }
    };
    this.#fetching = done().finally(() => {
      this.#fetching = undefined;
      this.wake();
    });
  }

  async #deleteMessages(batch: readonly QueueMessage[]): Promise<void> {
    if (batch.length === 0 || !this.#ports.queue) return;
    try {
      await this.#ports.queue.delete(batch);
    } catch (e) {
      // Harmless: they come back after their visibility timeout, and a duplicate costs one 304.
      this.#ports.log.warn('cannot delete SQS messages', errorFields(e));
    }
  }

  /** Runs until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const { clock, queue } = this.#ports;
    const steps = this.#steps;
    const iv = this.#iv;
    const now = () => this.#now();
    this.busySince = now();
    const haveCache = await steps.loadCache();
    const at: Deadlines = {
      fetch: now(),
      resync: now() + jittered(iv.resyncMs, 0.2, clock.random),
      drift: haveCache ? now() : now() + iv.driftMs,
      requeue: Number.POSITIVE_INFINITY,
    };
    let lastFetchAt = now();
    // Work was done since the loop last slept (start-up counts): settle before the next sleep.
    let worked = true;
    const receiving = this.#receive(signal);

    while (!signal.aborted) {
      this.busySince = now();
      const polling = !queue || !this.#queueHealthy;
      if (polling && steps.hubFailures() === 0) at.fetch = Math.min(at.fetch, lastFetchAt + iv.pollMs);
      const behind = steps.behind();
      if (behind) at.fetch = Math.min(at.fetch, now());
      const t = now();
      const notified = this.#pending.length > 0 && steps.hubFailures() === 0;
      if (!this.#fetching && !this.#handover && (notified || t >= at.fetch || t >= at.resync)) {
        const full = t >= at.resync;
        const batch = this.#pending.splice(0);
        const current = steps.currentEtag();
        if (!full && t < at.fetch && !behind && batch.every((m) => m.notification?.etag === current)) {
          // Duplicates, or news of what is already applied.
          await this.#deleteMessages(batch);
          continue;
        }
        lastFetchAt = t;
        worked = true;
        at.fetch = Number.POSITIVE_INFINITY;
        if (full) at.resync = Number.POSITIVE_INFINITY;
        this.#fetchInBackground(at, full, batch, polling, signal);
      }
      if (this.#handover) {
        const work = this.#handover;
        this.#handover = undefined;
        worked = true;
        let outcome: ReconcileOutcome | undefined;
        if (work.kind === 'apply') {
          await steps.adopt(work.state, signal);
          outcome = await steps.reconcile(work.state, {
            detectDrift: work.full,
            trigger: work.full ? 'resync' : 'sync',
            signal,
          });
        } else outcome = await steps.enforce({ detectDrift: true, trigger: 'resync', signal });
        await this.#deleteMessages(work.batch);
        if (work.kind === 'resync' || work.full) at.drift = now() + iv.driftMs;
        at.requeue = this.#requeueAt(outcome);
        continue;
      }
      if (t >= at.drift || t >= at.requeue) {
        const drift = t >= at.drift;
        worked = true;
        const outcome = await steps.enforce({ detectDrift: drift, signal });
        if (drift) at.drift = now() + jittered(iv.driftMs, 0.1, clock.random);
        at.requeue = this.#requeueAt(outcome);
        continue;
      }
      const until = Math.min(
        this.#fetching ? Number.POSITIVE_INFINITY : Math.min(at.fetch, at.resync),
        at.drift,
        at.requeue,
      );
      // Nothing can arrive between this check and the sleep: there is no await in between.
      if (!this.#fetching && this.#pending.length > 0 && steps.hubFailures() === 0) continue;
      if (worked && until - now() >= 1_000 && !this.#fetching) {
        worked = false;
        this.#ports.settle?.();
      }
      this.#wakeController = new AbortController();
      this.busySince = undefined;
      await clock.sleep(
        Number.isFinite(until) ? Math.max(0, until - now()) : 2 ** 31 - 1,
        AbortSignal.any([signal, this.#wakeController.signal]),
      );
    }
    this.busySince = undefined;
    await Promise.all([receiving, this.#fetching]);
  }
}
