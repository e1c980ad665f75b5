import { decideSlot, dueSlot, scheduleRunId, scheduleSchema } from '../../../lib/pipelines/schedule';

const sched = (over: Record<string, unknown> = {}) =>
  scheduleSchema.parse({ cron: '0 0 */6 * * *', source: { blob: 'datasets/wages.csv' }, ...over });

describe('schedule', () => {
  it('rejects a bad cron expression naming the field', () => {
    const r = scheduleSchema.safeParse({ cron: 'every day at noon', source: { blob: 'datasets/x.csv' } });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual(['cron']);
  });

  it('rejects an unknown time zone and a source without container', () => {
    const r = scheduleSchema.safeParse({
      cron: '0 3 * * *',
      timezone: 'Mars/Olympus',
      source: { blob: 'x' },
    });
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => i.path.join('.')).sort()).toEqual(['source.blob', 'timezone']);
  });

  it('finds the latest slot at or before now, once', () => {
    const s = sched();
    const now = new Date('2026-03-01T12:00:00Z');
    const slot = dueSlot(s, now);
    expect(slot?.toISOString()).toBe('2026-03-01T12:00:00.000Z');
    expect(dueSlot(s, new Date('2026-03-01T12:05:00Z'), slot?.toISOString())).toBeUndefined();
    expect(dueSlot(s, new Date('2026-03-01T18:00:30Z'), slot?.toISOString())?.toISOString()).toBe(
      '2026-03-01T18:00:00.000Z',
    );
  });

  it('does not start a slot missed by more than the catch-up window', () => {
    expect(dueSlot(sched({ catchUpMinutes: 30 }), new Date('2026-03-01T13:00:00Z'))).toBeUndefined();
  });

  it('honours the time zone', () => {
    const s = sched({ cron: '0 3 * * *', timezone: 'America/New_York', catchUpMinutes: 600 });
    expect(dueSlot(s, new Date('2026-07-01T08:00:00Z'))?.toISOString()).toBe('2026-07-01T07:00:00.000Z');
  });

  it('gives every slot one deterministic run id', () => {
    const slot = new Date('2026-03-01T12:00:00Z');
    expect(scheduleRunId('wages', slot)).toBe('sched-wages-20260301T120000Z');
    expect(scheduleRunId('wages', new Date(slot))).toBe(scheduleRunId('wages', slot));
  });

  it('skips with a reason: active run, window limit, unchanged data', () => {
    const s = sched({ maxRunsPerWindow: 2 });
    const base = { schedule: s, activeRunIds: [], scheduledRunsInWindow: 0 };
    expect(decideSlot(base)).toEqual({ start: true });
    expect(decideSlot({ ...base, activeRunIds: ['r1'] })).toMatchObject({
      start: false,
      reason: 'active_run',
    });
    expect(decideSlot({ ...base, scheduledRunsInWindow: 2 })).toMatchObject({
      start: false,
      reason: 'window_limit',
    });
    expect(decideSlot({ ...base, currentDigest: 'abc', lastSuccessfulDigest: 'abc' })).toMatchObject({
      start: false,
      reason: 'data_unchanged',
    });
    expect(decideSlot({ ...base, currentDigest: 'abc', lastSuccessfulDigest: 'abd' })).toEqual({
      start: true,
    });
  });

  it('a paused schedule skips before anything else, saying who paused it and why', () => {
    const schedule = scheduleSchema.parse({ cron: '0 0 * * * *', source: { blob: 'datasets/a.csv' } });
    expect(
      decideSlot({
        schedule,
        paused: { by: 'ops@example.com', at: '2026-04-01T09:00:00.000Z', reason: 'migration' },
        activeRunIds: ['r1'],
        scheduledRunsInWindow: 99,
      }),
    ).toEqual({
      start: false,
      reason: 'paused',
      detail: 'paused by ops@example.com at 2026-04-01T09:00:00.000Z: migration',
    });
  });
});
