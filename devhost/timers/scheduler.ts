/**
 * Runs timer-triggered functions on their schedules (durable-host-spec §4.2): `runOnStartup`, one
 * invocation at a time per function (an occurrence that comes while the previous run is still going is
 * skipped), and the schedule monitor: with a data folder the last/next occurrence is stored per function,
 * so an occurrence missed while devhost was down runs at start with `isPastDue: true`.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { HostClock } from '../clock/clock';
import type { Invoker, Logger } from '../contracts';
import type { HostedFunction } from '../app/registry';
import { formatScheduleTime, parseSchedule, type TimerSchedule } from './schedule';

/** What the host serializes as the timer trigger's input (PascalCase; the library camel-cases it). */
export interface TimerInfo {
  Schedule: { AdjustForDST: boolean };
  ScheduleStatus: { Last: string; Next: string; LastUpdated: string } | null;
  IsPastDue: boolean;
}

interface MonitorStatus {
  last: Date | null;
  next: Date;
  lastUpdated: Date | null;
}

export interface TimerSchedulerOptions {
  functions: HostedFunction[];
  invoke: Invoker;
  log: Logger;
  env?: NodeJS.ProcessEnv;
  /** Folder for schedule-monitor records; null keeps them in memory (no past-due detection across runs). */
  statusDir: string | null;
  /** Injected clock for tests of the scheduler itself. */
  now?: () => Date;
  /**
   * devhost's movable clock (devhost/clock): schedules run on it, and after a move every function
   * re-checks its next occurrence at once (one that is now due runs once, as a missed occurrence does).
   */
  clock?: HostClock;
}

export interface TimerScheduler {
  /** The parsed schedule of each timer function, for the start banner. */
  schedules(): { name: string; schedule: TimerSchedule; nextRun: Date }[];
  stop(): void;
}

/** .NET `default(DateTime)`, what Azure reports as `Last` before the first recorded run. */
const neverText = '0001-01-01T00:00:00';
/** Longest delay setTimeout accepts; longer waits are chained. */
const maxDelay = 2_147_483_647;

export function validateTimerFunctions(
  functions: HostedFunction[],
  env: NodeJS.ProcessEnv = process.env,
): void {
  for (const fn of functions) {
    const schedule = fn.triggerBinding.schedule;
    if (typeof schedule !== 'string') throw new Error(`Timer function '${fn.name}' has no schedule`);
    try {
      parseSchedule(schedule, env);
    } catch (err) {
      throw new Error(`Timer function '${fn.name}': ${(err as Error).message}`, { cause: err });
    }
  }
}

