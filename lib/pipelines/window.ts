import type { DeploymentWindow, Weekday } from '../contracts/deploymentWindow';

/**
 * When a deployment window is open, computed from a given instant (pure: no clock, so the
 * orchestration passes `context.df.currentUtcDateTime` and replays to the same answer). Local
 * times are resolved with the platform's time zone data (Intl). A local opening time that a DST
 * jump skips opens at the same distance after the jump (02:30 on a spring-forward night: 03:30);
 * one that occurs twice (autumn) opens at the later occurrence.
 */

const DAY_MS = 86_400_000;
const WEEKDAY_OF: Record<string, Weekday> = {
  Mon: 'mon',
  Tue: 'tue',
  Wed: 'wed',
  Thu: 'thu',
  Fri: 'fri',
  Sat: 'sat',
  Sun: 'sun',
};

interface LocalTime {
  year: number;
  month: number;
  day: number;
  weekday: Weekday;
  /** Minutes since local midnight. */
  minute: number;
  second: number;
}

function localTime(timeZone: string, t: number): LocalTime {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    weekday: 'short',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  }).formatToParts(new Date(t));
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
  return {
    year: Number(get('year')),
    month: Number(get('month')),
    day: Number(get('day')),
    weekday: WEEKDAY_OF[get('weekday')] ?? 'mon',
    minute: Number(get('hour')) * 60 + Number(get('minute')),
    second: Number(get('second')),
  };
}

/** The zone's offset from UTC at instant t, in ms (local = utc + offset). */
function offsetAt(timeZone: string, t: number): number {
  const l = localTime(timeZone, t);
  const asUtc = Date.UTC(l.year, l.month - 1, l.day, 0, l.minute, l.second);
  return asUtc - Math.floor(t / 1000) * 1000;
}

/** The instant a local date and time occurs (see the module comment for DST gaps and overlaps). */
function instantOf(timeZone: string, year: number, month: number, day: number, minute: number): number {
  const naive = Date.UTC(year, month - 1, day, 0, minute);
  const first = naive - offsetAt(timeZone, naive);
  return naive - offsetAt(timeZone, first);
}

const minutes = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
const WEEK: Weekday[] = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const previousDay = (d: Weekday): Weekday => WEEK[(WEEK.indexOf(d) + 6) % 7]!;

/** Whether the window is open at `at`. */
export function windowOpen(window: DeploymentWindow, at: Date): boolean {
  const l = localTime(window.timeZone, at.getTime());
  const from = minutes(window.hours.from);
  const to = minutes(window.hours.to);
  const days = new Set(window.days);
  if (from < to) return days.has(l.weekday) && l.minute >= from && l.minute < to;
  // Over midnight: the evening part belongs to the listed day, the morning part to the day before.
  return (days.has(l.weekday) && l.minute >= from) || (days.has(previousDay(l.weekday)) && l.minute < to);
}

/**
 * `at` itself when the window is open then, else the next instant it opens. A window always
 * opens within 8 days (at least one day is listed).
 */
export function nextWindowOpening(window: DeploymentWindow, at: Date): Date {
  if (windowOpen(window, at)) return at;
  const t = at.getTime();
  const l = localTime(window.timeZone, t);
  const from = minutes(window.hours.from);
  for (let k = 0; k <= 8; k++) {
    // Calendar arithmetic on the local date (UTC fields are only a carrier here).
    const date = new Date(Date.UTC(l.year, l.month - 1, l.day + k));
    const weekday = WEEK[date.getUTCDay()]!;
    if (!window.days.includes(weekday)) continue;
    const opens = instantOf(
      window.timeZone,
      date.getUTCFullYear(),
      date.getUTCMonth() + 1,
      date.getUTCDate(),
      from,
    );
    if (opens > t) return new Date(opens);
  }
  // Unreachable for a valid window; a day later re-checks rather than waiting forever.
  return new Date(t + DAY_MS);
}

/** What the run shows while it waits: "waiting for the deployment window (opens … local)". */
export function windowWaitReason(window: DeploymentWindow, opensAt: Date): string {
  const local = new Intl.DateTimeFormat('en-GB', {
    timeZone: window.timeZone,
    weekday: 'short',
    day: 'numeric',
    month: 'short',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).format(opensAt);
  return `waiting for the deployment window (opens ${local} ${window.timeZone}, ${opensAt.toISOString()})`;
}
