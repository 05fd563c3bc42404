/**
 * Keeps the fleet status fresh: asks every 2 s with the last ETag (a 304 costs the hub
 * and the page next to nothing), remembers when the hub last answered and why it did
 * not, and tells its listener. The browser parts (timers, the API) come in as arguments.
 */
import type { FleetStatus } from '@flotilla/shared/hub';
import { ApiError, type DashboardApi } from './api.ts';

export const pollIntervalMs = 2000;

export interface LiveState {
  readonly status: FleetStatus | null;
  /** When the hub last answered (200 or 304), ms since the epoch; null before the first answer. */
  readonly lastHeardAt: number | null;
  /** Why the last poll failed; null when it worked. */
  readonly problem: {
    readonly kind: 'unauthorized' | 'unreachable' | 'error';
    readonly message: string;
  } | null;
}

export function problemOf(err: unknown): NonNullable<LiveState['problem']> {
  if (err instanceof ApiError) {
    if (err.unauthorized) return { kind: 'unauthorized', message: err.message };
    if (err.unreachable) return { kind: 'unreachable', message: err.message };
    return { kind: 'error', message: err.message };
  }
  return { kind: 'error', message: (err as Error).message ?? String(err) };
}

/** Starts polling; returns the function that stops it. */
export function pollFleetStatus(
  api: Pick<DashboardApi, 'fleetStatus'>,
  onChange: (state: LiveState) => void,
  clock: {
    now: () => number;
    setTimeout: (fn: () => void, ms: number) => unknown;
    clearTimeout: (t: unknown) => void;
  },
): () => void {
  let state: LiveState = { status: null, lastHeardAt: null, problem: null };
  let etag: string | null = null;
  let timer: unknown;
  let stopped = false;
  const tick = async () => {
    try {
      const answer = await api.fleetStatus(state.status ? etag : null);
      if (answer.changed) etag = answer.etag;
      state = {
        status: answer.changed ? answer.value : state.status,
        lastHeardAt: clock.now(),
        problem: null,
      };
    } catch (err) {
      state = { ...state, problem: problemOf(err) };
    }
    if (stopped) return;
    onChange(state);
    timer = clock.setTimeout(tick, pollIntervalMs);
  };
  void tick();
  return () => {
    stopped = true;
    clock.clearTimeout(timer);
  };
}
