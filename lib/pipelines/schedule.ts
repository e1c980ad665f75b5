import { Cron } from 'croner';
import { z } from 'zod';

function cronError(expr: string, timezone?: string): string | undefined {
  try {
    new Cron(expr, { paused: true, ...(timezone ? { timezone } : {}) });
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

const validTimeZone = (tz: string) => {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
};

/** Scheduled retraining of one pipeline: when, on what data, and the guards against runaway schedules. */
export const scheduleSchema = z
  .object({
    /** NCRONTAB with seconds (6 fields) or classic 5-field cron. */
    cron: z.string().min(9),
    /** IANA time zone of the schedule (default UTC). */
    timezone: z.string().refine(validTimeZone, 'unknown IANA time zone').optional(),
    /** The data a scheduled run trains on: `container/path` of a CSV or JSON Lines blob. */
    source: z.object({
      blob: z.string().regex(/^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])\/.+/, 'must be container/path'),
    }),
    /** Skip a slot when the source data's SHA-256 equals that of the last successful run. */
    skipIfDataUnchanged: z.boolean().default(true),
    /** At most this many scheduled runs start per window. */
    maxRunsPerWindow: z.number().int().min(1).max(1000).default(4),
    windowHours: z
      .number()
      .positive()
      .max(24 * 31)
      .default(24),
    /** A slot missed (host down) by more than this is not started late. */
    catchUpMinutes: z
      .number()
      .int()
      .min(1)
      .max(24 * 60)
      .default(60),
  })
  .superRefine((s, ctx) => {
    const err = cronError(s.cron, s.timezone);
    if (err) ctx.addIssue({ code: 'custom', path: ['cron'], message: `invalid cron expression: ${err}` });
  });
export type Schedule = z.infer<typeof scheduleSchema>;

/**
 * The latest slot at or before `now` that has not been considered yet and is not older than the
 * catch-up window; undefined when nothing is due.
 */
export function dueSlot(schedule: Schedule, now: Date, lastConsidered?: string): Date | undefined {
  const cron = new Cron(schedule.cron, {
    paused: true,
    ...(schedule.timezone ? { timezone: schedule.timezone } : {}),
  });
  // previousRuns is exclusive of the reference; add 1 ms so a slot exactly at `now` counts.
  const [slot] = cron.previousRuns(1, new Date(now.getTime() + 1));
  if (!slot) return undefined;
  if (lastConsidered && slot.getTime() <= Date.parse(lastConsidered)) return undefined;
  if (now.getTime() - slot.getTime() > schedule.catchUpMinutes * 60_000) return undefined;
  return slot;
}

/** Deterministic instance (and run) id for a schedule slot: two timer firings for one slot agree. */
export function scheduleRunId(pipeline: string, slot: Date): string {
  return `sched-${pipeline}-${slot
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}`;
}

export type SlotDecision =
  | { start: true }
  | { start: false; reason: 'paused' | 'active_run' | 'data_unchanged' | 'window_limit'; detail: string };

/** Whether a due slot starts a run; every skip says why (recorded on the slot document). */
export function decideSlot(input: {
  schedule: Schedule;
  /** The schedule was paused (by an operator): the slot is recorded as skipped, never started late. */
  paused?: { by: string; at: string; reason: string };
  activeRunIds: string[];
  lastSuccessfulDigest?: string;
  currentDigest?: string;
  scheduledRunsInWindow: number;
}): SlotDecision {
  const { schedule } = input;
  if (input.paused) {
    const why = input.paused.reason ? `: ${input.paused.reason}` : '';
    return {
      start: false,
      reason: 'paused',
      detail: `paused by ${input.paused.by} at ${input.paused.at}${why}`,
    };
  }
  if (input.activeRunIds.length > 0) {
    return { start: false, reason: 'active_run', detail: `run ${input.activeRunIds[0]} is still active` };
  }
  if (input.scheduledRunsInWindow >= schedule.maxRunsPerWindow) {
    return {
      start: false,
      reason: 'window_limit',
      detail: `${input.scheduledRunsInWindow} scheduled runs in the last ${schedule.windowHours} h (max ${schedule.maxRunsPerWindow})`,
    };
  }
  if (
    schedule.skipIfDataUnchanged &&
    input.currentDigest &&
    input.currentDigest === input.lastSuccessfulDigest
  ) {
    return {
      start: false,
      reason: 'data_unchanged',
      detail: `source data sha256 ${input.currentDigest.slice(0, 12)}… is unchanged since the last successful run`,
    };
  }
  return { start: true };
}
