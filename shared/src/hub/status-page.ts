/**
 * The fleet status a page at a time, filtered on the hub, and the fleet's bundles with their
 * counts per state: what a dashboard of 10,000+ clusters reads instead of one giant answer.
 * Pure: storage comes in through the ports of {@link fleetStatus}.
 */
import { hash } from 'node:crypto';
import { parseDesiredState } from '../desired-state.ts';
import { BundleState } from '../protocol/status.ts';
import type { LabelMatcher } from '../selector.ts';
import { bundleFileOf } from '../sources/combine.ts';
import { pinView } from './clusters.ts';
import type { ClusterRecord, ClusterStatusDigest } from './ports.ts';
import {
  activeRollouts,
  type BundleStatusView,
  type ClusterStatusView,
  Connection,
  clusterStatusView,
  connectionAt,
  type FleetStatus,
  type FleetStatusPorts,
  InvalidRequestError,
  type StatusScope,
  scopeClusterView,
  stateSeverity,
  statusDigestOf,
  syncView,
  worstState,
} from './status.ts';

/** The most clusters one page holds. */
export const fleetStatusPageMax = 500;
/** The page size when a paged request gives no `limit`. */
export const fleetStatusPageDefault = 100;

/**
 * What `state=` may name: a cluster's worst bundle state (or, with a bundle filter, that
 * bundle's state on the cluster), or `Offline` (no heartbeat in time).
 */
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
  /**
   * Only clusters whose current desired state holds this bundle; `states` then name that
   * bundle's state on each cluster instead of the cluster's worst one ("where web is Failed").
   */
  readonly bundle?: string;
  /**
   * Only the clusters the scope allows, each with only the scope's bundles: its state,
   * counts and whether it is in sync are worked out over those (a tenant's view).
   */
  readonly scope?: StatusScope;
}

/** The longest `bundle=` accepted: a bundle's name is a directory name in the fleet repo. */
export const bundleFilterMaxLength = 253;

export interface FleetStatusPageRequest extends FleetStatusFilter {
  readonly offlineAfterSeconds: number;
  /** At most {@link fleetStatusPageMax}; every matching cluster when absent. */
  readonly limit?: number;
  /**
   * How many matching clusters (in name order) to skip: a virtualised list jumps to row
   * 5,000 without reading the pages before it. Not with `cursor`.
   */
  readonly offset?: number;
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
  /** The bundle filtered on, when the request gave one. */
  readonly bundle?: string;
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
  // The bundle joins the digest only when given, so cursors made without one keep working.
  const parts = [filter.selector ?? '', states, filter.search ?? ''];
  if (filter.bundle !== undefined) parts.push(filter.bundle);
  return hash('sha256', JSON.stringify(parts), 'base64url').slice(0, 16);
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
      'made for another selector, state, search or bundle: keep the filter while paging, or start again without a cursor',
    );
  }
  return b.after;
}

const listingPage = 1000;
/** Parts of the cluster table a status listing reads at once (a parallel scan). */
const listingSegments = 4;
const viewConcurrency = 32;

/** Whether a cluster's record passes the parts of the filter that need no status read. */
function recordMatches(record: ClusterRecord, filter: FleetStatusFilter, needle: string): boolean {
  if (needle !== '' && !record.id.toLowerCase().includes(needle)) return false;
  if (filter.scope && !filter.scope.allowsCluster(record.labels)) return false;
  return filter.matcher ? filter.matcher(record.labels) : true;
}

/** What the fleet-wide parts of an answer (filter, total, summary, bundles) need of one cluster. */
interface ClusterBrief {
  readonly record: ClusterRecord;
  readonly state: BundleState;
  readonly connection: Connection;
  readonly inSync: boolean;
  /** Whether its agent applied the desired generation. */
  readonly applied: boolean;
  /** Bundles by effective state. */
  readonly counts: Readonly<Record<string, number>>;
  /** Bundles not Ready, with their effective state. */
  readonly issues: Readonly<Record<string, string>>;
  /** Its bundles, when the full status was read (a stale digest) or {@link withBundles} filled them in. */
  readonly bundles?: readonly BriefBundle[];
  /** The digest, when it is fresh and says every bundle is up to date and Ready: a matrix row needs no read then. */
  readonly allReady?: ClusterStatusDigest;
}

