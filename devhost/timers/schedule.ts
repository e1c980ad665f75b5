/**
 * Timer schedules as the Functions host reads them (durable-host-spec §4.2): NCRONTAB with six fields
 * (`{second} {minute} {hour} {day} {month} {day-of-week}`) or five (no seconds), `%SETTING%` indirection,
 * or a TimeSpan interval (`hh:mm:ss`). Times are UTC unless `WEBSITE_TIME_ZONE` (Windows or IANA name)
 * or `TZ` names a zone. NCRONTAB requires day-of-month AND day-of-week to match, unlike Vixie cron.
 */
import { Cron } from 'croner';
import { parseTimeSpan, resolveSettingRefs } from '../app/settings';

export interface TimerSchedule {
  /** The expression after `%SETTING%` resolution. */
  expression: string;
  timeZone: string;
  /** The first occurrence strictly after `after`. */
  next(after: Date): Date;
  /** True when consecutive occurrences are at least a minute apart (the host's `useMonitor` default). */
  periodAtLeastOneMinute(): boolean;
}

export class ScheduleError extends Error {}

/** Windows time-zone ids (what `WEBSITE_TIME_ZONE` holds on Windows plans) to IANA names (CLDR mapping). */
const windowsZones: Record<string, string> = {
  UTC: 'UTC',
  'Coordinated Universal Time': 'UTC',
  'GMT Standard Time': 'Europe/London',
  'Greenwich Standard Time': 'Atlantic/Reykjavik',
  'W. Europe Standard Time': 'Europe/Berlin',
  'Central Europe Standard Time': 'Europe/Budapest',
  'Central European Standard Time': 'Europe/Warsaw',
  'Romance Standard Time': 'Europe/Paris',
  'E. Europe Standard Time': 'Europe/Chisinau',
  'FLE Standard Time': 'Europe/Kiev',
  'GTB Standard Time': 'Europe/Bucharest',
  'Turkey Standard Time': 'Europe/Istanbul',
  'Russian Standard Time': 'Europe/Moscow',
  'Israel Standard Time': 'Asia/Jerusalem',
  'Egypt Standard Time': 'Africa/Cairo',
  'South Africa Standard Time': 'Africa/Johannesburg',
  'W. Central Africa Standard Time': 'Africa/Lagos',
  'Arabian Standard Time': 'Asia/Dubai',
  'Arab Standard Time': 'Asia/Riyadh',
  'Pakistan Standard Time': 'Asia/Karachi',
  'India Standard Time': 'Asia/Kolkata',
  'Nepal Standard Time': 'Asia/Kathmandu',
  'Bangladesh Standard Time': 'Asia/Dhaka',
  'SE Asia Standard Time': 'Asia/Bangkok',
  'Singapore Standard Time': 'Asia/Singapore',
  'China Standard Time': 'Asia/Shanghai',
  'Taipei Standard Time': 'Asia/Taipei',
  'Tokyo Standard Time': 'Asia/Tokyo',
  'Korea Standard Time': 'Asia/Seoul',
  'W. Australia Standard Time': 'Australia/Perth',
  'Cen. Australia Standard Time': 'Australia/Adelaide',
  'E. Australia Standard Time': 'Australia/Brisbane',
  'AUS Eastern Standard Time': 'Australia/Sydney',
  'New Zealand Standard Time': 'Pacific/Auckland',
  'Hawaiian Standard Time': 'Pacific/Honolulu',
  'Alaskan Standard Time': 'America/Anchorage',
  'Pacific Standard Time': 'America/Los_Angeles',
  'US Mountain Standard Time': 'America/Phoenix',
  'Mountain Standard Time': 'America/Denver',
  'Central Standard Time': 'America/Chicago',
  'Central Standard Time (Mexico)': 'America/Mexico_City',
  'Central America Standard Time': 'America/Guatemala',
  'Eastern Standard Time': 'America/New_York',
  'SA Pacific Standard Time': 'America/Bogota',
  'Atlantic Standard Time': 'America/Halifax',
  'Newfoundland Standard Time': 'America/St_Johns',
  'Pacific SA Standard Time': 'America/Santiago',
  'Argentina Standard Time': 'America/Buenos_Aires',
  'E. South America Standard Time': 'America/Sao_Paulo',
};

function isValidZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** The schedule time zone: `WEBSITE_TIME_ZONE`, else `TZ`, else UTC. Throws naming the setting when unknown. */
export function scheduleTimeZone(env: NodeJS.ProcessEnv = process.env): string {
  for (const setting of ['WEBSITE_TIME_ZONE', 'TZ'] as const) {
    const raw = env[setting]?.trim();
    if (!raw) continue;
    const zone = windowsZones[raw] ?? raw.replace(/^:/, '');
    if (!isValidZone(zone)) {
      throw new ScheduleError(
        `${setting}=${raw} is not a time zone devhost knows (use an IANA name, e.g. Europe/Paris)`,
      );
    }
    return zone;
  }
  return 'UTC';
}

/** Parses a binding's `schedule` value (after `%SETTING%` resolution). */
export function parseSchedule(schedule: string, env: NodeJS.ProcessEnv = process.env): TimerSchedule {
  const expression = resolveSettingRefs(schedule, env, `timer schedule '${schedule}'`).trim();
  const timeZone = scheduleTimeZone(env);

  const interval = parseTimeSpan(expression);
  if (interval !== undefined) {
    if (interval <= 0) throw new ScheduleError(`timer interval '${expression}' must be positive`);
    return {
      expression,
      timeZone,
      next: (after) => new Date(after.getTime() + interval),
      periodAtLeastOneMinute: () => interval >= 60_000,
    };
  }

  const fields = expression.split(/\s+/);
  if (fields.length !== 5 && fields.length !== 6) {
    throw new ScheduleError(
      `timer schedule '${expression}' must be NCRONTAB with 6 fields ({second} {minute} {hour} {day} {month} {day-of-week}) or 5, or a TimeSpan like 00:05:00`,
    );
  }
  const pattern = fields.length === 5 ? `0 ${expression}` : fields.join(' ');
  let cron: Cron;
  try {
    cron = new Cron(pattern, { paused: true, timezone: timeZone, domAndDow: true, mode: '6-part' });
  } catch (err) {
    throw new ScheduleError(
      `timer schedule '${expression}' is not valid NCRONTAB: ${(err as Error).message}`,
    );
  }
  const next = (after: Date): Date => {
    const run = cron.nextRun(after);
    if (!run) throw new ScheduleError(`timer schedule '${expression}' has no future occurrence`);
    return run;
  };
  return {
    expression,
    timeZone,
    next,
    periodAtLeastOneMinute: () => {
      const first = next(new Date());
      const second = next(first);
      return second.getTime() - first.getTime() >= 60_000;
    },
  };
}

/** `2016-10-04T10:15:00+00:00`: the .NET round-trip text of a local time in `timeZone`, as TimerInfo carries. */
export function formatScheduleTime(date: Date, timeZone: string): string {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
    timeZoneName: 'longOffset',
  }).formatToParts(date);
  const get = (type: Intl.DateTimeFormatPartTypes): string => parts.find((p) => p.type === type)?.value ?? '';
  const zoneName = get('timeZoneName');
  const offset = zoneName === 'GMT' ? '+00:00' : zoneName.replace(/^GMT/, '');
  return `${get('year')}-${get('month')}-${get('day')}T${get('hour')}:${get('minute')}:${get('second')}${offset}`;
}
