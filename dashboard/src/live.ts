/**
 * Keeping what a view shows fresh: each view polls the hub for what it shows, every 2 s,
 * with the ETag of the last answer (a 304 costs the page next to nothing), and the fleet's
 * rows are kept a page at a time ({@link PagedRows}): only the pages around the rows in
 * view are read and refreshed, so 10,000 clusters cost what one screenful does. The
 * browser parts (timers, the API) come in as arguments, so this is tested without one.
 */
import { ApiError, type Fresh } from './api.ts';

export const pollIntervalMs = 2000;

export interface Problem {
  readonly kind: 'unauthorized' | 'unreachable' | 'error';
  readonly message: string;
  /** The request field the hub named, when it named one (a selector that does not parse). */
  readonly field?: string;
}

export function problemOf(err: unknown): Problem {
  if (err instanceof ApiError) {
    if (err.unauthorized) return { kind: 'unauthorized', message: err.message };
    if (err.unreachable) return { kind: 'unreachable', message: err.message };
    return { kind: 'error', message: err.message, ...(err.field ? { field: err.field } : {}) };
  }
  return { kind: 'error', message: (err as Error).message ?? String(err) };
}

export interface Clock {
  now: () => number;
  setTimeout: (fn: () => void, ms: number) => unknown;
  clearTimeout: (t: unknown) => void;
}

/** The real clock and timers, as the page uses them. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (t) => clearTimeout(t as ReturnType<typeof setTimeout>),
};

/**
 * Asks `load` now and every {@link pollIntervalMs} after each answer, with the last ETag;
 * tells `onValue` of each changed answer and `onProblem` of each failure (null once it
 * works again). Returns the function that stops it.
 */
export function poll<T>(
  load: (etag: string | null) => Promise<Fresh<T>>,
  on: { value: (value: T) => void; problem: (problem: Problem | null) => void },
  clock: Clock,
  intervalMs = pollIntervalMs,
): () => void {
  let etag: string | null = null;
  let timer: unknown;
  let stopped = false;
  const tick = async () => {
    try {
      const answer = await load(etag);
      if (stopped) return;
      if (answer.changed) {
        etag = answer.etag;
        on.value(answer.value);
      }
      on.problem(null);
    } catch (err) {
      if (stopped) return;
      on.problem(problemOf(err));
    }
    timer = clock.setTimeout(tick, intervalMs);
  };
  void tick();
  return () => {
    stopped = true;
    clock.clearTimeout(timer);
  };
}

/** What every page of a paged listing repeats: counts over all matching rows, and more. */
export interface PageAnswer<Row> {
  readonly total: number;
  readonly clusters: readonly Row[];
}

interface CachedPage<Row> {
  readonly rows: readonly Row[];
  readonly etag: string | null;
  readonly fetchedAt: number;
}

/**
 * The rows of a listing the hub pages (`offset`, `limit`), read a page at a time around
 * the rows in view: {@link want} says which rows are in view, missing pages there are read
 * at once, pages in view are refreshed every interval with their ETag, and pages far from
 * the view are dropped. `total` and the latest page's answer (counts, sync) come with
 * every page.
 */
export class PagedRows<Row, Answer extends PageAnswer<Row>> {
  readonly pageSize: number;
  private readonly pages = new Map<number, CachedPage<Row>>();
  private wanted = { first: 0, last: 0 };
  private timer: unknown;
  private running = false;
  private again = false;
  private stopped = false;
  /** Rows matching the query, from the latest answer; null before the first. */
  total: number | null = null;
  /** The latest page's answer (its rows aside). */
  latest: Answer | null = null;
  problem: Problem | null = null;

  private readonly load: (offset: number, limit: number, etag: string | null) => Promise<Fresh<Answer>>;
  private readonly onChange: () => void;
  private readonly clock: Clock;

  constructor(
    load: (offset: number, limit: number, etag: string | null) => Promise<Fresh<Answer>>,
    onChange: () => void,
    clock: Clock,
    opts: { pageSize?: number; intervalMs?: number; keepPages?: number } = {},
  ) {
    this.load = load;
    this.onChange = onChange;
    this.clock = clock;
    this.pageSize = opts.pageSize ?? 100;
    this.intervalMs = opts.intervalMs ?? pollIntervalMs;
    this.keepPages = opts.keepPages ?? 6;
  }

  private readonly intervalMs: number;
  private readonly keepPages: number;

  /** Starts reading; returns the function that stops it. */
  start(): () => void {
    void this.run();
    return () => {
      this.stopped = true;
      this.clock.clearTimeout(this.timer);
    };
  }

  /** The row at `index`, when its page has been read. */
  row(index: number): Row | undefined {
    const page = this.pages.get(Math.floor(index / this.pageSize));
    return page?.rows[index % this.pageSize];
  }

  /** Says which rows are in view (first and last index, inclusive); reads their pages if missing. */
  want(first: number, last: number): void {
    if (first === this.wanted.first && last === this.wanted.last) return;
    this.wanted = { first: Math.max(0, first), last: Math.max(first, last) };
    if (this.wantedPages().some((p) => !this.pages.has(p))) {
      this.clock.clearTimeout(this.timer);
      void this.run();
    }
  }

  private wantedPages(): number[] {
    const lastRow = this.total === null ? this.wanted.last : Math.min(this.wanted.last, this.total - 1);
    const first = Math.floor(this.wanted.first / this.pageSize);
    const last = Math.max(first, Math.floor(Math.max(0, lastRow) / this.pageSize));
    return Array.from({ length: last - first + 1 }, (_, i) => first + i);
  }

  private async run(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      do {
        this.again = false;
        await this.refresh();
      } while (this.again && !this.stopped);
    } finally {
      this.running = false;
    }
    if (!this.stopped) {
      this.clock.clearTimeout(this.timer);
      this.timer = this.clock.setTimeout(() => void this.run(), this.intervalMs);
    }
  }

  /** Reads the missing pages in view first, then refreshes the others in view that are due. */
  private async refresh(): Promise<void> {
    const now = this.clock.now();
    const wanted = this.wantedPages();
    const missing = wanted.filter((p) => !this.pages.has(p));
    const due = wanted.filter((p) => {
      const page = this.pages.get(p);
      return page !== undefined && now - page.fetchedAt >= this.intervalMs - 50;
    });
    for (const p of [...missing, ...due]) {
      if (this.stopped) return;
      if (this.total !== null && p > 0 && p * this.pageSize >= this.total && !this.pages.has(p)) continue;
      const cached = this.pages.get(p);
      try {
        const answer = await this.load(p * this.pageSize, this.pageSize, cached?.etag ?? null);
        if (this.stopped) return;
        this.problem = null;
        if (answer.changed) {
          this.pages.set(p, { rows: answer.value.clusters, etag: answer.etag, fetchedAt: this.clock.now() });
          this.total = answer.value.total;
          this.latest = answer.value;
        } else if (cached) this.pages.set(p, { ...cached, fetchedAt: this.clock.now() });
      } catch (err) {
        if (this.stopped) return;
        this.problem = problemOf(err);
        this.onChange();
        return;
      }
      this.onChange();
    }
    // Keep the pages in view and a few either side; drop the rest.
    const centre = wanted[0] ?? 0;
    for (const p of this.pages.keys()) if (Math.abs(p - centre) > this.keepPages) this.pages.delete(p);
  }
}
