/**
 * devhost's movable clock, a test facility: "now" is the wall clock plus an offset that only grows.
 * Everything devhost time-stamps or schedules reads it (orchestration history, so
 * `context.df.currentUtcDateTime`; durable timers; durable HTTP polls; timer-trigger schedules), so a
 * test can move a run to a deployment window hours away instead of waiting for it. The app's own code
 * keeps the real wall clock: in Azure there is no offset, and nothing here reaches the app.
 *
 * The offset only moves forward: a history must never go back in time (events are ordered by their
 * timestamps, and a timer that fired must stay fired). With a data folder it is kept in
 * `<data>/clock.json`, written before a move is acknowledged, so a restart keeps the same notion of now.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseTimeSpan } from '../app/settings';

/** What the parts of devhost read: the current time in epoch ms, and a signal when it jumps. */
export interface HostClock {
  now(): number;
  /** Calls `listener` after every move (re-arm timers); returns the unsubscribe function. */
  onMove(listener: () => void): () => void;
}

/** A move that would take the clock back in time (refused: it would break history ordering). */
export class ClockBackwardsError extends Error {
  readonly code = 'clock_backwards';
  constructor(message: string) {
    super(message);
    this.name = 'ClockBackwardsError';
  }
}

/** A clock setting or move request that cannot be read. */
export class ClockSettingError extends Error {
  readonly code = 'clock_setting_invalid';
  constructor(message: string) {
    super(message);
    this.name = 'ClockSettingError';
  }
}

/** Where the clock should be: an offset from the wall clock, or an instant "now" should reach. */
export type ClockTarget = { offsetMs: number } | { at: number };

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Reads a duration: `90m`, `3h`, `2d`, `1h30m`, `45s`, `500ms`, a .NET TimeSpan (`03:00:00`,
 * `1.00:00:00`) or plain milliseconds. Negative durations are not durations here.
 */
export function parseClockDuration(text: string, what: string): number {
  const t = text.trim();
  if (/^\d+$/.test(t)) return Number(t);
  if (/^(\d+(ms|s|m|h|d))+$/.test(t)) {
    let total = 0;
    for (const [, n, unit] of t.matchAll(/(\d+)(ms|s|m|h|d)/g)) total += Number(n) * UNITS[unit!]!;
    return total;
  }
  if (/^(\d+\.)?\d{1,2}:\d{1,2}:\d{1,2}(\.\d{1,7})?$/.test(t)) return parseTimeSpan(t) ?? NaN;
  throw new ClockSettingError(
    `${what} '${text}' is not a duration (like 3h, 90m, 1d, 1h30m, 03:00:00 or milliseconds)`,
  );
}

/**
 * Reads `--clock-offset` / `DEVHOST_CLOCK`: a duration ahead of the wall clock (`+3h`, `3h`, `90m`,
 * `1.00:00:00`), or an ISO instant with a zone (`2027-01-04T09:00:00Z`) that "now" should start at.
 */
export function parseClockSetting(text: string, what = 'the clock setting'): ClockTarget {
  const t = text.trim();
  if (t.startsWith('-'))
    throw new ClockBackwardsError(
      `${what} '${text}' is negative: devhost's clock only moves forward (a history must never go back in time)`,
    );
  if (/^\d{4}-\d{2}-\d{2}T/.test(t)) {
    const at = Date.parse(t);
    if (Number.isNaN(at) || !/(Z|[+-]\d{2}:?\d{2})$/i.test(t))
      throw new ClockSettingError(
        `${what} '${text}' is not an ISO 8601 instant with a zone (like 2027-01-04T09:00:00Z)`,
      );
    return { at };
  }
  return { offsetMs: parseClockDuration(t.replace(/^\+/, ''), what) };
}

/** `+3h 0m 0s`-style text of an offset, for logs and answers. */
export function describeOffset(ms: number): string {
  const s = Math.round(ms / 1000);
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const parts = [d ? `${d}d` : '', h ? `${h}h` : '', m ? `${m}m` : '', sec || s === 0 ? `${sec}s` : ''];
  return `+${parts.filter(Boolean).join('')}`;
}

/**
 * The latest instant the clock may reach, 9999-12-31T23:59:59.999Z: the last one an ISO 8601
 * datetime with a four-digit year (what histories, schemas and `Date.parse` here expect) can spell.
 */
export const LATEST_CLOCK_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** Refuses a move whose target "now" is past {@link LATEST_CLOCK_MS}, before anything is kept. */
function refuseTooLate(to: number, asked: string): void {
  if (to > LATEST_CLOCK_MS)
    throw new ClockSettingError(
      `${asked} would take devhost's clock past 9999-12-31T23:59:59.999Z, the latest instant an ISO ` +
        `8601 datetime with a four-digit year can spell; use a smaller move`,
    );
}

/** The file in the data folder that keeps the offset. */
export const CLOCK_FILE = 'clock.json';

interface StoredClock {
  offsetMs: number;
  /** The latest "now" a move reached (informational, and a floor if the wall clock stepped back). */
  movedTo: string;
}

export interface OpenClockOptions {
  /** The data folder; `null` keeps the offset in memory only. */
  dataDir: string | null;
  /** The start setting (`--clock-offset` / `DEVHOST_CLOCK`), if any. */
  setting?: string;
  /** The real clock (tests inject one). */
  wall?: () => number;
}

