import { parseEvaluationPolicy } from '../../../lib/evaluation/policy';
import { evaluateCandidate, evaluationReportSchema } from '../../../lib/evaluation/report';
import type { ColumnarDataset } from '../../../lib/training/dataset';
import { selectRows } from '../../../lib/training/dataset';
import { loadModel } from '../../../lib/training/models/predict';
import { splitForSpec, trainModel } from '../../../lib/training/models/train';
import { parseTrainingSpec } from '../../../lib/training/spec';
import { syntheticClassification } from '../../../lib/training/synthetic';
import { scoredWith } from '../../support/scored';

/** The same rows with the label column permuted (a seeded Fisher–Yates): labels that no longer fit. */
function shuffleLabels(ds: ColumnarDataset, target: string): ColumnarDataset {
  let state = 12345;
  const next = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32;
  return {
    rowCount: ds.rowCount,
    columns: ds.columns.map((c) => {
      if (c.name !== target || c.type !== 'categorical') return c;
      const codes = Int32Array.from(c.codes);
      for (let i = codes.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        [codes[i], codes[j]] = [codes[j]!, codes[i]!];
      }
      return { ...c, codes };
    }),
  };
}

describe('the production model judged against its own record (championCollapse)', () => {
  const ds = syntheticClassification({ rows: 4_000, features: 6, seed: 7 });
  const spec = parseTrainingSpec({
    algorithm: 'logistic_regression',
    target: 'label',
    features: ['x0', 'x1', 'x2', 'x3', 'x4', 'x5'],
  });
  const trained = trainModel(ds, spec);
  const model = loadModel(trained.model);
  const holdout = selectRows(ds, splitForSpec(ds, spec).holdout);
  const recorded = trained.metrics.validation!;
  const policy = parseEvaluationPolicy({
    primaryMetric: 'accuracy',
    comparison: { mode: 'non_inferiority', margin: 0.02 },
    bootstrap: { resamples: 300, seed: 3 },
  });

  it('stops by default when the labels are shuffled, naming both numbers', () => {
    const shuffled = shuffleLabels(holdout, 'label');
    const report = evaluateCandidate({
      dataset: shuffled,
      candidate: scoredWith(model, shuffled, { digest: 'sha256:candidate' }),
      champion: { ...scoredWith(model, shuffled, { digest: 'sha256:champion', version: 1 }), recorded },
      policy,
    });
    expect(evaluationReportSchema.parse(JSON.parse(JSON.stringify(report)))).toEqual(report);
    const check = report.verdict.reasons.find((r) => r.check === 'champion_collapsed')!;
    expect(check.passed).toBe(false);
    expect(report.verdict.passed).toBe(false);
    const today = report.champion!.metrics.accuracy!;
    expect(today).toBeLessThan(0.6);
    expect(check.message).toMatch(
      new RegExp(
        `^the production model scores ${today.toFixed(2)} on this data against ${recorded.accuracy!.toFixed(2)} when it was approved: check the labels and the data`,
      ),
    );
    // Both sides on the same corrupted rows: the comparison alone would have let it through.
    expect(report.verdict.reasons.find((r) => r.check === 'non_inferiority')!.passed).toBe(true);
    expect(report.champion!.recorded).toEqual(recorded);
  });

  it('passes the production model on data like the data it was approved on', () => {
    const report = evaluateCandidate({
      dataset: holdout,
      candidate: scoredWith(model, holdout, { digest: 'sha256:candidate' }),
      champion: { ...scoredWith(model, holdout, { digest: 'sha256:champion', version: 1 }), recorded },
      policy,
    });
    const check = report.verdict.reasons.find((r) => r.check === 'champion_collapsed')!;
    expect(check.passed).toBe(true);
    expect(check.message).toMatch(/^the production model holds its recorded accuracy/);
    expect(report.verdict.passed).toBe(true);
  });

  it('only warns with action warn, and is skipped with off or without a recorded value', () => {
    const shuffled = shuffleLabels(holdout, 'label');
    const run = (collapse: object, withRecord = true) =>
      evaluateCandidate({
        dataset: shuffled,
        candidate: scoredWith(model, shuffled, { digest: 'sha256:candidate' }),
        champion: {
          ...scoredWith(model, shuffled, { digest: 'sha256:champion', version: 1 }),
          ...(withRecord ? { recorded } : {}),
        },
        policy: parseEvaluationPolicy({ ...policy, championCollapse: collapse }),
      }).verdict;
    const warned = run({ action: 'warn' });
    expect(warned.passed).toBe(true);
    expect(warned.reasons.find((r) => r.check === 'champion_collapsed')!.message).toContain(
      'championCollapse.action: warn',
    );
    expect(run({ action: 'off' }).reasons.some((r) => r.check === 'champion_collapsed')).toBe(false);
    expect(run({}, false).reasons.some((r) => r.check === 'champion_collapsed')).toBe(false);
    // A margin wider than the whole drop lets it through.
    expect(run({ margin: 0.9 }).passed).toBe(true);
  });
});

describe('intervals on every absolute metric', () => {
  const ds = syntheticClassification({ rows: 3_000, features: 4, seed: 11 });
  const spec = parseTrainingSpec({
    algorithm: 'logistic_regression',
    target: 'label',
    features: ['x0', 'x1', 'x2', 'x3'],
  });
  const model = loadModel(trainModel(ds, spec).model);
  const holdout = selectRows(ds, splitForSpec(ds, spec).holdout);
  const policy = parseEvaluationPolicy({ primaryMetric: 'roc_auc', bootstrap: { resamples: 200 } });

  it('gives a first model and both sides of a comparison an interval around each metric', () => {
    const first = evaluateCandidate({
      dataset: holdout,
      candidate: scoredWith(model, holdout, { digest: 'sha256:a' }),
      policy,
    });
    const both = evaluateCandidate({
      dataset: holdout,
      candidate: scoredWith(model, holdout, { digest: 'sha256:a' }),
      champion: scoredWith(model, holdout, { digest: 'sha256:b', version: 1 }),
      policy,
    });
    for (const side of [first.candidate, both.candidate, both.champion!]) {
      expect(side.intervals).toMatchObject({ confidence: 0.95, resamples: 200, seed: 1 });
      expect(Object.keys(side.intervals!.metrics).sort()).toEqual(Object.keys(side.metrics).sort());
      for (const [metric, value] of Object.entries(side.metrics)) {
        const ci = side.intervals!.metrics[metric]!;
        expect(ci.lower!).toBeLessThanOrEqual(value! + 1e-9);
        expect(ci.upper!).toBeGreaterThanOrEqual(value! - 1e-9);
        expect(ci.upper!).toBeGreaterThan(ci.lower!);
      }
    }
    // The same model on the same resampled rows: the same interval on both sides.
    expect(both.champion!.intervals!.metrics).toEqual(both.candidate.intervals!.metrics);
  });

  it('still reads a stored report written before intervals existed', () => {
    const report = evaluateCandidate({
      dataset: holdout,
      candidate: scoredWith(model, holdout, { digest: 'sha256:a' }),
      policy,
    });
    const { intervals: _dropped, ...candidate } = report.candidate;
    const old = { ...report, candidate };
    expect(evaluationReportSchema.parse(JSON.parse(JSON.stringify(old))).candidate.intervals).toBeUndefined();
  });
});
