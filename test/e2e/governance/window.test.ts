/**
 * A deployment held by its window and released when it opens, through devhost: the pipeline's window
 * (UTC, every day) opens hours after the run starts, so the approved run waits in its deploy step
 * (showing why) and nothing deploys; then devhost's clock is moved to the opening (`POST
 * /admin/host/clock`, a devhost test facility) and the run deploys, once, at the opening and not
 * before. The window is judged on the orchestration's clock (`currentUtcDateTime`), which is what the
 * move shifts; the app's own wall clock is untouched. Needs `dist/`.
 */
import type { PipelineHarness } from '../pipeline/harness';
import { startPipelineHarness, testPipeline } from '../pipeline/harness';

jest.setTimeout(300_000);

const HOUR = 3_600_000;
const hhmm = (t: number) => new Date(t).toISOString().slice(11, 16);

interface ClockView {
  now: string;
  offsetMs: number;
}

describe('deployment window through devhost', () => {
  let h: PipelineHarness;
  afterAll(async () => {
    await h?.stop();
  });

  const clock = async (body?: unknown): Promise<{ status: number; view: ClockView }> => {
    const res = await fetch(`${h.url}/admin/host/clock`, {
      method: body === undefined ? 'GET' : 'POST',
      ...(body === undefined
        ? {}
        : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
    return { status: res.status, view: (await res.json()) as ClockView };
  };

  it('waits for the window, shows it, and deploys when it opens', async () => {
    h = await startPipelineHarness({ env: { TRAINING_HEARTBEAT_STALE_SECONDS: '120' } });
    // Opens at the start of an hour 5-6 hours from devhost's now, for 30 minutes: no run reaches it
    // by waiting, only by moving the clock.
    const devhostNow = Date.parse((await clock()).view.now);
    const opens = Math.ceil((devhostNow + 5 * HOUR) / HOUR) * HOUR;
    await h.put(
      testPipeline('gov-window', {
        deployment: {
          window: { timeZone: 'UTC', hours: { from: hhmm(opens), to: hhmm(opens + 30 * 60_000) } },
        },
      }),
    );
    const runId = await h.start('gov-window');
    await h.waitFor(runId, 'approval', (r) => r.status === 'waiting_for_approval', 170_000);
    await h.decide(runId, 'approve', 'ship it in the window');
    const waiting = await h.waitFor(runId, 'the window wait', (r) => {
      const deploy = r.steps.find((s) => s.name === 'deploy');
      return deploy?.status === 'running' && deploy.outputs?.windowWait !== undefined;
    });
    const held = waiting.steps.find((s) => s.name === 'deploy')!;
    const wait = held.outputs!.windowWait as { reason: string; opensAt: string };
    expect(wait.reason).toMatch(/^waiting for the deployment window \(opens .* UTC/);
    expect(wait.opensAt).toBe(new Date(opens).toISOString());
    expect(Date.parse(String(held.startedAt))).toBeLessThan(opens);
    const status = (await h.durable(runId)) as {
      runtimeStatus: string;
      customStatus?: Record<string, unknown>;
    };
    expect(status.runtimeStatus).toBe('Running');
    expect(status.customStatus).toMatchObject({ step: 'deploy', waitingFor: 'deployment_window' });
    expect((await h.model('gov-window'))?.aliases.production).toBeUndefined();

    // Held: the run stays in its deploy step with nothing deployed until the clock reaches the window.
    // A move just short of the opening fires nothing.
    expect((await clock({ to: new Date(opens - 60_000).toISOString() })).status).toBe(200);
    await h.waitFor(runId, 'the deploy step still held', (r) => {
      const deploy = r.steps.find((s) => s.name === 'deploy');
      return r.status === 'running' && deploy?.status === 'running';
    });
    expect((await h.model('gov-window'))?.aliases.production).toBeUndefined();
    expect(
      ((await h.durable(runId)) as { customStatus?: { waitingFor?: string } }).customStatus?.waitingFor,
    ).toBe('deployment_window');

    const movedAtWall = Date.now();
    const moved = await clock({ to: new Date(opens).toISOString() });
    expect(moved.status).toBe(200);
    expect(Date.parse(moved.view.now)).toBeGreaterThanOrEqual(opens);

    const done = await h.finished(runId, 120_000);
    expect(done.status).toBe('succeeded');
    const deploy = done.steps.find((s) => s.name === 'deploy')!;
    expect(deploy.status).toBe('succeeded');
    // The orchestration deployed at the opening or after, on its (moved) clock.
    expect(Date.parse(String(deploy.endedAt))).toBeGreaterThanOrEqual(opens);
    // And production moved only after the clock did (the registry keeps the app's real clock).
    expect(Date.parse(String(done.deployment?.deployedAt))).toBeGreaterThanOrEqual(movedAtWall);
    const model = await h.model('gov-window');
    expect(model?.aliases.production?.version).toBe(1);
    // Exactly once: one production move in the alias history.
    expect(model?.aliasHistory.filter((m) => m.alias === 'production')).toHaveLength(1);
  });
});
