/**
 * The dashboard's view logic that needs no DOM: which state a cell shows, the filters
 * (which the hub applies), a matrix row's cells and the counts, and the window of rows a
 * virtualised list renders. Pure, so unit tests cover it without a browser.
 */
import type { BundleCellView, ClusterRowView, FleetStatusPage } from '@flotilla/shared/hub';
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

/** A cluster as the matrix shows it: what decides the state its cells and row show. */
type RowCluster = Pick<ClusterRowView, 'connection' | 'state' | 'pins'>;

/**
 * The state one bundle shows on one cluster: an Offline cluster's bundles read Offline
 * (what they last reported is in the cell's title), a paused bundle Paused, a bundle a
 * rollback pins Pinned, otherwise the hub's effective state.
 */
export function cellState(cluster: RowCluster, bundle: BundleCellView): CellState {
  if (cluster.connection === 'Offline') return CellState.Offline;
  if (bundle.paused) return CellState.Paused;
  if (bundle.state === 'Ready' && cluster.pins?.some((p) => p.bundle === bundle.name))
    return CellState.Pinned;
  return bundle.state;
}

/** The state a cluster's row shows: Offline, else its worst bundle state. */
export function clusterState(cluster: RowCluster): CellState {
  return cluster.connection === 'Offline' ? CellState.Offline : cluster.state;
}

/**
 * The states the hub filters by (`state=`): a cluster's worst bundle state, or Offline.
 * On a bundle's page, the state of that bundle on the cluster.
 */
export const filterStates = [
  'Ready',
  'Pending',
  'Applying',
  'NotReady',
  'Drifted',
  'Failed',
  'Offline',
] as const;

export interface FleetFilter {
  /** kubectl `-l` syntax; empty for every cluster. */
  readonly selector: string;
  /** One of {@link filterStates}; empty for all. */
  readonly state: string;
  /** Part of the cluster's name, case-insensitive; empty for all. */
  readonly search: string;
}

export const noFilter: FleetFilter = { selector: '', state: '', search: '' };

export type FilterCheck =
  | { readonly ok: true }
  | { readonly ok: false; readonly field: 'selector' | 'state'; readonly message: string };

/**
 * Checks a filter in the page before the hub is asked, so a selector being typed shows
 * its error at once (the hub checks it again, with the same parser, and answers 400).
 */
export function checkFilter(filter: FleetFilter): FilterCheck {
  if (filter.selector.trim() !== '') {
    try {
      parseLabelSelector(filter.selector);
    } catch (err) {
      return { ok: false, field: 'selector', message: (err as Error).message };
    }
  }
  if (filter.state !== '' && !(filterStates as readonly string[]).includes(filter.state)) {
    return {
      ok: false,
      field: 'state',
      message: `unknown state "${filter.state}" (expected ${filterStates.join(', ')})`,
    };
  }
  return { ok: true };
}

/** One entry per column: the bundle's cell on this cluster, or null when it does not get it. */
export type MatrixCell = { readonly bundle: BundleCellView; readonly state: CellState } | null;

/** A cluster's row of the matrix, its cells in the order of `columns`. */
export function matrixCells(cluster: ClusterRowView, columns: readonly string[]): MatrixCell[] {
  const byName = new Map(cluster.bundles.map((b) => [b.name, b]));
  return columns.map((name) => {
    const bundle = byName.get(name);
    return bundle ? { bundle, state: cellState(cluster, bundle) } : null;
  });
}

/** The counts above the matrix: clusters by state over every matching cluster (not one page). */
export function stateCounts(summary: FleetStatusPage['summary']): { state: CellState; count: number }[] {
  const out = filterStates
    .filter((s) => s !== 'Offline')
    .map((s) => ({ state: s as CellState, count: summary.clusterStates[s] ?? 0 }));
  out.push({ state: CellState.Offline, count: summary.offline });
  return out.filter((c) => c.count > 0);
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