/** One bundle of a cluster in brief: its name, effective state and whether it is paused. */
interface BriefBundle {
  readonly name: string;
  readonly state: BundleState;
  readonly paused: boolean;
}

type BundledBrief = ClusterBrief & { readonly bundles: readonly BriefBundle[] };

/** Whether a cluster passes the state filter (any of the states given), `state` being the one filtered on. */
function matchesStates(
  brief: Pick<ClusterBrief, 'state' | 'connection'>,
  states?: readonly StatusFilter[],
): boolean {
  if (!states || states.length === 0) return true;
  return states.some((s) =>
    s === StatusFilter.Offline ? brief.connection === Connection.Offline : brief.state === s,
  );
}

/**
 * The briefs with each cluster's bundles filled in. Which bundles a cluster gets comes from
 * one manifest per distinct list of references (`head.refsHash`: clusters given the same
 * bundles share it), and each bundle's state from the cluster's digest (Ready unless listed
 * among its issues). A brief read in full (a stale digest) keeps the bundles it has.
 */
async function withBundles(
  ports: Pick<FleetStatusPorts, 'desiredStates'>,
  briefs: readonly ClusterBrief[],
): Promise<BundledBrief[]> {
  const refsOf = new Map<string, readonly { readonly name: string; readonly paused: boolean }[]>();
  const representatives = new Map<string, string>();
  for (const b of briefs)
    if (!b.bundles && b.record.head && !representatives.has(b.record.head.refsHash))
      representatives.set(b.record.head.refsHash, b.record.id);
  await inParallel([...representatives], async ([refsHash, clusterId]) => {
    const stored = await ports.desiredStates.current(clusterId);
    const manifest = stored ? parseDesiredState(JSON.parse(stored.manifest)) : undefined;
    refsOf.set(
      refsHash,
      (manifest?.bundles ?? []).map((r) => ({ name: r.name, paused: r.paused })),
    );
  });
  return briefs.map((b) => {
    if (b.bundles) return b as BundledBrief;
    const refs = b.record.head ? (refsOf.get(b.record.head.refsHash) ?? []) : [];
    return {
      ...b,
      bundles: refs.map((r) => ({
        name: r.name,
        state: (b.issues[r.name] as BundleState | undefined) ?? BundleState.Ready,
        paused: r.paused,
      })),
    };
  });
}

async function inParallel<T>(items: readonly T[], work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(viewConcurrency, items.length) }, worker));
}

/**
 * Every cluster whose name, labels and state pass the filter, in name order, in brief.
 *
 * 1. List the cluster records, a page of the table at a time (one scan for the fleet),
 *    keeping those whose name and labels match.
 * 2. Take each one's state from the status digest kept on its record. A digest worked out
 *    against an earlier desired state (a sync moved the head, and the agent has not
 *    reported since), or none at all, is stale: that cluster's full status is read, and
 *    its digest kept for the next listing.
 * 3. With a bundle filter, keep the clusters that get the bundle ({@link withBundles}: one
 *    manifest read per distinct list of references), and filter on its state there.
 *
 * Reading every cluster's full status costs two requests per cluster (about 20 s for
 * 10,000 clusters on DynamoDB Local); the digests make it one scan (bench:status).
 */
