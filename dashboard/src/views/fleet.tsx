import type { ClusterRowView, FleetBundles } from '@flotilla/shared/hub';
import { useEffect, useState } from 'preact/hooks';
import type { DashboardApi, FleetMatrixPage } from '../api.ts';
import { StateBadge } from '../components.tsx';
import { poll, systemClock } from '../live.ts';
import {
  type CellState,
  checkFilter,
  clusterState,
  type FleetFilter,
  filterStates,
  matrixCells,
  noFilter,
  stateCounts,
} from '../model.ts';
import { rowHeight, usePagedRows, useSettled, VirtualTable } from '../paged-table.tsx';
import { formatRoute } from '../route.ts';

/**
 * The matrix's columns, every bundle of the fleet (they do not jump as the filter changes),
 * asked for once the first rows are in: both are a scan of the fleet on the hub, and the
 * rows come first.
 */
function useColumns(api: DashboardApi, ready: boolean): FleetBundles | null {
  const [bundles, setBundles] = useState<FleetBundles | null>(null);
  useEffect(
    () =>
      ready
        ? poll((etag) => api.fleetBundles(etag), { value: setBundles, problem: () => undefined }, systemClock)
        : undefined,
    [api, ready],
  );
  return bundles;
}

/**
 * The clusters x bundles matrix with counts, filters and the fleet repo's errors on top.
 * The hub filters and pages the rows; the filter in the page is the one in the address,
 * and the hub is asked once typing stops for a moment.
 */
