import type { ClusterHistory, ClusterStatusView } from '@flotilla/shared/hub';
import { useEffect, useState } from 'preact/hooks';
import type { DashboardApi } from '../api.ts';
import { Empty, Section, StateBadge } from '../components.tsx';
import { type Problem, poll, problemOf, systemClock } from '../live.ts';
import { ago, cellState, clusterState } from '../model.ts';
import { formatRoute } from '../route.ts';

/** One cluster: labels, versions, heartbeat, generation, each bundle's state and why, its history. */
export function ClusterView(props: { api: DashboardApi; id: string; now: number }) {
  const [cluster, setCluster] = useState<ClusterStatusView | null>(null);
  const [problem, setProblem] = useState<Problem | null>(null);
  useEffect(() => {
    setCluster(null);
    return poll(
      (etag) => props.api.clusterStatus(props.id, etag),
      { value: (answer) => setCluster(answer.cluster), problem: setProblem },
      systemClock,
    );
  }, [props.api, props.id]);
  const generation = cluster?.desired?.generation;
  const [history, setHistory] = useState<ClusterHistory | null>(null);
  const [historyError, setHistoryError] = useState<string | null>(null);
  // The history changes only with a new generation: fetch it again then, not on every poll.
  useEffect(() => {
    let current = true;
    props.api.clusterHistory(props.id).then(
      (h) => {
        if (!current) return;
        setHistory(h);
        setHistoryError(null);
      },
      (err: unknown) => current && setHistoryError(problemOf(err).message),
    );
    return () => {
      current = false;
    };
  }, [props.api, props.id, generation]);

  if (!cluster && problem?.kind === 'error') {
    return (
      <Empty>
        The hub has no cluster named <code>{props.id}</code> ({problem.message}).{' '}
        <a href="#/fleet">Back to the fleet</a>
      </Empty>
    );
  }
  if (!cluster) return <Empty>Loading {props.id}…</Empty>;
  const labels = Object.entries(cluster.labels).sort(([a], [b]) => (a < b ? -1 : 1));
  return (
    <>
      <h2 class="title">
        {cluster.id} <StateBadge state={clusterState(cluster)} />
      </h2>
      <dl class="facts">
        <dt>Connection</dt>
        <dd>{cluster.connection}</dd>
        <dt>Heartbeat</dt>
        <dd>{cluster.lastHeartbeatAt ? `${ago(cluster.lastHeartbeatAt, props.now)} ago` : 'never'}</dd>
        <dt>Agent version</dt>
        <dd>{cluster.agentVersion ?? 'unknown'}</dd>
        <dt>Kubernetes version</dt>
        <dd>{cluster.kubeVersion ?? 'unknown'}</dd>
        <dt>Generation (applied / desired)</dt>
        <dd>
          {cluster.appliedGeneration ?? '–'} / {cluster.desired?.generation ?? '–'}
          {cluster.inSync ? ' (in sync)' : ''}
        </dd>
        <dt>Commit</dt>
        <dd>
          <code>{cluster.desired?.commit.slice(0, 12) ?? '–'}</code>
        </dd>
        <dt>Labels</dt>
        <dd>
          {labels.length === 0
            ? 'none'
            : labels.map(([k, v]) => (
                <code class="label" key={k}>
                  {k}={v}
                </code>
              ))}
        </dd>
      </dl>
      <Section title="Bundles">
        {cluster.bundles.length === 0 ? (
          <Empty>No bundle targets this cluster.</Empty>
        ) : (
          <table>
            <thead>
              <tr>
                <th scope="col">bundle</th>
                <th scope="col">state</th>
                <th scope="col">up to date</th>
                <th scope="col">generation</th>
                <th scope="col">drift policy</th>
                <th scope="col">why</th>
              </tr>
            </thead>
            <tbody>
              {cluster.bundles.map((b) => (
                <tr key={b.name}>
                  <th scope="row">
                    <a href={formatRoute({ view: 'bundle', name: b.name })}>{b.name}</a>
                  </th>
                  <td>
                    <StateBadge state={cellState(cluster, b)} />
                  </td>
                  <td>{b.upToDate ? 'yes' : 'no'}</td>
                  <td>
                    {b.appliedGeneration ?? '–'} / {b.desiredGeneration}
                  </td>
                  <td>{b.driftPolicy}</td>
                  <td>
                    {b.message && <p>{b.message}</p>}
                    {b.failedObject && (
                      <p>
                        failed object: <code>{b.failedObject}</code>
                      </p>
                    )}
                    {b.drift?.map((d) => (
                      <p key={d.object}>
                        drifted <code>{d.object}</code>:{' '}
                        {d.fields.map((f) => (
                          <code key={f}>{f}</code>
                        ))}
                      </p>
                    ))}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
      {cluster.pins.length > 0 && (
        <Section title="Pinned by rollback">
          <ul>
            {cluster.pins.map((p) => (
              <li key={p.bundle}>
                <code>{p.bundle}</code> held at generation {p.fromGeneration} (
                {p.hash?.slice(0, 19) ?? 'removed'}) by {p.pinnedBy}
              </li>
            ))}
          </ul>
        </Section>
      )}
      <Section title="History">
        {historyError ? (
          <p class="field-error">{historyError}</p>
        ) : !history ? (
          <Empty>Loading…</Empty>
        ) : (
          <table>
            <thead>
              <tr>
                <th scope="col">generation</th>
                <th scope="col">why</th>
                <th scope="col">commit</th>
                <th scope="col">written</th>
                <th scope="col">bundles changed</th>
              </tr>
            </thead>
            <tbody>
              {history.generations.map((g) => (
                <tr key={g.generation} aria-current={g.current ? 'true' : undefined}>
                  <th scope="row">
                    {g.generation}
                    {g.current ? ' (current)' : ''}
                  </th>
                  <td>{g.reason}</td>
                  <td>
                    <code>{g.commit.slice(0, 12)}</code>
                  </td>
                  <td>{ago(g.createdAt, props.now)} ago</td>
                  <td>
                    {[
                      ...g.bundles
                        .filter((b) => b.change === 'added' || b.change === 'changed')
                        .map((b) => `${b.name} (${b.change})`),
                      ...g.removed.map((r) => `${r} (removed)`),
                    ].join(', ') || '–'}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
    </>
  );
}
