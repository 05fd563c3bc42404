/**
 * Leader election among the agent's replicas, as client-go's `leaderelection` package does
 * it: one replica holds the Lease and runs the agent loop; the others watch the Lease and
 * take it over once its holder has not renewed it for a lease duration.
 *
 * - Expiry is judged by this replica's own clock, from when it last saw the record change
 *   (client-go's `observedTime`), never from the times written in it: clocks of two nodes
 *   need not agree.
 * - Every write names the resourceVersion that was read (optimistic concurrency): of two
 *   replicas acquiring at once, one gets a conflict.
 * - The leader renews every retry period; when it has not managed to renew within the renew
 *   deadline (shorter than the lease duration, so it steps down before another can take
 *   over), it stops leading and campaigns again.
 * - On shutdown the leader stops its work first, then releases the Lease by clearing its
 *   holder, so a standby takes over at once instead of after a lease duration.
 */
import { errorFields, type Logger } from '../log.ts';
import type { Clock } from '../reconcile/ports.ts';
import type { LeaderLock, LeaderRecord, VersionedRecord } from './lease-lock.ts';

export interface LeaderElectionTiming {
  /** How long a non-leader waits after it last saw the record change before taking over. */
  readonly leaseDurationMs: number;
  /** How long the leader keeps trying to renew before it steps down. */
  readonly renewDeadlineMs: number;
  /** How often to try to acquire or renew. */
  readonly retryPeriodMs: number;
}

/** client-go's defaults, which Kubernetes' own controllers use. */
export const defaultLeaderElectionTiming: LeaderElectionTiming = {
  leaseDurationMs: 15_000,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
};

/** client-go's `JitterFactor`: attempts to acquire are spread by up to 20% of the retry period. */
const jitterFactor = 1.2;

export interface LeaderElectorOptions {
  readonly lock: LeaderLock;
  /** Unique among the replicas: the pod name (or hostname and pid). */
  readonly identity: string;
  readonly clock: Clock;
  readonly log: Logger;
  readonly timing?: LeaderElectionTiming;
  /** Told when this replica starts and stops leading (a metric, say). */
  readonly onLeadingChange?: (leading: boolean) => void;
}

export class LeaderElectionConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LeaderElectionConfigError';
  }
}

/** Elects a leader on a lock and runs work while this replica leads. */
export class LeaderElector {
  readonly #opts: LeaderElectorOptions;
  readonly #timing: LeaderElectionTiming;
  #observed: VersionedRecord | undefined;
  #observedAt = 0;
  #leading = false;
  #lastAttemptAt = 0;
  #lockAnswered = false;

  constructor(opts: LeaderElectorOptions) {
    const timing = opts.timing ?? defaultLeaderElectionTiming;
    if (timing.leaseDurationMs <= timing.renewDeadlineMs)
      throw new LeaderElectionConfigError('the lease duration must be longer than the renew deadline');
    if (timing.renewDeadlineMs <= jitterFactor * timing.retryPeriodMs)
      throw new LeaderElectionConfigError('the renew deadline must be longer than 1.2 retry periods');
    this.#opts = opts;
    this.#timing = timing;
  }

  get leading(): boolean {
    return this.#leading;
  }

