import { pairedBootstrap, quantile } from '../../../lib/evaluation/bootstrap';
import { classificationMetricFns } from '../../../lib/metrics/metrics';
import { createPrng } from '../../../lib/training/prng';

/** Labels and two models' probabilities: A is right on ~90% of rows, B on ~80%. */
function scenario(n: number, seed: number) {
  const prng = createPrng(seed);
  const y = new Int32Array(n);
  const A = new Float64Array(n * 2);
  const B = new Float64Array(n * 2);
  for (let i = 0; i < n; i++) {
    y[i] = prng.nextInt(2);
    const a = prng.next() < 0.9 ? y[i]! : 1 - y[i]!;
    const b = prng.next() < 0.8 ? y[i]! : 1 - y[i]!;
    const pa = a === 1 ? 0.5 + prng.next() / 2 : prng.next() / 2;
    const pb = b === 1 ? 0.5 + prng.next() / 2 : prng.next() / 2;
    A.set([1 - pa, pa], 2 * i);
    B.set([1 - pb, pb], 2 * i);
  }
  return { y, a: classificationMetricFns(y, A, 2), b: classificationMetricFns(y, B, 2) };
}

describe('paired bootstrap', () => {
  const s = scenario(2_000, 1);
  const opts = { resamples: 500, confidence: 0.95, seed: 7 };

  it('is deterministic for a seed', () => {
    const r1 = pairedBootstrap(2_000, s.a.accuracy, s.b.accuracy, opts);
    const r2 = pairedBootstrap(2_000, s.a.accuracy, s.b.accuracy, opts);
    expect(r2).toEqual(r1);
    const r3 = pairedBootstrap(2_000, s.a.accuracy, s.b.accuracy, { ...opts, seed: 8 });
    expect(r3.lower).not.toBe(r1.lower);
    expect(r3.estimate).toBe(r1.estimate);
  });

  it('puts the real difference inside the interval and excludes 0 when one model is clearly better', () => {
    const r = pairedBootstrap(2_000, s.a.accuracy, s.b.accuracy, opts);
    expect(r.estimate).toBeCloseTo(s.a.accuracy() - s.b.accuracy(), 12);
    expect(r.lower).toBeLessThan(r.estimate);
    expect(r.upper).toBeGreaterThan(r.estimate);
    expect(r.lower).toBeGreaterThan(0);
    const auc = pairedBootstrap(2_000, s.a.roc_auc, s.b.roc_auc, opts);
    expect(auc.lower).toBeGreaterThan(0);
  });

  it('gives a zero-width interval for a model compared with itself', () => {
    const r = pairedBootstrap(2_000, s.a.log_loss, s.a.log_loss, opts);
    expect([r.estimate, r.lower, r.upper]).toEqual([0, 0, 0]);
  });

  it('is narrower than treating the two models as independent', () => {
    // Both models share most of their errors here, so the paired interval must be tight.
    const prng = createPrng(3);
    const n = 1_000;
    const y = new Int32Array(n).map(() => prng.nextInt(2));
    const P = new Float64Array(2 * n);
    const Q = new Float64Array(2 * n);
    for (let i = 0; i < n; i++) {
      const p = prng.next();
      P.set([1 - p, p], 2 * i);
      const q = Math.min(1, p + 0.01);
      Q.set([1 - q, q], 2 * i);
    }
    const a = classificationMetricFns(y, P, 2);
    const b = classificationMetricFns(y, Q, 2);
    const paired = pairedBootstrap(n, a.brier, b.brier, opts);
    const single = pairedBootstrap(n, a.brier, () => 0, opts);
    expect(paired.upper - paired.lower).toBeLessThan((single.upper - single.lower) / 5);
  });

  it('linear-interpolated quantiles', () => {
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantile([1, 2, 3, 4], 0)).toBe(1);
    expect(quantile([1, 2, 3, 4], 1)).toBe(4);
    expect(quantile([10, 20], 0.25)).toBe(12.5);
  });
});
