import type { FleetPreview, FleetStatus } from '@flotilla/shared/hub';
import { useState } from 'preact/hooks';
import type { DashboardApi } from '../api.ts';
import { Empty, Section, StateBadge } from '../components.tsx';
import { problemOf } from '../live.ts';
import { bundleClusters } from '../model.ts';
import { formatRoute } from '../route.ts';

const entry = (e: { index: number; name?: string; kind: string } | null) =>
  e === null ? 'defaults' : `${e.name ?? `#${e.index + 1}`} (${e.kind})`;

/**
 * One bundle: the clusters it is on and their state there; on request, the hub's preview
 * of the repo tip says through which target and customization each cluster gets it and
 * which clusters are excluded or held. The preview renders, so it is not polled.
 */
export function BundleView(props: { api: DashboardApi; status: FleetStatus; name: string }) {
  const rows = bundleClusters(props.status, props.name);
  const [preview, setPreview] = useState<FleetPreview | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const load = () => {
    setLoading(true);
    props.api.bundlePreview(props.name).then(
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
  const errors = (props.status.sync?.errors ?? []).filter((e) => e.bundle === props.name);
  return (
    <>
      <h2 class="title">bundle {props.name}</h2>
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
      <Section title={`On ${rows.length} cluster(s)`}>
        {rows.length === 0 ? (
          <Empty>No cluster has this bundle in its desired state.</Empty>
        ) : (
          <table>
            <thead>
              <tr>
                <th scope="col">cluster</th>
                <th scope="col">state</th>
                <th scope="col">generation</th>
                <th scope="col">message</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr key={r.cluster.id}>
                  <th scope="row">
                    <a href={formatRoute({ view: 'cluster', id: r.cluster.id })}>{r.cluster.id}</a>
                  </th>
                  <td>
                    <StateBadge state={r.state} />
                  </td>
                  <td>
                    {r.bundle.appliedGeneration ?? '–'} / {r.bundle.desiredGeneration}
                  </td>
                  <td>{r.bundle.message ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
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
