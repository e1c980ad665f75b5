import type { PairedBootstrapResult } from '../../../lib/evaluation/bootstrap';
import type { Evidence } from '../../../lib/evaluation/policy';
import { decide, parseEvaluationPolicy } from '../../../lib/evaluation/policy';

const diff = (estimate: number, lower: number, upper: number): PairedBootstrapResult => ({
  estimate,
  lower,
  upper,
  confidence: 0.95,
  resamples: 1000,
  skipped: 0,
  seed: 1,
  standardError: 0.01,
});

const evidence = (e: Partial<Evidence> = {}): Evidence => ({
  rows: 1_000,
  candidate: { roc_auc: 0.85, log_loss: 0.4, accuracy: 0.8 },
  champion: { roc_auc: 0.82, log_loss: 0.42, accuracy: 0.79 },
  comparison: diff(0.03, 0.01, 0.05),
  slices: [],
  ...e,
});

const failed = (v: ReturnType<typeof decide>) => v.reasons.filter((r) => !r.passed).map((r) => r.check);

describe('evaluation policy schema', () => {
  it('applies defaults', () => {
    const p = parseEvaluationPolicy({ primaryMetric: 'roc_auc' });
    expect(p.comparison).toEqual({ mode: 'superiority', minImprovement: 0, requireSignificance: true });
    expect(p.bootstrap.resamples).toBe(1000);
    expect(p.noChampion).toBe('thresholds_only');
  });

  it('rejects a bad policy with the field', () => {
    expect(() => parseEvaluationPolicy({ primaryMetric: 'auc' })).toThrow(
      expect.objectContaining({ field: 'primaryMetric' }),
    );
    expect(() => parseEvaluationPolicy({ primaryMetric: 'rmse', guardrails: [{ metric: 'mae' }] })).toThrow(
      /threshold, a maxDegradation/,
    );
    expect(() =>
      parseEvaluationPolicy({ primaryMetric: 'rmse', comparison: { mode: 'non_inferiority' } }),
    ).toThrow(expect.objectContaining({ code: 'invalid_evaluation_policy' }));
  });
});

