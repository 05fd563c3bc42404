/**
 * The fleet status a page at a time, filtered on the hub, and the fleet's bundles with their
 * counts per state: what a dashboard of 10,000+ clusters reads instead of one giant answer.
 * Pure: storage comes in through the ports of {@link fleetStatus}.
 */
import { hash } from 'node:crypto';
import { BundleState } from '../protocol/status.ts';
import type { LabelMatcher } from '../selector.ts';
import type { ClusterRecord } from './ports.ts';
import {
  activeRollouts,
  type ClusterStatusView,
  Connection,
  clusterStatusView,
  type FleetStatus,
  type FleetStatusPorts,
  fleetErrorView,
  InvalidRequestError,
  stateSeverity,
} from './status.ts';

/** The most clusters one page holds. */
export const fleetStatusPageMax = 500;
/** The page size when a paged request gives no `limit`. */
export const fleetStatusPageDefault = 100;

/** What `state=` may name: a cluster's worst bundle state, or `Offline` (no heartbeat in time). */
export const StatusFilter = { ...BundleState, Offline: Connection.Offline } as const;
export type StatusFilter = (typeof StatusFilter)[keyof typeof StatusFilter];
const statusFilters: readonly string[] = Object.values(StatusFilter);

/** What narrows the fleet: every part given must hold (they compose with AND; `states` with OR among themselves). */
export interface FleetStatusFilter {
  /** The selector's source text, kept for the cursor; `matcher` is its compiled form. */
  readonly selector?: string;
  readonly matcher?: LabelMatcher;
  readonly states?: readonly StatusFilter[];
  /** A substring of the cluster's name, case-insensitive. */
  readonly search?: string;
}

export interface FleetStatusPageRequest extends FleetStatusFilter {
  readonly offlineAfterSeconds: number;
  /** At most {@link fleetStatusPageMax}; every matching cluster when absent. */
  readonly limit?: number;
  /** The previous page's `nextCursor`. */
  readonly cursor?: string;
}

/** One page of the fleet status, with counts over every matching cluster. */
export interface FleetStatusPage extends Omit<FleetStatus, 'clusters'> {
  /** The page: matching clusters in name order, after the cursor. */
  readonly clusters: readonly ClusterStatusView[];
  /** Give it as `cursor` for the next page; null on the last one. */
  readonly nextCursor: string | null;
  /** How many clusters match the filter (all pages together). */
  readonly total: number;
}

/**
 * Parses `state=Ready,Failed` (repeatable) into filters, naming the field on a wrong value.
 * @throws {InvalidRequestError} on a state that is not one of {@link StatusFilter}.
 */
export function parseStatusFilter(values: readonly string[]): StatusFilter[] {
  const out: StatusFilter[] = [];
  for (const part of values.flatMap((v) => v.split(','))) {
    const name = part.trim();
    if (name === '') continue;
    if (!statusFilters.includes(name)) {
      throw new InvalidRequestError([
        { field: 'state', message: `unknown state "${name}" (one of ${statusFilters.join(', ')})` },
      ]);
    }
    if (!out.includes(name as StatusFilter)) out.push(name as StatusFilter);
  }
  return out;
}

interface CursorBody {
  readonly v: 1;
  /** The last cluster name of the page before. */
  readonly after: string;
  /** Digest of the filter the cursor was made for. */
  readonly q: string;
}

function filterKey(filter: FleetStatusFilter): string {
  const states = [...(filter.states ?? [])].sort().join(',');
  return hash(
    'sha256',
    JSON.stringify([filter.selector ?? '', states, filter.search ?? '']),
    'base64url',
  ).slice(0, 16);
}

/**
 * A cursor is the last name of the page before (keyset paging: names are unique and do
 * not move, so a cluster changing state or a new one registering shifts no other cluster
 * between pages), with a digest of the filter so that it cannot be reused with another.
 * Opaque to clients, not secret.
 */
