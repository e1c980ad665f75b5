/**
 * Timer triggers on the `timers` fixture app, observed through its `GET /api/timer-log` function:
 * runOnStartup, `%SETTING%` schedules, the TimerInfo shape of Azure, time zones, no overlapping runs,
 * isPastDue after a missed occurrence, and manual runs through the admin API.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startDevhost, type RunningDevhost } from '../support/devhost';

interface TimerRun {
  name: string;
  timer: {
    schedule: { adjustForDST: boolean };
    scheduleStatus: { last: string; next: string; lastUpdated: string } | null;
    isPastDue: boolean;
  };
  start: number;
  end: number | null;
  invocationId: string;
}

async function timerLog(host: RunningDevhost): Promise<TimerRun[]> {
  const res = await fetch(`${host.url}/api/timer-log`);
  return (await res.json()) as TimerRun[];
}

/** Polls the timer log until `predicate` holds (the log is the app's own record of invocations). */
async function waitForRuns(
  host: RunningDevhost,
  predicate: (runs: TimerRun[]) => boolean,
  timeoutMs = 20_000,
): Promise<TimerRun[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const runs = await timerLog(host);
    if (predicate(runs)) return runs;
    if (Date.now() > deadline)
      throw new Error(`timer runs never matched: ${JSON.stringify(runs)}\n${host.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const dotnetTime = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$/;

describe('runOnStartup with a 5-field schedule from an app setting', () => {
  let host: RunningDevhost;
  beforeAll(async () => {
    host = await startDevhost({ app: 'test/fixtures/timers', services: false });
  });
  afterAll(async () => {
    await host?.stop();
  });

  test('runs once at start with the Azure TimerInfo shape', async () => {
    const runs = await waitForRuns(host, (r) => r.some((run) => run.name === 'startup'));
    const startup = runs.filter((run) => run.name === 'startup');
    expect(startup).toHaveLength(1);
    const timer = startup[0]!.timer;
    expect(timer.schedule).toEqual({ adjustForDST: true });
    expect(timer.isPastDue).toBe(false);
    // '%STARTUP_SCHEDULE%' = '0 0 1 1 *': the next occurrence is midnight UTC on January 1st.
    expect(timer.scheduleStatus).not.toBeNull();
    expect(timer.scheduleStatus!.next).toMatch(/^\d{4}-01-01T00:00:00\+00:00$/);
    expect(timer.scheduleStatus!.last).toBe('0001-01-01T00:00:00');
    expect(timer.scheduleStatus!.lastUpdated).toMatch(dotnetTime);
  });

  test('the start banner lists the resolved schedule and its time zone', () => {
    expect(host.output()).toMatch(
      /startup: timerTrigger '0 0 1 1 \*' \(UTC, next \d{4}-01-01T00:00:00\.000Z\)/,
    );
  });

  test('POST /admin/functions/{name} runs a timer function once, not past due', async () => {
    const res = await fetch(`${host.url}/admin/functions/startup`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(202);
    const runs = await waitForRuns(host, (r) => r.filter((run) => run.name === 'startup').length === 2);
    const manual = runs.filter((run) => run.name === 'startup')[1]!;
    expect(manual.invocationId).toBe(res.headers.get('x-ms-invocation-id'));
    expect(manual.timer.isPastDue).toBe(false);
  });
});

describe('time zones', () => {
  test.each([
    [{ WEBSITE_TIME_ZONE: 'Tokyo Standard Time' }, '+09:00', 'Asia/Tokyo'],
    [{ WEBSITE_TIME_ZONE: 'America/New_York' }, '-05:00', 'America/New_York'],
    [{ TZ: 'Asia/Kolkata' }, '+05:30', 'Asia/Kolkata'],
  ])('%j: schedule times are local to the zone', async (env, offset, zone) => {
    const host = await startDevhost({ app: 'test/fixtures/timers', services: false, env });
    try {
      const runs = await waitForRuns(host, (r) => r.some((run) => run.name === 'startup'));
      const next = runs.find((run) => run.name === 'startup')!.timer.scheduleStatus!.next;
      expect(next).toMatch(new RegExp(`^\\d{4}-01-01T00:00:00\\${offset}$`));
      expect(host.output()).toContain(`'0 0 1 1 *' (${zone}`);
    } finally {
      await host.stop();
    }
  });
});

describe('a timer slower than its schedule', () => {
  test('never overlaps itself; sub-minute schedules have no schedule status', async () => {
    const host = await startDevhost({
      app: 'test/fixtures/timers',
      services: false,
      env: { SLOW_SCHEDULE: '*/1 * * * * *' },
    });
    try {
      const runs = await waitForRuns(
        host,
        (r) => r.filter((run) => run.name === 'slowEverySecond' && run.end !== null).length >= 3,
      );
      const slow = runs.filter((run) => run.name === 'slowEverySecond');
      for (let i = 1; i < slow.length; i++) {
        expect(slow[i]!.start).toBeGreaterThanOrEqual(slow[i - 1]!.end!);
      }
      expect(slow[0]!.timer.scheduleStatus).toBeNull();
      expect(slow[0]!.timer.isPastDue).toBe(false);
    } finally {
      await host.stop();
    }
  });
});

describe('the schedule monitor', () => {
  let dataDir: string;
  beforeAll(() => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'devhost-timers-'));
  });
  afterAll(() => {
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('an occurrence missed while devhost was stopped runs at start with isPastDue', async () => {
    const env = { MONITORED_SCHEDULE: '*/2 * * * * *' };
    const first = await startDevhost({ app: 'test/fixtures/timers', services: false, dataDir, env });
    let before: TimerRun;
    try {
      const runs = await waitForRuns(first, (r) =>
        r.some((run) => run.name === 'monitored' && run.end !== null),
      );
      before = runs.find((run) => run.name === 'monitored')!;
      expect(before.timer.isPastDue).toBe(false);
    } finally {
      expect(await first.stop()).toBe(0);
    }
    // Stay down past the next 2-second occurrence, then start again on the same data folder.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    const second = await startDevhost({ app: 'test/fixtures/timers', services: false, dataDir, env });
    try {
      const runs = await waitForRuns(second, (r) => r.some((run) => run.name === 'monitored'));
      const after = runs.find((run) => run.name === 'monitored')!;
      expect(after.timer.isPastDue).toBe(true);
      expect(after.timer.scheduleStatus!.last).toMatch(dotnetTime);
      expect(Date.parse(after.timer.scheduleStatus!.last)).toBeLessThan(
        Date.parse(after.timer.scheduleStatus!.next),
      );
      expect(second.output()).toMatch(/timer monitored is past due/);
    } finally {
      await second.stop();
    }
  });
});