async function fleetBriefs(
  ports: FleetStatusPorts,
  filter: FleetStatusFilter,
  offlineAfterSeconds: number,
  now: Date,
): Promise<ClusterBrief[]> {
  const needle = (filter.search ?? '').toLowerCase();
  const records: ClusterRecord[] = [];
  for await (const page of ports.clusters.pages(listingPage, {
    statusDigest: true,
    segments: listingSegments,
  })) {
    for (const r of page) if (recordMatches(r, filter, needle)) records.push(r);
  }
  records.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const briefs: ClusterBrief[] = new Array(records.length);
  const stale: number[] = [];
  records.forEach((record, i) => {
    const connection = connectionAt(record.lastHeartbeatAt, now, offlineAfterSeconds);
    const digest = record.statusDigest;
    if (!record.head) {
      briefs[i] = {
        record,
        state: BundleState.Ready,
        connection,
        inSync: false,
        applied: false,
        counts: {},
        issues: {},
      };
    } else if (digest && digest.etag === record.head.etag) {
      briefs[i] = {
        record,
        state: digest.state as BundleState,
        connection,
        inSync:
          connection === Connection.Online &&
          digest.appliedGeneration === record.head.generation &&
          digest.allReady,
        applied: digest.appliedGeneration === record.head.generation,
        counts: digest.counts,
        issues: digest.issues,
        ...(digest.allReady ? { allReady: digest } : {}),
      };
    } else stale.push(i);
  });
  await inParallel(stale, async (i) => {
    const record = records[i] as ClusterRecord;
    const view = await clusterStatusView(ports, record, now, offlineAfterSeconds);
    const digest = statusDigestOf(view);
    // Filled in for the next listing: a cluster whose agent does not report (offline) would
    // otherwise be read in full on every listing after each sync. Only a stale digest is
    // replaced, so a report's fresh one written meanwhile wins. A failed write costs the
    // next listing a read, not this answer.
    await ports.clusters.recordStatusDigest?.(record.id, digest, true).catch(() => undefined);
    briefs[i] = {
      record,
      state: view.state,
      connection: view.connection,
      inSync: view.inSync,
      applied: view.desired !== null && view.appliedGeneration === view.desired.generation,
      counts: digest.counts,
      issues: digest.issues,
      bundles: view.bundles.map((b) => ({ name: b.name, state: b.state, paused: b.paused })),
    };
  });
  const { bundle, scope } = filter;
  const scoped = scope ? (await withBundles(ports, briefs)).map((b) => scopeBrief(b, scope)) : briefs;
  if (bundle === undefined) return scoped.filter((b) => matchesStates(b, filter.states));
  return (await withBundles(ports, scoped)).filter((b) => {
    const cell = b.bundles.find((x) => x.name === bundle);
    return (
      cell !== undefined && matchesStates({ state: cell.state, connection: b.connection }, filter.states)
    );
  });
}

/** A brief cut to the scope's bundles, as {@link scopeClusterView} cuts a view. */
function scopeBrief(brief: BundledBrief, scope: StatusScope): BundledBrief {
  const bundles = brief.bundles.filter((b) => scope.ownsBundle(b.name));
  const counts: Record<string, number> = {};
  const issues: Record<string, string> = {};
  for (const b of bundles) {
    counts[b.state] = (counts[b.state] ?? 0) + 1;
    if (b.state !== BundleState.Ready) issues[b.name] = b.state;
  }
  return {
    ...brief,
    bundles,
    counts,
    issues,
    state: worstState(bundles.map((b) => b.state)),
    inSync:
      brief.connection === Connection.Online &&
      brief.applied &&
      bundles.every((b) => b.state === BundleState.Ready),
  };
}

function zeroStates(): Record<BundleState, number> {
  return Object.fromEntries(stateSeverity.map((s) => [s, 0])) as Record<BundleState, number>;
}

/**
 * One page of the fleet status ({@link pageOf}): each cluster on the page read in full.
 *
 * @throws {InvalidRequestError} naming `cursor` when the cursor is not one for this filter.
 */
export async function fleetStatusPage(
  ports: FleetStatusPorts,
  request: FleetStatusPageRequest,
): Promise<FleetStatusPage> {
  return pageOf(ports, request, (onPage, now) =>
    readAll(onPage, async (b) => {
      const view = await clusterStatusView(ports, b.record, now, request.offlineAfterSeconds);
      return request.scope ? scopeClusterView(view, request.scope) : view;
    }),
  );
}