export function encodeStatusCursor(after: string, filter: FleetStatusFilter): string {
  const body: CursorBody = { v: 1, after, q: filterKey(filter) };
  return Buffer.from(JSON.stringify(body)).toString('base64url');
}

/** @throws {InvalidRequestError} naming `cursor` when it is not one this hub made for this filter. */
export function decodeStatusCursor(cursor: string, filter: FleetStatusFilter): string {
  const bad = (message: string) => new InvalidRequestError([{ field: 'cursor', message }]);
  let body: unknown;
  try {
    if (!/^[A-Za-z0-9_-]{1,2048}$/.test(cursor)) throw new Error('not base64url');
    body = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw bad('not a cursor this hub gave out: pass the previous page\'s "nextCursor" unchanged');
  }
  const b = body as Partial<CursorBody> | null;
  if (
    typeof b !== 'object' ||
    b === null ||
    b.v !== 1 ||
    typeof b.after !== 'string' ||
    b.after === '' ||
    typeof b.q !== 'string'
  ) {
    throw bad('not a cursor this hub gave out: pass the previous page\'s "nextCursor" unchanged');
  }
  if (b.q !== filterKey(filter)) {
    throw bad(
      'made for another selector, state or search: keep the filter while paging, or start again without a cursor',
    );
  }
  return b.after;
}

const listingPage = 1000;
const viewConcurrency = 32;

/** Whether a cluster's record passes the parts of the filter that need no status read. */
function recordMatches(record: ClusterRecord, filter: FleetStatusFilter, needle: string): boolean {
  if (needle !== '' && !record.id.toLowerCase().includes(needle)) return false;
  return filter.matcher ? filter.matcher(record.labels) : true;
}

/** Whether a cluster's view passes the state filter (any of the states given). */
export function viewMatchesStates(
  view: ClusterStatusView,
  states: readonly StatusFilter[] | undefined,
): boolean {
  if (!states || states.length === 0) return true;
  return states.some((s) =>
    s === StatusFilter.Offline ? view.connection === Connection.Offline : view.state === s,
  );
}

/**
 * Visits the view of every cluster whose record passes the filter, with bounded
 * concurrency; views arrive in no set order, each with the cluster's place in name order.
 * Holds only the records and what the visitor keeps.
 */
async function walkFleet(
  ports: FleetStatusPorts,
  filter: FleetStatusFilter,
  offlineAfterSeconds: number,
  now: Date,
  visit: (view: ClusterStatusView, index: number) => void,
): Promise<void> {
  const needle = (filter.search ?? '').toLowerCase();
  const records: ClusterRecord[] = [];
  for await (const page of ports.clusters.pages(listingPage)) {
    for (const r of page) if (recordMatches(r, filter, needle)) records.push(r);
  }
  records.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  let next = 0;
  const worker = async () => {
    while (next < records.length) {
      const i = next++;
      visit(await clusterStatusView(ports, records[i] as ClusterRecord, now, offlineAfterSeconds), i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(viewConcurrency, records.length) }, worker));
}

function zeroStates(): Record<BundleState, number> {
  return Object.fromEntries(stateSeverity.map((s) => [s, 0])) as Record<BundleState, number>;
}

/**
 * One page of the fleet status.
 *
 * 1. List the cluster records (a page of the table at a time) and keep those whose name
 *    and labels match; sort them by name.
 * 2. Read each one's status view with bounded concurrency, count it into the summary when
 *    it passes the state filter, and keep the view only when it can be on this page (after
 *    the cursor, among the first `limit`): memory holds one page of views, not the fleet.
 * 3. Answer the page, the next cursor, the total and the summary over every match.
 *
 * @throws {InvalidRequestError} naming `cursor` when the cursor is not one for this filter.
 */
