/**
 * The agent's Prometheus metrics, written in the text exposition format by hand: a client
 * library would cost more memory than the handful of series here.
 */
type Labels = Readonly<Record<string, string>>;

function labelText(labels: Labels): string {
  const keys = Object.keys(labels);
  if (keys.length === 0) return '';
  const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
  return `{${keys.map((k) => `${k}="${esc(labels[k] as string)}"`).join(',')}}`;
}

const key = (labels: Labels) => JSON.stringify(Object.entries(labels).sort());

class Series<T> {
  readonly values = new Map<string, { labels: Labels; value: T }>();
  get(labels: Labels, init: () => T): { labels: Labels; value: T } {
    const k = key(labels);
    let s = this.values.get(k);
    if (!s) {
      s = { labels, value: init() };
      this.values.set(k, s);
    }
    return s;
  }
}

/** A metric's name, help and series, and the two lines that head its exposition. */
class Metric<T> {
  protected readonly series = new Series<T>();
  readonly name: string;
  readonly help: string;
  readonly #type: string;
  constructor(name: string, help: string, type: 'counter' | 'gauge' | 'histogram') {
    this.name = name;
    this.help = help;
    this.#type = type;
  }
  protected header(): string[] {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.#type}`];
  }
}

/** One number a series: what counters and gauges share. */
class Scalar extends Metric<number> {
  render(): string[] {
    const out = this.header();
    for (const s of this.series.values.values()) out.push(`${this.name}${labelText(s.labels)} ${s.value}`);
    return out;
  }
}

export class Counter extends Scalar {
  constructor(name: string, help: string) {
    super(name, help, 'counter');
  }
  inc(labels: Labels = {}, by = 1): void {
    this.series.get(labels, () => 0).value += by;
  }
  value(labels: Labels = {}): number {
    return this.series.values.get(key(labels))?.value ?? 0;
  }
}

export class Gauge extends Scalar {
  constructor(name: string, help: string) {
    super(name, help, 'gauge');
  }
  set(value: number, labels: Labels = {}): void {
    this.series.get(labels, () => 0).value = value;
  }
  value(labels: Labels = {}): number | undefined {
    return this.series.values.get(key(labels))?.value;
  }
}

export class Histogram extends Metric<{ counts: number[]; sum: number; count: number }> {
  readonly buckets: readonly number[];
  constructor(name: string, help: string, buckets: readonly number[]) {
    super(name, help, 'histogram');
    this.buckets = buckets;
  }
  observe(value: number, labels: Labels = {}): void {
    const s = this.series.get(labels, () => ({ counts: this.buckets.map(() => 0), sum: 0, count: 0 })).value;
    this.buckets.forEach((b, i) => {
      if (value <= b) s.counts[i] = (s.counts[i] ?? 0) + 1;
    });
    s.sum += value;
    s.count++;
  }
  count(labels: Labels = {}): number {
    return this.series.values.get(key(labels))?.value.count ?? 0;
  }
  render(): string[] {
    const out = this.header();
    for (const { labels, value } of this.series.values.values()) {
      this.buckets.forEach((b, i) => {
        out.push(`${this.name}_bucket${labelText({ ...labels, le: String(b) })} ${value.counts[i]}`);
      });
      out.push(`${this.name}_bucket${labelText({ ...labels, le: '+Inf' })} ${value.count}`);
      out.push(`${this.name}_sum${labelText(labels)} ${value.sum}`);
      out.push(`${this.name}_count${labelText(labels)} ${value.count}`);
    }
    return out;
  }
}

