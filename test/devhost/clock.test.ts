/**
 * devhost's movable clock (devhost/clock): the clock itself (forward only, kept in the data folder,
 * start settings), the durable timer service after a move, and the timer-trigger scheduler on it.
 * The same through a running devhost is in clockDevhost.test.ts.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { HostedFunction } from '../../devhost/app/registry';
import {
  CLOCK_FILE,
  ClockBackwardsError,
  ClockSettingError,
  DevhostClock,
  describeOffset,
  LATEST_CLOCK_MS,
  parseClockSetting,
} from '../../devhost/clock/clock';
import { handleClockAdmin } from '../../devhost/http/clockAdmin';
import type { InvocationInput } from '../../devhost/contracts';
import { TimerService } from '../../devhost/durable/timers';
import { startTimers } from '../../devhost/timers/scheduler';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 11, 5, 10, 0, 0);

/** A wall clock the test moves by hand. */
function fakeWall(start = T0) {
  let t = start;
  return { now: () => t, tick: (ms: number) => (t += ms) };
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'devhost-clock-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('parseClockSetting', () => {
  it('reads durations in several spellings and ISO instants', () => {
    expect(parseClockSetting('3h')).toEqual({ offsetMs: 3 * HOUR });
    expect(parseClockSetting('+90m')).toEqual({ offsetMs: 90 * 60_000 });
    expect(parseClockSetting('1h30m')).toEqual({ offsetMs: 90 * 60_000 });
    expect(parseClockSetting('1.00:00:00')).toEqual({ offsetMs: 24 * HOUR });
    expect(parseClockSetting('2500')).toEqual({ offsetMs: 2500 });
    expect(parseClockSetting('2027-01-04T09:00:00Z')).toEqual({ at: Date.UTC(2027, 0, 4, 9) });
    expect(parseClockSetting('2027-01-04T09:00:00+01:00')).toEqual({ at: Date.UTC(2027, 0, 4, 8) });
  });

  it('refuses a negative offset as a backwards move, and names what it cannot read', () => {
    expect(() => parseClockSetting('-1h', 'DEVHOST_CLOCK')).toThrow(ClockBackwardsError);
    expect(() => parseClockSetting('-1h', 'DEVHOST_CLOCK')).toThrow(
      /DEVHOST_CLOCK '-1h' is negative.*only moves forward/,
    );
    expect(() => parseClockSetting('soon', 'DEVHOST_CLOCK')).toThrow(ClockSettingError);
    expect(() => parseClockSetting('soon', 'DEVHOST_CLOCK')).toThrow(
      /DEVHOST_CLOCK 'soon' is not a duration/,
    );
    expect(() => parseClockSetting('2027-01-04T09:00:00')).toThrow(/not an ISO 8601 instant with a zone/);
  });

  it('describes offsets for logs', () => {
    expect(describeOffset(0)).toBe('+0s');
    expect(describeOffset(3 * HOUR + 5 * 60_000)).toBe('+3h5m');
    expect(describeOffset(26 * HOUR)).toBe('+1d2h');
  });
});