export async function fleetStatusPage(
  ports: FleetStatusPorts,
  request: FleetStatusPageRequest,
): Promise<FleetStatusPage> {
  const after = request.cursor === undefined ? undefined : decodeStatusCursor(request.cursor, request);
  const limit = Math.min(request.limit ?? Number.POSITIVE_INFINITY, fleetStatusPageMax);
  const unlimited = request.limit === undefined;
  const now = ports.now();
  const clusterStates = zeroStates();
  const bundleStates = zeroStates();
  let total = 0;
  let online = 0;
  let inSync = 0;
  // Views after the cursor that pass the filter, by their place in name order.
  const kept = new Map<number, ClusterStatusView>();
  let keptBound = Number.POSITIVE_INFINITY;
  const syncRead = ports.syncState.get();
  await walkFleet(ports, request, request.offlineAfterSeconds, now, (view, index) => {
    if (!viewMatchesStates(view, request.states)) return;
    total++;
    clusterStates[view.state]++;
    for (const b of view.bundles) bundleStates[b.state]++;
    if (view.connection === Connection.Online) online++;
    if (view.inSync) inSync++;
    if (after !== undefined && view.id <= after) return;
    if (index > keptBound) return;
    kept.set(index, view);
    // One more than a page tells whether there is a next one; beyond that, drop the highest.
    if (!unlimited && kept.size > limit + 1) {
      const highest = Math.max(...kept.keys());
      kept.delete(highest);
      keptBound = Math.max(...kept.keys());
    }
  });
  const ordered = [...kept.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => v);
  const clusters = unlimited ? ordered : ordered.slice(0, limit);
  const last = clusters.at(-1);
  const sync = await syncRead;
  return {
    generatedAt: now.toISOString(),
    offlineAfterSeconds: request.offlineAfterSeconds,
    sync: sync
      ? {
          commit: sync.commit,
          syncedAt: sync.syncedAt,
          clusters: sync.clusters,
          changedClusters: sync.changedClusters,
          errors: sync.errors.map(fleetErrorView),
        }
      : null,
    summary: { clusters: total, online, offline: total - online, inSync, clusterStates, bundleStates },
    total,
    clusters,
    nextCursor: ordered.length > clusters.length && last ? encodeStatusCursor(last.id, request) : null,
    rollouts: await activeRollouts(ports.rollouts),
  };
}

/** One bundle of the fleet: the matrix's column. */
export interface FleetBundleView {
  readonly name: string;
  /** Its definition in the fleet repo. */
  readonly file: string;
  /** How many of the matching clusters get it. */
  readonly clusters: number;
  /** Those clusters by the bundle's effective state on them. */
  readonly states: Readonly<Record<BundleState, number>>;
  /** On how many of them it is paused. */
  readonly paused: number;
}

export interface FleetBundles {
  readonly generatedAt: string;
  /** The commit of the last sync, or null before the first. */
  readonly commit: string | null;
  readonly bundles: readonly FleetBundleView[];
}

/**
 * The bundles the matching clusters' current desired states hold, by name, each with its
 * file and its count per state: the columns of a clusters x bundles matrix. A bundle no
 * cluster gets has no column (a broken one shows among the sync's errors instead).
 */
export async function fleetBundles(
  ports: FleetStatusPorts,
  request: FleetStatusFilter & { readonly offlineAfterSeconds: number },
): Promise<FleetBundles> {
  const now = ports.now();
  const byName = new Map<string, { clusters: number; paused: number; states: Record<BundleState, number> }>();
  const syncRead = ports.syncState.get();
  await walkFleet(ports, request, request.offlineAfterSeconds, now, (view) => {
    if (!viewMatchesStates(view, request.states)) return;
    for (const b of view.bundles) {
      let entry = byName.get(b.name);
      if (!entry) {
        entry = { clusters: 0, paused: 0, states: zeroStates() };
        byName.set(b.name, entry);
      }
      entry.clusters++;
      entry.states[b.state]++;
      if (b.paused) entry.paused++;
    }
  });
  const sync = await syncRead;
  return {
    generatedAt: now.toISOString(),
    commit: sync?.commit ?? null,
    bundles: [...byName.entries()]
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .map(([name, e]) => ({ name, file: `bundles/${name}/bundle.yaml`, ...e })),
  };
}
