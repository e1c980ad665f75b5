/**
 * Model metrics on typed arrays, shared by training (train/validation metrics of a job) and
 * evaluation (candidate vs champion), so they sit below both. Every metric takes optional per-row
 * weights: the paired bootstrap passes resample counts as weights, which is the same as evaluating
 * on the resampled rows but needs no copying and lets ROC AUC reuse one sort across all resamples.
 *
 * Classification: `y` holds class indexes 0..K-1 and `P` the n × K probabilities (row-major).
 */
import type { MetricName, classificationMetricNames } from '../contracts/evaluationPolicy';
import { regressionMetricNames } from '../contracts/evaluationPolicy';

export type Weights = ArrayLike<number> | undefined;

const lowerIsBetter: ReadonlySet<MetricName> = new Set(['log_loss', 'brier', 'rmse', 'mae']);
/** True for metrics where larger values are better (accuracy, AUC, R²); false for losses and errors. */
export function higherIsBetter(metric: MetricName): boolean {
  return !lowerIsBetter.has(metric);
}

export function isRegressionMetric(metric: MetricName): boolean {
  return (regressionMetricNames as readonly string[]).includes(metric);
}

const w1 = (w: Weights, i: number): number => (w ? w[i]! : 1);

/** Index of the most probable class per row (first one on ties). */
export function argmaxRows(P: Float64Array, n: number, K: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    const o = i * K;
    for (let k = 1; k < K; k++) if (P[o + k]! > P[o + best]!) best = k;
    out[i] = best;
  }
  return out;
}

/** K × K matrix: rows are actual classes, columns predicted classes (weighted counts). */
export function confusionMatrix(y: Int32Array, pred: Int32Array, K: number, w?: Weights): number[][] {
  const m = Array.from({ length: K }, () => new Array<number>(K).fill(0));
  for (let i = 0; i < y.length; i++) m[y[i]!]![pred[i]!]! += w1(w, i);
  return m;
}

export interface ClassScores {
  precision: number[];
  recall: number[];
  f1: number[];
  support: number[];
}

/** Per-class precision, recall and F1 (0 where undefined, as scikit-learn's zero_division=0). */
export function classScores(cm: number[][]): ClassScores {
  const K = cm.length;
  const out: ClassScores = { precision: [], recall: [], f1: [], support: [] };
  for (let k = 0; k < K; k++) {
    const tp = cm[k]![k]!;
    let predicted = 0;
    let actual = 0;
    for (let j = 0; j < K; j++) {
      predicted += cm[j]![k]!;
      actual += cm[k]![j]!;
    }
    const p = predicted > 0 ? tp / predicted : 0;
    const r = actual > 0 ? tp / actual : 0;
    out.precision.push(p);
    out.recall.push(r);
    out.f1.push(p + r > 0 ? (2 * p * r) / (p + r) : 0);
    out.support.push(actual);
  }
  return out;
}

function mean(xs: number[]): number {
  return xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length;
}

/**
 * Scores sorted once for ROC AUC: `order` lists rows by ascending score, `groupStart` the start of
 * each run of tied scores (plus n at the end).
 */
export interface RankIndex {
  order: Uint32Array;
  groupStart: Uint32Array;
}

export function rankIndex(scores: Float64Array): RankIndex {
  const n = scores.length;
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => scores[a]! - scores[b]! || a - b);
  const starts: number[] = [];
  for (let t = 0; t < n; t++) if (t === 0 || scores[order[t]!] !== scores[order[t - 1]!]) starts.push(t);
  starts.push(n);
  return { order, groupStart: Uint32Array.from(starts) };
}

/**
 * Weighted ROC AUC (Mann–Whitney U with ties counted half). `positiveByRank[t]` is 1 when the row
 * at rank t is positive. NaN when one side has no weight.
 */
export function aucFromIndex(idx: RankIndex, positiveByRank: Uint8Array, w?: Weights): number {
  const { order, groupStart } = idx;
  const groups = groupStart.length - 1;
  let negBelow = 0;
  let sum = 0;
  let totalPos = 0;
  for (let g = 0; g < groups; g++) {
    const end = groupStart[g + 1]!;
    let gp = 0;
    let gw = 0;
    for (let t = groupStart[g]!; t < end; t++) {
      const wi = w ? w[order[t]!]! : 1;
      gw += wi;
      gp += wi * positiveByRank[t]!;
    }
    const gn = gw - gp;
    sum += gp * (negBelow + 0.5 * gn);
    negBelow += gn;
    totalPos += gp;
  }
  const denom = totalPos * negBelow;
  return denom > 0 ? sum / denom : NaN;
}

