/**
 * A deployment held by its window and released when it opens, through devhost: the pipeline's
 * window (UTC, every day) opens a few minutes after the run starts, so the approved run waits in
 * its deploy step (showing why) and deploys at the opening, not before. Needs `dist/`.
 */
import type { PipelineHarness } from '../pipeline/harness';
import { startPipelineHarness, testPipeline } from '../pipeline/harness';

jest.setTimeout(480_000);

const hhmm = (t: number) => new Date(t).toISOString().slice(11, 16);

describe('deployment window through devhost', () => {
  let h: PipelineHarness;
  afterAll(async () => {
    await h?.stop();
  });

  it('waits for the window, shows it, and deploys when it opens', async () => {
    h = await startPipelineHarness({ env: { TRAINING_HEARTBEAT_STALE_SECONDS: '120' } });
    // Opens at the start of the minute 3-4 minutes from now (long enough to reach approval on a
    // busy machine), for 30 minutes.
    const opens = Math.ceil((Date.now() + 180_000) / 60_000) * 60_000;
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
    expect(Date.now()).toBeLessThan(opens);
    const wait = waiting.steps.find((s) => s.name === 'deploy')!.outputs!.windowWait as {
      reason: string;
      opensAt: string;
    };
    expect(wait.reason).toMatch(/^waiting for the deployment window \(opens .* UTC/);
    expect(wait.opensAt).toBe(new Date(opens).toISOString());
    expect((await h.model('gov-window'))?.aliases.production).toBeUndefined();

    const done = await h.finished(runId, 300_000);
    expect(done.status).toBe('succeeded');
    const deployedAt = Date.parse(String(done.deployment?.deployedAt));
    expect(deployedAt).toBeGreaterThanOrEqual(opens);
    expect((await h.model('gov-window'))?.aliases.production?.version).toBe(1);
  });
});