export function startTimers(options: TimerSchedulerOptions): TimerScheduler {
  const { invoke, log } = options;
  const env = options.env ?? process.env;
  const clock = options.clock;
  const now = options.now ?? (clock ? () => new Date(clock.now()) : () => new Date());
  let stopped = false;

  const entries = options.functions.map((fn) => {
    const schedule = parseSchedule(String(fn.triggerBinding.schedule), env);
    const useMonitor =
      typeof fn.triggerBinding.useMonitor === 'boolean'
        ? fn.triggerBinding.useMonitor
        : schedule.periodAtLeastOneMinute();
    return {
      fn,
      schedule,
      useMonitor,
      running: false,
      timer: undefined as NodeJS.Timeout | undefined,
      /** Re-checks the armed occurrence against the clock (after devhost's clock moved). */
      wake: undefined as (() => void) | undefined,
      nextRun: undefined as Date | undefined,
      status: undefined as MonitorStatus | undefined,
    };
  });
  type Entry = (typeof entries)[number];

  const statusFile = (entry: Entry): string | undefined =>
    options.statusDir === null
      ? undefined
      : path.join(options.statusDir, `${entry.fn.name.toLowerCase().replace(/[^a-z0-9._-]/g, '_')}.json`);

  function loadStatus(entry: Entry): MonitorStatus | undefined {
    const file = statusFile(entry);
    if (!file) return undefined;
    try {
      const json = JSON.parse(readFileSync(file, 'utf8')) as {
        expression?: string;
        last?: string | null;
        next?: string;
        lastUpdated?: string | null;
      };
      if (!json.next) return undefined;
      // A changed schedule invalidates the record, as the host's monitor does.
      if (json.expression !== entry.schedule.expression) return undefined;
      return {
        last: json.last ? new Date(json.last) : null,
        next: new Date(json.next),
        lastUpdated: json.lastUpdated ? new Date(json.lastUpdated) : null,
      };
    } catch {
      return undefined;
    }
  }

  function saveStatus(entry: Entry): void {
    const file = statusFile(entry);
    if (!file || !entry.status) return;
    try {
      mkdirSync(path.dirname(file), { recursive: true });
      const tmp = `${file}.tmp`;
      writeFileSync(
        tmp,
        JSON.stringify({
          expression: entry.schedule.expression,
          last: entry.status.last?.toISOString() ?? null,
          next: entry.status.next.toISOString(),
          lastUpdated: entry.status.lastUpdated?.toISOString() ?? null,
        }),
      );
      renameSync(tmp, file);
    } catch (err) {
      log.warn(`could not save the schedule status of ${entry.fn.name}: ${(err as Error).message}`);
    }
  }

  function timerInfo(entry: Entry, isPastDue: boolean): TimerInfo {
    const zone = entry.schedule.timeZone;
    const status = entry.status;
    return {
      Schedule: { AdjustForDST: true },
      ScheduleStatus:
        entry.useMonitor && status
          ? {
              Last: status.last ? formatScheduleTime(status.last, zone) : neverText,
              Next: formatScheduleTime(status.next, zone),
              LastUpdated: status.lastUpdated ? formatScheduleTime(status.lastUpdated, zone) : neverText,
            }
          : null,
      IsPastDue: isPastDue,
    };
  }

  async function run(entry: Entry, occurrence: Date, isPastDue: boolean): Promise<void> {
    entry.running = true;
    try {
      await invoke(entry.fn, { kind: 'timer', timerInfo: timerInfo(entry, isPastDue) });
    } catch {
      // Logged by the invoker; timer functions are not retried.
    } finally {
      entry.running = false;
    }
    const finished = now();
    entry.status = { last: occurrence, next: entry.schedule.next(occurrence), lastUpdated: finished };
    if (entry.useMonitor) saveStatus(entry);
  }

  function arm(entry: Entry): void {
    if (stopped) return;
    const next = entry.schedule.next(now());
    entry.nextRun = next;
    const wait = (): void => {
      entry.wake = undefined;
      if (stopped) return;
      const remaining = next.getTime() - now().getTime();
      if (remaining > 0) {
        // setTimeout may fire a little early; never run an occurrence before its time.
        entry.timer = setTimeout(wait, Math.min(remaining, maxDelay));
        entry.wake = () => {
          clearTimeout(entry.timer);
          wait();
        };
        return;
      }
      if (entry.running) {
        log.warn(
          `timer ${entry.fn.name}: skipped the ${next.toISOString()} occurrence, the previous run is still going`,
        );
        arm(entry);
        return;
      }
      entry.status ??= { last: null, next, lastUpdated: null };
      entry.status.next = next;
      void run(entry, next, false).then(() => arm(entry));
    };
    wait();
  }

  for (const entry of entries) {
    const started = now();
    const saved = entry.useMonitor ? loadStatus(entry) : undefined;
    const pastDue = saved !== undefined && saved.next.getTime() < started.getTime();
    entry.status = saved ?? { last: null, next: entry.schedule.next(started), lastUpdated: started };
    if (entry.useMonitor && !saved) saveStatus(entry);
    const runOnStartup = entry.fn.triggerBinding.runOnStartup === true;
    if (pastDue || runOnStartup) {
      if (pastDue)
        log.info(`timer ${entry.fn.name} is past due (missed ${saved.next.toISOString()}); running now`);
      const occurrence = pastDue ? saved.next : started;
      void run(entry, occurrence, pastDue).then(() => arm(entry));
    } else {
      arm(entry);
    }
  }

  const unsubscribeClock = clock?.onMove(() => {
    for (const entry of entries) entry.wake?.();
  });

  return {
    schedules: () =>
      entries.map((e) => ({
        name: e.fn.name,
        schedule: e.schedule,
        nextRun: e.nextRun ?? e.schedule.next(now()),
      })),
    stop() {
      stopped = true;
      unsubscribeClock?.();
      for (const entry of entries) clearTimeout(entry.timer);
    },
  };
}
