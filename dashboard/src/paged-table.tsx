/**
 * A table over a paged listing, virtualised: only the rows in view (and a few either side)
 * are in the DOM, and only their pages are read from the hub ({@link PagedRows}), so
 * 10,000 clusters scroll and filter as fast as 10. Rows are a fixed height for that.
 */
import type { ComponentChildren, VNode } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { Fresh } from './api.ts';
import { type PageAnswer, PagedRows, systemClock } from './live.ts';
import { visibleWindow } from './model.ts';

/**
 * The paged rows of one query: a new `key` (another filter) starts a new listing. The
 * component re-renders whenever a page arrives.
 */
export function usePagedRows<Row, Answer extends PageAnswer<Row>>(
  key: string,
  load: (offset: number, limit: number, etag: string | null) => Promise<Fresh<Answer>>,
): PagedRows<Row, Answer> {
  const [, setVersion] = useState(0);
  const paged = useMemo(
    () => new PagedRows<Row, Answer>(load, () => setVersion((v) => v + 1), systemClock),
    [key],
  );
  useEffect(() => paged.start(), [paged]);
  return paged;
}

export const rowHeight = 30;

export function VirtualTable<Row, Answer extends PageAnswer<Row>>(props: {
  paged: PagedRows<Row, Answer>;
  /** Columns, for the spacer and loading rows. */
  width: number;
  head: ComponentChildren;
  row: (row: Row, index: number) => VNode;
  label: string;
}) {
  const { paged } = props;
  const scroller = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [viewport, setViewport] = useState(600);
  useEffect(() => {
    const el = scroller.current;
    if (!el) return;
    // The box grows with its rows up to its max-height: size the window by what it may grow to.
    const measure = () => setViewport(Math.max(el.clientHeight, window.innerHeight));
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(el);
    return () => observer.disconnect();
  }, []);
  const total = paged.total ?? 0;
  const win = visibleWindow({ rowCount: total, rowHeight, scrollTop, viewportHeight: viewport });
  // Before the first answer the total is unknown: ask for the first screenful.
  useEffect(() => {
    paged.want(win.start, paged.total === null ? 40 : Math.max(win.start, win.end - 1));
  }, [paged, win.start, win.end, paged.total]);
  const bottom = win.totalHeight - win.offsetTop - (win.end - win.start) * rowHeight;
  const rows: VNode[] = [];
  for (let i = win.start; i < win.end; i++) {
    const row = paged.row(i);
    rows.push(
      row === undefined ? (
        <tr key={`loading-${i}`} aria-rowindex={i + 2} class="loading" style={{ height: `${rowHeight}px` }}>
          <td colSpan={props.width}>loading…</td>
        </tr>
      ) : (
        props.row(row, i)
      ),
    );
  }
  return (
    <div class="matrix" ref={scroller} onScroll={(e) => setScrollTop(e.currentTarget.scrollTop)}>
      <table aria-rowcount={total + 1} aria-label={props.label}>
        <thead>{props.head}</thead>
        <tbody>
          {win.offsetTop > 0 && (
            <tr class="spacer" style={{ height: `${win.offsetTop}px` }}>
              <td colSpan={props.width} />
            </tr>
          )}
          {rows}
          {bottom > 0 && (
            <tr class="spacer" style={{ height: `${bottom}px` }}>
              <td colSpan={props.width} />
            </tr>
          )}
        </tbody>
      </table>
    </div>
  );
}

/** A value that follows `value` once it has stopped changing for `ms` (typing in a filter). */
export function useSettled<T>(value: T, ms: number): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return settled;
}
