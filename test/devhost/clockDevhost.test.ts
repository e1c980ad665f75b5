/**
 * devhost's movable clock through a running devhost, over real HTTP: `POST /admin/host/clock` moves a
 * durable timer hours away to now (it fires promptly, and the orchestration's history and
 * `currentUtcDateTime` move with it), history timestamps stay in order across the move and a restart on
 * the same data folder, a backwards move is refused with a clear error, the admin route needs the master
 * key, and a timer trigger runs the occurrence the clock was moved past. Needs `dist/`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runDevhostToExit, startDevhost } from '../support/devhost';
import { type DurableApp, startDurableApp, type StatusBody } from './durable/support/durableApp';

const HOUR = 3_600_000;

interface ClockView {
  now: string;
  wallClock: string;
  offsetMs: number;
  offset: string;
}

async function moveClock(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: ClockView & { error?: string; code?: string } }> {
  const res = await fetch(`${url}/admin/host/clock`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

const stamps = (s: StatusBody): number[] =>
  (s.historyEvents ?? []).map((e) => Date.parse(String(e.Timestamp)));

const inOrder = (ts: number[]): boolean => ts.every((t, i) => i === 0 || t >= ts[i - 1]!);

describe('the clock of a Durable devhost', () => {
  let app: DurableApp;
  beforeAll(async () => {
    app = await startDurableApp({ persistent: true });
  }, 90_000);
  afterAll(async () => {
    await app?.stop();
  });

  it('fires a timer hours away once the clock is moved past it; the history moves with the clock', async () => {
    const { id } = await app.start('approval', { timeoutMs: 3 * HOUR });
    const waiting = await app.waitUntil(id, (s) =>
      (s.historyEvents ?? []).some((e) => e.EventType === 'TimerCreated'),
    );
    const fireAt = Date.parse(
      String((waiting.historyEvents ?? []).find((e) => e.EventType === 'TimerCreated')!.FireAt),
    );

    const moved = await moveClock(app.url, { advanceBy: '3h' });
    expect(moved.status).toBe(200);
    expect(moved.body.offsetMs).toBe(3 * HOUR);
    expect(moved.body.offset).toBe('+3h');
    expect(Date.parse(moved.body.now)).toBeGreaterThanOrEqual(fireAt);

    const done = await app.waitDone(id, 20_000, 'showHistory=true');
    expect(done).toMatchObject({ runtimeStatus: 'Completed', output: { result: 'escalated' } });
    const fired = (done.historyEvents ?? []).find((e) => e.EventType === 'TimerFired')!;
    expect(Date.parse(String(fired.Timestamp))).toBeGreaterThanOrEqual(fireAt);
    expect(inOrder(stamps(done))).toBe(true);
    expect(Date.parse(done.lastUpdatedTime)).toBeGreaterThanOrEqual(fireAt);
  }, 60_000);

  it('refuses a move back in time, with the reason, and leaves the clock where it was', async () => {
    const before = (await (await fetch(`${app.url}/admin/host/clock`)).json()) as ClockView;
    const back = await moveClock(app.url, { to: new Date(Date.parse(before.now) - HOUR).toISOString() });
    expect(back.status).toBe(409);
    expect(back.body.code).toBe('clock_backwards');
    expect(back.body.error).toMatch(/cannot move devhost's clock back to .*only moves forward/);
    const negative = await moveClock(app.url, { advanceBy: '-1h' });
    expect(negative.status).toBe(409);
    expect(negative.body.error).toMatch(/negative/);
    const bad = await moveClock(app.url, { advanceBy: 'later' });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('clock_setting_invalid');
    expect(bad.body.error).toMatch(/'later' is not a duration/);
    const after = (await (await fetch(`${app.url}/admin/host/clock`)).json()) as ClockView;
    expect(after.offsetMs).toBe(before.offsetMs);
  });

  it('keeps the same notion of now across a restart: histories stay in order', async () => {
    const first = await app.start('monitor');
    const firstDone = await app.waitDone(first.id, 20_000, 'showHistory=true');
    const lastBefore = Math.max(...stamps(firstDone));

    await app.restart();
    const view = (await (await fetch(`${app.url}/admin/host/clock`)).json()) as ClockView;
    expect(view.offsetMs).toBe(3 * HOUR);
    expect(Date.parse(view.now)).toBeGreaterThanOrEqual(lastBefore);

    const second = await app.start('monitor');
    const secondDone = await app.waitDone(second.id, 20_000, 'showHistory=true');
    expect(secondDone.runtimeStatus).toBe('Completed');
    const times = (secondDone.output as string[]).map((t) => Date.parse(t));
    // currentUtcDateTime after the restart is on the moved clock, after everything written before it.
    expect(times[0]).toBeGreaterThanOrEqual(lastBefore);
    expect(inOrder(times)).toBe(true);
    expect(inOrder(stamps(secondDone))).toBe(true);
  }, 90_000);
});

describe('entity calls on a clock started ahead (DEVHOST_CLOCK)', () => {
  let app: DurableApp;
  beforeAll(async () => {
    app = await startDurableApp({ app: 'test/fixtures/durable-entities', env: { DEVHOST_CLOCK: '5h' } });
  }, 90_000);
  afterAll(async () => {
    await app?.stop();
  });

  it('stamps the answers of entities on the same clock as the rest of the history', async () => {
    const startedAtWall = Date.now();
    const { id } = await app.start('callTally', { key: 'clock', amounts: [1, 2] });
    const done = await app.waitDone(id, 20_000, 'showHistory=true');
    expect(done).toMatchObject({ runtimeStatus: 'Completed', output: [null, null, 3] });
    const ts = stamps(done);
    expect(inOrder(ts)).toBe(true);
    expect(Math.min(...ts)).toBeGreaterThanOrEqual(startedAtWall + 5 * HOUR);
    expect(Date.parse(done.createdTime)).toBeGreaterThanOrEqual(startedAtWall + 5 * HOUR - 1000);
  });
});

describe('the clock admin route with keys, and timer triggers on the clock', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('refuses a --clock-offset it cannot read, or one that goes back, as a bad flag', async () => {
    const unreadable = await runDevhostToExit({
      app: 'test/fixtures/timers',
      args: ['--clock-offset', 'soon'],
    });
    expect(unreadable.code).toBe(2);
    expect(unreadable.output).toMatch(/--clock-offset 'soon' is not a duration/);
    const negative = await runDevhostToExit({ app: 'test/fixtures/timers', args: ['--clock-offset=-1h'] });
    expect(negative.code).toBe(2);
    expect(negative.output).toMatch(/--clock-offset '-1h' is negative: devhost's clock only moves forward/);
  });

  it('needs the master key, starts from --clock-offset, and runs a yearly timer the clock moved past', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'devhost-clock-timers-'));
    dirs.push(dataDir);
    const host = await startDevhost({
      app: 'test/fixtures/timers',
      services: false,
      dataDir,
      args: ['--keys', 'master=clock-master,default=fn-key', '--clock-offset', '2h'],
    });
    try {
      const master = { 'x-functions-key': 'clock-master' };
      expect((await moveClock(host.url, { advanceBy: '1h' })).status).toBe(401);
      expect((await moveClock(host.url, { advanceBy: '1h' }, { 'x-functions-key': 'fn-key' })).status).toBe(
        401,
      );
      const read = await fetch(`${host.url}/admin/host/clock`, { headers: master });
      expect(((await read.json()) as ClockView).offsetMs).toBe(2 * HOUR);
      expect(host.output()).toMatch(/devhost's clock is \+2h ahead of the wall clock/);

      const log = async () =>
        (await (await fetch(`${host.url}/api/timer-log?code=fn-key`)).json()) as {
          name: string;
          timer: { scheduleStatus: { last: string } | null };
        }[];
      const until = async (test: (runs: Awaited<ReturnType<typeof log>>) => boolean) => {
        for (let i = 0; i < 200; i++) {
          const runs = await log();
          if (test(runs)) return runs;
          await new Promise((r) => setTimeout(r, 100));
        }
        throw new Error(`timer runs never matched: ${JSON.stringify(await log())}\n${host.output()}`);
      };
      await until((runs) => runs.some((r) => r.name === 'startup'));
      // Every timer of the fixture runs at 00:00 on 1 January (UTC): move just past the next one.
      const now = Date.parse(
        ((await (await fetch(`${host.url}/admin/host/clock`, { headers: master })).json()) as ClockView).now,
      );
      const newYear = Date.UTC(new Date(now).getUTCFullYear() + 1, 0, 1);
      const moved = await moveClock(host.url, { to: new Date(newYear + 2000).toISOString() }, master);
      expect(moved.status).toBe(200);
      const runs = await until(
        (r) => r.some((x) => x.name === 'monitored') && r.filter((x) => x.name === 'startup').length === 2,
      );
      expect(runs.filter((r) => r.name === 'monitored')).toHaveLength(1);
      expect(runs.filter((r) => r.name === 'slowEverySecond')).toHaveLength(1);
    } finally {
      await host.stop();
    }
    // A restart asking for less than the data folder's clock is refused, naming the setting.
    const refused = await runDevhostToExit(
      { app: 'test/fixtures/timers', services: false, dataDir, args: ['--clock-offset', '1h'] },
      30_000,
    );
    expect(refused.code).toBe(1);
    expect(refused.output).toMatch(/cannot move devhost's clock back to offset \+1h.*only moves forward/);
  }, 90_000);
});
