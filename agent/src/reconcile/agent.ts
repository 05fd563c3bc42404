import type { KeyObject } from 'node:crypto';
import type { ClusterStatusReport } from '@flotilla/shared/agent';
import {
  type BundleStatusInput,
  backoffDelay,
  buildStatusReport,
  type ContentHash,
  type DesiredState,
  jittered,
  manifestEtag,
  openSignedDesiredState,
  parseDesiredState,
  parseRenderedBundle,
} from '@flotilla/shared/agent';
import { HubError } from '../hub/hub-client.ts';
import { errorFields, type Logger } from '../log.ts';
import type { AgentMetrics } from '../metrics.ts';
import type {
  CachePort,
  Clock,
  ClusterPort,
  HubPort,
  QueueMessage,
  QueuePort,
  ReconcileOutcome,
  VerifiedBundle,
  VerifiedDesiredState,
} from './ports.ts';

/** How often the agent does what, in milliseconds. */
export interface AgentIntervals {
  /** Without SQS (or while SQS fails): how often to ask the hub for its desired state, with If-None-Match. */
  readonly pollMs: number;
  /** Full resync: fetch, apply and look for drift whatever the notifications said (jittered by 20%). */
  readonly resyncMs: number;
  /** How often to look for drift, from the desired state in hand (the hub is not needed). */
  readonly driftMs: number;
  /** How often to send a heartbeat (the last status again). */
  readonly heartbeatMs: number;
  /** How soon to look again while bundles are NotReady or wait for a dependency. */
  readonly requeueMs: number;
  readonly backoffMinMs: number;
  readonly backoffMaxMs: number;
}

export interface AgentPorts {
  readonly hub: HubPort;
  /** The cluster's SQS queue; without it the agent polls the hub. */
  readonly queue?: QueuePort | undefined;
  readonly cache: CachePort;
  readonly cluster: ClusterPort;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics?: AgentMetrics | undefined;
  /**
   * Called when the loop goes to sleep after a fetch or reconcile: the runtime gives memory
   * back there. Not awaited: what it starts must not hold up the loop.
   */
  readonly settle?: (() => unknown) | undefined;
}

export interface AgentOptions {
  readonly clusterId: string;
  /** The hub's Ed25519 public key, pinned at bootstrap. */
  readonly hubPublicKey: KeyObject | string;
  readonly agentVersion: string;
  readonly intervals: AgentIntervals;
}

/** What one {@link Agent.sync} did, as data. */
export type SyncResult =
  /** A new desired state was verified and reconciled. */
  | { readonly kind: 'applied'; readonly generation: number; readonly outcome: ReconcileOutcome | undefined }
  /** The hub's desired state is the one in hand (reconciled again only when drift was asked for). */
  | { readonly kind: 'unchanged'; readonly outcome: ReconcileOutcome | undefined }
  /** The hub has no desired state for this cluster yet: nothing is applied and nothing pruned. */
  | { readonly kind: 'none'; readonly message: string }
  /** The desired state did not verify: nothing of it was applied, and the refusal was reported. */
  | { readonly kind: 'refused'; readonly reason: string };

/** A desired state that failed verification. */
export class RefusedDesiredStateError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'RefusedDesiredStateError';
  }
}

const bundleName = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/**
 * The agent: gets its cluster's desired state from the hub (told over SQS, or by polling
 * with If-None-Match), verifies it, has the cluster reconciled with it, keeps it cached in
 * the cluster, and reports status after every attempt. With the hub away it keeps
 * enforcing what it has, drift correction included.
 *
 * The loop ({@link run}) is sequential: one fetch or reconcile at a time. Its steps
 * ({@link sync}, {@link enforce}, {@link sendStatus}) are public so that tests and the
 * benchmark can drive them one by one.
 */
