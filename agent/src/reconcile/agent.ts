import type { KeyObject } from 'node:crypto';
import {
  type AgeRecipient,
  type BundleStatusInput,
  backoffDelay,
  buildStatusReport,
  type ClusterStatusReport,
  type DesiredState,
  kubeVersionProblem,
  manifestEtag,
  parseDesiredState,
  sameRecipients,
} from '@flotilla/shared/agent';
import { HubError } from '../hub/hub-client.ts';
import { errorFields, type Logger } from '../log.ts';
import { type AgentMetrics, recordReconcile } from '../metrics.ts';
import { type AgentIntervals, AgentLoop, type Fetched } from './agent-loop.ts';
import { GenerationFloor, type GenerationPort, ReplayedDesiredStateError } from './generation-floor.ts';
import { HubHealth } from './hub-health.ts';
import type {
  AgeKeysPort,
  BundleOutcome,
  CachePort,
  Clock,
  ClusterPort,
  HubPort,
  QueuePort,
  ReconcileOutcome,
  StatusReceipt,
  VerifiedDesiredState,
} from './ports.ts';
import { StatusOutbox } from './status-outbox.ts';
import { DesiredStateVerifier, RefusedDesiredStateError } from './verifier.ts';

export { type AgentIntervals, RefusedDesiredStateError, ReplayedDesiredStateError };

export interface AgentPorts {
  readonly hub: HubPort;
  /** The cluster's SQS queue; without it the agent polls the hub. */
  readonly queue?: QueuePort | undefined;
  readonly cache: CachePort;
  /** Where the highest verified generation is kept across restarts; without it, only in memory. */
  readonly generations?: GenerationPort | undefined;
  readonly cluster: ClusterPort;
  /**
   * Reads the API server's version (`GET /version`, `gitVersion`), reported to the hub as
   * `kubeVersion`; without it the agent reports none.
   */
  readonly kubeVersion?: ((signal?: AbortSignal) => Promise<string>) | undefined;
  /**
   * The cluster's age keys: their public recipients are reported to the hub, and the key is
   * rotated when the hub asks. Without it the agent reports none.
   */
  readonly secretKeys?: AgeKeysPort | undefined;
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
  /** The desired state did not verify, or is older than one already verified: nothing of it was applied, and the refusal was reported. */
  | { readonly kind: 'refused'; readonly reason: string };

const bundleName = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** How often the API server's version is read when the intervals do not say: a control-plane upgrade reaches the hub within it. */
export const defaultKubeVersionMs = 10 * 60_000;

/**
 * The agent: gets its cluster's desired state from the hub (told over SQS, or by polling
 * with If-None-Match), verifies it, has the cluster reconciled with it, keeps it cached in
 * the cluster, and reports status. With the hub away it keeps enforcing what it has,
 * drift correction included.
 *
 * In {@link run}, nothing waits on anything it does not need: fetches from the hub run
 * beside reconciles, status reports and heartbeats go out in the background, and a
 * reconcile takes one look at readiness and comes back for bundles that are not ready
 * yet. Its steps ({@link sync}, {@link enforce}, {@link sendStatus}) are public so that
 * tests and the benchmark can drive them one by one; called that way, each returns once
 * its status report was sent (or failed to be).
 */
export class Agent {
  readonly #ports: AgentPorts;
  readonly #opts: AgentOptions;
  readonly #verifier: DesiredStateVerifier;
  readonly #floor: GenerationFloor;
  readonly #hub: HubHealth;
  readonly #outbox: StatusOutbox;
  #current: VerifiedDesiredState | undefined;
  #lastOutcome: ReconcileOutcome | undefined;
  #appliedGeneration: number | undefined;
  /** Set while the hub's latest desired state is one that was refused: what the status says instead. */
  #refusal: { readonly reason: string; readonly bundles: readonly BundleStatusInput[] } | undefined;
  /** During a reconcile: each bundle's state so far, in manifest order, so status follows bundle by bundle. */
  #inflight: Map<string, BundleStatusInput> | undefined;
  /** The hub said (in a status answer) that it has a newer desired state than ours. */
  #behind = false;
  /** The loop, while {@link run} runs. */
  #loop: AgentLoop | undefined;
  #ready = false;
  /** Whether the public steps wait for their status report (true) or leave it to the background (in {@link run}). */
  #awaitStatus = true;
  /** The API server's version as last read, if it is one the hub takes. */
  #kubeVersion: string | undefined;
  /** False once the hub refused `kubeVersion` (a hub older than the field), until the next read of the version. */
  #hubTakesKubeVersion = true;
  /** Whether the agent said (in the log) that the hub does not take kubeVersion. */
  #toldOlderHub = false;
  /** The last version read that the hub would refuse, so it is logged once, not at every read. */
  #unfitVersion: string | undefined;
  /** The cluster's age recipients as last read. */
  #recipients: readonly AgeRecipient[] | undefined;
  /** The id of the last key rotation done, as the cluster's key Secret records it. */
  #keyRotation: string | undefined;
  /** False once the hub refused the recipient fields (a hub older than them), until the next read. */
  #hubTakesRecipients = true;
  /** Whether the agent said (in the log) that the hub does not take the recipients. */
  #toldOlderHubKeys = false;
  /** The rotation under way, by request id. */
  #rotating: { readonly id: string; readonly done: Promise<void> } | undefined;
  /** Key problems as last logged, so each is logged once. */
  #keyProblems = '';

