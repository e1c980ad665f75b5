import { evaluationBootstrap, metricIntervals, pairedBootstrap } from '../../../lib/evaluation/bootstrap';
import {
  classificationWeightedMetrics,
  regressionWeightedMetrics,
  type WeightedMetrics,
} from '../../../lib/evaluation/resample';
import type { MetricFn } from '../../../lib/metrics/metrics';
import { classificationMetricFns, regressionMetricFns } from '../../../lib/metrics/metrics';
import { createPrng } from '../../../lib/training/prng';

/** n rows of K classes; probabilities rounded to 0.05 so scores tie often (AUC's tie rule counts). */
function classification(n: number, K: number, seed: number) {
  const prng = createPrng(seed);
  const y = new Int32Array(n);
  const P = new Float64Array(n * K);
  for (let i = 0; i < n; i++) {
    y[i] = prng.nextInt(K);
    let sum = 0;
    for (let k = 0; k < K; k++) {
      const v = Math.round((prng.next() + (k === y[i] ? 0.7 : 0)) * 20) / 20 + 0.05;
      P[i * K + k] = v;
      sum += v;
    }
    for (let k = 0; k < K; k++) P[i * K + k] = P[i * K + k]! / sum;
  }
  return { y, P };
}

function regression(n: number, seed: number) {
  const prng = createPrng(seed);
  const y = Float64Array.from({ length: n }, () => prng.next() * 100 - 50);
  const yhat = Float64Array.from(y, (v) => v + (prng.next() - 0.5) * 7);
  return { y, yhat };
}

/** Resample counts as the bootstrap draws them (n draws with replacement). */
function counts(n: number, seed: number): Uint32Array {
  const prng = createPrng(seed);
  const c = new Uint32Array(n);
  for (let i = 0; i < n; i++) c[prng.nextInt(n)]!++;
  return c;
}

function asRecord(m: WeightedMetrics, w?: Uint32Array): Record<string, number> {
  const out = new Float64Array(m.names.length);
  m.evaluate(w, out);
  return Object.fromEntries(m.names.map((k, j) => [k, out[j]!]));
}

function fnsAt(fns: Record<string, MetricFn>, w?: Uint32Array): Record<string, number> {
  return Object.fromEntries(Object.entries(fns).map(([k, f]) => [k, f(w)]));
}

describe('every metric of a model under one resample, in one pass', () => {
  it.each([
    ['binary', 2],
    ['three classes', 3],
  ])('equals the classification MetricFns bit for bit (%s), weighted and not', (_, K) => {
    const { y, P } = classification(257, K, 11);
    const fast = classificationWeightedMetrics(y, P, K);
    const fns = classificationMetricFns(y, P, K);
    expect(fast.names).toEqual(Object.keys(fns));
    expect(asRecord(fast)).toEqual(fnsAt(fns));
    for (const seed of [1, 2, 3]) {
      const w = counts(y.length, seed);
      expect(asRecord(fast, w)).toEqual(fnsAt(fns, w));
    }
  });

  it('equals the regression MetricFns bit for bit, weighted and not', () => {
    const { y, yhat } = regression(301, 5);
    const fast = regressionWeightedMetrics(y, yhat);
    const fns = regressionMetricFns(y, yhat);
    expect(fast.names).toEqual(Object.keys(fns));
    expect(asRecord(fast)).toEqual(fnsAt(fns));
    for (const seed of [1, 2, 3]) {
      const w = counts(y.length, seed);
      expect(asRecord(fast, w)).toEqual(fnsAt(fns, w));
    }
  });

  it('gives the same NaN and zeros as the MetricFns when a resample holds one class only', () => {
    const y = Int32Array.from([0, 0, 1, 1]);
    const P = Float64Array.from([0.9, 0.1, 0.6, 0.4, 0.3, 0.7, 0.2, 0.8]);
    const w = Uint32Array.from([2, 2, 0, 0]);
    const fast = asRecord(classificationWeightedMetrics(y, P, 2), w);
    expect(fast).toEqual(fnsAt(classificationMetricFns(y, P, 2), w));
    expect(fast.roc_auc).toBeNaN();
    expect(fast.accuracy).toBe(1);
    expect(fast.precision).toBe(0);
  });

  it('ROC AUC under weights equals the MetricFn bit for bit with every score tied, and with large weights', () => {
    const n = 1000;
    const prng = createPrng(4);
    const y = Int32Array.from({ length: n }, () => prng.nextInt(2));
    const flat = new Float64Array(2 * n).fill(0.5);
    const wide = Float64Array.from({ length: 2 * n }, (_, j) =>
      j % 2 === 1 ? Math.round(prng.next() * 7) / 7 : 0,
    );
    for (let i = 0; i < n; i++) wide[2 * i] = 1 - wide[2 * i + 1]!;
    const heavy = Uint32Array.from({ length: n }, () => prng.nextInt(5000));
    for (const P of [flat, wide]) {
      const fast = asRecord(classificationWeightedMetrics(y, P, 2), heavy);
      expect(fast.roc_auc).toBe(classificationMetricFns(y, P, 2).roc_auc(heavy));
    }
    expect(asRecord(classificationWeightedMetrics(y, flat, 2), heavy).roc_auc).toBe(0.5);
  });

  it('small case by hand: weights count rows, ties count half', () => {
    // Scores 0.2 (neg), 0.5 (pos), 0.5 (neg), 0.9 (pos); weights 1, 2, 1, 1.
    const y = Int32Array.from([0, 1, 0, 1]);
    const P = Float64Array.from([0.8, 0.2, 0.5, 0.5, 0.5, 0.5, 0.1, 0.9]);
    const out = asRecord(classificationWeightedMetrics(y, P, 2), Uint32Array.from([1, 2, 1, 1]));
    // Positives: the tied pair (weight 2) beats 1 negative and ties 1 → 2 × 1.5; 0.9 beats 2 → 2.
    expect(out.roc_auc).toBe((2 * 1.5 + 2) / (3 * 2));
    // Argmax picks the first class on ties: rows 2 and 3 → class 0, so the weight-2 row misses.
    expect(out.accuracy).toBe(3 / 5);
    expect(out.log_loss).toBeCloseTo(
      -(Math.log(0.8) + 2 * Math.log(0.5) + Math.log(0.5) + Math.log(0.9)) / 5,
      15,
    );
  });
});