export function rocAuc(y: Int32Array, P: Float64Array, K: number, w?: Weights): number {
  return prepareAuc(y, P, K)(w);
}

/** ROC AUC with the sorting done once: binary, or macro one-vs-rest over classes present. */
export function prepareAuc(y: Int32Array, P: Float64Array, K: number): (w?: Weights) => number {
  const n = y.length;
  const classes = K === 2 ? [1] : Array.from({ length: K }, (_, k) => k);
  const indexes = classes.map((k) => {
    const s = new Float64Array(n);
    for (let i = 0; i < n; i++) s[i] = P[i * K + k]!;
    const idx = rankIndex(s);
    return { idx, positive: Uint8Array.from(idx.order, (i) => (y[i] === k ? 1 : 0)) };
  });
  return (w) => {
    const values: number[] = [];
    for (const { idx, positive } of indexes) {
      const a = aucFromIndex(idx, positive, w);
      if (!Number.isNaN(a)) values.push(a);
    }
    return values.length > 0 ? mean(values) : NaN;
  };
}

const EPS = 1e-15;

export function logLoss(y: Int32Array, P: Float64Array, K: number, w?: Weights): number {
  let s = 0;
  let ws = 0;
  for (let i = 0; i < y.length; i++) {
    const wi = w1(w, i);
    if (wi === 0) continue;
    const p = Math.min(1 - EPS, Math.max(EPS, P[i * K + y[i]!]!));
    s -= wi * Math.log(p);
    ws += wi;
  }
  return ws > 0 ? s / ws : NaN;
}

/** Multiclass Brier score: mean over rows of Σ_k (p_k − [y = k])². */
export function brier(y: Int32Array, P: Float64Array, K: number, w?: Weights): number {
  let s = 0;
  let ws = 0;
  for (let i = 0; i < y.length; i++) {
    const wi = w1(w, i);
    if (wi === 0) continue;
    let r = 0;
    for (let k = 0; k < K; k++) {
      const d = P[i * K + k]! - (y[i] === k ? 1 : 0);
      r += d * d;
    }
    s += wi * r;
    ws += wi;
  }
  return ws > 0 ? s / ws : NaN;
}

export interface CalibrationBin {
  lower: number;
  upper: number;
  count: number;
  meanPredicted: number;
  observedRate: number;
}

/**
 * Reliability bins of equal width. Binary: the positive-class probability against the positive
 * rate. Multiclass: the top-class confidence against accuracy. Empty bins are kept (count 0).
 */
export function calibrationBins(
  y: Int32Array,
  P: Float64Array,
  K: number,
  bins = 10,
): { bins: CalibrationBin[]; expectedCalibrationError: number } {
  const count = new Float64Array(bins);
  const sumP = new Float64Array(bins);
  const sumHit = new Float64Array(bins);
  for (let i = 0; i < y.length; i++) {
    let p: number;
    let hit: number;
    if (K === 2) {
      p = P[2 * i + 1]!;
      hit = y[i] === 1 ? 1 : 0;
    } else {
      let best = 0;
      for (let k = 1; k < K; k++) if (P[i * K + k]! > P[i * K + best]!) best = k;
      p = P[i * K + best]!;
      hit = y[i] === best ? 1 : 0;
    }
    const b = Math.min(bins - 1, Math.floor(p * bins));
    count[b]!++;
    sumP[b]! += p;
    sumHit[b]! += hit;
  }
  let ece = 0;
  const out: CalibrationBin[] = [];
  for (let b = 0; b < bins; b++) {
    const c = count[b]!;
    const meanPredicted = c > 0 ? sumP[b]! / c : 0;
    const observedRate = c > 0 ? sumHit[b]! / c : 0;
    ece += c * Math.abs(meanPredicted - observedRate);
    out.push({ lower: b / bins, upper: (b + 1) / bins, count: c, meanPredicted, observedRate });
  }
  return { bins: out, expectedCalibrationError: y.length > 0 ? ece / y.length : 0 };
}

