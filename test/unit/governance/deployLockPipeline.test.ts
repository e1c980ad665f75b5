/**
 * Issue 21 in the orchestrator, driven call by call with scripted answers: from revision 4 every
 * deployment takes its model's deployment lock right before it deploys, waits on durable timers
 * while another run holds it (the run document and custom status say who), and goes when granted;
 * revision-3 runs replay the frozen body and never ask.
 */
import { PIPELINE_REVISION } from '../../../lib/contracts/pipeline';
import { drivePipeline } from '../../support/pipelineDriver';
import { happyScript, pipelineInput } from '../../support/pipelineScript';

const names = (r: { calls: { name: string }[] }) => r.calls.map((c) => c.name);

describe('trainingPipeline revision 4: the deployment lock', () => {
  it('new runs start at revision 4', () => {
    expect(PIPELINE_REVISION).toBe(4);
  });

  it('takes the lock of the model right before it deploys, once, when it is free', async () => {
    const r = await drivePipeline(pipelineInput(4), happyScript());
    const calls = names(r);
    const take = calls.indexOf('takeDeploymentLock');
    expect(take).toBeGreaterThan(calls.indexOf('approvalGate'));
    // Nothing but the deploy step's bookkeeping between the grant and the deploy.
    expect(calls.slice(take + 1, calls.indexOf('deployModel'))).toEqual(['recordRunStep']);
    expect(calls.filter((n) => n === 'takeDeploymentLock')).toHaveLength(1);
    expect(r.calls[take]!.input).toEqual({
      runId: 'wages-run-1',
      pipeline: 'wages',
      modelName: 'wages',
      at: expect.any(String),
    });
    expect(r.output).toMatchObject({ status: 'succeeded', deployedVersion: 3 });
    expect(r.calls.some((c) => c.kind === 'timer')).toBe(false);
    // One activity call more than revision 3's 18, no more bookkeeping (docs/scale.md).
    expect({ bookkeeping: r.bookkeeping, activities: r.activities }).toEqual({
      bookkeeping: 8,
      activities: 19,
    });
  });

  it('waits on durable timers while another run holds it, shows the holder, then deploys', async () => {
    const holder = { runId: 'other-run', pipeline: 'wages-nightly' };
    const reason = 'waiting for the deployment lock of wages: run other-run of wages-nightly is deploying it';
    const statuses: unknown[] = [];
    const r = await drivePipeline(
      pipelineInput(4),
      happyScript({
        takeDeploymentLock: (_i: never, _c, count) =>
          count <= 3 ? { granted: false, holder, reason } : { granted: true },
        deployModel: () => {
          statuses.push('deployed');
          return {
            modelName: 'wages',
            version: 3,
            previous: 2,
            moved: true,
            aliasMoveSeq: 4,
            deployedAt: '2026-03-01T13:00:05.000Z',
            recordedOnRun: true,
          };
        },
      }),
    );
    const tail = r.calls.slice(r.calls.findIndex((c) => c.name === 'takeDeploymentLock'));
    // Asked, waited, asked … until granted; the deploy comes only after the grant. The first wait
    // writes the step's lockWait first.
    expect(tail.map((c) => c.name)).toEqual([
      'takeDeploymentLock',
      'recordRunStep',
      'timer',
      'takeDeploymentLock',
      'timer',
      'takeDeploymentLock',
      'timer',
      'takeDeploymentLock',
      'deployModel',
      'finishRun',
    ]);
    // The polls back off: 2 s, then 3 s, then 4.5 s after each answer (the driver's clock moves 1 s
    // per activity call, so 1 s after each ask).
    const takes = tail
      .filter((c) => c.name === 'takeDeploymentLock')
      .map((c) => (c.input as { at: string }).at);
    const timers = tail.filter((c) => c.kind === 'timer').map((c) => c.input as string);
    expect(timers.map((t, i) => (Date.parse(t) - Date.parse(takes[i]!)) / 1000)).toEqual([3, 4, 5.5]);

    const deploy = r.run.steps.find((s) => s.name === 'deploy');
    expect(deploy?.status).toBe('succeeded');
    expect(deploy?.outputs?.lockWait).toEqual({ reason, holder });
    expect(r.output).toMatchObject({ status: 'succeeded', deployedVersion: 3 });
    expect(statuses).toEqual(['deployed']);
  });

  it('a window that closes while the run waits for the lock holds the deploy until it opens again', async () => {
    const base = happyScript();
    const holder = { runId: 'other-run', pipeline: 'wages-nightly' };
    let grantFrom = 0;
    const takes: string[] = [];
    const r = await drivePipeline(
      pipelineInput(4),
      happyScript({
        loadPipelineVersion: (i: never, c, n) => ({
          ...(base.loadPipelineVersion!(i, c, n) as object),
          deploymentWindow: { timeZone: 'UTC', days: ['sun'], hours: { from: '12:00', to: '12:30' } },
        }),
        takeDeploymentLock: (i: { at: string }) => {
          takes.push(i.at);
          // The holder ends at 12:40, after the window (Sunday 12:00-12:30 UTC) closed.
          grantFrom ||= Date.parse('2026-03-01T12:40:00.000Z');
          return Date.parse(i.at) >= grantFrom ? { granted: true } : { granted: false, holder };
        },
      }),
    );
    expect(r.output).toMatchObject({ status: 'succeeded', deployedVersion: 3 });
    // The last ask (the one granted) waited for the next opening, a week later; no ask at all
    // happened while the window was closed.
    const last = takes.at(-1)!;
    expect(Date.parse(last)).toBeGreaterThanOrEqual(Date.parse('2026-03-08T12:00:00.000Z'));
    expect(Date.parse(last)).toBeLessThan(Date.parse('2026-03-08T12:30:00.000Z'));
    for (const at of takes) {
      const t = new Date(at);
      expect({ at, day: t.getUTCDay(), inWindow: t.getUTCHours() === 12 && t.getUTCMinutes() < 30 }).toEqual({
        at,
        day: 0,
        inWindow: true,
      });
    }
    expect(r.run.steps.find((s) => s.name === 'deploy')?.outputs?.windowWait).toMatchObject({
      opensAt: '2026-03-08T12:00:00.000Z',
    });
  });

  it('a lock refused because the run was canceled ends the run without deploying', async () => {
    const r = await drivePipeline(
      pipelineInput(4),
      happyScript({
        takeDeploymentLock: () => ({
          sluiceFailure: { name: 'NonRetriableError', code: 'run_canceled', message: 'run is canceled' },
        }),
      }),
    );
    expect(names(r)).not.toContain('deployModel');
    expect(r.output).toMatchObject({ status: 'failed' });
    expect(r.run.steps.find((s) => s.name === 'deploy')).toMatchObject({
      status: 'failed',
      error: { code: 'run_canceled' },
    });
  });

  it.each([[3], [2], [undefined]])('revision %s never asks for the lock', async (revision) => {
    const r = await drivePipeline(pipelineInput(revision), happyScript());
    expect(names(r)).not.toContain('takeDeploymentLock');
    expect(names(r)).toContain('deployModel');
  });
});