describe('the evaluation bootstrap in one pass', () => {
  const opts = { resamples: 200, confidence: 0.9, seed: 42 };

  it('gives exactly the intervals and the paired difference of metricIntervals and pairedBootstrap', () => {
    const { y, P } = classification(500, 2, 3);
    const Q = Float64Array.from(P, (p, i) => (i % 2 === 1 ? Math.min(1, p * 0.9 + 0.05) : p));
    for (let i = 0; i < y.length; i++) Q[2 * i] = 1 - Q[2 * i + 1]!;
    const a = classificationMetricFns(y, P, 2);
    const b = classificationMetricFns(y, Q, 2);
    const old = metricIntervals(y.length, [a, b], opts);
    const oldPaired = pairedBootstrap(y.length, a.roc_auc, b.roc_auc, opts);
    const fast = evaluationBootstrap(
      y.length,
      [classificationWeightedMetrics(y, P, 2), classificationWeightedMetrics(y, Q, 2)],
      { ...opts, paired: { metric: 'roc_auc', estimate: a.roc_auc() - b.roc_auc() } },
    );
    expect(fast.intervals).toEqual(old);
    expect(fast.comparison).toEqual(oldPaired);
  });

  it('regression too, and one model alone', () => {
    const { y, yhat } = regression(400, 8);
    const fns = regressionMetricFns(y, yhat);
    const fast = evaluationBootstrap(y.length, [regressionWeightedMetrics(y, yhat)], opts);
    expect(fast.intervals).toEqual(metricIntervals(y.length, [fns], opts));
    expect(fast.comparison).toBeUndefined();
  });

  it('is deterministic for a seed and moves with it', () => {
    const { y, P } = classification(300, 3, 9);
    const m = [classificationWeightedMetrics(y, P, 3)];
    const r1 = evaluationBootstrap(y.length, m, opts);
    expect(evaluationBootstrap(y.length, m, opts)).toEqual(r1);
    expect(evaluationBootstrap(y.length, m, { ...opts, seed: 43 }).intervals[0]!.roc_auc).not.toEqual(
      r1.intervals[0]!.roc_auc,
    );
  });

  it('no rows: every interval null, no comparison', () => {
    const empty = classificationWeightedMetrics(new Int32Array(0), new Float64Array(0), 2);
    const r = evaluationBootstrap(0, [empty, empty], {
      ...opts,
      paired: { metric: 'roc_auc', estimate: NaN },
    });
    expect(r.intervals[0]!.accuracy).toEqual({ lower: null, upper: null });
    expect(r.comparison).toBeUndefined();
  });
});
