/**
 * NCRONTAB and TimeSpan schedules, time zones and the TimerInfo time format (the timer tests cover the
 * same through a running host; these pin exact occurrences).
 */
import { formatScheduleTime, parseSchedule, scheduleTimeZone } from '../../devhost/timers/schedule';

const at = (iso: string): Date => new Date(iso);

describe('parseSchedule', () => {
  test('six fields: seconds first', () => {
    const schedule = parseSchedule('*/15 * * * * *', {});
    expect(schedule.next(at('2024-03-01T10:00:07Z')).toISOString()).toBe('2024-03-01T10:00:15.000Z');
    expect(schedule.periodAtLeastOneMinute()).toBe(false);
  });

  test('five fields: minute first, at second 0', () => {
    const schedule = parseSchedule('30 9 * * *', {});
    expect(schedule.next(at('2024-03-01T10:00:00Z')).toISOString()).toBe('2024-03-02T09:30:00.000Z');
    expect(schedule.periodAtLeastOneMinute()).toBe(true);
  });

  test('day names and numbers, Sunday = 0', () => {
    // 2024-03-01 is a Friday.
    expect(parseSchedule('0 0 8 * * MON', {}).next(at('2024-03-01T00:00:00Z')).toISOString()).toBe(
      '2024-03-04T08:00:00.000Z',
    );
    expect(parseSchedule('0 0 8 * * 0', {}).next(at('2024-03-01T00:00:00Z')).toISOString()).toBe(
      '2024-03-03T08:00:00.000Z',
    );
  });

  test('day-of-month and day-of-week must both match (NCRONTAB, not Vixie cron)', () => {
    // The 13th that is a Friday: 2024-09-13.
    expect(parseSchedule('0 0 12 13 * 5', {}).next(at('2024-01-01T00:00:00Z')).toISOString()).toBe(
      '2024-09-13T12:00:00.000Z',
    );
  });

  test('%SETTING% is read from the environment', () => {
    const schedule = parseSchedule('%MY_SCHEDULE%', { MY_SCHEDULE: '0 */5 * * * *' });
    expect(schedule.expression).toBe('0 */5 * * * *');
    expect(() => parseSchedule('%MISSING%', {})).toThrow(/MISSING/);
  });

  test('a TimeSpan is an interval', () => {
    const schedule = parseSchedule('00:05:00', {});
    expect(schedule.next(at('2024-03-01T10:00:07Z')).toISOString()).toBe('2024-03-01T10:05:07.000Z');
    expect(parseSchedule('1.00:00:00', {}).next(at('2024-03-01T00:00:00Z')).toISOString()).toBe(
      '2024-03-02T00:00:00.000Z',
    );
  });

  test('invalid expressions are reported', () => {
    expect(() => parseSchedule('* * *', {})).toThrow(/6 fields/);
    expect(() => parseSchedule('0 0 0 1 1 * 2030', {})).toThrow(/6 fields/);
    expect(() => parseSchedule('0 61 * * * *', {})).toThrow(/not valid NCRONTAB/);
  });

  test('a time zone applies to the fields, with DST', () => {
    const env = { WEBSITE_TIME_ZONE: 'Eastern Standard Time' };
    const schedule = parseSchedule('0 30 9 * * *', env);
    expect(schedule.next(at('2024-01-15T00:00:00Z')).toISOString()).toBe('2024-01-15T14:30:00.000Z');
    expect(schedule.next(at('2024-07-15T00:00:00Z')).toISOString()).toBe('2024-07-15T13:30:00.000Z');
  });
});

describe('scheduleTimeZone', () => {
  test('UTC by default; WEBSITE_TIME_ZONE wins over TZ; Windows names map to IANA', () => {
    expect(scheduleTimeZone({})).toBe('UTC');
    expect(scheduleTimeZone({ TZ: 'Europe/Paris' })).toBe('Europe/Paris');
    expect(scheduleTimeZone({ TZ: 'Europe/Paris', WEBSITE_TIME_ZONE: 'Tokyo Standard Time' })).toBe(
      'Asia/Tokyo',
    );
    expect(() => scheduleTimeZone({ WEBSITE_TIME_ZONE: 'Mars Standard Time' })).toThrow(/WEBSITE_TIME_ZONE/);
  });
});

describe('formatScheduleTime', () => {
  test('local time with the zone offset, as .NET writes it', () => {
    const date = at('2016-10-04T10:15:00Z');
    expect(formatScheduleTime(date, 'UTC')).toBe('2016-10-04T10:15:00+00:00');
    expect(formatScheduleTime(date, 'America/New_York')).toBe('2016-10-04T06:15:00-04:00');
    expect(formatScheduleTime(date, 'Asia/Kolkata')).toBe('2016-10-04T15:45:00+05:30');
  });
});
