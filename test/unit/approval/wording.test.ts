import { stepLine } from '../../../cli/sluice';
import { decisionNoticeText } from '../../../lib/approval/messages';
import { buildEvidence } from '../../../lib/runs/evidence';
import type { ValidationReport } from '../../../lib/data/checking/report';
import type { EvaluationReport } from '../../../lib/evaluation/report';
import type { RunDocument } from '../../../lib/contracts/runDocument';
import { decide, parseEvaluationPolicy } from '../../../lib/evaluation/policy';

/** Issue 16, wording: what a new user read that said something other than what happened. */
describe('issue 16: wording of steps, outcomes and schema changes', () => {
  it('a rejected approve step reads "approve rejected", not "approve failed"', () => {
    const line = stepLine({
      name: 'approve',
      status: 'failed',
      startedAt: '2026-03-01T09:00:00.000Z',
      endedAt: '2026-03-01T09:10:00.000Z',
      error: { code: 'approval_rejected', message: 'Rejected by alice@example.com.' },
    });
    expect(line).toMatch(/approve\s+rejected/);
    expect(line).not.toMatch(/failed/);
    expect(line).not.toContain('✖');
    // A real failure still reads as one.
    expect(
      stepLine({ name: 'train', status: 'failed', error: { code: 'job_failed', message: 'x' } }),
    ).toMatch(/✖ train\s+failed/);
  });

  it('a validate step that passed with warnings shows its headline under the step', () => {
    const line = stepLine({
      name: 'validate',
      status: 'succeeded',
      outputs: { status: 'warning', headline: 'drift in 1 of 30 columns: mean_radius' },
    });
    expect(line).toContain('⚠ drift in 1 of 30 columns: mean_radius');
  });

  it('the banner after a decision says what happens to the run', () => {
    const rejected = decisionNoticeText({ outcome: 'rejected', waitingFor: [] });
    expect(rejected).not.toMatch(/accordingly/);
    expect(rejected).toMatch(/run stops/);
    expect(decisionNoticeText({ outcome: 'approved', waitingFor: [] })).toMatch(/deploys/);
    expect(decisionNoticeText({ outcome: 'pending', waitingFor: ['bob@example.com'] })).toBe(
      'Still waiting for bob@example.com.',
    );
  });

  it('a range change has its own kind on the approval page, not "other"', () => {
    const validation = {
      dataset: { rows: 10, columns: 1 },
      summary: { status: 'warning', headline: '1 breaking schema change(s)' },
      columns: [],
      violations: [],
      drift: { status: 'skipped', reason: 'test' },
      schemaDiff: {
        identical: false,
        breaking: true,
        changes: [
          {
            kind: 'rangeChanged',
            column: 'mean_radius',
            before: [7, 28],
            after: [70, 281],
            breaking: true,
            message: 'range',
          },
        ],
      },
    } as unknown as ValidationReport;
    const evaluation = {
      primaryMetric: 'accuracy',
      candidate: { metrics: {} },
      slices: [],
      verdict: { passed: true, reasons: [] },
    } as unknown as EvaluationReport;
    const evidence = buildEvidence({
      run: { steps: [] } as unknown as RunDocument,
      validation,
      evaluation,
      reports: {},
    });
    expect(evidence.schemaDiff).toEqual([
      { change: 'range_changed', column: 'mean_radius', from: '[7,28]', to: '[70,281]', breaking: true },
    ]);
  });

  it('a guardrail that got better says "better by 0.42", never "worse by -0.42"', () => {
    const policy = parseEvaluationPolicy({
      primaryMetric: 'roc_auc',
      guardrails: [{ metric: 'log_loss', maxDegradation: 0.01 }],
    });
    const v = decide(policy, {
      rows: 1_000,
      candidate: { roc_auc: 0.9, log_loss: 0.1 },
      champion: { roc_auc: 0.8, log_loss: 0.52 },
    } as Parameters<typeof decide>[1]);
    const g = v.reasons.find((r) => r.check === 'guardrail_degradation')!;
    expect(g.passed).toBe(true);
    expect(g.message).toContain('better by 0.42');
    expect(g.message).not.toMatch(/worse by -/);
  });
});
