/**
 * Revision 3 of trainingPipeline (the run ledger, batched bookkeeping) against the frozen revision-2
 * body, on the same scripted results: the run document each writes must be the same, every time
 * included (the timeline loses nothing), the orchestration output the same, with fewer round trips.
 * Revision 2 and 1 inputs must still take the frozen body (in-flight runs replay through it).
 */
import { drivePipeline, type DriveResult } from '../../support/pipelineDriver';
import { failure, happyScript, pipelineInput } from '../../support/pipelineScript';
import type { Script } from '../../support/pipelineDriver';

const names = (r: DriveResult) => r.calls.map((c) => c.name);

async function both(over: Partial<Script> = {}) {
  const before = await drivePipeline(pipelineInput(2), happyScript(over));
  const after = await drivePipeline(pipelineInput(3), happyScript(over));
  return { before, after };
}

const cases: [string, Partial<Script>, string][] = [
  ['approved and deployed', {}, 'succeeded'],
  [
    'stopped by validation',
    {
      validateDataset: () => ({
        ...(happyScript().validateDataset!(
          undefined as never,
          { kind: 'activity', name: '', input: {} },
          1,
        ) as object),
        status: 'failed',
        passed: false,
        headline: '3 errors',
        errors: 3,
      }),
    },
    'stopped',
  ],
  [
    'training failed after a worker died twice',
    {
      trainingMonitor: (input: { jobId: string }) => ({
        jobId: input.jobId,
        state: 'failed',
        polls: 1,
        error: { code: 'worker_died', message: 'the worker went away' },
        logTail: ['a', 'b'],
      }),
    },
    'failed',
  ],
  [
    'training canceled',
    {
      trainingMonitor: (input: { jobId: string }) => ({
        jobId: input.jobId,
        state: 'canceled',
        polls: 1,
        logTail: [],
      }),
    },
    'canceled',
  ],
  [
    'stopped by evaluation',
    {
      evaluateModel: () => ({
        report: { uri: 'http://x/r', sha256: 'e'.repeat(64) },
        passed: false,
        rows: 10,
        primaryMetric: 'r2',
        candidate: 0.01,
        champion: 0.3,
        reasons: [{ check: 'threshold', passed: false, message: 'r2 too low' }],
      }),
    },
    'stopped',
  ],
  [
    'superseded before approval',
    { reserveApproval: () => ({ granted: false, reason: 'another run' }) },
    'stopped',
  ],
  [
    'approval rejected',
    {
      approvalGate: () => ({
        ...(happyScript().approvalGate!(
          undefined as never,
          { kind: 'sub', name: '', input: {} },
          1,
        ) as object),
        outcome: 'rejected',
        reasons: ['no'],
        approvedBy: [],
        rejectedBy: ['reviewer@example.com'],
      }),
    },
    'stopped',
  ],
  ['deploy refused: production moved', { deployModel: () => failure('production_moved') }, 'stopped'],
  ['deploy refused: approval consumed', { deployModel: () => failure('approval_consumed') }, 'stopped'],
  [
    'ingest retries ran out',
    { ingestDataset: () => ({ throw: new Error('blob storage is down') }) },
    'failed',
  ],
  ['the pinned version is missing', { loadPipelineVersion: () => failure('pipeline_not_found') }, 'failed'],
];

