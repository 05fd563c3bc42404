/**
 * Hand-written fakes of the agent's ports: a hub that serves signed desired states, a
 * queue, a cache, a cluster that records what it was asked to reconcile, and a clock
 * that only moves when the test says so.
 */
import {
  type BundleRef,
  canonicalJson,
  type DesiredState,
  FLOTILLA_API_VERSION,
  generateSigningKeyPair,
  manifestEtag,
  sha256Hash,
  signDesiredState,
} from '@flotilla/shared';
import type { ClusterStatusReport } from '@flotilla/shared/hub';
import { HubError } from '../../../agent/src/hub/hub-client.ts';
import type { Logger } from '../../../agent/src/log.ts';
import type { GenerationMark, GenerationPort } from '../../../agent/src/reconcile/generation-floor.ts';
import type {
  BundleOutcome,
  CachedDesiredState,
  CachePort,
  Clock,
  ClusterPort,
  DesiredStateFetch,
  HubPort,
  QueueMessage,
  QueuePort,
  ReconcileOptions,
  ReconcileOutcome,
  StatusReceipt,
  VerifiedDesiredState,
} from '../../../agent/src/reconcile/ports.ts';

export const keys = generateSigningKeyPair();
export const otherKeys = generateSigningKeyPair();

export interface BundleInput {
  readonly name: string;
  readonly objects?: readonly Record<string, unknown>[];
  readonly dependsOn?: readonly string[];
  readonly driftPolicy?: 'correct' | 'warn' | 'ignore';
  readonly paused?: boolean;
}

/** A rendered bundle's stored bytes and hash, as the hub would store them. */
export function renderBundle(b: BundleInput): { ref: BundleRef; canonical: string } {
  const objects = b.objects ?? [
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `${b.name}-config`, namespace: 'default' } },
  ];
  const canonical = canonicalJson({
    apiVersion: FLOTILLA_API_VERSION,
    kind: 'RenderedBundle',
    bundle: b.name,
    objects,
  });
  const ref: BundleRef = {
    name: b.name,
    hash: sha256Hash(canonical),
    namespace: 'default',
    dependsOn: [...(b.dependsOn ?? [])],
    driftPolicy: b.driftPolicy ?? 'correct',
    paused: b.paused ?? false,
  };
  return { ref, canonical };
}

/** The hub's side: desired states it serves (signed with `keys` unless said otherwise) and what it was sent. */
export class FakeHub implements HubPort {
  signed: unknown;
  etag = '';
  readonly bundles = new Map<string, string>();
  readonly reports: ClusterStatusReport[] = [];
  readonly calls: string[] = [];
  /** While set, every call fails as if the hub were unreachable. */
  down = false;
  /** While set, every call hangs until its signal aborts, as a hub that accepts connections and never answers. */
  hang = false;
  none = false;
  /** What the status answer says the hub's desired state is (defaults to the one served). */
  receipt: StatusReceipt | undefined;

  publish(
    cluster: string,
    generation: number,
    bundles: readonly BundleInput[],
    signWith = keys.privateKeyPem,
  ): DesiredState {
    const rendered = bundles.map(renderBundle);
    for (const r of rendered) this.bundles.set(r.ref.hash, r.canonical);
    const manifest: DesiredState = {
      apiVersion: FLOTILLA_API_VERSION,
      kind: 'DesiredState',
      cluster,
      generation,
      commit: `commit-${generation}`,
      bundles: rendered.map((r) => r.ref),
    };
    const signed = signDesiredState(manifest, signWith);
    // As the hub sends it: plain JSON, not the object built here.
    this.signed = JSON.parse(JSON.stringify(signed));
    this.etag = manifestEtag(manifest);
    this.none = false;
    return manifest;
  }

  async #check(what: string, signal?: AbortSignal): Promise<void> {
    this.calls.push(what);
    if (this.hang) {
      await new Promise<void>((resolve) => {
        if (signal?.aborted) resolve();
        signal?.addEventListener('abort', () => resolve(), { once: true });
      });
      throw new HubError('hub request aborted', { retryable: true });
    }
    if (this.down) throw new HubError('hub unreachable: connect ECONNREFUSED', { retryable: true });
  }

  async fetchDesiredState(ifNoneMatch: string | undefined, signal?: AbortSignal): Promise<DesiredStateFetch> {
    await this.#check(`desired-state${ifNoneMatch ? ' (if-none-match)' : ''}`, signal);
    if (this.none) return { kind: 'none', message: 'no desired state yet' };
    if (ifNoneMatch === this.etag) return { kind: 'not-modified' };
    return { kind: 'modified', body: structuredClone(this.signed), etag: this.etag };
  }

  async fetchBundle(hash: string, signal?: AbortSignal): Promise<string> {
    await this.#check(`bundle ${hash.slice(7, 15)}`, signal);
    const b = this.bundles.get(hash);
    if (b === undefined) throw new HubError(`bundle ${hash}: HTTP 404`, { status: 404, retryable: false });
    return b;
  }

  async postStatus(report: ClusterStatusReport, signal?: AbortSignal): Promise<StatusReceipt> {
    await this.#check('status', signal);
    this.reports.push(report);
    return this.receipt ?? { desired: { generation: 0, etag: this.etag } };
  }

  get lastReport(): ClusterStatusReport | undefined {
    return this.reports[this.reports.length - 1];
  }
}