export class Agent {
  readonly #ports: AgentPorts;
  readonly #opts: AgentOptions;
  #current: VerifiedDesiredState | undefined;
  #lastOutcome: ReconcileOutcome | undefined;
  #appliedGeneration: number | undefined;
  /** Set while the hub's latest desired state is one that was refused: what the status says instead. */
  #refusal: { readonly reason: string; readonly bundles: readonly BundleStatusInput[] } | undefined;
  #outbox: ClusterStatusReport | undefined;
  /** The hub said (in a status answer) that it has a newer desired state than ours. */
  #behind = false;
  #hubFailures = 0;
  #queueHealthy = true;
  #lastTickAt = 0;
  #ready = false;

  constructor(ports: AgentPorts, opts: AgentOptions) {
    this.#ports = ports;
    this.#opts = opts;
    ports.metrics?.info.set(1, { version: opts.agentVersion, cluster: opts.clusterId });
  }

  /** The desired state being enforced, if any. */
  get current(): VerifiedDesiredState | undefined {
    return this.#current;
  }

  get lastOutcome(): ReconcileOutcome | undefined {
    return this.#lastOutcome;
  }

  get appliedGeneration(): number | undefined {
    return this.#appliedGeneration;
  }

  /** A status report waiting for the hub, if any. */
  get pendingStatus(): ClusterStatusReport | undefined {
    return this.#outbox;
  }