export class DevhostClock implements HostClock {
  private offset: number;
  private floor: number;
  private readonly listeners = new Set<() => void>();
  private readonly file: string | undefined;
  private readonly wall: () => number;

  /**
   * Opens the clock of a data folder: the stored offset, moved forward to the start setting when that
   * is ahead of it. A setting behind the stored clock is refused (ClockBackwardsError): the data
   * folder's histories were already written at the later time.
   */
  static open(options: OpenClockOptions): DevhostClock {
    const clock = new DevhostClock(options);
    if (options.setting !== undefined && options.setting.trim() !== '') {
      const target = parseClockSetting(options.setting, 'the start clock (--clock-offset / DEVHOST_CLOCK)');
      clock.moveTo(target, { startSetting: true });
    }
    return clock;
  }

  private constructor(options: OpenClockOptions) {
    this.wall = options.wall ?? Date.now;
    this.file = options.dataDir === null ? undefined : path.join(options.dataDir, CLOCK_FILE);
    const stored = this.read();
    this.offset = stored?.offsetMs ?? 0;
    this.floor = stored ? Date.parse(stored.movedTo) : -Infinity;
  }

  now(): number {
    return this.at(this.wall());
  }

  /** "Now" for a wall-clock reading: never below the last moved-to instant, even if the wall clock stepped back since. */
  private at(wall: number): number {
    return Math.max(wall + this.offset, this.floor);
  }

  get offsetMs(): number {
    return this.offset;
  }

  onMove(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Moves the clock ahead by `ms` (≥ 0). */
  advanceBy(ms: number): number {
    if (!Number.isFinite(ms) || ms < 0)
      throw new ClockBackwardsError(
        `cannot move devhost's clock by ${ms} ms: it only moves forward (a history must never go back in time)`,
      );
    const wall = this.wall();
    const now = this.at(wall);
    refuseTooLate(now + ms, `moving by ${ms} ms`);
    return ms === 0 ? now : this.set(now + ms, wall);
  }

  /**
   * Moves the clock to an offset or an instant; one behind the current time is refused. A start
   * setting is refused only when it is behind what the data folder's clock already reached (a smaller
   * offset, or an instant before the last move): the same setting again on a restart is a no-op.
   */
  moveTo(target: ClockTarget, how: { startSetting?: boolean } = {}): number {
    const wall = this.wall();
    const now = this.at(wall);
    let to: number;
    let behind: boolean;
    if ('at' in target) {
      to = target.at;
      behind = how.startSetting ? to < this.floor : to < now;
    } else {
      if (!Number.isFinite(target.offsetMs) || target.offsetMs < 0)
        throw new ClockBackwardsError(
          `the clock offset must be a positive duration, got ${target.offsetMs} ms`,
        );
      to = wall + target.offsetMs;
      behind = how.startSetting ? target.offsetMs < this.offset : to < now;
    }
    refuseTooLate(
      to,
      `${how.startSetting ? 'the start clock' : 'the move'} (${'at' in target ? new Date(target.at).toISOString() : `offset ${target.offsetMs} ms`})`,
    );
    if (behind) {
      const asked =
        'at' in target ? new Date(target.at).toISOString() : `offset ${describeOffset(target.offsetMs)}`;
      const where = how.startSetting && this.file ? ` (kept in ${this.file})` : '';
      throw new ClockBackwardsError(
        `cannot move devhost's clock back to ${asked}: it is already at ${new Date(now).toISOString()} ` +
          `(offset ${describeOffset(this.offset)})${where}. The clock only moves forward, since histories ` +
          `were written at the later time; use a later time${how.startSetting ? ', or a fresh data folder' : ''}.`,
      );
    }
    return to <= now ? now : this.set(to, wall);
  }

  /** Moves "now" to `to` (ahead of it), for the wall-clock reading `wall` it was computed from. */
  private set(to: number, wall: number): number {
    const stored: StoredClock = {
      offsetMs: Math.max(this.offset, to - wall),
      movedTo: new Date(to).toISOString(),
    };
    this.write(stored); // before the move is visible: a crash right after still has it
    this.offset = stored.offsetMs;
    this.floor = Math.max(this.floor, to);
    for (const listener of [...this.listeners]) listener();
    return this.now();
  }

  private read(): StoredClock | undefined {
    if (!this.file) return undefined;
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const json = JSON.parse(text) as Partial<StoredClock>;
    if (typeof json.offsetMs !== 'number' || !Number.isFinite(json.offsetMs) || json.offsetMs < 0) {
      throw new ClockSettingError(
        `${this.file} has no valid offsetMs; delete it to start from the wall clock`,
      );
    }
    return { offsetMs: json.offsetMs, movedTo: json.movedTo ?? new Date(0).toISOString() };
  }

  private write(stored: StoredClock): void {
    if (!this.file) return;
    mkdirSync(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.tmp`;
    try {
      writeFileSync(tmp, `${JSON.stringify(stored)}\n`);
      renameSync(tmp, this.file);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw err;
    }
  }
}

/** The wall clock, for parts built without a devhost clock (their own unit tests). */
export const wallClock: HostClock = { now: () => Date.now(), onMove: () => () => undefined };
