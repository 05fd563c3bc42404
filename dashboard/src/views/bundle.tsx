import type { ClusterRowView, FleetPreview } from '@flotilla/shared/hub';
import { useState } from 'preact/hooks';
import type { DashboardApi, FleetMatrixPage } from '../api.ts';
import { Empty, Section, StateBadge } from '../components.tsx';
import { problemOf } from '../live.ts';
import { cellState, clusterState, filterStates } from '../model.ts';
import { rowHeight, usePagedRows, VirtualTable } from '../paged-table.tsx';
import { formatRoute } from '../route.ts';
import { cellTitle } from './fleet.tsx';
import { RenderedObjects } from './rendered.tsx';

const entry = (e: { index: number; name?: string; kind: string } | null) =>
  e === null ? 'defaults' : `${e.name ?? `#${e.index + 1}`} (${e.kind})`;

/**
 * One bundle: the clusters it is on and its state there (paged and filtered by the hub,
 * like the matrix), the objects rendered for a chosen cluster and how they differ from
 * another cluster's or generation's, and on request the hub's preview of the repo tip:
 * through which target and customization each cluster gets it and which clusters are
 * excluded or held. The preview renders, so it is not polled.
 */
export function BundleView(props: { api: DashboardApi; name: string }) {
  const { api, name } = props;
  const [state, setState] = useState('');
  const paged = usePagedRows<ClusterRowView, FleetMatrixPage>(`${name}\n${state}`, (offset, limit, etag) =>
    api.fleetPage({ selector: '', state, search: '', bundle: name, offset, limit }, etag),
  );
  const [chosen, setChosen] = useState<string | null>(null);
  const first = paged.row(0)?.id ?? null;
  const cluster = chosen ?? first;
  const [preview, setPreview] = useState<FleetPreview | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const load = () => {
    setLoading(true);
    api.bundlePreview(name).then(
      (p) => {
        setPreview(p);
        setError(null);
        setLoading(false);
      },
      (err: unknown) => {
        setError(problemOf(err).message);
        setLoading(false);
      },
    );
  };
  const errors = (paged.latest?.sync?.errors ?? []).filter((e) => e.bundle === name);
  return (
    <>
      <h2 class="title">bundle {name}</h2>
      {errors.length > 0 && (
        <section class="fleet-errors" aria-label="errors in this bundle">
          <ul>
            {errors.map((e) => (
              <li key={e.text}>
                <code>{e.text}</code>
              </li>
            ))}
          </ul>
        </section>
      )}
      <Section
        title={
          paged.total === null
            ? 'Clusters'
            : `On ${paged.total} cluster(s)${state ? ` where it is ${state}` : ''}`
        }
      >
        <form class="filters" aria-label="filters" onSubmit={(e) => e.preventDefault()}>
          <label>
            State here
            <select name="state" value={state} onChange={(e) => setState(e.currentTarget.value)}>
              <option value="">any</option>
              {filterStates.map((s) => (
                <option key={s} value={s}>
                  {s}
                </option>
              ))}
            </select>
          </label>
        </form>
        {paged.total === null ? (
          <Empty>{paged.problem ? paged.problem.message : 'Loading…'}</Empty>
        ) : paged.total === 0 ? (
          <Empty>
            {state ? `No cluster has it ${state}.` : 'No cluster has this bundle in its desired state.'}
          </Empty>
        ) : (
          <VirtualTable
            paged={paged}
            width={4}
            label={`clusters with ${name}`}
            head={
              <tr aria-rowindex={1}>
                <th scope="col">cluster</th>
                <th scope="col">state</th>
                <th scope="col">why</th>
                <th scope="col">objects</th>
              </tr>
            }
            row={(c, i) => {
              const b = c.bundles.find((x) => x.name === name);
              const shown = b ? cellState(c, b) : clusterState(c);
              return (
                <tr key={c.id} aria-rowindex={i + 2} style={{ height: `${rowHeight}px` }}>
                  <th scope="row">
                    <a href={formatRoute({ view: 'cluster', id: c.id })}>{c.id}</a>
                  </th>
                  <td>
                    <StateBadge state={shown} title={b ? cellTitle(shown, b) : undefined} />
                  </td>
                  <td class="why">
                    {b?.message ??
                      (b?.drift ? `drifted: ${b.drift.map((d) => d.fields.join(', ')).join('; ')}` : '')}
                  </td>
                  <td>
                    <button type="button" aria-pressed={cluster === c.id} onClick={() => setChosen(c.id)}>
                      show
                    </button>
                  </td>
                </tr>
              );
            }}
          />
        )}
      </Section>
      {cluster && <RenderedObjects api={api} bundle={name} cluster={cluster} />}
      <Section title="Targeting at the repo tip">
        <p>
          <button type="button" onClick={load} disabled={loading}>
            {loading ? 'Asking the hub…' : preview ? 'Preview again' : 'Preview targeting'}
          </button>
        </p>
        {error && (
          <p class="field-error" role="alert">
            {error}
          </p>
        )}
        {preview && <PreviewTable preview={preview} bundle={props.name} />}
      </Section>
    </>
  );
}

function PreviewTable(props: { preview: FleetPreview; bundle: string }) {
  const rows = props.preview.clusters.flatMap((c) => {
    const got = c.bundles.find((b) => b.name === props.bundle);
    const held = c.held.find((h) => h.bundle === props.bundle);
    const excluded = c.excluded.find((x) => x.bundle === props.bundle);
    if (got)
      return [
        {
          cluster: c.name,
          how: 'gets it',
          target: entry(got.target),
          customization: entry(got.customization),
        },
      ];
    if (held) return [{ cluster: c.name, how: 'held', target: held.reason, customization: '' }];
    if (excluded)
      return [{ cluster: c.name, how: 'excluded', target: entry(excluded.excludedBy), customization: '' }];
    return [];
  });
  if (rows.length === 0) return <Empty>No cluster is targeted by this bundle at the repo tip.</Empty>;
  return (
    <table>
      <thead>
        <tr>
          <th scope="col">cluster</th>
          <th scope="col">outcome</th>
          <th scope="col">target / reason</th>
          <th scope="col">customization</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <tr key={r.cluster}>
            <th scope="row">{r.cluster}</th>
            <td>{r.how}</td>
            <td>{r.target}</td>
            <td>{r.customization}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