  constructor(ports: AgentPorts, opts: AgentOptions) {
    this.#ports = ports;
    this.#opts = opts;
    this.#verifier = new DesiredStateVerifier({
      clusterId: opts.clusterId,
      hubPublicKey: opts.hubPublicKey,
      hub: ports.hub,
    });
    this.#floor = new GenerationFloor(ports.generations);
    this.#hub = new HubHealth(ports.log, ports.metrics);
    this.#outbox = new StatusOutbox({
      hub: ports.hub,
      health: this.#hub,
      clock: ports.clock,
      log: ports.log,
      metrics: ports.metrics,
      backoff: (failures) => this.#backoff(failures),
      onAnswer: (receipt) => this.#heard(receipt),
      onRefused: (report, err) => this.#withoutNewFields(report, err),
    });
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

  /** The highest desired-state generation verified so far; lower ones are refused. */
  get highestGeneration(): number | undefined {
    return this.#floor.highest?.generation;
  }

  /** The cluster's Kubernetes version as last read from its API server, if it was one the hub takes. */
  get kubeVersion(): string | undefined {
    return this.#kubeVersion;
  }

  /** The cluster's age recipients as last read (public keys). */
  get recipients(): readonly AgeRecipient[] | undefined {
    return this.#recipients;
  }

  /** A status report waiting for the hub, if any. */
  get pendingStatus(): ClusterStatusReport | undefined {
    return this.#outbox.pending;
  }

  /**
   * For `/healthz` and `/readyz`: since when the step in progress runs (now, while the loop
   * sleeps), and whether a first reconcile finished.
   */
  get liveness(): { readonly lastTickAt: number; readonly ready: boolean; readonly hubFailures: number } {
    return {
      lastTickAt: this.#loop?.busySince ?? this.#ports.clock.now(),
      ready: this.#ready,
      hubFailures: this.#hub.failures,
    };
  }

  #backoff(failures: number): number {
    const iv = this.#opts.intervals;
    return backoffDelay(
      failures - 1,
      { minMs: iv.backoffMinMs, maxMs: iv.backoffMaxMs },
      this.#ports.clock.random,
    );
  }

  /**
   * Loads the highest generation verified before (kept in the cluster), then the desired
   * state cached in the cluster, and verifies it again (signature, cluster, every bundle
   * hash, not older than that generation), so that an agent restarted while the hub is
   * away enforces it. Returns whether one was loaded.
   */
  async loadCache(): Promise<boolean> {
    const { cache, log, metrics } = this.#ports;
    try {
      const mark = await this.#floor.load();
      if (mark) metrics?.highestGeneration.set(mark.generation);
    } catch (e) {
      log.warn('cannot read the highest verified generation from the cluster', errorFields(e));
    }
    let cached: Awaited<ReturnType<CachePort['load']>>;
    try {
      cached = await cache.load();
    } catch (e) {
      log.warn('cannot read the cached desired state', errorFields(e));
      return false;
    }
    if (!cached) return false;
    let state: VerifiedDesiredState;
    try {
      state = this.#verifier.fromCache(cached);
      this.#floor.check(state.manifest, state.etag);
    } catch (e) {
      if (e instanceof ReplayedDesiredStateError) metrics?.refusals.inc({ reason: 'replay' });
      log.error('the cached desired state does not verify; ignoring it', errorFields(e));
      return false;
    }
    await this.#raiseFloor(state);
    this.#current = state;
    log.info('enforcing the cached desired state until the hub answers', {
      generation: state.manifest.generation,
      commit: state.manifest.commit,
      bundles: state.manifest.bundles.length,
    });
    return true;
  }

  async #raiseFloor(state: VerifiedDesiredState): Promise<void> {
    try {
      if (await this.#floor.raise(state.manifest, state.etag))
        this.#ports.metrics?.highestGeneration.set(state.manifest.generation);
    } catch (e) {
      // In memory it holds all the same; only a restart before the next save could miss it.
      this.#ports.log.warn('cannot record the highest verified generation in the cluster', errorFields(e));
    }
  }

  /**
   * Asks the hub for its desired state (If-None-Match the one in hand) and verifies what
   * comes. A refusal is reported to the hub here.
   *
   * @throws {HubError} when the hub cannot be reached or refuses the request.
   */
  async #fetch(signal?: AbortSignal): Promise<Fetched> {
    const { hub, log } = this.#ports;
    let fetched: Awaited<ReturnType<HubPort['fetchDesiredState']>>;
    try {
      fetched = await hub.fetchDesiredState(this.#current?.etag, signal);
    } catch (e) {
      this.#hub.down('desired-state', e);
      throw e;
    }
    this.#hub.up();
    this.#behind = false;
    if (fetched.kind === 'none') {
      // Not an empty desired state: nothing is pruned, and a cached one stays in force.
      log.info('the hub has no desired state for this cluster yet', { reason: fetched.message });
      return { kind: 'none', message: fetched.message };
    }
    if (fetched.kind === 'not-modified') {
      this.#refusal = undefined;
      return { kind: 'unchanged' };
    }
    let state: VerifiedDesiredState;
    try {
      const manifest = this.#verifier.open(fetched.body);
      if (manifestEtag(manifest) === this.#current?.etag) {
        this.#refusal = undefined;
        return { kind: 'unchanged' };
      }
      this.#floor.check(manifest, manifestEtag(manifest));
      state = await this.#verifier.complete(manifest, fetched.body, this.#current, signal);
    } catch (e) {
      if (e instanceof HubError) {
        this.#hub.down('bundle', e);
        throw e;
      }
      return this.#refuse(fetched.body, e, signal);
    }
    this.#refusal = undefined;
    log.info('new desired state verified', {
      generation: state.manifest.generation,
      commit: state.manifest.commit,
      bundles: state.manifest.bundles.map((b) => b.name),
    });
    return { kind: 'new', state };
  }

  /** Makes a verified desired state the one enforced: the newest generation, cached in the cluster, announced to the hub. */
  async #adopt(state: VerifiedDesiredState, signal?: AbortSignal): Promise<void> {
    const previous = this.#current;
    await this.#raiseFloor(state);
    this.#current = state;
    try {
      await this.#ports.cache.save(state);
    } catch (e) {
      this.#ports.log.warn(
        'cannot cache the desired state in the cluster; it is applied all the same',
        errorFields(e),
      );
    }
    this.#announce(state, previous, signal);
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
    const fetched = await this.#fetch(opts.signal);
    switch (fetched.kind) {
      case 'none':
        await this.#publish(opts.signal);
        return fetched;
      case 'refused':
        return fetched;
      case 'unchanged': {
        const outcome = opts.detectDrift
          ? await this.enforce({
              detectDrift: true,
              trigger: 'resync',
              ...(opts.signal ? { signal: opts.signal } : {}),
            })
          : undefined;
        return { kind: 'unchanged', outcome };
      }
      case 'new': {
        await this.#adopt(fetched.state, opts.signal);
        const outcome = await this.#reconcile(fetched.state, {
          detectDrift: opts.detectDrift ?? false,
          trigger: opts.detectDrift ? 'resync' : 'sync',
          signal: opts.signal,
        });
        return { kind: 'applied', generation: fetched.state.manifest.generation, outcome };
      }
    }
  }

  async #refuse(body: unknown, err: unknown, signal?: AbortSignal): Promise<Fetched & { kind: 'refused' }> {
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
    const replay = err instanceof ReplayedDesiredStateError;
    metrics?.refusals.inc({ reason: replay ? 'replay' : 'verification' });
    metrics?.reconciles.inc({ trigger: 'sync', result: 'refused' });
    log.error(
      replay
        ? 'refused a desired state older than one already verified; nothing of it is applied'
        : 'refused a desired state that does not verify; nothing of it is applied',
      { ...(generation !== undefined ? { generation } : {}), ...errorFields(err) },
    );
    await this.#publish(signal);
    return { kind: 'refused', reason };
  }

  /** Each bundle's status as a reconcile of `state` starts: what it was if its render is the same, Applying otherwise. */
  #starting(state: VerifiedDesiredState): BundleStatusInput[] {
    const before = new Map((this.#lastOutcome?.bundles ?? []).map((b) => [b.name, b]));
    return state.manifest.bundles.map((ref): BundleStatusInput => {
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
  }

  /** Tells the hub that a new generation is being applied, before the apply. Never waited for. */
  #announce(state: VerifiedDesiredState, previous: VerifiedDesiredState | undefined, signal?: AbortSignal) {
    const applying = this.#starting(state);
    if (!previous && applying.length === 0) return;
    void this.#outbox.post(this.#build(applying), signal);
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
    const inflight = new Map(this.#starting(state).map((b) => [b.name, b]));
    this.#inflight = inflight;
    try {
      const outcome = await cluster.reconcile(state, {
        detectDrift: opts.detectDrift,
        signal: opts.signal,
        onBundle: (b: BundleOutcome) => {
          const before = inflight.get(b.name);
          inflight.set(b.name, b);
          // Only a change is worth a report before the reconcile ends.
          if (before?.state !== b.state || before.message !== b.message)
            void this.#outbox.post(this.#build(this.#bundleStatuses()), opts.signal);
        },
      });
      this.#lastOutcome = outcome;
      if (outcome.complete) {
        this.#appliedGeneration = state.manifest.generation;
        metrics?.lastSuccess.set(clock.now() / 1000);
        metrics?.appliedGeneration.set(state.manifest.generation);
      }
      if (metrics) recordReconcile(metrics, opts.trigger, outcome);
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
      this.#inflight = undefined;
      this.#ready = true;
      await this.#publish(opts.signal);
    }
  }

  #bundleStatuses(): readonly BundleStatusInput[] | undefined {
    if (this.#refusal) return this.#refusal.bundles;
    if (this.#inflight) return [...this.#inflight.values()];
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
      kubeVersion: this.#hubTakesKubeVersion ? this.#kubeVersion : undefined,
      recipients: this.#hubTakesRecipients ? this.#recipients : undefined,
      keyRotation: this.#hubTakesRecipients ? this.#keyRotation : undefined,
      observedAt: new Date(this.#ports.clock.now()),
      appliedGeneration: this.#appliedGeneration,
      bundles,
    });
  }

  /** Posts the current status (replacing an unsent one); waits for the hub only when a public step was called directly. */
  async #publish(signal?: AbortSignal): Promise<boolean> {
    const sent = this.#outbox.post(this.#build(this.#bundleStatuses()), signal);
    return this.#awaitStatus ? sent : true;
  }

  /**
   * Reads the API server's version; when it changed (or is the first read), reports it at
   * once. A failed read keeps the last version read; one the hub would refuse is left out
   * of reports. Returns the version that reports carry.
   */
  async checkKubeVersion(signal?: AbortSignal): Promise<string | undefined> {
    const { kubeVersion: read, log } = this.#ports;
    if (!read) return undefined;
    let version: string;
    try {
      version = await read(signal);
    } catch (e) {
      if (signal?.aborted) return this.#kubeVersion;
      log.warn('cannot read the Kubernetes version of the cluster; reporting the last one read', {
        ...(this.#kubeVersion ? { kubeVersion: this.#kubeVersion } : {}),
        ...errorFields(e),
      });
      return this.#kubeVersion;
    }
    const problem = kubeVersionProblem(version);
    const previous = this.#kubeVersion;
    const hubRefusedIt = !this.#hubTakesKubeVersion;
    // A hub that refused the field may have been upgraded since: offer it again once per read.
    this.#hubTakesKubeVersion = true;
    if (problem) {
      if (this.#unfitVersion !== version)
        log.warn('the API server reports a version the hub would refuse; status reports leave it out', {
          gitVersion: version.slice(0, 100),
          problem,
        });
      this.#unfitVersion = version;
      this.#kubeVersion = undefined;
      return undefined;
    }
    this.#kubeVersion = version;
    if (version !== previous || hubRefusedIt) {
      if (version !== previous)
        log.info(
          previous
            ? 'the Kubernetes version of the cluster changed'
            : 'read the Kubernetes version of the cluster',
          {
            kubeVersion: version,
            ...(previous ? { previous } : {}),
          },
        );
      await this.#publish(signal);
    }
    return version;
  }

  /**
   * A report the hub refused for fields newer than the hub (kubeVersion, the age recipients):
   * the same report without them, or undefined when the refusal was about something else.
   */
  #withoutNewFields(report: ClusterStatusReport, err: HubError): ClusterStatusReport | undefined {
    const aboutKeys = err.fields.some(
      (f) => f === 'keyRotation' || f === 'recipients' || f.startsWith('recipients['),
    );
    if (aboutKeys && (report.recipients !== undefined || report.keyRotation !== undefined)) {
      // Logged once: with an older hub this recurs at every read of the keys.
      if (!this.#toldOlderHubKeys)
        this.#ports.log.warn(
          'the hub does not take the age recipients in status reports (a hub older than the field?); leaving them out until the next read',
          errorFields(err),
        );
      this.#toldOlderHubKeys = true;
      this.#hubTakesRecipients = false;
      const { recipients: _r, keyRotation: _k, ...rest } = report;
      return rest;
    }
    return this.#withoutKubeVersion(report, err);
  }

  /** A report the hub refused for its kubeVersion (a hub older than the field): the same report without it. */
  #withoutKubeVersion(report: ClusterStatusReport, err: HubError): ClusterStatusReport | undefined {
    if (report.kubeVersion === undefined || !err.fields.includes('kubeVersion')) return undefined;
    // Logged once: with an older hub this recurs at every read of the version.
    if (!this.#toldOlderHub)
      this.#ports.log.warn(
        'the hub does not take the Kubernetes version in status reports (a hub older than the field?); leaving it out until the next read',
        errorFields(err),
      );
    this.#hubTakesKubeVersion = false;
    this.#toldOlderHub = true;
    const { kubeVersion: _left, ...rest } = report;
    return rest;
  }

  /**
   * In the background until `signal` aborts: reads the API server's version and the age
   * recipients (a group key may come or go) now and then every `kubeVersionMs`.
   */
  async #watchKubeVersion(signal: AbortSignal): Promise<void> {
    const every = this.#opts.intervals.kubeVersionMs ?? defaultKubeVersionMs;
    while (!signal.aborted) {
      await this.checkRecipients(signal);
      await this.checkKubeVersion(signal);
      await this.#ports.clock.sleep(every, signal);
    }
  }

  /**
   * Reads the cluster's age recipients (making the cluster's key at the first call, if the
   * cluster has none) and, when they changed, reports them at once. A failed read keeps the
   * last ones read. Returns the recipients that reports carry.
   */
  async checkRecipients(
    signal?: AbortSignal,
    opts: { report?: boolean } = {},
  ): Promise<readonly AgeRecipient[] | undefined> {
    const { secretKeys: keys, log } = this.#ports;
    if (!keys) return undefined;
    let recipients: readonly AgeRecipient[];
    try {
      if (this.#keyRotation === undefined) this.#keyRotation = await keys.lastRotation(signal);
      recipients = await keys.recipients(signal);
    } catch (e) {
      if (signal?.aborted) return this.#recipients;
      log.warn('cannot read the age keys of the cluster; reporting the recipients last read', errorFields(e));
      return this.#recipients;
    }
    const problems = JSON.stringify(keys.problems ?? []);
    if (problems !== this.#keyProblems && (keys.problems?.length ?? 0) > 0)
      log.warn('some group age keys cannot be used', { problems: keys.problems });
    this.#keyProblems = problems;
    const previous = this.#recipients;
    const hubRefusedThem = !this.#hubTakesRecipients;
    this.#hubTakesRecipients = true;
    this.#recipients = recipients;
    const changed = !sameRecipients(previous, recipients);
    // Recipients are public keys: logging them helps whoever encrypts for this cluster.
    if (changed) log.info('age recipients of the cluster', { recipients });
    if (changed || hubRefusedThem || opts.report) await this.#publish(signal);
    return recipients;
  }

  /**
   * Rotates the cluster's age key for the hub's request `id`, once: the key Secret records
   * the id, so a restart or the other replica does not rotate again. Then reports the new
   * recipient with the id, which closes the request at the hub.
   */
  async rotateKey(id: string, signal?: AbortSignal): Promise<void> {
    const keys = this.#ports.secretKeys;
    if (!keys || this.#keyRotation === id) return;
    if (this.#rotating?.id === id) return this.#rotating.done;
    const done = (async () => {
      try {
        const result = await keys.rotate(id, signal);
        this.#keyRotation = id;
        this.#ports.log.info(
          result.rotated
            ? 'rotated the age key of the cluster, as the hub asked; the previous key still decrypts'
            : 'the age key was already rotated for this request',
          { rotation: id, recipient: result.recipient },
        );
        await this.checkRecipients(signal, { report: true });
      } catch (e) {
        this.#ports.log.error('cannot rotate the age key of the cluster; the hub will ask again', {
          rotation: id,
          ...errorFields(e),
        });
      } finally {
        this.#rotating = undefined;
      }
    })();
    this.#rotating = { id, done };
    return done;
  }

  /** A status answer: the hub's generation tells whether a notification was missed; it may ask for a new age key. */
  #heard(receipt: StatusReceipt): void {
    const desired = receipt.desired;
    if (desired && desired.etag !== this.#current?.etag && !this.#refusal) {
      this.#behind = true;
      this.#loop?.wake();
    }
    const rotation = receipt.rotateKey?.id;
    if (typeof rotation === 'string' && rotation !== this.#keyRotation) void this.rotateKey(rotation);
  }

  /** Sends the current status again (a heartbeat), and whatever was waiting. Returns whether the hub took it. */
  async sendStatus(signal?: AbortSignal): Promise<boolean> {
    return this.#outbox.post(this.#build(this.#bundleStatuses()), signal);
  }

  /**
   * Runs until `signal` aborts: the {@link AgentLoop} drives this agent's steps, and status
   * goes out in the background as it changes, with a heartbeat after each quiet interval
   * and retries while the hub is away.
   */
  async run(signal: AbortSignal): Promise<void> {
    const iv = this.#opts.intervals;
    this.#awaitStatus = false;
    const loop = new AgentLoop(
      {
        loadCache: () => this.loadCache(),
        fetch: (s) => this.#fetch(s),
        adopt: (state, s) => this.#adopt(state, s),
        reconcile: (state, opts) => this.#reconcile(state, opts),
        enforce: (opts) => this.enforce(opts),
        publish: (s) => void this.#publish(s),
        currentEtag: () => this.#current?.etag,
        hubFailures: () => this.#hub.failures,
        behind: () => this.#behind,
        backoff: (failures) => this.#backoff(failures),
      },
      this.#ports,
      iv,
    );
    this.#loop = loop;
    const reporting = this.#outbox.run(signal, {
      heartbeatMs: iv.heartbeatMs,
      heartbeat: () => this.#build(this.#bundleStatuses()),
    });
    const versions = this.#watchKubeVersion(signal);
    try {
      await loop.run(signal);
    } finally {
      this.#loop = undefined;
      await reporting;
      await versions;
    }
  }
}