describe('verdict', () => {
  it('passes a significantly better candidate and lists every check', () => {
    const v = decide(parseEvaluationPolicy({ primaryMetric: 'roc_auc', threshold: 0.8 }), evidence());
    expect(v.passed).toBe(true);
    expect(v.reasons.map((r) => r.check)).toEqual(['min_rows', 'primary_threshold', 'superiority']);
    expect(v.reasons[2]!.message).toContain('improvement 0.0300 [0.0100, 0.0500] at 95%');
  });

  it('fails superiority when the interval includes 0, with the reason', () => {
    const v = decide(
      parseEvaluationPolicy({ primaryMetric: 'roc_auc' }),
      evidence({ comparison: diff(0.01, -0.005, 0.02) }),
    );
    expect(v.passed).toBe(false);
    expect(failed(v)).toEqual(['superiority']);
    expect(v.reasons.find((r) => r.check === 'superiority')!.value).toBe(-0.005);
    // without significance the point estimate is enough
    const loose = parseEvaluationPolicy({
      primaryMetric: 'roc_auc',
      comparison: { mode: 'superiority', requireSignificance: false },
    });
    expect(decide(loose, evidence({ comparison: diff(0.01, -0.005, 0.02) })).passed).toBe(true);
  });

  it('applies a minimum improvement and a non-inferiority margin', () => {
    const minImp = parseEvaluationPolicy({
      primaryMetric: 'roc_auc',
      comparison: { mode: 'superiority', minImprovement: 0.02 },
    });
    expect(decide(minImp, evidence()).passed).toBe(false); // lower bound 0.01 < 0.02
    const ni = parseEvaluationPolicy({
      primaryMetric: 'roc_auc',
      comparison: { mode: 'non_inferiority', margin: 0.01 },
    });
    expect(decide(ni, evidence({ comparison: diff(-0.002, -0.008, 0.004) })).passed).toBe(true);
    expect(failed(decide(ni, evidence({ comparison: diff(-0.005, -0.015, 0.004) })))).toEqual([
      'non_inferiority',
    ]);
  });

  it('flips direction for lower-is-better metrics', () => {
    // rmse: candidate − champion = -0.2 [-0.3, -0.1] means the candidate's error is lower: better
    const p = parseEvaluationPolicy({ primaryMetric: 'rmse', threshold: 1.5 });
    const e = evidence({
      candidate: { rmse: 1.2 },
      champion: { rmse: 1.4 },
      comparison: diff(-0.2, -0.3, -0.1),
    });
    const v = decide(p, e);
    expect(v.passed).toBe(true);
    expect(v.reasons.find((r) => r.check === 'superiority')!.value).toBeCloseTo(0.1, 12);
    expect(decide(p, { ...e, candidate: { rmse: 1.6 } }).passed).toBe(false);
    expect(decide(p, { ...e, comparison: diff(0.2, 0.1, 0.3) }).passed).toBe(false);
  });

  it('judges guardrails by threshold and by degradation against production', () => {
    const p = parseEvaluationPolicy({
      primaryMetric: 'roc_auc',
      guardrails: [
        { metric: 'log_loss', threshold: 0.45, maxDegradation: 0.01 },
        { metric: 'accuracy', threshold: 0.85 },
      ],
    });
    const v = decide(p, evidence({ candidate: { roc_auc: 0.85, log_loss: 0.44, accuracy: 0.8 } }));
    expect(v.passed).toBe(false);
    expect(failed(v)).toEqual(['guardrail_threshold', 'guardrail_degradation']);
    const deg = v.reasons.find((r) => r.check === 'guardrail_degradation')!;
    expect(deg.value).toBeCloseTo(0.02, 12);
    expect(deg.message).toContain('log_loss');
  });

  it('guards slices, skipping small ones', () => {
    const p = parseEvaluationPolicy({
      primaryMetric: 'accuracy',
      comparison: { mode: 'non_inferiority', margin: 0.05 },
      sliceGuards: [{ column: 'region', maxDegradation: 0.02, minRows: 50 }],
    });
    const slices = [
      {
        column: 'region',
        value: 'north',
        metric: 'accuracy' as const,
        rows: 500,
        candidate: 0.8,
        champion: 0.79,
      },
      {
        column: 'region',
        value: 'south',
        metric: 'accuracy' as const,
        rows: 400,
        candidate: 0.7,
        champion: 0.75,
      },
      {
        column: 'region',
        value: 'tiny',
        metric: 'accuracy' as const,
        rows: 10,
        candidate: 0.1,
        champion: 0.9,
      },
    ];
    const v = decide(p, evidence({ slices }));
    expect(v.passed).toBe(false);
    const sliceChecks = v.reasons.filter((r) => r.check === 'slice');
    expect(sliceChecks.map((r) => [r.slice!.value, r.passed])).toEqual([
      ['north', true],
      ['south', false],
      ['tiny', true],
    ]);
    expect(sliceChecks[1]!.message).toContain('south');
    expect(sliceChecks[2]!.message).toContain('not judged');
    expect(failed(decide(p, evidence({ slices: [], missingSliceColumns: ['region'] })))).toEqual(['slice']);
  });

  it('decides the first model by the noChampion rule', () => {
    const first = evidence({ champion: undefined, comparison: undefined });
    const thresholds = parseEvaluationPolicy({ primaryMetric: 'roc_auc', threshold: 0.9 });
    const v = decide(thresholds, first);
    expect(v.passed).toBe(false);
    expect(failed(v)).toEqual(['primary_threshold']);
    expect(v.reasons.some((r) => r.check === 'superiority')).toBe(false);
    expect(decide(parseEvaluationPolicy({ primaryMetric: 'roc_auc', threshold: 0.8 }), first).passed).toBe(
      true,
    );
    const refuse = decide(parseEvaluationPolicy({ primaryMetric: 'roc_auc', noChampion: 'fail' }), first);
    expect(refuse.passed).toBe(false);
    expect(failed(refuse)).toEqual(['no_champion']);
  });

  it('fails on too few rows', () => {
    expect(
      failed(
        decide(parseEvaluationPolicy({ primaryMetric: 'roc_auc', minRows: 100 }), evidence({ rows: 20 })),
      ),
    ).toEqual(['min_rows']);
  });
});