  /** For the probes of a standby: when it last tried the lock, and whether the API server has answered it. */
  get liveness(): { readonly lastAttemptAt: number; readonly lockAnswered: boolean } {
    return { lastAttemptAt: this.#lastAttemptAt, lockAnswered: this.#lockAnswered };
  }

  /** The holder as last seen ('' when none, undefined before the first read). */
  get observedHolder(): string | undefined {
    return this.#observed?.record.holderIdentity;
  }

  /**
   * One attempt (client-go's `tryAcquireOrRenew`): create the lock if there is none; take
   * it when it is free or expired, or renew it when held; otherwise leave it. True when
   * this replica holds the lock afterwards.
   */
  async tryAcquireOrRenew(signal?: AbortSignal): Promise<boolean> {
    const { lock, identity, clock, log } = this.#opts;
    const now = clock.now();
    this.#lastAttemptAt = now;
    const fresh: LeaderRecord = {
      holderIdentity: identity,
      leaseDurationSeconds: Math.round(this.#timing.leaseDurationMs / 1000),
      acquireTime: now,
      renewTime: now,
      leaseTransitions: 0,
    };
    let current: VersionedRecord | undefined;
    try {
      current = await lock.get(signal);
      this.#lockAnswered = true;
    } catch (e) {
      log.warn('cannot read the leader-election lock', { lock: lock.description, ...errorFields(e) });
      return false;
    }
    if (!current) {
      try {
        this.#observe(await lock.create(fresh, signal), clock.now());
        return true;
      } catch (e) {
        log.debug('cannot create the leader-election lock', { lock: lock.description, ...errorFields(e) });
        return false;
      }
    }
    if (this.#observed?.raw !== current.raw) this.#observe(current, now);
    const holder = current.record.holderIdentity;
    const held = holder !== '' && holder !== identity;
    if (held && this.#observedAt + this.#timing.leaseDurationMs > now) return false;
    const record: LeaderRecord =
      holder === identity
        ? {
            ...fresh,
            acquireTime: current.record.acquireTime,
            leaseTransitions: current.record.leaseTransitions,
          }
        : { ...fresh, leaseTransitions: current.record.leaseTransitions + 1 };
    try {
      this.#observe(await lock.update(record, current.resourceVersion, signal), clock.now());
      return true;
    } catch (e) {
      log.debug('cannot update the leader-election lock', { lock: lock.description, ...errorFields(e) });
      return false;
    }
  }

  #observe(record: VersionedRecord, at: number): void {
    this.#observed = record;
    this.#observedAt = at;
  }

  /**
   * Campaigns until `signal` aborts; whenever this replica leads, runs `lead` with a signal
   * that aborts when leadership is lost (or on shutdown), waits for it to end, and
   * campaigns again. On shutdown while leading, releases the lock once `lead` has ended.
   */
  async run(signal: AbortSignal, lead: (leading: AbortSignal) => Promise<void>): Promise<void> {
    const { clock, log, lock, identity } = this.#opts;
    while (!signal.aborted) {
      await this.#acquire(signal);
      if (signal.aborted) break;
      log.info('leading: this replica runs the agent', { lock: lock.description, identity });
      this.#setLeading(true);
      const leadership = new AbortController();
      const stop = () => leadership.abort();
      signal.addEventListener('abort', stop, { once: true });
      const work = lead(leadership.signal).catch((e: unknown) => {
        log.error('the agent loop failed while leading', { ...errorFields(e) });
      });
      const lost = await Promise.race([this.#renew(leadership.signal), work.then(() => false)]);
      leadership.abort();
      await work;
      signal.removeEventListener('abort', stop);
      this.#setLeading(false);
      if (signal.aborted) {
        await this.#release();
        break;
      }
      if (lost) {
        log.warn('lost the lease: no longer leading; campaigning again', { lock: lock.description });
        continue;
      }
      // The work ended by itself (it failed): hand the Lease over, as a crashed leader's pod
      // would, so that another replica gets its turn; campaign again after a retry period.
      await this.#release();
      await clock.sleep(this.#timing.retryPeriodMs, signal);
    }
  }

  #setLeading(leading: boolean): void {
    this.#leading = leading;
    this.#opts.onLeadingChange?.(leading);
  }

  /** Tries every retry period (jittered) until it holds the lock or `signal` aborts. */
  async #acquire(signal: AbortSignal): Promise<void> {
    const { clock, log, lock } = this.#opts;
    let announced: string | undefined;
    while (!signal.aborted) {
      if (await this.tryAcquireOrRenew(signal)) return;
      const holder = this.#observed?.record.holderIdentity;
      if (holder && holder !== announced) {
        log.info('standing by: another replica leads', { lock: lock.description, leader: holder });
        announced = holder;
      }
      const jitter = clock.random() * (jitterFactor - 1) * this.#timing.retryPeriodMs;
      await clock.sleep(this.#timing.retryPeriodMs + jitter, signal);
    }
  }

  /**
   * Renews every retry period while leading. Resolves true when a renewal could not be
   * made within the renew deadline (leadership lost), false when `signal` aborted first.
   */
  async #renew(signal: AbortSignal): Promise<boolean> {
    const { clock } = this.#opts;
    let renewedAt = clock.now();
    while (!signal.aborted) {
      await clock.sleep(this.#timing.retryPeriodMs, signal);
      if (signal.aborted) return false;
      // An attempt may not outlast the deadline: a hung request must not keep a leader
      // that can no longer renew.
      const remaining = Math.max(1, renewedAt + this.#timing.renewDeadlineMs - clock.now());
      const deadline = AbortSignal.any([signal, AbortSignal.timeout(remaining)]);
      if (await this.tryAcquireOrRenew(deadline)) {
        renewedAt = clock.now();
        continue;
      }
      if (signal.aborted) return false;
      if (clock.now() - renewedAt >= this.#timing.renewDeadlineMs) return true;
      // Another holder in the record means the lease is lost already: no use retrying.
      const holder = this.#observed?.record.holderIdentity;
      if (holder && holder !== this.#opts.identity) return true;
    }
    return false;
  }

  /** Clears the holder (client-go's ReleaseOnCancel), so a standby need not wait for expiry. */
  async #release(): Promise<void> {
    const { lock, log, clock, identity } = this.#opts;
    const observed = this.#observed;
    if (!observed || observed.record.holderIdentity !== identity) return;
    const now = clock.now();
    try {
      await lock.update(
        {
          holderIdentity: '',
          leaseDurationSeconds: 1,
          acquireTime: now,
          renewTime: now,
          leaseTransitions: observed.record.leaseTransitions,
        },
        observed.resourceVersion,
        AbortSignal.timeout(this.#timing.retryPeriodMs),
      );
      log.info('released the lease', { lock: lock.description });
    } catch (e) {
      log.warn('could not release the lease; another replica takes over once it expires', {
        lock: lock.description,
        ...errorFields(e),
      });
    }
  }
}