/** The cluster's side: records each reconcile and answers with every bundle Ready (or what `states` says). */
export class FakeCluster implements ClusterPort {
  readonly calls: { generation: number; detectDrift: boolean; bundles: string[] }[] = [];
  states = new Map<string, BundleOutcome['state']>();
  fail: Error | undefined;
  /** When set, each reconcile takes this long on `clock`, reporting each bundle halfway. */
  slow: { clock: Clock; ms: number } | undefined;

  async reconcile(state: VerifiedDesiredState, opts: ReconcileOptions): Promise<ReconcileOutcome> {
    this.calls.push({
      generation: state.manifest.generation,
      detectDrift: opts.detectDrift,
      bundles: state.manifest.bundles.map((b) => b.name),
    });
    if (this.fail) throw this.fail;
    if (this.slow) await this.slow.clock.sleep(this.slow.ms);
    const bundles: BundleOutcome[] = state.manifest.bundles.map((ref) => {
      const s = this.states.get(ref.name) ?? 'Ready';
      return {
        name: ref.name,
        hash: ref.hash,
        generation: state.manifest.generation,
        state: s,
        ...(s === 'Failed' ? { message: 'boom', failedObject: '/ConfigMap/default/x' } : {}),
        ...(s === 'Drifted'
          ? { drift: [{ object: '/ConfigMap/default/x', fields: ['data.a'] }], message: 'drifted' }
          : {}),
        changes: { created: 0, configured: 0, unchanged: 1, deleted: 0, skipped: 0, failed: 0 },
      };
    });
    for (const b of bundles) opts.onBundle?.(b);
    return {
      generation: state.manifest.generation,
      bundles,
      complete: bundles.every((b) => b.state === 'Ready' || b.state === 'NotReady' || b.state === 'Drifted'),
      requeue: bundles.some((b) => b.state === 'NotReady' || b.state === 'Pending'),
      pruned: 0,
      driftEvents: [],
      applySeconds: 0.01,
      durationSeconds: 0.02,
    };
  }
}

export class FakeCache implements CachePort {
  stored: CachedDesiredState | undefined;
  saves = 0;
  async load(): Promise<CachedDesiredState | undefined> {
    return this.stored;
  }
  async save(state: VerifiedDesiredState): Promise<void> {
    this.saves++;
    this.stored = {
      signed: structuredClone(state.signed),
      etag: state.etag,
      bundles: new Map([...state.bundles].map(([h, b]) => [h, b.canonical])),
    };
  }
}

/** A clock whose time moves only in {@link advance}, waking sleepers in order. */
export class FakeClock implements Clock {
  t = 1_800_000_000_000;
  readonly #timers: { at: number; wake: () => void }[] = [];
  now(): number {
    return this.t;
  }
  random(): number {
    return 0.5;
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const timer = {
        at: this.t + ms,
        wake: () => {
          const i = this.#timers.indexOf(timer);
          if (i >= 0) this.#timers.splice(i, 1);
          resolve();
        },
      };
      this.#timers.push(timer);
      signal?.addEventListener('abort', timer.wake, { once: true });
    });
  }
  /** Moves time forward by `ms`, letting everything due run, in order. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await settle();
      const next = [...this.#timers].sort((a, b) => a.at - b.at)[0];
      if (!next || next.at > end) break;
      this.t = Math.max(this.t, next.at);
      next.wake();
    }
    this.t = end;
    await settle();
  }
}

/** Lets pending promise chains run to their next real wait. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

/** A queue whose messages the test puts in; receive waits (on the fake clock) when it is empty. */
export class FakeQueue implements QueuePort {
  readonly messages: QueueMessage[] = [];
  readonly deleted: string[] = [];
  #n = 0;
  readonly #clock: FakeClock;
  failing = false;

  constructor(clock: FakeClock) {
    this.#clock = clock;
  }

  put(notification: QueueMessage['notification']): void {
    const id = `m${this.#n++}`;
    this.messages.push({ id, receiptHandle: `rh-${id}`, notification });
  }

  async receive(signal: AbortSignal): Promise<QueueMessage[]> {
    for (;;) {
      if (signal.aborted) return [];
      if (this.failing) throw new Error('SQS unreachable');
      const taken = this.messages.splice(0);
      if (taken.length > 0) return taken;
      await this.#clock.sleep(1_000, signal);
    }
  }

  async delete(messages: readonly QueueMessage[]): Promise<void> {
    this.deleted.push(...messages.map((m) => m.id));
  }
}

export interface LogLine {
  readonly level: string;
  readonly message: string;
  readonly fields?: Record<string, unknown>;
}

export function memoryLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    lines.push({ level, message, ...(fields ? { fields } : {}) });
  };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** A generation store in memory, as the cluster's ConfigMap keeps it. */
export class FakeGenerations implements GenerationPort {
  mark: GenerationMark | undefined;
  async load(): Promise<GenerationMark | undefined> {
    return this.mark;
  }
  async save(mark: GenerationMark): Promise<void> {
    this.mark = mark;
  }
}