  /** For `/healthz` and `/readyz`: when the loop last did something, and whether a first reconcile finished. */
  get liveness(): { readonly lastTickAt: number; readonly ready: boolean; readonly hubFailures: number } {
    return { lastTickAt: this.#lastTickAt, ready: this.#ready, hubFailures: this.#hubFailures };
  }

  /**
   * Loads the desired state cached in the cluster and verifies it again (signature, cluster,
   * every bundle hash), so that an agent restarted while the hub is away enforces it.
   * Returns whether one was loaded.
   */
  async loadCache(): Promise<boolean> {
    const { cache, log } = this.#ports;
    let cached: Awaited<ReturnType<CachePort['load']>>;
    try {
      cached = await cache.load();
    } catch (e) {
      log.warn('cannot read the cached desired state', errorFields(e));
      return false;
    }
    if (!cached) return false;
    try {
      const manifest = this.#open(cached.signed);
      const bundles = new Map<string, VerifiedBundle>();
      for (const ref of manifest.bundles) {
        const canonical = cached.bundles.get(ref.hash);
        if (canonical === undefined)
          throw new RefusedDesiredStateError(`bundle ${ref.name} (${ref.hash}) is not in the cache`);
        bundles.set(ref.hash, this.#bundle(ref.name, ref.hash, canonical));
      }
      this.#current = { manifest, etag: manifestEtag(manifest), signed: cached.signed, bundles };
      log.info('enforcing the cached desired state until the hub answers', {
        generation: manifest.generation,
        commit: manifest.commit,
        bundles: manifest.bundles.length,
      });
      return true;
    } catch (e) {
      log.error('the cached desired state does not verify; ignoring it', errorFields(e));
      return false;
    }
  }

  #open(signed: unknown): DesiredState {
    const manifest = openSignedDesiredState(signed, this.#opts.hubPublicKey);
    if (manifest.cluster !== this.#opts.clusterId) {
      throw new RefusedDesiredStateError(
        `the desired state is for cluster "${manifest.cluster}", not for "${this.#opts.clusterId}"`,
      );
    }
    return manifest;
  }

  #bundle(name: string, hash: ContentHash, canonical: string): VerifiedBundle {
    const document = parseRenderedBundle(canonical, hash);
    if (document.bundle !== name) {
      throw new RefusedDesiredStateError(
        `bundle ${hash} is "${document.bundle}", but the manifest calls it "${name}"`,
      );
    }
    // Only the text is kept: parsed, a thousand objects take several megabytes more for the
    // whole time the agent idles, and a reconcile parses them again in milliseconds.
    return { hash, canonical, parse: () => parseRenderedBundle(canonical, hash) };
  }

  /**
   * Verifies a signed desired state from the hub: its signature with the pinned key, that it
   * is this cluster's, and every bundle against its hash (bundles already in hand are not
   * fetched again).
   *
   * @throws {HubError} when a bundle cannot be fetched (the hub's fault, retried later).
   * @throws anything else when the desired state must be refused.
   */
  async #verify(body: unknown, signal?: AbortSignal): Promise<VerifiedDesiredState> {
    const manifest = this.#open(body);
    const known = new Map<string, VerifiedBundle>();
    for (const [hash, b] of this.#current?.bundles ?? []) known.set(hash, b);
    const bundles = new Map<string, VerifiedBundle>();
    const refs = manifest.bundles.filter((r) => !known.has(r.hash));
    for (const r of manifest.bundles) {
      const b = known.get(r.hash);
      if (b) bundles.set(r.hash, this.#bundle(r.name, r.hash, b.canonical));
    }
    let next = 0;
    const worker = async () => {
      while (next < refs.length) {
        const ref = refs[next++];
        if (!ref) break;
        const canonical = await this.#ports.hub.fetchBundle(ref.hash, signal);
        bundles.set(ref.hash, this.#bundle(ref.name, ref.hash, canonical));
      }
    };
    await Promise.all(Array.from({ length: Math.min(4, refs.length) }, worker));
    return { manifest, etag: manifestEtag(manifest), signed: body, bundles };
  }

  /**
   * Asks the hub for the desired state (If-None-Match the one in hand), and when it is new,
   * verifies it, caches it in the cluster and reconciles; a status report follows every
   * attempt. With `detectDrift`, an unchanged desired state is reconciled again with drift
   * detection (the full resync).
   *
   * @throws {HubError} when the hub cannot be reached or refuses the request: nothing was applied.
   */
  async sync(opts: { detectDrift?: boolean; signal?: AbortSignal } = {}): Promise<SyncResult> {
    const { hub, log, cache } = this.#ports;
    let fetched: Awaited<ReturnType<HubPort['fetchDesiredState']>>;
    try {
      fetched = await hub.fetchDesiredState(this.#current?.etag, opts.signal);
    } catch (e) {
      this.#hubDown('desired-state', e);
      throw e;
    }
    this.#hubUp();
    this.#behind = false;
    if (fetched.kind === 'none') {
      // Not an empty desired state: nothing is pruned, and a cached one stays in force.
      log.info('the hub has no desired state for this cluster yet', { reason: fetched.message });
      await this.#publish(opts.signal);
      return { kind: 'none', message: fetched.message };
    }
    if (fetched.kind === 'not-modified') {
      this.#refusal = undefined;
      const outcome = opts.detectDrift
        ? await this.enforce({
            detectDrift: true,
            trigger: 'resync',
            ...(opts.signal ? { signal: opts.signal } : {}),
          })
        : undefined;
      return { kind: 'unchanged', outcome };
    }
    let state: VerifiedDesiredState;
    try {
      state = await this.#verify(fetched.body, opts.signal);
    } catch (e) {
      if (e instanceof HubError) {
        this.#hubDown('bundle', e);
        throw e;
      }
      return this.#refuse(fetched.body, e, opts.signal);
    }
    this.#refusal = undefined;
    const isNew = state.etag !== this.#current?.etag;
    if (!isNew && !opts.detectDrift) return { kind: 'unchanged', outcome: undefined };
    const previous = this.#current;
    this.#current = state;
    if (isNew) {
      log.info('new desired state verified', {
        generation: state.manifest.generation,
        commit: state.manifest.commit,
        bundles: state.manifest.bundles.map((b) => b.name),
      });
      try {
        await cache.save(state);
      } catch (e) {
        log.warn('cannot cache the desired state in the cluster; it is applied all the same', errorFields(e));
      }
      await this.#announce(state, previous, opts.signal);
    }
    const outcome = await this.#reconcile(state, {
      detectDrift: opts.detectDrift ?? false,
      trigger: opts.detectDrift ? 'resync' : 'sync',
      signal: opts.signal,
    });
    return { kind: 'applied', generation: state.manifest.generation, outcome };
  }

  async #refuse(body: unknown, err: unknown, signal?: AbortSignal): Promise<SyncResult> {
    const { log, metrics } = this.#ports;
    const reason = err instanceof Error ? err.message : String(err);
    let untrusted: DesiredState | undefined;
    try {
      untrusted = parseDesiredState((body as { manifest?: unknown } | null)?.manifest);
    } catch {
      untrusted = undefined;
    }
    const generation = untrusted?.generation;
    const refs = (untrusted?.bundles ?? this.#current?.manifest.bundles ?? []).filter((b) =>
      bundleName.test(b.name),
    );
    const enforcing = this.#current
      ? `; still enforcing generation ${this.#current.manifest.generation}`
      : '; nothing is applied';
    const message = `desired state${generation !== undefined ? ` generation ${generation}` : ''} refused: ${reason}${enforcing}`;
    this.#refusal = {
      reason,
      bundles: refs.map((b) => ({
        name: b.name,
        state: 'Failed',
        hash: b.hash,
        generation: generation ?? this.#current?.manifest.generation ?? 0,
        message,
      })),
    };
    metrics?.refusals.inc();
    metrics?.reconciles.inc({ trigger: 'sync', result: 'refused' });
    log.error('refused a desired state that does not verify; nothing of it is applied', {
      ...(generation !== undefined ? { generation } : {}),
      ...errorFields(err),
    });
    await this.#publish(signal);
    return { kind: 'refused', reason };
  }