/**
 * One page of the fleet as matrix rows (`view=matrix`, {@link clusterRowView}). A cluster
 * whose fresh digest says every bundle is up to date and Ready needs no read of its own:
 * its row is its record, its digest and its list of references (one manifest per distinct
 * list on the page). Only the others (a bundle not Ready, a stale digest) are read in full,
 * so a page of a healthy fleet costs one or two reads instead of two per cluster.
 */
export async function fleetMatrixPage(
  ports: FleetStatusPorts,
  request: FleetStatusPageRequest,
): Promise<Omit<FleetStatusPage, 'clusters'> & { readonly clusters: readonly ClusterRowView[] }> {
  return pageOf(ports, request, async (onPage, now) => {
    const ready = await withBundles(
      ports,
      onPage.filter((b) => b.allReady),
    );
    const readyRows = new Map(ready.map((b) => [b.record.id, b]));
    return readAll(onPage, async (b) => {
      const brief = readyRows.get(b.record.id);
      const digest = brief?.allReady;
      const head = b.record.head;
      const scope = request.scope;
      if (!brief || !digest || !head) {
        const view = await clusterStatusView(ports, b.record, now, request.offlineAfterSeconds);
        return clusterRowView(scope ? scopeClusterView(view, scope) : view);
      }
      const owned = (name: string) => !scope || scope.ownsBundle(name);
      return {
        id: b.record.id,
        labels: b.record.labels,
        connection: b.connection,
        lastHeartbeatAt: b.record.lastHeartbeatAt ?? null,
        agentVersion: b.record.agentVersion ?? null,
        kubeVersion: b.record.kubeVersion ?? null,
        state: BundleState.Ready,
        desired: { generation: head.generation, commit: head.commit, etag: head.etag },
        appliedGeneration: digest.appliedGeneration,
        inSync: b.inSync,
        bundles: brief.bundles
          .filter((x) => owned(x.name))
          .map((x) =>
            x.paused
              ? { name: x.name, state: BundleState.Ready, upToDate: true, paused: true }
              : { name: x.name, state: BundleState.Ready },
          ),
        pins: (b.record.pins ?? []).filter((p) => owned(p.bundle)).map(pinView),
      };
    });
  });
}

async function readAll<T>(
  briefs: readonly ClusterBrief[],
  read: (brief: ClusterBrief) => Promise<T>,
): Promise<T[]> {
  const out: T[] = new Array(briefs.length);
  await inParallel(
    briefs.map((b, i) => ({ b, i })),
    async ({ b, i }) => {
      out[i] = await read(b);
    },
  );
  return out;
}

/**
 * One page of the fleet: every matching cluster in brief ({@link fleetBriefs}), counted
 * into the summary and the total; then the page's rows (after the cursor or offset, the
 * first `limit`) read by `rows`. The rows are read after the briefs, so a cluster whose
 * state changed in between shows its newer state (it was filtered by the one before).
 *
 * @throws {InvalidRequestError} naming `cursor` when the cursor is not one for this filter.
 */
