/**
 * Every metric of a model under one resample's row weights, in one pass over the rows (plus one
 * pass in score order per ROC AUC), for the bootstrap of an evaluation report.
 *
 * The `MetricFn`s of lib/metrics each walk the rows on their own: ten classification metrics per
 * model per resample, six of them rebuilding the same confusion matrix and log loss taking a
 * logarithm per row every time. Here the per-row terms are computed once (the log of the true
 * class's probability, the Brier term, the confusion-matrix cell, the squared and absolute error)
 * and a resample only sums them with its weights, in row order and skipping nothing but zero
 * weights, so each value is bit for bit what the matching `MetricFn` gives for the same weights
 * (test/unit/evaluation/resample.test.ts pins that).
 */
import { classificationMetricNames } from '../contracts/evaluationPolicy';
import type { regressionMetricNames } from '../contracts/evaluationPolicy';
import type { RankIndex } from '../metrics/metrics';
import { aucFromIndex, argmaxRows, classScores, rankIndex } from '../metrics/metrics';

/** All of one model's metrics as a function of row weights (resample counts), written into `out`. */
export interface WeightedMetrics {
  /** The metric names, in the order `evaluate` writes them (that of the matching `*MetricFns`). */
  readonly names: readonly string[];
  /** Writes each metric's value under weights `w` (one per row; none = every row once) into `out`. */
  evaluate(w: ArrayLike<number> | undefined, out: Float64Array): void;
}

const EPS = 1e-15;

/** One score's rows sorted once: `runStart[t]` is 1 where a run of tied scores begins. */
interface Ranking {
  idx: RankIndex;
  positive: Uint8Array;
  runStart: Uint8Array;
}

/**
 * `aucFromIndex` under integer weights, in one branch-free pass in score order (a run of ties
 * used to mean an inner loop and a mispredicted branch per run). Every sum holds integers or
 * halves, so it is exact and equals `aucFromIndex` bit for bit.
 */
function weightedAuc({ idx, positive, runStart }: Ranking, w: ArrayLike<number>): number {
  const order = idx.order;
  const n = order.length;
  // Below 2^26 rows every sum here is an integer (or half) under 2^53, so exact in any order.
  if (n >= 2 ** 26) return aucFromIndex(idx, positive, w);
  // Per run of tied scores, aucFromIndex adds gp·(negatives below the run + ½·gn). The same sum
  // taken row by row without a branch: each positive's weight times the negatives below its run,
  // plus ½·gp·gn once per run (added when the next run starts; `keep` clears the run's counts).
  let negBelow = 0;
  let totalPos = 0;
  let negAtRunStart = 0;
  let gp = 0;
  let gn = 0;
  let sum = 0;
  let ties = 0;
  for (let t = 0; t < n; t++) {
    const st = runStart[t]!;
    ties += st * (gp * gn);
    const keep = st - 1; // 0 at a run's start, else all ones
    gp &= keep;
    gn &= keep;
    negAtRunStart += st * (negBelow - negAtRunStart);
    const wi = w[order[t]!]! | 0;
    const pw = wi & -positive[t]!;
    const nw = wi - pw;
    sum += pw * negAtRunStart;
    gp = (gp + pw) | 0;
    gn = (gn + nw) | 0;
    totalPos = (totalPos + pw) | 0;
    negBelow = (negBelow + nw) | 0;
  }
  ties += gp * gn;
  sum += 0.5 * ties;
  const denom = totalPos * negBelow;
  return denom > 0 ? sum / denom : NaN;
}

/**
 * The per-row terms of a classifier, and where a pass leaves its sums: `sums` = [weight, hits,
 * −Σ w·log p, Σ w·Brier term], `cm` the K × K confusion matrix (row-major) of the weights.
 */
interface RowTerms {
  n: number;
  K: number;
  /** y · K + predicted class. */
  cell: Int32Array;
  hit: Uint8Array;
  logP: Float64Array;
  brierTerm: Float64Array;
  cm: Float64Array;
  sums: Float64Array;
}

// The passes are small functions of their own: inside the closure, the branches a run never takes
// kept V8 deoptimizing the whole of it on every call.

/**
 * Binary, integer weights: the confusion matrix from three weighted counts (positives, predicted
 * positives, true positives) instead of a store per row into the matrix; the counts are int32 sums
 * (a resample's counts add up to n), about three times faster than float sums and the same
 * integers. No branch on the weight or the hit: a resample's zeros and hits fall at random, and
 * adding 0 leaves each sum as it was.
 */
function binaryPass(t: RowTerms, w: ArrayLike<number>): void {
  const { n, cell, hit, logP, brierTerm, cm, sums } = t;
  let total = 0;
  let hitCount = 0;
  let actual1 = 0;
  let predicted1 = 0;
  let tp = 0;
  let ll = 0;
  let br = 0;
  for (let i = 0; i < n; i++) {
    const wi = w[i]! | 0;
    const c = cell[i]!; // 2·y + pred
    total = (total + wi) | 0;
    hitCount = (hitCount + wi * hit[i]!) | 0;
    actual1 = (actual1 + wi * (c >> 1)) | 0;
    predicted1 = (predicted1 + wi * (c & 1)) | 0;
    tp = (tp + (wi & -((c >> 1) & c & 1))) | 0;
    ll -= wi * logP[i]!;
    br += wi * brierTerm[i]!;
  }
  cm[3] = tp;
  cm[2] = actual1 - tp;
  cm[1] = predicted1 - tp;
  cm[0] = total - actual1 - predicted1 + tp;
  sums[0] = total;
  sums[1] = hitCount;
  sums[2] = ll;
  sums[3] = br;
}

