/**
 * Rollout windows: whether an instant falls in one, and when the next one opens. Local
 * time comes from `Intl` in the window's IANA time zone, so daylight-saving changes follow
 * the zone's rules.
 */
import { type RolloutWindow, WEEKDAYS } from '../rollout-spec.ts';

const DAY_MS = 86_400_000;
const MINUTE_MS = 60_000;
const formats = new Map<string, Intl.DateTimeFormat>();

function format(timeZone: string): Intl.DateTimeFormat {
  let f = formats.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      weekday: 'short',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formats.set(timeZone, f);
  }
  return f;
}

interface LocalTime {
  /** 0 for Sunday. */
  readonly weekday: number;
  /** Minutes after local midnight. */
  readonly minute: number;
  /** The local wall clock read as if it were UTC, in ms. */
  readonly wall: number;
}

function localTime(t: number, timeZone: string): LocalTime {
  const parts: Record<string, string> = {};
  for (const p of format(timeZone).formatToParts(new Date(t))) parts[p.type] = p.value;
  const hour = Number(parts.hour) % 24;
  const minute = Number(parts.minute);
  const wall =
    Date.UTC(
      Number(parts.year),
      Number(parts.month) - 1,
      Number(parts.day),
      hour,
      minute,
      Number(parts.second),
    ) +
    (((t % 1000) + 1000) % 1000);
  const weekday = WEEKDAYS.indexOf(
    (parts.weekday ?? '').toLowerCase().slice(0, 3) as (typeof WEEKDAYS)[number],
  );
  return { weekday, minute: hour * 60 + minute, wall };
}

/** Whether `t` falls in the window. A window whose end is at or before its start runs past midnight into the next day. */
export function inWindow(w: RolloutWindow, t: number): boolean {
  const l = localTime(t, w.timeZone);
  const day = (i: number) => w.days.includes(WEEKDAYS[(i + 7) % 7] as (typeof WEEKDAYS)[number]);
  if (w.startMinute < w.endMinute)
    return day(l.weekday) && l.minute >= w.startMinute && l.minute < w.endMinute;
  return (day(l.weekday) && l.minute >= w.startMinute) || (day(l.weekday - 1) && l.minute < w.endMinute);
}

/** Whether `t` falls in any of the windows (no windows: always). */
export function inAnyWindow(windows: readonly RolloutWindow[], t: number): boolean {
  return windows.length === 0 || windows.some((w) => inWindow(w, t));
}

/** The first instant at or after `t` inside one of the windows (`t` itself when it is inside one). */
export function nextWindowOpen(windows: readonly RolloutWindow[], t: number): number | null {
  if (inAnyWindow(windows, t)) return t;
  let best: number | null = null;
  for (const w of windows) {
    const l = localTime(t, w.timeZone);
    const today = Math.floor(l.wall / DAY_MS) * DAY_MS;
    for (let d = 0; d <= 8; d++) {
      if (!w.days.includes(WEEKDAYS[(l.weekday + d) % 7] as (typeof WEEKDAYS)[number])) continue;
      let at = wallToUtc(today + d * DAY_MS + w.startMinute * MINUTE_MS, w.timeZone);
      // A start inside a daylight-saving gap does not exist that day: the window opens when the clock resumes.
      for (let i = 0; i < 180 && !inWindow(w, at); i++) at += MINUTE_MS;
      if (at > t && inWindow(w, at)) {
        if (best === null || at < best) best = at;
        break;
      }
    }
  }
  return best;
}

function wallToUtc(wall: number, timeZone: string): number {
  const offset = (u: number) => localTime(u, timeZone).wall - u;
  const guess = wall - offset(wall);
  return wall - offset(guess);
}