const durationBuckets = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** Every metric the agent exposes on `/metrics`. */
export class AgentMetrics {
  readonly info = new Gauge('flotilla_agent_info', 'Agent version and cluster; always 1.');
  readonly reconciles = new Counter(
    'flotilla_agent_reconciles_total',
    'Reconcile attempts, by trigger (sync, drift, requeue, resync) and result (success, failed, refused).',
  );
  readonly reconcileDuration = new Histogram(
    'flotilla_agent_reconcile_duration_seconds',
    'Duration of whole reconciles: apply, prune, drift detection and one look at readiness.',
    durationBuckets,
  );
  readonly applyDuration = new Histogram(
    'flotilla_agent_apply_duration_seconds',
    'Duration of the apply and prune phase of reconciles: from their start until every object was applied, drift detection and readiness excluded.',
    durationBuckets,
  );
  readonly objects = new Counter(
    'flotilla_agent_objects_total',
    'Objects handled by applies and prunes, by action (created, configured, unchanged, deleted, skipped, failed).',
  );
  readonly driftEvents = new Counter(
    'flotilla_agent_drift_events_total',
    'Bundles found drifted, by bundle and action (corrected, reported).',
  );
  readonly refusals = new Counter(
    'flotilla_agent_refused_desired_states_total',
    'Desired states refused, by reason: verification (a signature or hash did not verify) or replay (a generation older than one already verified).',
  );
  readonly highestGeneration = new Gauge(
    'flotilla_agent_highest_verified_generation',
    'The highest desired-state generation this agent has verified; it refuses any lower one.',
  );
  readonly lastSuccess = new Gauge(
    'flotilla_agent_last_success_timestamp_seconds',
    'When a reconcile last completed with every bundle applied (Unix time).',
  );
  readonly appliedGeneration = new Gauge(
    'flotilla_agent_applied_generation',
    'Generation of the desired state last applied completely.',
  );
  readonly bundles = new Gauge('flotilla_agent_bundles', 'Bundles by state, as of the last reconcile.');
  readonly hubUp = new Gauge(
    'flotilla_agent_hub_reachable',
    'Whether the last request to the hub got an answer.',
  );
  readonly hubErrors = new Counter(
    'flotilla_agent_hub_errors_total',
    'Failed requests to the hub, by operation.',
  );
  readonly statusPending = new Gauge(
    'flotilla_agent_status_reports_pending',
    'Status reports waiting for the hub to be reachable (0 or 1: a newer report replaces an older one).',
  );

  readonly leader = new Gauge(
    'flotilla_agent_leader',
    'With leader election: 1 while this replica holds the Lease and runs the agent loop.',
  );

  render(): string {
    const rss = new Gauge('process_resident_memory_bytes', 'Resident memory size in bytes.');
    rss.set(process.memoryUsage.rss());
    const memory = process.memoryUsage();
    const heap = new Gauge('nodejs_heap_used_bytes', 'V8 heap in use, in bytes.');
    heap.set(memory.heapUsed);
    const heapTotal = new Gauge('nodejs_heap_total_bytes', 'V8 heap committed, in bytes.');
    heapTotal.set(memory.heapTotal);
    const external = new Gauge(
      'nodejs_external_memory_bytes',
      'Memory of objects outside the V8 heap (buffers), in bytes.',
    );
    external.set(memory.external);
    const all = [
      this.info,
      this.reconciles,
      this.reconcileDuration,
      this.applyDuration,
      this.objects,
      this.driftEvents,
      this.refusals,
      this.highestGeneration,
      this.lastSuccess,
      this.appliedGeneration,
      this.bundles,
      this.hubUp,
      this.hubErrors,
      this.statusPending,
      ...(this.leader.value() === undefined ? [] : [this.leader]),
      rss,
      heap,
      heapTotal,
      external,
    ];
    return `${all.flatMap((m) => m.render()).join('\n')}\n`;
  }
}

/** Counts one reconcile's result in the metrics. */
export function recordReconcile(
  m: AgentMetrics,
  trigger: string,
  outcome: {
    readonly bundles: readonly {
      readonly state: string;
      readonly changes: Readonly<Record<string, number>>;
    }[];
    readonly driftEvents: readonly { readonly bundle: string; readonly corrected: boolean }[];
    readonly durationSeconds: number;
    readonly applySeconds: number;
  },
): void {
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
