import { parseEvaluationPolicy } from '../../../lib/evaluation/policy';
import { evaluateCandidate, evaluationReportSchema } from '../../../lib/evaluation/report';
import { selectRows } from '../../../lib/training/dataset';
import { loadModel } from '../../../lib/training/models/predict';
import { splitForSpec, trainModel } from '../../../lib/training/models/train';
import { parseTrainingSpec } from '../../../lib/training/spec';
import { syntheticClassification } from '../../../lib/training/synthetic';
import { scoredWith } from '../../support/scored';

describe('champion/challenger evaluation report', () => {
  const ds = syntheticClassification({ rows: 8_000, features: 6, seed: 21, withSegment: true });
  const all = ['x0', 'x1', 'x2', 'x3', 'x4', 'x5', 'segment'];
  const strongSpec = parseTrainingSpec({ algorithm: 'logistic_regression', target: 'label', features: all });
  const weakSpec = parseTrainingSpec({ algorithm: 'logistic_regression', target: 'label', features: ['x5'] });
  const holdout = selectRows(ds, splitForSpec(ds, strongSpec).holdout);
  const strongModel = loadModel(trainModel(ds, strongSpec).model);
  const weakModel = loadModel(trainModel(ds, weakSpec).model);
  const strong = scoredWith(strongModel, holdout, { digest: 'sha256:strong', version: 2 });
  const weak = scoredWith(weakModel, holdout, { digest: 'sha256:weak', version: 1 });
  const policy = parseEvaluationPolicy({
    primaryMetric: 'roc_auc',
    threshold: 0.6,
    guardrails: [{ metric: 'log_loss', maxDegradation: 0.05 }],
    sliceGuards: [{ column: 'segment', maxDegradation: 0.02 }],
    bootstrap: { resamples: 300, seed: 5 },
  });

  it('passes a better candidate scored on the same rows, with a CI and per-slice results', () => {
    const report = evaluateCandidate({ dataset: holdout, candidate: strong, champion: weak, policy });
    expect(evaluationReportSchema.parse(JSON.parse(JSON.stringify(report)))).toEqual(report);
    expect(report.verdict.passed).toBe(true);
    expect(report.rows).toBe(holdout.rowCount);
    expect(report.comparison!.difference.lower).toBeGreaterThan(0);
    expect(report.champion!.metrics.roc_auc).toBeLessThan(report.candidate.metrics.roc_auc!);
    expect(report.slices.map((s) => s.value)).toEqual(['a', 'b', 'c', 'd']);
    expect(report.slices.reduce((n, s) => n + s.rows, 0)).toBe(report.rows);
    expect(report.candidate.detail!.confusionMatrix.flat().reduce((a, b) => a + b, 0)).toBe(report.rows);
    expect(report.candidate.detail!.calibration.bins).toHaveLength(10);
  });

  it('fails the reverse comparison and says why', () => {
    const report = evaluateCandidate({ dataset: holdout, candidate: weak, champion: strong, policy });
    expect(report.verdict.passed).toBe(false);
    const failedChecks = report.verdict.reasons.filter((r) => !r.passed).map((r) => r.check);
    expect(failedChecks).toContain('superiority');
    expect(failedChecks).toContain('guardrail_degradation');
    expect(failedChecks).toContain('slice');
  });

  it('is deterministic and handles a first model with no champion', () => {
    const a = evaluateCandidate({ dataset: holdout, candidate: strong, champion: weak, policy });
    const b = evaluateCandidate({ dataset: holdout, candidate: strong, champion: weak, policy });
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    const first = evaluateCandidate({ dataset: holdout, candidate: strong, policy });
    expect(first.champion).toBeNull();
    expect(first.comparison).toBeNull();
    expect(first.verdict.passed).toBe(true);
    expect(first.verdict.reasons.map((r) => r.check)).toEqual([
      'min_rows',
      'primary_threshold',
      'no_champion',
    ]);
  });

  it('refuses a metric that does not fit the task', () => {
    expect(() =>
      evaluateCandidate({
        dataset: holdout,
        candidate: strong,
        policy: parseEvaluationPolicy({ primaryMetric: 'rmse' }),
      }),
    ).toThrow(expect.objectContaining({ code: 'metric_task_mismatch' }));
  });

  it('aligns the two sides by class label, not by column position', () => {
    // The same champion, its probability columns listed the other way round (yes, no).
    const P = weak.scores.probabilities!;
    const swapped = new Float64Array(P.length);
    for (let i = 0; i < P.length; i += 2) {
      swapped[i] = P[i + 1]!;
      swapped[i + 1] = P[i]!;
    }
    const reversed = { ...weak, classes: [...weak.classes!].reverse(), scores: { probabilities: swapped } };
    const a = evaluateCandidate({ dataset: holdout, candidate: strong, champion: weak, policy });
    const b = evaluateCandidate({ dataset: holdout, candidate: strong, champion: reversed, policy });
    expect(b.champion!.metrics).toEqual(a.champion!.metrics);
    expect(b.comparison).toEqual(a.comparison);
    expect(b.verdict).toEqual(a.verdict);
  });

  it('refuses scores that do not cover every evaluation row', () => {
    const short = { ...weak, scores: { probabilities: weak.scores.probabilities!.subarray(2) } };
    expect(() => evaluateCandidate({ dataset: holdout, candidate: strong, champion: short, policy })).toThrow(
      expect.objectContaining({ code: 'predictions_invalid' }),
    );
  });
});