async function pageOf<Row>(
  ports: FleetStatusPorts,
  request: FleetStatusPageRequest,
  rows: (onPage: readonly ClusterBrief[], now: Date) => Promise<readonly Row[]>,
): Promise<Omit<FleetStatusPage, 'clusters'> & { readonly clusters: readonly Row[] }> {
  const after = request.cursor === undefined ? undefined : decodeStatusCursor(request.cursor, request);
  const limit = Math.min(request.limit ?? Number.POSITIVE_INFINITY, fleetStatusPageMax);
  const now = ports.now();
  const syncRead = ports.syncState.get();
  const briefs = await fleetBriefs(ports, request, request.offlineAfterSeconds, now);
  const clusterStates = zeroStates();
  const bundleStates = zeroStates();
  let online = 0;
  let inSync = 0;
  for (const b of briefs) {
    clusterStates[b.state]++;
    for (const [state, n] of Object.entries(b.counts)) bundleStates[state as BundleState] += n;
    if (b.connection === Connection.Online) online++;
    if (b.inSync) inSync++;
  }
  const rest =
    after !== undefined
      ? briefs.filter((b) => b.record.id > after)
      : request.offset
        ? briefs.slice(request.offset)
        : briefs;
  const onPage = request.limit === undefined ? rest : rest.slice(0, limit);
  const clusters = await rows(onPage, now);
  const last = onPage.at(-1);
  const sync = await syncRead;
  return {
    generatedAt: now.toISOString(),
    offlineAfterSeconds: request.offlineAfterSeconds,
    sync: syncView(sync, request.scope),
    summary: {
      clusters: briefs.length,
      online,
      offline: briefs.length - online,
      inSync,
      clusterStates,
      bundleStates,
    },
    total: briefs.length,
    clusters,
    nextCursor: rest.length > onPage.length && last ? encodeStatusCursor(last.record.id, request) : null,
    rollouts: await activeRollouts(ports.rollouts, request.scope),
    ...(request.bundle !== undefined ? { bundle: request.bundle } : {}),
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
 *
 * Which bundles a cluster gets, and in which state, comes from {@link withBundles}.
 */
export async function fleetBundles(
  ports: FleetStatusPorts,
  request: FleetStatusFilter & { readonly offlineAfterSeconds: number },
): Promise<FleetBundles> {
  const now = ports.now();
  const syncRead = ports.syncState.get();
  const briefs = await withBundles(
    ports,
    await fleetBriefs(ports, request, request.offlineAfterSeconds, now),
  );
  const byName = new Map<string, { clusters: number; paused: number; states: Record<BundleState, number> }>();
  const count = (name: string, state: BundleState, paused: boolean) => {
    let entry = byName.get(name);
    if (!entry) {
      entry = { clusters: 0, paused: 0, states: zeroStates() };
      byName.set(name, entry);
    }
    entry.clusters++;
    entry.states[state]++;
    if (paused) entry.paused++;
  };
  for (const b of briefs) for (const x of b.bundles) count(x.name, x.state, x.paused);
  const sync = await syncRead;
  return {
    generatedAt: now.toISOString(),
    commit: sync?.commit ?? null,
    bundles: [...byName.entries()]
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .map(([name, e]) => ({ name, file: bundleFileOf(name), ...e })),
  };
}

/** One cell of the clusters x bundles matrix: the state, and why when it is not Ready. */
export type BundleCellView = Pick<BundleStatusView, 'name' | 'state'> &
  Partial<Pick<BundleStatusView, 'upToDate' | 'paused' | 'message' | 'failedObject' | 'drift' | 'since'>>;

/** A cluster as a row of the matrix: the full view without hashes and generations per bundle. */
export type ClusterRowView = Omit<ClusterStatusView, 'bundles'> & {
  readonly bundles: readonly BundleCellView[];
};

/**
 * A cluster's view cut to what a matrix row shows (`view=matrix`): a Ready bundle is its
 * name and state; any other keeps why (message, failed object, drift, since when, whether
 * the report is about the wanted content, paused). A page of 100 clusters x 50 bundles
 * shrinks about tenfold (bench:status).
 */
export function clusterRowView(view: ClusterStatusView): ClusterRowView {
  return {
    ...view,
    bundles: view.bundles.map((b) =>
      b.state === BundleState.Ready && b.upToDate && !b.paused
        ? { name: b.name, state: b.state }
        : {
            name: b.name,
            state: b.state,
            upToDate: b.upToDate,
            paused: b.paused,
            ...(b.message !== undefined ? { message: b.message } : {}),
            ...(b.failedObject !== undefined ? { failedObject: b.failedObject } : {}),
            ...(b.drift !== undefined ? { drift: b.drift } : {}),
            ...(b.since !== undefined ? { since: b.since } : {}),
          },
    ),
  };
}