describe('trainingPipeline revision 3 writes the run document revision 2 wrote, in fewer calls', () => {
  it.each(cases)('%s', async (_name, over, status) => {
    const { before, after } = await both(over);
    expect(after.output).toEqual(before.output);
    expect((after.output as { status: string }).status).toBe(status);
    expect(after.customStatus).toEqual(before.customStatus);
    expect(after.run).toEqual(before.run);
    expect(after.run.status).toBe(status);
    // The same work, in the same order.
    const work = (r: DriveResult) => names(r).filter((n) => !['recordRunStep', 'finishRun'].includes(n));
    expect(work(after)).toEqual(work(before));
    expect(after.bookkeeping).toBeLessThan(before.bookkeeping);
    expect(after.activities).toBeLessThan(before.activities);
  });

  it('maps production_moved and approval_consumed failures to their stop reasons', async () => {
    for (const [code, stopReason] of [
      ['production_moved', 'superseded'],
      ['approval_consumed', 'duplicate_execution'],
    ] as const) {
      const { after } = await both({ deployModel: () => failure(code) });
      expect(after.output).toMatchObject({ runId: expect.any(String), status: 'stopped', stopReason });
      expect(after.run.steps.find((st) => st.name === 'deploy')).toMatchObject({
        status: 'failed',
        error: { code },
      });
    }
  });

  it('happy path: bookkeeping round trips drop from 15 to 8 of 25 and 18 activity calls', async () => {
    const { before, after } = await both();
    expect({ bookkeeping: before.bookkeeping, activities: before.activities }).toEqual({
      bookkeeping: 15,
      activities: 25,
    });
    expect({ bookkeeping: after.bookkeeping, activities: after.activities }).toEqual({
      bookkeeping: 8,
      activities: 18,
    });
    expect(after.run.steps.map((s) => [s.name, s.status])).toEqual([
      ['ingest', 'succeeded'],
      ['validate', 'succeeded'],
      ['train', 'succeeded'],
      ['evaluate', 'succeeded'],
      ['approve', 'succeeded'],
      ['deploy', 'succeeded'],
    ]);
  });

  it('the training job id is on the run document before the monitor starts (a cancel finds it)', async () => {
    const { after } = await both();
    const monitor = after.calls.findIndex((c) => c.name === 'trainingMonitor');
    const written = after.calls
      .slice(0, monitor)
      .filter((c) => c.name === 'recordRunStep')
      .flatMap((c) => (c.input as { updates: { step: string; outputs?: { jobId?: string } }[] }).updates);
    expect(written).toContainEqual(
      expect.objectContaining({
        step: 'train',
        status: 'running',
        outputs: expect.objectContaining({ jobId: 'job-1' }),
      }),
    );
  });

  it('the approval step is on the run document before the gate waits for people', async () => {
    const { after } = await both();
    const gate = after.calls.findIndex((c) => c.name === 'approvalGate');
    const written = after.calls
      .slice(0, gate)
      .filter((c) => c.name === 'recordRunStep')
      .flatMap((c) => (c.input as { updates: { step: string; status: string }[] }).updates);
    expect(written).toContainEqual(expect.objectContaining({ step: 'approve', status: 'running' }));
    expect(after.calls[gate]!.instanceId).toBe('wages-run-1:approval');
  });

  it('a refused duplicate execution writes nothing', async () => {
    const r = await drivePipeline(
      pipelineInput(3),
      happyScript({ beginRun: () => ({ accepted: false, reason: 'taken' }) }),
    );
    expect(names(r)).toEqual(['beginRun']);
    expect(r.output).toEqual({
      runId: 'wages-run-1',
      status: 'stopped',
      stopReason: 'duplicate_execution',
      reason: 'taken',
    });
  });
});

describe('runs started before revision 3 take the frozen body', () => {
  it.each([[undefined], [1], [2]])('revision %s: single updates, no batching', async (revision) => {
    const r = await drivePipeline(pipelineInput(revision), happyScript());
    const records = r.calls.filter((c) => c.name === 'recordRunStep');
    expect(records.length).toBeGreaterThan(0);
    for (const c of records) expect(c.input).toHaveProperty('update');
    expect(r.run.status).toBe('succeeded');
    // Revision 1 neither claims the run nor reserves the approval slot.
    expect(names(r).includes('beginRun')).toBe(revision === 2);
  });

  it('revision 3 sends update lists', async () => {
    const r = await drivePipeline(pipelineInput(3), happyScript());
    for (const c of r.calls.filter((x) => x.name === 'recordRunStep'))
      expect(c.input).toHaveProperty('updates');
  });
});
