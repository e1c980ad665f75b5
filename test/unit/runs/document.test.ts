import { applyStepUpdate, newRunDocument, timeBreakdown } from '../../../lib/runs/document';

const base = () =>
  newRunDocument({
    id: 'r1',
    pipeline: 'wages',
    pipelineVersion: 1,
    instanceId: 'r1',
    trigger: { kind: 'http', by: 'ana' },
    source: { kind: 'blob', uri: 'http://x/datasets/a.csv' },
    at: '2026-01-01T00:00:00.000Z',
  });

describe('run document', () => {
  it('starts queued with every step pending', () => {
    const run = base();
    expect(run.status).toBe('queued');
    expect(run.steps.map((s) => s.name)).toEqual([
      'ingest',
      'validate',
      'train',
      'evaluate',
      'approve',
      'deploy',
    ]);
    expect(run.steps.every((s) => s.status === 'pending')).toBe(true);
  });

  it('applying the same update twice gives the same document (activities run at least once)', () => {
    const u = {
      step: 'ingest' as const,
      status: 'running' as const,
      at: '2026-01-01T00:00:01.000Z',
      attempt: 1,
    };
    const once = applyStepUpdate(base(), u);
    expect(applyStepUpdate(once, u)).toEqual(once);
    expect(once.status).toBe('running');
    expect(once.steps[0]).toMatchObject({ status: 'running', startedAt: u.at, attempt: 1 });
  });

  it('keeps the first start time and records the end and outputs', () => {
    let run = applyStepUpdate(base(), { step: 'ingest', status: 'running', at: '2026-01-01T00:00:01.000Z' });
    run = applyStepUpdate(run, {
      step: 'ingest',
      status: 'succeeded',
      at: '2026-01-01T00:00:03.000Z',
      outputs: { rows: 10 },
    });
    expect(run.steps[0]).toMatchObject({
      startedAt: '2026-01-01T00:00:01.000Z',
      endedAt: '2026-01-01T00:00:03.000Z',
      outputs: { rows: 10 },
    });
  });

  it('marks the run waiting for approval while the approve step runs', () => {
    const run = applyStepUpdate(base(), {
      step: 'approve',
      status: 'running',
      at: '2026-01-01T00:01:00.000Z',
    });
    expect(run.status).toBe('waiting_for_approval');
  });

  it('splits wall time into compute, people and queued', () => {
    let run = base();
    run = applyStepUpdate(run, { step: 'ingest', status: 'running', at: '2026-01-01T00:00:02.000Z' });
    run = applyStepUpdate(run, { step: 'ingest', status: 'succeeded', at: '2026-01-01T00:00:05.000Z' });
    run = applyStepUpdate(run, { step: 'approve', status: 'running', at: '2026-01-01T00:00:06.000Z' });
    run = applyStepUpdate(run, { step: 'approve', status: 'succeeded', at: '2026-01-01T00:01:06.000Z' });
    run = { ...run, endedAt: '2026-01-01T00:01:10.000Z' };
    expect(timeBreakdown(run, new Date('2030-01-01'))).toEqual({
      totalMs: 70_000,
      computeMs: 3_000,
      peopleMs: 60_000,
      queuedMs: 7_000,
    });
  });
});