describe('DevhostClock', () => {
  it('is the wall clock until moved, then the wall clock plus the offset', () => {
    const wall = fakeWall();
    const clock = DevhostClock.open({ dataDir: dir, wall: wall.now });
    expect(clock.now()).toBe(T0);
    expect(clock.advanceBy(3 * HOUR)).toBe(T0 + 3 * HOUR);
    wall.tick(1000);
    expect(clock.now()).toBe(T0 + 3 * HOUR + 1000);
    expect(clock.offsetMs).toBe(3 * HOUR);
    clock.moveTo({ at: T0 + 5 * HOUR });
    expect(clock.now()).toBe(T0 + 5 * HOUR);
  });

  it('refuses every backwards move with a clear error and keeps its time', () => {
    const wall = fakeWall();
    const clock = DevhostClock.open({ dataDir: dir, wall: wall.now });
    clock.advanceBy(2 * HOUR);
    expect(() => clock.moveTo({ at: T0 + HOUR })).toThrow(ClockBackwardsError);
    expect(() => clock.moveTo({ at: T0 + HOUR })).toThrow(
      /cannot move devhost's clock back to 2026-12-05T11:00:00.000Z: it is already at 2026-12-05T12:00:00.000Z \(offset \+2h\).*only moves forward/,
    );
    expect(() => clock.moveTo({ offsetMs: HOUR })).toThrow(/back to offset \+1h/);
    expect(() => clock.advanceBy(-1)).toThrow(ClockBackwardsError);
    expect(clock.now()).toBe(T0 + 2 * HOUR);
    expect(clock.moveTo({ at: T0 + 2 * HOUR })).toBe(T0 + 2 * HOUR); // where it is: a no-op
  });

  it('tells its listeners after a move, not after a no-op or a refused move', () => {
    const clock = DevhostClock.open({ dataDir: null, wall: fakeWall().now });
    let moves = 0;
    const off = clock.onMove(() => moves++);
    clock.advanceBy(HOUR);
    clock.advanceBy(0);
    expect(() => clock.moveTo({ at: T0 })).toThrow(ClockBackwardsError);
    expect(moves).toBe(1);
    off();
    clock.advanceBy(HOUR);
    expect(moves).toBe(1);
  });

  it('keeps its offset in the data folder across a restart', () => {
    const wall = fakeWall();
    DevhostClock.open({ dataDir: dir, wall: wall.now }).advanceBy(3 * HOUR);
    expect(JSON.parse(readFileSync(path.join(dir, CLOCK_FILE), 'utf8'))).toEqual({
      offsetMs: 3 * HOUR,
      movedTo: new Date(T0 + 3 * HOUR).toISOString(),
    });
    wall.tick(60_000);
    const again = DevhostClock.open({ dataDir: dir, wall: wall.now });
    expect(again.offsetMs).toBe(3 * HOUR);
    expect(again.now()).toBe(T0 + 3 * HOUR + 60_000);
  });

  it('never goes below the last instant it moved to, even if the wall clock steps back', () => {
    const wall = fakeWall();
    DevhostClock.open({ dataDir: dir, wall: wall.now }).moveTo({ at: T0 + HOUR });
    wall.tick(-10 * 60_000); // NTP stepped the machine's clock back while devhost was down
    const again = DevhostClock.open({ dataDir: dir, wall: wall.now });
    expect(again.now()).toBe(T0 + HOUR);
    wall.tick(20 * 60_000);
    expect(again.now()).toBe(T0 + HOUR + 10 * 60_000);
  });

  it('applies a start setting ahead of the stored clock, repeats it as a no-op, refuses one behind', () => {
    const wall = fakeWall();
    expect(DevhostClock.open({ dataDir: dir, setting: '2h', wall: wall.now }).offsetMs).toBe(2 * HOUR);
    wall.tick(1000);
    // The same setting on a restart: the clock is where it was.
    expect(DevhostClock.open({ dataDir: dir, setting: '2h', wall: wall.now }).now()).toBe(
      T0 + 2 * HOUR + 1000,
    );
    expect(DevhostClock.open({ dataDir: dir, setting: '3h', wall: wall.now }).offsetMs).toBe(3 * HOUR);
    expect(() => DevhostClock.open({ dataDir: dir, setting: '1h', wall: wall.now })).toThrow(
      new RegExp(
        `back to offset \\+1h.*kept in ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*or a fresh data folder`,
      ),
    );
    const at = new Date(T0 + 10 * HOUR).toISOString();
    expect(DevhostClock.open({ dataDir: dir, setting: at, wall: wall.now }).now()).toBe(T0 + 10 * HOUR);
    wall.tick(HOUR);
    // An instant the clock already reached: a no-op, not a backwards move.
    expect(DevhostClock.open({ dataDir: dir, setting: at, wall: wall.now }).now()).toBe(T0 + 11 * HOUR);
  });

  it('refuses a clock file it cannot read, naming it', () => {
    writeFileSync(path.join(dir, CLOCK_FILE), '{"offsetMs": -5}');
    expect(() => DevhostClock.open({ dataDir: dir })).toThrow(/clock.json has no valid offsetMs/);
  });

  it('refuses a move past 9999-12-31 (no ISO datetime could spell it), keeps its time and writes nothing', () => {
    const wall = fakeWall();
    const clock = DevhostClock.open({ dataDir: dir, wall: wall.now });
    expect(() => clock.advanceBy(8e15)).toThrow(ClockSettingError);
    expect(() => clock.advanceBy(8e15)).toThrow(/past 9999-12-31T23:59:59.999Z/);
    expect(() => clock.advanceBy(1e300)).toThrow(ClockSettingError); // was a RangeError
    expect(() => clock.moveTo({ offsetMs: 8e15 })).toThrow(ClockSettingError);
    expect(clock.now()).toBe(T0);
    expect(existsSync(path.join(dir, CLOCK_FILE))).toBe(false);
    // Up to the last millisecond is fine.
    expect(clock.advanceBy(LATEST_CLOCK_MS - T0)).toBe(LATEST_CLOCK_MS);
    expect(new Date(clock.now()).toISOString()).toBe('9999-12-31T23:59:59.999Z');
    expect(() => clock.advanceBy(1)).toThrow(ClockSettingError);
  });

  it('refuses a start setting past 9999-12-31 as a bad setting', () => {
    const wall = fakeWall();
    expect(() => DevhostClock.open({ dataDir: dir, setting: '100000000d', wall: wall.now })).toThrow(
      ClockSettingError,
    );
    expect(() => DevhostClock.open({ dataDir: dir, setting: '100000000d', wall: wall.now })).toThrow(
      /the start clock .*past 9999-12-31/,
    );
    expect(existsSync(path.join(dir, CLOCK_FILE))).toBe(false);
  });

  it('keeps nothing on disk without a data folder', () => {
    DevhostClock.open({ dataDir: null }).advanceBy(HOUR);
    expect(DevhostClock.open({ dataDir: null }).offsetMs).toBe(0);
  });
});