  /** Tells the hub that a new generation is being applied, before the (possibly long) apply. */
  async #announce(
    state: VerifiedDesiredState,
    previous: VerifiedDesiredState | undefined,
    signal?: AbortSignal,
  ) {
    const before = new Map((this.#lastOutcome?.bundles ?? []).map((b) => [b.name, b]));
    const applying = state.manifest.bundles.map((ref): BundleStatusInput => {
      const last = before.get(ref.name);
      if (last && last.hash === ref.hash && !ref.paused)
        return { ...last, generation: state.manifest.generation };
      return {
        name: ref.name,
        state: ref.paused ? 'Pending' : 'Applying',
        hash: ref.hash,
        generation: state.manifest.generation,
      };
    });
    if (!previous && applying.length === 0) return;
    try {
      await this.#ports.hub.postStatus(this.#build(applying), signal);
    } catch {
      // Only informative: the report after the reconcile is the one that is kept until it is sent.
    }
  }

  /**
   * Reconciles the cluster with the desired state in hand (from the hub or the cache), and
   * reports. Does nothing without one.
   */
  async enforce(
    opts: { detectDrift: boolean; trigger?: string; signal?: AbortSignal } = { detectDrift: true },
  ): Promise<ReconcileOutcome | undefined> {
    if (!this.#current) return undefined;
    return this.#reconcile(this.#current, {
      detectDrift: opts.detectDrift,
      trigger: opts.trigger ?? (opts.detectDrift ? 'drift' : 'requeue'),
      signal: opts.signal,
    });
  }

  async #reconcile(
    state: VerifiedDesiredState,
    opts: { detectDrift: boolean; trigger: string; signal?: AbortSignal | undefined },
  ): Promise<ReconcileOutcome | undefined> {
    const { cluster, log, metrics, clock } = this.#ports;
    const started = clock.now();
    try {
      const outcome = await cluster.reconcile(state, {
        detectDrift: opts.detectDrift,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      this.#lastOutcome = outcome;
      if (outcome.complete) {
        this.#appliedGeneration = state.manifest.generation;
        metrics?.lastSuccess.set(clock.now() / 1000);
        metrics?.appliedGeneration.set(state.manifest.generation);
      }
      this.#record(opts.trigger, outcome);
      // One line per reconcile, as Flux's controllers write: what ran, what it did, how long it took.
      const changes: Record<string, number> = {};
      for (const b of outcome.bundles)
        for (const [action, n] of Object.entries(b.changes))
          if (n > 0) changes[action] = (changes[action] ?? 0) + n;
      log.info('reconciled', {
        trigger: opts.trigger,
        generation: outcome.generation,
        complete: outcome.complete,
        seconds: outcome.durationSeconds,
        applySeconds: outcome.applySeconds,
        changes,
        states: Object.fromEntries(outcome.bundles.map((b) => [b.name, b.state])),
      });
      return outcome;
    } catch (e) {
      // The cluster could not be reached, or an inventory not read: report it on every bundle.
      const message = `reconcile failed: ${e instanceof Error ? e.message : String(e)}`;
      log.error('reconcile failed', {
        trigger: opts.trigger,
        generation: state.manifest.generation,
        ...errorFields(e),
      });
      metrics?.reconciles.inc({ trigger: opts.trigger, result: 'failed' });
      const failed: ReconcileOutcome = {
        generation: state.manifest.generation,
        bundles: state.manifest.bundles.map((ref) => ({
          name: ref.name,
          hash: ref.hash,
          generation: state.manifest.generation,
          state: 'Failed',
          message,
          changes: { created: 0, configured: 0, unchanged: 0, deleted: 0, skipped: 0, failed: 0 },
        })),
        complete: false,
        requeue: true,
        pruned: 0,
        driftEvents: [],
        applySeconds: 0,
        durationSeconds: (clock.now() - started) / 1000,
      };
      this.#lastOutcome = failed;
      return failed;
    } finally {
      this.#ready = true;
      await this.#publish(opts.signal);
    }
  }

  #record(trigger: string, outcome: ReconcileOutcome): void {
    const m = this.#ports.metrics;
    if (!m) return;
    const failed = outcome.bundles.some((b) => b.state === 'Failed');
    m.reconciles.inc({ trigger, result: failed ? 'failed' : 'success' });
    m.reconcileDuration.observe(outcome.durationSeconds);
    m.applyDuration.observe(outcome.applySeconds);
    const counts: Record<string, number> = {};
    for (const b of outcome.bundles) {
      for (const [action, n] of Object.entries(b.changes)) counts[action] = (counts[action] ?? 0) + n;
    }
    for (const [action, n] of Object.entries(counts)) if (n > 0) m.objects.inc({ action }, n);
    for (const d of outcome.driftEvents) {
      m.driftEvents.inc({ bundle: d.bundle, action: d.corrected ? 'corrected' : 'reported' });
    }
    for (const state of ['Pending', 'Applying', 'Ready', 'NotReady', 'Failed', 'Drifted']) {
      m.bundles.set(outcome.bundles.filter((b) => b.state === state).length, { state });
    }
  }

  #bundleStatuses(): readonly BundleStatusInput[] | undefined {
    if (this.#refusal) return this.#refusal.bundles;
    // An outcome is a status input and more; buildStatusReport takes the status fields.
    if (this.#lastOutcome) return this.#lastOutcome.bundles;
    if (this.#current) {
      const g = this.#current.manifest.generation;
      return this.#current.manifest.bundles.map((b) => ({
        name: b.name,
        state: 'Pending',
        hash: b.hash,
        generation: g,
      }));
    }
    return undefined;
  }

  #build(bundles: readonly BundleStatusInput[] | undefined): ClusterStatusReport {
    return buildStatusReport({
      agentVersion: this.#opts.agentVersion,
      observedAt: new Date(this.#ports.clock.now()),
      appliedGeneration: this.#appliedGeneration,
      bundles,
    });
  }

  /** Puts the current status in the outbox (replacing an unsent one: each report replaces the last) and tries to send it. */
  async #publish(signal?: AbortSignal): Promise<boolean> {
    this.#outbox = this.#build(this.#bundleStatuses());
    return this.#flush(signal);
  }

  async #flush(signal?: AbortSignal): Promise<boolean> {
    const { hub, log, metrics } = this.#ports;
    const report = this.#outbox;
    if (!report) return true;
    metrics?.statusPending.set(1);
    try {
      const receipt = await hub.postStatus(report, signal);
      this.#hubUp();
      if (this.#outbox === report) this.#outbox = undefined;
      metrics?.statusPending.set(this.#outbox ? 1 : 0);
      const desired = receipt.desired;
      if (desired && desired.etag !== this.#current?.etag && !this.#refusal) this.#behind = true;
      return true;
    } catch (e) {
      if (e instanceof HubError && !e.retryable && e.status !== 401 && e.status !== 403) {
        // The hub will refuse this report however often it is sent: drop it, say why.
        log.error('the hub refused the status report; dropping it', errorFields(e));
        if (this.#outbox === report) this.#outbox = undefined;
        metrics?.statusPending.set(0);
        return true;
      }
      this.#hubDown('status', e);
      return false;
    }
  }

  /** Sends the current status again (a heartbeat), and whatever was waiting. Returns whether the hub took it. */
  async sendStatus(signal?: AbortSignal): Promise<boolean> {
    return this.#publish(signal);
  }

  #hubUp(): void {
    if (this.#hubFailures > 0) this.#ports.log.info('the hub answers again', { failures: this.#hubFailures });
    this.#hubFailures = 0;
    this.#ports.metrics?.hubUp.set(1);
  }

  #hubDown(operation: string, err: unknown): void {
    this.#hubFailures++;
    const { log, metrics } = this.#ports;
    metrics?.hubUp.set(0);
    metrics?.hubErrors.inc({ operation });
    const fields = { operation, failures: this.#hubFailures, ...errorFields(err) };
    if (err instanceof HubError && !err.retryable) log.error('the hub refused a request', fields);
    else if (this.#hubFailures === 1)
      log.warn('the hub is unreachable; enforcing the desired state in hand', fields);
    else log.debug('the hub is still unreachable', fields);
  }

  /**
   * Runs until `signal` aborts.
   *
   * 1. Load the cached desired state and, if there is one, enforce it at once.
   * 2. Fetch from the hub: at start, on each SQS notification (or every poll interval
   *    without SQS), and at each full resync; back off exponentially, with jitter, while
   *    the hub fails.
   * 3. Look for drift every drift interval, hub or no hub; look again soon while bundles settle.
   * 4. Send a heartbeat every heartbeat interval, and retry unsent status with the fetch backoff.
   */
  async run(signal: AbortSignal): Promise<void> {
    const { clock, queue, log } = this.#ports;
    const iv = this.#opts.intervals;
    const now = () => clock.now();
    const backoff = (failures: number) =>
      backoffDelay(failures - 1, { minMs: iv.backoffMinMs, maxMs: iv.backoffMaxMs }, clock.random);
    const pending: QueueMessage[] = [];
    let wakeController = new AbortController();

    const haveCache = await this.loadCache();
    this.#lastTickAt = now();
    let nextFetch = now();
    let lastFetchAt = now();
    let nextResync = now() + jittered(iv.resyncMs, 0.2, clock.random);
    let nextDrift = haveCache ? now() : now() + iv.driftMs;
    let nextRequeue = Number.POSITIVE_INFINITY;
    let nextHeartbeat = now() + iv.heartbeatMs;
    let statusRetryAt = Number.POSITIVE_INFINITY;
    // Work was done since the loop last slept (start-up counts): settle before the next sleep.
    let worked = true;
    const afterReconcile = (outcome: ReconcileOutcome | undefined) => {
      nextRequeue = outcome?.requeue ? now() + iv.requeueMs : Number.POSITIVE_INFINITY;
      nextHeartbeat = now() + iv.heartbeatMs;
      statusRetryAt = this.#outbox
        ? now() + backoff(Math.max(1, this.#hubFailures))
        : Number.POSITIVE_INFINITY;
    };

    const receiver = async () => {
      if (!queue) return;
      let failures = 0;
      while (!signal.aborted) {
        try {
          const messages = await queue.receive(signal);
          failures = 0;
          this.#queueHealthy = true;
          if (messages.length > 0) {
            pending.push(...messages);
            wakeController.abort();
          }
        } catch (e) {
          if (signal.aborted) break;
          failures++;
          if (this.#queueHealthy)
            log.warn('cannot read the SQS queue; polling the hub meanwhile', errorFields(e));
          this.#queueHealthy = false;
          wakeController.abort();
          await clock.sleep(backoff(failures), signal);
        }
      }
    };
    const receiving = receiver();

    while (!signal.aborted) {
      this.#lastTickAt = now();
      const polling = !queue || !this.#queueHealthy;
      if (polling && this.#hubFailures === 0) nextFetch = Math.min(nextFetch, lastFetchAt + iv.pollMs);
      if (this.#behind) nextFetch = Math.min(nextFetch, now());
      const t = now();
      const notified = pending.length > 0 && this.#hubFailures === 0;
      if (notified || t >= nextFetch || t >= nextResync) {
        const full = t >= nextResync;
        const batch = pending.splice(0);
        const current = this.#current?.etag;
        if (!full && t < nextFetch && !this.#behind && batch.every((m) => m.notification?.etag === current)) {
          // Duplicates, or news of what is already applied.
          await this.#deleteMessages(batch);
          continue;
        }
        lastFetchAt = t;
        worked = true;
        try {
          const result = await this.sync({ detectDrift: full, signal });
          await this.#deleteMessages(batch);
          nextFetch = polling ? now() + jittered(iv.pollMs, 0.1, clock.random) : now() + iv.resyncMs;
          if (full) nextResync = now() + jittered(iv.resyncMs, 0.2, clock.random);
          const reconciled = result.kind === 'applied' || (result.kind === 'unchanged' && result.outcome);
          if (reconciled && full) nextDrift = now() + iv.driftMs;
          if (reconciled)
            afterReconcile(
              result.kind === 'applied' || result.kind === 'unchanged' ? result.outcome : undefined,
            );
          else if (result.kind === 'refused') afterReconcile(this.#lastOutcome);
        } catch (e) {
          if (!(e instanceof HubError)) log.error('sync failed', errorFields(e));
          // Messages stay on the queue: SQS shows them again after their visibility timeout.
          nextFetch = now() + backoff(Math.max(1, this.#hubFailures));
          if (full) nextResync = Math.max(nextResync, nextFetch);
          if (this.#outbox) statusRetryAt = Math.min(statusRetryAt, nextFetch);
        }
        continue;
      }
      if (t >= nextDrift || t >= nextRequeue) {
        const drift = t >= nextDrift;
        worked = true;
        const outcome = await this.enforce({ detectDrift: drift, signal });
        if (drift) nextDrift = now() + jittered(iv.driftMs, 0.1, clock.random);
        afterReconcile(outcome);
        continue;
      }
      if (t >= nextHeartbeat || t >= statusRetryAt) {
        const sent = await this.sendStatus(signal);
        nextHeartbeat = now() + iv.heartbeatMs;
        statusRetryAt = sent ? Number.POSITIVE_INFINITY : now() + backoff(Math.max(1, this.#hubFailures));
        continue;
      }
      const until = Math.min(nextFetch, nextResync, nextDrift, nextRequeue, nextHeartbeat, statusRetryAt);
      // Nothing can arrive between this check and the sleep: there is no await in between.
      if (pending.length > 0 && this.#hubFailures === 0) continue;
      if (worked && until - now() >= 1_000) {
        worked = false;
        this.#ports.settle?.();
      }
      wakeController = new AbortController();
      await clock.sleep(Math.max(0, until - now()), AbortSignal.any([signal, wakeController.signal]));
    }
    await receiving;
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
}
