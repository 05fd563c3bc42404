import type { RolloutView } from '@flotilla/shared/hub';
import { useEffect, useState } from 'preact/hooks';
import type { DashboardApi, RolloutCommand } from '../api.ts';
import { Empty, StateBadge } from '../components.tsx';
import { poll, problemOf, systemClock } from '../live.ts';
import { ago } from '../model.ts';
import { formatRoute } from '../route.ts';

const confirmText: Record<RolloutCommand, string> = {
  pause: 'Pause the rollout of {b}? No further wave opens until it is resumed.',
  resume: 'Resume the rollout of {b}?',
  promote: 'Promote the rollout of {b}? The next wave opens now, without waiting for the bake.',
  abort: 'Abort the rollout of {b}? Every cluster released so far is reverted.',
};

/** Which commands a rollout's phase takes (the hub answers 409 to the others). */
function commandsFor(phase: string): RolloutCommand[] {
  if (phase === 'progressing') return ['pause', 'promote', 'abort'];
  if (phase === 'paused') return ['resume', 'promote', 'abort'];
  return [];
}

/** Every bundle's rollout with its waves, asked again every 2 s and right after a command. */
export function RolloutsView(props: { api: DashboardApi; now: number }) {
  const [rollouts, setRollouts] = useState<readonly RolloutView[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [refresh, setRefresh] = useState(0);
  useEffect(
    () =>
      poll(
        async () => ({ changed: true, value: await props.api.rollouts(), etag: null }),
        { value: setRollouts, problem: (p) => setError(p?.message ?? null) },
        systemClock,
      ),
    [props.api, refresh],
  );

  const run = (bundle: string, command: RolloutCommand) => {
    if (!window.confirm(confirmText[command].replace('{b}', bundle))) return;
    setBusy(true);
    props.api.rolloutCommand(bundle, command).then(
      (r) => {
        setNotice(
          `${command} ${bundle}: ${r.released.length} released, ${r.reverted.length} reverted, ${r.generationsWritten} generation(s) written`,
        );
        setBusy(false);
        setRefresh((n) => n + 1);
      },
      (err: unknown) => {
        setNotice(`${command} ${bundle} failed: ${problemOf(err).message}`);
        setBusy(false);
      },
    );
  };

  if (error && !rollouts)
    return (
      <p class="field-error" role="alert">
        {error}
      </p>
    );
  if (!rollouts) return <Empty>Loading…</Empty>;
  return (
    <>
      <h2 class="title">Rollouts</h2>
      {notice && (
        <p class="notice" role="status">
          {notice}
        </p>
      )}
      {rollouts.length === 0 ? (
        <Empty>No bundle has a progressive rollout.</Empty>
      ) : (
        rollouts.map((r) => (
          <section class="rollout" key={r.bundle} aria-label={`rollout of ${r.bundle}`}>
            <h3>
              <a href={formatRoute({ view: 'bundle', name: r.bundle })}>{r.bundle}</a>{' '}
              <StateBadge state={r.phase} />{' '}
              <small>
                revision <code>{r.revision.slice(0, 12)}</code>, started {ago(r.startedAt, props.now)} ago
                {r.currentWave ? `, wave ${r.currentWave}` : ''}
                {r.waitingForWindow ? ', waiting for its window' : ''}
              </small>
            </h3>
            {r.pauseReason && <p>Paused: {r.pauseReason}</p>}
            {r.revertReason && <p>Reverted: {r.revertReason}</p>}
            <ol class="waves">
              {r.waves.map((w) => (
                <li key={w.name}>
                  <span class="wave-name">{w.name}</span>
                  <progress
                    max={Math.max(1, w.clusters)}
                    value={w.done}
                    aria-label={`${w.name}: ${w.done} of ${w.clusters} done`}
                  />
                  <span>
                    {w.done}/{w.clusters} done
                    {w.inFlight ? `, ${w.inFlight} in flight` : ''}
                    {w.waiting ? `, ${w.waiting} waiting` : ''}
                    {w.failed ? `, ${w.failed} failed` : ''}
                    {w.skipped ? `, ${w.skipped} skipped` : ''}
                    {w.reverted ? `, ${w.reverted} reverted` : ''}
                    {w.bakedAt ? ', baked' : w.openedAt ? `, open ${ago(w.openedAt, props.now)}` : ''}
                  </span>
                </li>
              ))}
            </ol>
            <p class="actions">
              {commandsFor(r.phase).map((c) => (
                <button
                  type="button"
                  key={c}
                  disabled={busy}
                  class={c === 'abort' ? 'danger' : undefined}
                  onClick={() => run(r.bundle, c)}
                >
                  {c}
                </button>
              ))}
            </p>
          </section>
        ))
      )}
    </>
  );
}