describe('durable timers on the clock', () => {
  it('fire promptly once the clock moves past their due time, in due order, and not before', async () => {
    const clock = DevhostClock.open({ dataDir: null });
    const fired: string[] = [];
    const timers = new TimerService<string>(
      (name) => fired.push(name),
      () => clock.now(),
    );
    const off = clock.onMove(() => timers.rearm());
    const start = clock.now();
    timers.schedule(start + 2 * HOUR, 'two hours');
    timers.schedule(start + HOUR, 'one hour');
    timers.schedule(start + 5 * HOUR, 'five hours');
    await new Promise((r) => setTimeout(r, 20));
    expect(fired).toEqual([]);
    clock.advanceBy(3 * HOUR);
    await new Promise((r) => setTimeout(r, 20));
    expect(fired).toEqual(['one hour', 'two hours']);
    off();
    timers.stop();
  });
});

describe('timer triggers on the clock', () => {
  it('run an occurrence the clock moved past, once, then wait for the next one', async () => {
    const clock = DevhostClock.open({ dataDir: null });
    const calls: InvocationInput[] = [];
    const fn = {
      name: 'daily',
      kind: 'timer',
      triggerBinding: { type: 'timerTrigger', name: 't', direction: 'in', schedule: '0 0 9 * * *' },
    } as unknown as HostedFunction;
    const quiet = { debug() {}, info() {}, warn() {}, error() {} };
    const scheduler = startTimers({
      functions: [fn],
      invoke: (_fn, input) => {
        calls.push(input);
        return Promise.resolve(undefined);
      },
      log: quiet,
      statusDir: null,
      env: { WEBSITE_TIME_ZONE: 'UTC' },
      clock,
    });
    const next = scheduler.schedules()[0]!.nextRun.getTime();
    expect(next).toBeGreaterThan(clock.now());
    clock.moveTo({ at: next + 1000 });
    for (let i = 0; i < 50 && calls.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(calls).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 50));
    expect(calls).toHaveLength(1);
    expect(scheduler.schedules()[0]!.nextRun.getTime()).toBe(next + 24 * HOUR);
    scheduler.stop();
  });
});

describe('the clock admin route', () => {
  let server: Server;
  let url: string;
  let clock: DevhostClock;
  beforeEach(async () => {
    clock = DevhostClock.open({ dataDir: dir, wall: fakeWall().now });
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => handleClockAdmin(req, res, Buffer.concat(chunks), clock));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/admin/host/clock`;
  });
  afterEach(async () => {
    await new Promise((r) => server.close(r));
  });

  const post = async (body: unknown) => {
    const res = await fetch(url, { method: 'POST', body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('answers 400 to an advanceBy past 9999-12-31 (numeric or a duration) and leaves the clock where it was', async () => {
    for (const advanceBy of [8e15, 1e300, '100000000d']) {
      const res = await post({ advanceBy });
      expect(res).toEqual({
        status: 400,
        body: { code: 'clock_setting_invalid', error: expect.stringContaining('past 9999-12-31') },
      });
    }
    expect(clock.now()).toBe(T0);
    expect(existsSync(path.join(dir, CLOCK_FILE))).toBe(false);
    expect(await post({ advanceBy: '3h' })).toMatchObject({
      status: 200,
      body: { now: new Date(T0 + 3 * HOUR).toISOString() },
    });
  });
});