/** Any number of classes, any weights (none = each row once). */
function generalPass(t: RowTerms, w: ArrayLike<number> | undefined): void {
  const { n, cell, hit, logP, brierTerm, cm, sums } = t;
  cm.fill(0);
  let all = 0;
  let hits = 0;
  let ll = 0;
  let br = 0;
  for (let i = 0; i < n; i++) {
    const wi = w ? w[i]! : 1;
    all += wi;
    hits += wi * hit[i]!;
    cm[cell[i]!]! += wi;
    ll -= wi * logP[i]!;
    br += wi * brierTerm[i]!;
  }
  sums[0] = all;
  sums[1] = hits;
  sums[2] = ll;
  sums[3] = br;
}

function mean(xs: number[]): number {
  return xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length;
}

const CLASSIFICATION: readonly (typeof classificationMetricNames)[number][] = classificationMetricNames;

/**
 * {@link WeightedMetrics} of a classifier: `y` class indexes 0..K-1, `P` the n × K probabilities.
 * Same values as `classificationMetricFns(y, P, K)` for the same weights.
 */
export function classificationWeightedMetrics(y: Int32Array, P: Float64Array, K: number): WeightedMetrics {
  const n = y.length;
  const pred = argmaxRows(P, n, K);
  const cell = new Int32Array(n);
  const logP = new Float64Array(n);
  const brierTerm = new Float64Array(n);
  const hit = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const yi = y[i]!;
    cell[i] = yi * K + pred[i]!;
    hit[i] = pred[i] === yi ? 1 : 0;
    logP[i] = Math.log(Math.min(1 - EPS, Math.max(EPS, P[i * K + yi]!)));
    let r = 0;
    for (let k = 0; k < K; k++) {
      const d = P[i * K + k]! - (yi === k ? 1 : 0);
      r += d * d;
    }
    brierTerm[i] = r;
  }
  // ROC AUC: binary on the positive class, else one-vs-rest per class; sorted once.
  const aucClasses = K === 2 ? [1] : Array.from({ length: K }, (_, k) => k);
  const rankings: Ranking[] = aucClasses.map((k) => {
    const s = new Float64Array(n);
    for (let i = 0; i < n; i++) s[i] = P[i * K + k]!;
    const idx = rankIndex(s);
    const runStart = new Uint8Array(n);
    for (let g = 0; g + 1 < idx.groupStart.length; g++) runStart[idx.groupStart[g]!] = 1;
    return { idx, positive: Uint8Array.from(idx.order, (i) => (y[i] === k ? 1 : 0)), runStart };
  });
  const terms: RowTerms = {
    n,
    K,
    cell,
    hit,
    logP,
    brierTerm,
    cm: new Float64Array(K * K),
    sums: new Float64Array(4),
  };
  const cm = terms.cm;
  const cmRows = Array.from({ length: K }, () => new Array<number>(K).fill(0));
  return {
    names: CLASSIFICATION,
    evaluate(w, out) {
      if (w && K === 2 && n < 2 ** 31) binaryPass(terms, w);
      else generalPass(terms, w);
      const [all, hits, ll, br] = terms.sums as unknown as [number, number, number, number];
      for (let a = 0; a < K; a++) for (let b = 0; b < K; b++) cmRows[a]![b] = cm[a * K + b]!;
      const s = classScores(cmRows);
      const pick = (xs: number[]): number => (K === 2 ? xs[1]! : mean(xs));
      const aucs: number[] = [];
      for (const r of rankings) {
        const v = w ? weightedAuc(r, w) : aucFromIndex(r.idx, r.positive);
        if (!Number.isNaN(v)) aucs.push(v);
      }
      out[0] = all > 0 ? hits / all : NaN;
      out[1] = pick(s.precision);
      out[2] = pick(s.recall);
      out[3] = pick(s.f1);
      out[4] = mean(s.precision);
      out[5] = mean(s.recall);
      out[6] = mean(s.f1);
      out[7] = aucs.length > 0 ? mean(aucs) : NaN;
      out[8] = all > 0 ? ll / all : NaN;
      out[9] = all > 0 ? br / all : NaN;
    },
  };
}

const REGRESSION: readonly (typeof regressionMetricNames)[number][] = ['rmse', 'mae', 'r2'];

/** {@link WeightedMetrics} of a regressor; same values as `regressionMetricFns(y, yhat)`. */
export function regressionWeightedMetrics(y: Float64Array, yhat: Float64Array): WeightedMetrics {
  const n = y.length;
  // wi * e * e is (wi * e) * e, as in regressionMetricFns: the error is kept, not its square.
  const err = new Float64Array(n);
  const abs = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const e = yhat[i]! - y[i]!;
    err[i] = e;
    abs[i] = Math.abs(e);
  }
  return {
    names: REGRESSION,
    evaluate(w, out) {
      let ws = 0;
      let sy = 0;
      let s2 = 0;
      let sa = 0;
      for (let i = 0; i < n; i++) {
        const wi = w ? w[i]! : 1;
        if (wi === 0) continue;
        ws += wi;
        sy += wi * y[i]!;
        const e = err[i]!;
        s2 += wi * e * e;
        sa += wi * abs[i]!;
      }
      out[0] = ws > 0 ? Math.sqrt(s2 / ws) : NaN;
      out[1] = ws > 0 ? sa / ws : NaN;
      if (ws === 0) {
        out[2] = NaN;
        return;
      }
      const my = sy / ws;
      let ssTot = 0;
      for (let i = 0; i < n; i++) {
        const wi = w ? w[i]! : 1;
        if (wi === 0) continue;
        const d = y[i]! - my;
        ssTot += wi * d * d;
      }
      out[2] = ssTot > 0 ? 1 - s2 / ssTot : s2 === 0 ? 1 : NaN;
    },
  };
}
