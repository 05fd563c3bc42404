import type { FleetStatus } from '@flotilla/shared/hub';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { StateBadge } from '../components.tsx';
import {
  buildMatrix,
  type CellState,
  cellStates,
  compileFilter,
  type FleetFilter,
  visibleWindow,
} from '../model.ts';
import { formatRoute } from '../route.ts';

const rowHeight = 30;

/** The clusters x bundles matrix with counts, filters and the fleet repo's errors on top. */
export function FleetView(props: {
  status: FleetStatus;
  filter: FleetFilter;
  onFilter: (f: FleetFilter) => void;
}) {
  const { status, filter } = props;
  const compiled = useMemo(() => compileFilter(filter), [filter]);
  const matrix = useMemo(
    () => buildMatrix(status, compiled.ok ? compiled.keep : () => true),
    [status, compiled],
  );
  const errors = status.sync?.errors ?? [];
  const set = (patch: Partial<FleetFilter>) => props.onFilter({ ...filter, ...patch });
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
      <p class="sync">
        {status.sync
          ? `Fleet repo at ${status.sync.commit.slice(0, 12)}, synced ${new Date(status.sync.syncedAt).toLocaleString()}`
          : 'The hub has not synced the fleet repo yet'}
        . {status.summary.clusters} clusters: {status.summary.online} online, {status.summary.offline}{' '}
        offline, {status.summary.inSync} in sync.
      </p>
      <form class="filters" aria-label="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Selector
          <input
            type="text"
            placeholder="env=prod,region in (eu)"
            value={filter.selector}
            aria-invalid={!compiled.ok && compiled.field === 'selector'}
            onInput={(e) => set({ selector: e.currentTarget.value })}
          />
        </label>
        <label>
          State
          <select value={filter.state} onChange={(e) => set({ state: e.currentTarget.value })}>
            <option value="">any</option>
            {cellStates.map((s) => (
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
            placeholder="cluster name"
            value={filter.search}
            onInput={(e) => set({ search: e.currentTarget.value })}
          />
        </label>
      </form>
      {!compiled.ok && (
        <p class="field-error" role="alert">
          {compiled.message}
        </p>
      )}
      <p class="counts">
        {matrix.rows.length} of {matrix.total} clusters
        {cellStates
          .filter((s) => matrix.clusterCounts[s] > 0)
          .map((s) => (
            <button
              type="button"
              key={s}
              class="count"
              aria-pressed={filter.state === s}
              onClick={() => set({ state: filter.state === s ? '' : s })}
            >
              <StateBadge state={s} /> {matrix.clusterCounts[s]}
            </button>
          ))}
      </p>
      <MatrixTable matrix={matrix} />
    </>
  );
}

/**
 * The matrix, virtualised: only the rows in view (and a few either side) are in the DOM,
 * so 10,000 clusters scroll and filter as fast as 10. Rows are a fixed height for that.
 */
function MatrixTable(props: { matrix: ReturnType<typeof buildMatrix> }) {
  const { matrix } = props;
  const scroller = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [viewport, setViewport] = useState(600);
  useEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const observer = new ResizeObserver(() => setViewport(el.clientHeight));
    observer.observe(el);
    return () => observer.disconnect();
  }, []);
  if (matrix.rows.length === 0) return <p class="empty">No clusters match.</p>;
  const win = visibleWindow({
    rowCount: matrix.rows.length,
    rowHeight,
    scrollTop,
    viewportHeight: viewport,
  });
  const bottom = win.totalHeight - win.offsetTop - (win.end - win.start) * rowHeight;
  const width = matrix.bundles.length + 2;
  return (
    <div class="matrix" ref={scroller} onScroll={(e) => setScrollTop(e.currentTarget.scrollTop)}>
      <table aria-rowcount={matrix.rows.length + 1}>
        <thead>
          <tr aria-rowindex={1}>
            <th scope="col">cluster</th>
            <th scope="col">state</th>
            {matrix.bundles.map((b) => (
              <th scope="col" key={b}>
                <a href={formatRoute({ view: 'bundle', name: b })}>{b}</a>
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {win.offsetTop > 0 && (
            <tr class="spacer" style={{ height: `${win.offsetTop}px` }}>
              <td colSpan={width} />
            </tr>
          )}
          {matrix.rows.slice(win.start, win.end).map((row, i) => (
            <tr key={row.cluster.id} aria-rowindex={win.start + i + 2} style={{ height: `${rowHeight}px` }}>
              <th scope="row">
                <a href={formatRoute({ view: 'cluster', id: row.cluster.id })}>{row.cluster.id}</a>
              </th>
              <td>
                <StateBadge state={row.state} />
              </td>
              {row.cells.map((cell, c) => (
                <td key={matrix.bundles[c]}>
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
          ))}
          {bottom > 0 && (
            <tr class="spacer" style={{ height: `${bottom}px` }}>
              <td colSpan={width} />
            </tr>
          )}
        </tbody>
      </table>
    </div>
  );
}

function cellTitle(
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
