/**
 * The dashboard's view logic that needs no DOM: which state a cell shows, which clusters
 * a filter keeps, the clusters x bundles matrix and its counts, and the window of rows a
 * virtualised list renders. Pure, so unit tests cover it without a browser.
 */
import type { BundleStatusView, ClusterStatusView, FleetStatus } from '@flotilla/shared/hub';
import { compileSelector, type LabelMatcher } from '@flotilla/shared/selector';
import { parseLabelSelector } from '@flotilla/shared/selector-string';

/** What a cell or a cluster shows: the bundle states, and Offline and Paused on top of them. */
export const CellState = {
  Ready: 'Ready',
  NotReady: 'NotReady',
  Failed: 'Failed',
  Drifted: 'Drifted',
  Pending: 'Pending',
  Applying: 'Applying',
  Offline: 'Offline',
  Paused: 'Paused',
  Pinned: 'Pinned',
} as const;
export type CellState = (typeof CellState)[keyof typeof CellState];
export const cellStates: readonly CellState[] = Object.values(CellState);

export function isCellState(value: string): value is CellState {
  return (cellStates as readonly string[]).includes(value);
}

/**
 * The state one bundle shows on one cluster: an Offline cluster's bundles read Offline
 * (what they last reported is in the cell's title), a paused bundle Paused, a bundle a
 * rollback pins Pinned, otherwise the hub's effective state.
 */
export function cellState(cluster: ClusterStatusView, bundle: BundleStatusView): CellState {
  if (cluster.connection === 'Offline') return CellState.Offline;
  if (bundle.paused) return CellState.Paused;
  if (bundle.state === 'Ready' && cluster.pins?.some((p) => p.bundle === bundle.name))
    return CellState.Pinned;
  return bundle.state;
}

/** The state a cluster's row shows: Offline, else its worst bundle state. */
export function clusterState(cluster: ClusterStatusView): CellState {
  return cluster.connection === 'Offline' ? CellState.Offline : cluster.state;
}

export interface FleetFilter {
  /** kubectl `-l` syntax; empty for every cluster. */
  readonly selector: string;
  /** Keep clusters with this state, on the cluster or on any of its bundles; empty for all. */
  readonly state: string;
  /** Part of the cluster's name, case-insensitive; empty for all. */
  readonly search: string;
}

export const noFilter: FleetFilter = { selector: '', state: '', search: '' };

export type CompiledFilter =
  | { readonly ok: true; readonly keep: (cluster: ClusterStatusView) => boolean }
  | { readonly ok: false; readonly field: 'selector' | 'state'; readonly message: string };

/** Compiles a filter once, so filtering 10,000 clusters parses the selector once. */
export function compileFilter(filter: FleetFilter): CompiledFilter {
  let matcher: LabelMatcher | undefined;
  if (filter.selector.trim() !== '') {
    try {
      matcher = compileSelector(parseLabelSelector(filter.selector));
    } catch (err) {
      return { ok: false, field: 'selector', message: (err as Error).message };
    }
  }
  const state = filter.state;
  if (state !== '' && !isCellState(state)) {
    return {
      ok: false,
      field: 'state',
      message: `unknown state "${state}" (expected ${cellStates.join(', ')})`,
    };
  }
  const search = filter.search.trim().toLowerCase();
  return {
    ok: true,
    keep: (c) =>
      (search === '' || c.id.toLowerCase().includes(search)) &&
      (matcher === undefined || matcher(c.labels)) &&
      (state === '' || clusterState(c) === state || c.bundles.some((b) => cellState(c, b) === state)),
  };
}

export interface MatrixRow {
  readonly cluster: ClusterStatusView;
  readonly state: CellState;
  /** One entry per matrix column: the bundle, or null when the cluster does not get it. */
  readonly cells: readonly ({ readonly bundle: BundleStatusView; readonly state: CellState } | null)[];
}

