import {
  calibrationBins,
  classificationMetricFns,
  confusionMatrix,
  higherIsBetter,
  regressionMetricFns,
  rocAuc,
  summarizeClassification,
  summarizeRegression,
} from '../../../lib/metrics/metrics';

/** Binary probabilities (n × 2) from positive-class probabilities. */
const binary = (p1: number[]) => Float64Array.from(p1.flatMap((p) => [1 - p, p]));

describe('classification metrics (hand-computed)', () => {
  // y = 0 0 1 1, p(1) = .1 .4 .35 .8: argmax predicts 0 0 0 1
  const y = Int32Array.from([0, 0, 1, 1]);
  const P = binary([0.1, 0.4, 0.35, 0.8]);
  const m = summarizeClassification(y, P, 2).metrics;

  it('accuracy, precision, recall, F1', () => {
    expect(m.accuracy).toBeCloseTo(0.75, 12);
    expect(m.precision).toBeCloseTo(1, 12); // 1 TP, 0 FP
    expect(m.recall).toBeCloseTo(0.5, 12); // 1 of 2 positives
    expect(m.f1).toBeCloseTo(2 / 3, 12);
    // class 0: precision 2/3, recall 1, F1 0.8; class 1: precision 1, recall 0.5, F1 2/3
    expect(m.precision_macro).toBeCloseTo((2 / 3 + 1) / 2, 12);
    expect(m.recall_macro).toBeCloseTo(0.75, 12);
    expect(m.f1_macro).toBeCloseTo((0.8 + 2 / 3) / 2, 12);
  });

  it('ROC AUC, log loss, Brier', () => {
    // 4 positive/negative pairs, 3 ranked correctly
    expect(m.roc_auc).toBeCloseTo(0.75, 12);
    expect(m.log_loss).toBeCloseTo(-(Math.log(0.9) + Math.log(0.6) + Math.log(0.35) + Math.log(0.8)) / 4, 12);
    expect(m.brier).toBeCloseTo((2 * 0.1 ** 2 + 2 * 0.4 ** 2 + 2 * 0.65 ** 2 + 2 * 0.2 ** 2) / 4, 12);
  });

  it('counts tied scores as half in ROC AUC and treats weights as repeated rows', () => {
    expect(rocAuc(y, binary([0.5, 0.5, 0.5, 0.5]), 2)).toBeCloseTo(0.5, 12);
    // one tie between a positive and a negative: (1 + 1 + 0.5 + 1) / 4
    expect(rocAuc(y, binary([0.1, 0.4, 0.4, 0.8]), 2)).toBeCloseTo(0.875, 12);
    const weighted = classificationMetricFns(y, P, 2);
    const repeated = classificationMetricFns(
      Int32Array.from([0, 0, 0, 1, 1]),
      binary([0.1, 0.1, 0.4, 0.35, 0.8]),
      2,
    );
    const w = [2, 1, 1, 1];
    for (const k of ['accuracy', 'roc_auc', 'log_loss', 'f1_macro', 'brier'] as const) {
      expect(weighted[k](w)).toBeCloseTo(repeated[k](), 12);
    }
  });

  it('confusion matrix and macro one-vs-rest AUC for three classes', () => {
    const y3 = Int32Array.from([0, 1, 2, 2, 1]);
    const P3 = Float64Array.from([0.8, 0.1, 0.1, 0.2, 0.7, 0.1, 0.1, 0.2, 0.7, 0.5, 0.1, 0.4, 0.3, 0.6, 0.1]);
    const s = summarizeClassification(y3, P3, 3);
    expect(s.confusionMatrix).toEqual([
      [1, 0, 0],
      [0, 2, 0],
      [1, 0, 1],
    ]);
    expect(confusionMatrix(y3, Int32Array.from([0, 1, 2, 0, 1]), 3, [1, 1, 1, 3, 1])[2]).toEqual([3, 0, 1]);
    expect(s.metrics.accuracy).toBeCloseTo(0.8, 12);
    // class 0: scores .8 (+), .2 .1 .5 .3 (-) → 1; class 1: .7 .6 (+) vs .1 .2 .1 → 1;
    // class 2: .7 .4 (+) vs .1 .1 .1 → 1
    expect(s.metrics.roc_auc).toBeCloseTo(1, 12);
  });

  it('calibration bins', () => {
    const c = calibrationBins(Int32Array.from([0, 1, 1, 1]), binary([0.05, 0.15, 0.95, 0.92]), 2, 10);
    expect(c.bins).toHaveLength(10);
    expect(c.bins[0]).toMatchObject({ count: 1, observedRate: 0 });
    expect(c.bins[0]!.meanPredicted).toBeCloseTo(0.05, 12);
    expect(c.bins[1]).toMatchObject({ count: 1, observedRate: 1 });
    expect(c.bins[9]).toMatchObject({ count: 2, observedRate: 1 });
    expect(c.bins[9]!.meanPredicted).toBeCloseTo(0.935, 12);
    expect(c.expectedCalibrationError).toBeCloseTo((0.05 + 0.85 + 2 * 0.065) / 4, 12);
  });
});

describe('regression metrics (hand-computed)', () => {
  it('RMSE, MAE, R²', () => {
    const y = Float64Array.from([3, -0.5, 2, 7]);
    const yhat = Float64Array.from([2.5, 0, 2, 8]);
    const m = summarizeRegression(y, yhat);
    expect(m.mae).toBeCloseTo(0.5, 12);
    expect(m.rmse).toBeCloseTo(Math.sqrt(0.375), 12);
    // SS_res = 1.5; mean y = 2.875; SS_tot = 29.1875
    expect(m.r2).toBeCloseTo(1 - 1.5 / 29.1875, 12);
    expect(regressionMetricFns(y, yhat).mae([0, 0, 1, 1])).toBeCloseTo(0.5, 12);
  });

  it('knows which direction is better', () => {
    expect(higherIsBetter('roc_auc')).toBe(true);
    expect(higherIsBetter('r2')).toBe(true);
    expect(higherIsBetter('rmse')).toBe(false);
    expect(higherIsBetter('log_loss')).toBe(false);
  });
});