export function FleetView(props: {
  api: DashboardApi;
  filter: FleetFilter;
  onFilter: (f: FleetFilter) => void;
}) {
  const { api, filter } = props;
  const check = checkFilter(filter);
  // The last filter that checked out and stopped changing: what the hub is asked.
  const [asked, setAsked] = useState<FleetFilter>(check.ok ? filter : noFilter);
  const settledKey = useSettled(JSON.stringify(filter), 250);
  useEffect(() => {
    const settled = JSON.parse(settledKey) as FleetFilter;
    if (checkFilter(settled).ok) setAsked(settled);
  }, [settledKey]);
  const paged = usePagedRows<ClusterRowView, FleetMatrixPage>(JSON.stringify(asked), (offset, limit, etag) =>
    api.fleetPage({ ...asked, offset, limit }, etag),
  );
  const columns = useColumns(api, paged.total !== null);
  // Until the columns arrive (a second scan on the hub), the bundles of the rows read so far.
  const names = columns?.bundles.map((b) => b.name) ?? columnsOfRows(paged);
  const latest = paged.latest;
  const errors = latest?.sync?.errors ?? [];
  // A bundle with errors at the synced commit is held: its cells show the last good revision.
  const heldBundles = new Map<string, string>();
  for (const e of errors)
    if (e.bundle)
      heldBundles.set(
        e.bundle,
        `${heldBundles.get(e.bundle) ?? 'held at its last good revision:'}\n${e.text}`,
      );
  const set = (patch: Partial<FleetFilter>) => props.onFilter({ ...filter, ...patch });
  const problem = paged.problem;
  const filterError = !check.ok
    ? check.message
    : problem?.field === 'selector' || problem?.field === 'state' || problem?.field === 'search'
      ? problem.message
      : null;
  return (
    <>
      {errors.length > 0 && (
        <section class="fleet-errors" aria-label="fleet repo errors">
          <h2>Fleet repo errors ({errors.length})</h2>
          <ul>
            {errors.map((e) => (
              <li key={e.text}>
                <code>{e.text}</code>
              </li>
            ))}
          </ul>
        </section>
      )}
      {latest && (
        <p class="sync">
          {latest.sync
            ? `Fleet repo at ${latest.sync.commit.slice(0, 12)}, synced ${new Date(latest.sync.syncedAt).toLocaleString()}`
            : 'The hub has not synced the fleet repo yet'}
          . {latest.summary.clusters} clusters
          {asked.selector || asked.state || asked.search ? ' match' : ''}: {latest.summary.online} online,{' '}
          {latest.summary.offline} offline, {latest.summary.inSync} in sync.
        </p>
      )}
      <form class="filters" aria-label="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Selector
          <input
            type="text"
            name="selector"
            placeholder="env=prod,region in (eu)"
            value={filter.selector}
            aria-invalid={filterError !== null && (!check.ok ? check.field === 'selector' : true)}
            onInput={(e) => set({ selector: e.currentTarget.value })}
          />
        </label>
        <label>
          State
          <select name="state" value={filter.state} onChange={(e) => set({ state: e.currentTarget.value })}>
            <option value="">any</option>
            {filterStates.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          Search
          <input
            type="search"
            name="search"
            placeholder="cluster name"
            value={filter.search}
            onInput={(e) => set({ search: e.currentTarget.value })}
          />
        </label>
      </form>
      {filterError !== null && (
        <p class="field-error" role="alert">
          {filterError}
        </p>
      )}
      {latest && (
        <p class="counts">
          {paged.total ?? 0} clusters
          {latest &&
            stateCounts(latest.summary).map(({ state, count }) => (
              <button
                type="button"
                key={state}
                class="count"
                aria-pressed={filter.state === state}
                onClick={() => set({ state: filter.state === state ? '' : state })}
              >
                <StateBadge state={state} /> {count}
              </button>
            ))}
        </p>
      )}
      {problem && !filterError && paged.total === null ? (
        <p class="empty">The fleet status could not be read: {problem.message}</p>
      ) : paged.total === 0 ? (
        <p class="empty">No clusters match.</p>
      ) : paged.total === null ? (
        <p class="empty">Loading the fleet status…</p>
      ) : (
        <VirtualTable
          paged={paged}
          width={names.length + 2}
          label="clusters by bundles"
          head={
            <tr aria-rowindex={1}>
              <th scope="col">cluster</th>
              <th scope="col">state</th>
              {names.map((b) => (
                <th scope="col" key={b}>
                  <a href={formatRoute({ view: 'bundle', name: b })}>{b}</a>
                  {heldBundles.has(b) && (
                    <>
                      {' '}
                      <StateBadge state="Held" title={heldBundles.get(b)} />
                    </>
                  )}
                </th>
              ))}
            </tr>
          }
          row={(cluster, i) => (
            <tr key={cluster.id} aria-rowindex={i + 2} style={{ height: `${rowHeight}px` }}>
              <th scope="row">
                <a href={formatRoute({ view: 'cluster', id: cluster.id })}>{cluster.id}</a>
              </th>
              <td>
                <StateBadge state={clusterState(cluster)} />
              </td>
              {matrixCells(cluster, names).map((cell, c) => (
                <td key={names[c]}>
                  {cell ? (
                    <StateBadge state={cell.state} title={cellTitle(cell.state, cell.bundle)} />
                  ) : (
                    <span class="absent" title="not targeted">
                      –
                    </span>
                  )}
                </td>
              ))}
            </tr>
          )}
        />
      )}
    </>
  );
}

function columnsOfRows(paged: {
  total: number | null;
  row: (i: number) => ClusterRowView | undefined;
}): string[] {
  const names = new Set<string>();
  for (let i = 0; i < Math.min(paged.total ?? 0, 100); i++)
    for (const b of paged.row(i)?.bundles ?? []) names.add(b.name);
  return [...names].sort();
}

export function cellTitle(
  state: CellState,
  bundle: {
    name: string;
    state: string;
    message?: string;
    drift?: readonly { object: string; fields: readonly string[] }[];
  },
): string {
  const parts = [`${bundle.name}: ${state}`];
  if (state !== bundle.state) parts.push(`(reported ${bundle.state})`);
  if (bundle.message) parts.push(`: ${bundle.message}`);
  if (bundle.drift?.length)
    parts.push(`: drifted ${bundle.drift.map((d) => `${d.object} (${d.fields.join(', ')})`).join('; ')}`);
  return parts.join(' ');
}