export interface Matrix {
  /** Bundle names, sorted: the columns. */
  readonly bundles: readonly string[];
  readonly rows: readonly MatrixRow[];
  /** Clusters by the state their row shows (the rows kept by the filter). */
  readonly clusterCounts: Readonly<Record<CellState, number>>;
  /** Cells by state (the rows kept by the filter). */
  readonly cellCounts: Readonly<Record<CellState, number>>;
  /** Clusters before filtering. */
  readonly total: number;
}

const zeroCounts = (): Record<CellState, number> =>
  Object.fromEntries(cellStates.map((s) => [s, 0])) as Record<CellState, number>;

/**
 * The clusters x bundles matrix of the clusters `keep` accepts, rows sorted by cluster
 * name; the columns are every bundle of the whole fleet, so they do not jump as the
 * filter changes.
 */
export function buildMatrix(status: FleetStatus, keep: (cluster: ClusterStatusView) => boolean): Matrix {
  const names = new Set<string>();
  for (const c of status.clusters) for (const b of c.bundles) names.add(b.name);
  const bundles = [...names].sort();
  const column = new Map(bundles.map((name, i) => [name, i]));
  const clusterCounts = zeroCounts();
  const cellCounts = zeroCounts();
  const rows: MatrixRow[] = [];
  for (const cluster of status.clusters) {
    if (!keep(cluster)) continue;
    const cells: ({ bundle: BundleStatusView; state: CellState } | null)[] = new Array(bundles.length).fill(
      null,
    );
    for (const bundle of cluster.bundles) {
      const state = cellState(cluster, bundle);
      cells[column.get(bundle.name) as number] = { bundle, state };
      cellCounts[state]++;
    }
    const state = clusterState(cluster);
    clusterCounts[state]++;
    rows.push({ cluster, state, cells });
  }
  rows.sort((a, b) => (a.cluster.id < b.cluster.id ? -1 : a.cluster.id > b.cluster.id ? 1 : 0));
  return { bundles, rows, clusterCounts, cellCounts, total: status.clusters.length };
}

/** The clusters that get `bundle`, with their state there, sorted by cluster name. */
export function bundleClusters(
  status: FleetStatus,
  bundle: string,
): { cluster: ClusterStatusView; bundle: BundleStatusView; state: CellState }[] {
  const out: { cluster: ClusterStatusView; bundle: BundleStatusView; state: CellState }[] = [];
  for (const cluster of status.clusters) {
    const b = cluster.bundles.find((x) => x.name === bundle);
    if (b) out.push({ cluster, bundle: b, state: cellState(cluster, b) });
  }
  return out.sort((a, b) => (a.cluster.id < b.cluster.id ? -1 : 1));
}

/**
 * The rows a virtualised list puts in the DOM for a viewport: those visible plus
 * `overscan` on each side, and the space above them that stands in for the rest.
 */
export function visibleWindow(opts: {
  readonly rowCount: number;
  readonly rowHeight: number;
  readonly scrollTop: number;
  readonly viewportHeight: number;
  readonly overscan?: number;
}): {
  readonly start: number;
  readonly end: number;
  readonly offsetTop: number;
  readonly totalHeight: number;
} {
  const overscan = opts.overscan ?? 8;
  const first = Math.floor(Math.max(0, opts.scrollTop) / opts.rowHeight);
  const visible = Math.ceil(Math.max(0, opts.viewportHeight) / opts.rowHeight) + 1;
  const start = Math.max(0, Math.min(opts.rowCount, first - overscan));
  const end = Math.max(start, Math.min(opts.rowCount, first + visible + overscan));
  return { start, end, offsetTop: start * opts.rowHeight, totalHeight: opts.rowCount * opts.rowHeight };
}

/** `12s`, `5m`, `3h`, `2d`: how long ago `then` was. */
export function ago(then: string | number, now: number): string {
  const t = typeof then === 'number' ? then : Date.parse(then);
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}