export type MetricFn = (w?: Weights) => number;

/** Every classification metric as a function of row weights, with shared work done once. */
export function classificationMetricFns(
  y: Int32Array,
  P: Float64Array,
  K: number,
): Record<(typeof classificationMetricNames)[number], MetricFn> {
  const pred = argmaxRows(P, y.length, K);
  const scores = (w?: Weights) => classScores(confusionMatrix(y, pred, K, w));
  const auc = prepareAuc(y, P, K);
  const positive = K === 2 ? 1 : -1;
  const onPositiveOrMacro = (pick: (s: ClassScores) => number[]) => (w?: Weights) => {
    const s = pick(scores(w));
    return positive >= 0 ? s[positive]! : mean(s);
  };
  return {
    accuracy: (w) => {
      let hit = 0;
      let all = 0;
      for (let i = 0; i < y.length; i++) {
        const wi = w1(w, i);
        all += wi;
        if (pred[i] === y[i]) hit += wi;
      }
      return all > 0 ? hit / all : NaN;
    },
    precision: onPositiveOrMacro((s) => s.precision),
    recall: onPositiveOrMacro((s) => s.recall),
    f1: onPositiveOrMacro((s) => s.f1),
    precision_macro: (w) => mean(scores(w).precision),
    recall_macro: (w) => mean(scores(w).recall),
    f1_macro: (w) => mean(scores(w).f1),
    roc_auc: auc,
    log_loss: (w) => logLoss(y, P, K, w),
    brier: (w) => brier(y, P, K, w),
  };
}

export function regressionMetricFns(
  y: Float64Array,
  yhat: Float64Array,
): Record<(typeof regressionMetricNames)[number], MetricFn> {
  const n = y.length;
  return {
    rmse: (w) => {
      let s = 0;
      let ws = 0;
      for (let i = 0; i < n; i++) {
        const wi = w1(w, i);
        const e = yhat[i]! - y[i]!;
        s += wi * e * e;
        ws += wi;
      }
      return ws > 0 ? Math.sqrt(s / ws) : NaN;
    },
    mae: (w) => {
      let s = 0;
      let ws = 0;
      for (let i = 0; i < n; i++) {
        const wi = w1(w, i);
        s += wi * Math.abs(yhat[i]! - y[i]!);
        ws += wi;
      }
      return ws > 0 ? s / ws : NaN;
    },
    r2: (w) => {
      let ws = 0;
      let sy = 0;
      for (let i = 0; i < n; i++) {
        const wi = w1(w, i);
        ws += wi;
        sy += wi * y[i]!;
      }
      if (ws === 0) return NaN;
      const my = sy / ws;
      let ssRes = 0;
      let ssTot = 0;
      for (let i = 0; i < n; i++) {
        const wi = w1(w, i);
        const e = y[i]! - yhat[i]!;
        const d = y[i]! - my;
        ssRes += wi * e * e;
        ssTot += wi * d * d;
      }
      return ssTot > 0 ? 1 - ssRes / ssTot : ssRes === 0 ? 1 : NaN;
    },
  };
}

export interface ClassificationSummary {
  metrics: Record<(typeof classificationMetricNames)[number], number>;
  confusionMatrix: number[][];
  perClass: ClassScores;
  calibration: { bins: CalibrationBin[]; expectedCalibrationError: number };
}

export function summarizeClassification(y: Int32Array, P: Float64Array, K: number): ClassificationSummary {
  const fns = classificationMetricFns(y, P, K);
  const metrics = Object.fromEntries(
    Object.entries(fns).map(([k, f]) => [k, f()]),
  ) as ClassificationSummary['metrics'];
  const cm = confusionMatrix(y, argmaxRows(P, y.length, K), K);
  return { metrics, confusionMatrix: cm, perClass: classScores(cm), calibration: calibrationBins(y, P, K) };
}

export function summarizeRegression(
  y: Float64Array,
  yhat: Float64Array,
): Record<(typeof regressionMetricNames)[number], number> {
  const fns = regressionMetricFns(y, yhat);
  return { rmse: fns.rmse(), mae: fns.mae(), r2: fns.r2() };
}
