import type { Prng } from '../training/prng';
import { createPrng } from '../training/prng';
import type { WeightedMetrics } from './resample';
import type { MetricFn } from '../metrics/metrics';

export interface PairedBootstrapResult {
  /** metricA − metricB on all rows. */
  estimate: number;
  /** Percentile confidence interval of the difference. */
  lower: number;
  upper: number;
  confidence: number;
  resamples: number;
  /** Resamples where the difference could not be computed (e.g. one class absent); left out. */
  skipped: number;
  seed: number;
  standardError: number;
}

/**
 * Paired bootstrap of the difference between two models' metric on the same rows. Each resample
 * draws n row indexes with replacement (seeded) and evaluates both metrics with the draw counts as
 * row weights, so both models always see the same resampled rows: the interval reflects the
 * variance of the difference, not of each model separately.
 */
export function pairedBootstrap(
  n: number,
  metricA: MetricFn,
  metricB: MetricFn,
  options: { resamples: number; confidence: number; seed: number },
): PairedBootstrapResult {
  const { resamples, seed } = options;
  const estimate = metricA() - metricB();
  const prng = createPrng(seed);
  const counts = new Uint32Array(n);
  const draws = new Uint32Array(n);
  const a = new Float64Array(resamples);
  const b = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    drawCounts(prng, counts, draws);
    a[r] = metricA(counts);
    b[r] = metricB(counts);
  }
  return pairedSummary(estimate, a, b, options);
}

/**
 * One resample's row weights: n row indexes drawn with replacement from the stream, counted per
 * row. The draw every bootstrap here makes, so one seed gives the same resampled rows to all.
 */
function drawCounts(prng: Prng, counts: Uint32Array, draws: Uint32Array): void {
  const n = counts.length;
  counts.fill(0);
  prng.fillInts(draws, n);
  for (let i = 0; i < n; i++) counts[draws[i]!]!++;
}

/** The percentile interval and standard error of a − b over the resamples whose difference is finite. */
function pairedSummary(
  estimate: number,
  a: Float64Array,
  b: Float64Array,
  options: { resamples: number; confidence: number; seed: number },
): PairedBootstrapResult {
  const { resamples, confidence, seed } = options;
  const diffs: number[] = [];
  let skipped = 0;
  for (let r = 0; r < a.length; r++) {
    const diff = a[r]! - b[r]!;
    if (Number.isFinite(diff)) diffs.push(diff);
    else skipped++;
  }
  diffs.sort((x, y) => x - y);
  const alpha = (1 - confidence) / 2;
  const m = diffs.length;
  let mean = 0;
  for (const d of diffs) mean += d / m;
  let v = 0;
  for (const d of diffs) v += (d - mean) ** 2;
  return {
    estimate,
    lower: m > 0 ? quantile(diffs, alpha) : NaN,
    upper: m > 0 ? quantile(diffs, 1 - alpha) : NaN,
    confidence,
    resamples,
    skipped,
    seed,
    standardError: m > 1 ? Math.sqrt(v / (m - 1)) : NaN,
  };
}

/** Linear-interpolated quantile of a sorted array (type 7, as R's default and numpy's). */
export function quantile(sorted: readonly number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/** A percentile interval of one metric; null when no resample could compute it. */
export interface MetricInterval {
  lower: number | null;
  upper: number | null;
}

/**
 * Bootstrap percentile intervals of every metric of one or more models, on the same resampled rows
 * (one draw per resample, shared by all metrics and models, seeded): the interval of each absolute
 * number people read on the report, the candidate's and the champion's alike, for a first model too.
 * Returns, per model, per metric, its interval.
 */
export function metricIntervals(
  n: number,
  models: readonly Readonly<Record<string, MetricFn>>[],
  options: { resamples: number; confidence: number; seed: number },
): Record<string, MetricInterval>[] {
  const { resamples, confidence, seed } = options;
  const prng = createPrng(seed);
  const counts = new Uint32Array(n);
  const draws = new Uint32Array(n);
  const samples = models.map((fns) => Object.fromEntries(Object.keys(fns).map((k) => [k, [] as number[]])));
  for (let b = 0; b < resamples && n > 0; b++) {
    drawCounts(prng, counts, draws);
    models.forEach((fns, m) => {
      for (const [k, f] of Object.entries(fns)) {
        const v = f(counts);
        if (Number.isFinite(v)) samples[m]![k]!.push(v);
      }
    });
  }
  return samples.map((byMetric) =>
    Object.fromEntries(
      Object.entries(byMetric).map(([k, values]) => [k, percentileInterval(values, confidence)]),
    ),
  );
}

/** The percentile interval of finite resampled values (sorted here); nulls when there are none. */
function percentileInterval(values: number[], confidence: number): MetricInterval {
  if (values.length === 0) return { lower: null, upper: null };
  const alpha = (1 - confidence) / 2;
  values.sort((a, b) => a - b);
  return { lower: quantile(values, alpha), upper: quantile(values, 1 - alpha) };
}

export interface EvaluationBootstrap {
  /** Per model (in the order given), per metric, its percentile interval. */
  intervals: Record<string, MetricInterval>[];
  /** The paired difference of `paired.metric` between the first two models, when asked for. */
  comparison?: PairedBootstrapResult;
}

/**
 * The whole bootstrap of an evaluation report in one pass over the resamples: the percentile
 * interval of every metric of every model, and the paired difference of one metric between the
 * first two models (candidate − champion). Each resample's row counts are drawn once and every
 * model's every metric read from them ({@link WeightedMetrics}); the draws are those of
 * {@link metricIntervals} and {@link pairedBootstrap} for the same seed, and the metric values the
 * same numbers, so the results are exactly theirs, found several times faster.
 */
export function evaluationBootstrap(
  n: number,
  models: readonly WeightedMetrics[],
  options: {
    resamples: number;
    confidence: number;
    seed: number;
    paired?: { metric: string; estimate: number };
  },
): EvaluationBootstrap {
  const { resamples, confidence, seed, paired } = options;
  const widths = models.map((m) => m.names.length);
  const values = models.map((m) => new Float64Array(resamples * m.names.length));
  const runs = n > 0 ? resamples : 0;
  if (runs > 0) {
    const prng = createPrng(seed);
    const counts = new Uint32Array(n);
    const draws = new Uint32Array(n);
    for (let r = 0; r < runs; r++) {
      drawCounts(prng, counts, draws);
      models.forEach((m, j) => m.evaluate(counts, values[j]!.subarray(r * widths[j]!, (r + 1) * widths[j]!)));
    }
  }
  const column = (j: number, k: number): Float64Array => {
    const out = new Float64Array(runs);
    for (let r = 0; r < runs; r++) out[r] = values[j]![r * widths[j]! + k]!;
    return out;
  };
  const intervals = models.map((m, j) =>
    Object.fromEntries(
      m.names.map((name, k) => {
        const finite: number[] = [];
        for (const v of column(j, k)) if (Number.isFinite(v)) finite.push(v);
        return [name, percentileInterval(finite, confidence)];
      }),
    ),
  );
  let comparison: PairedBootstrapResult | undefined;
  if (paired && models.length >= 2 && runs > 0) {
    const ka = models[0]!.names.indexOf(paired.metric);
    const kb = models[1]!.names.indexOf(paired.metric);
    if (ka < 0 || kb < 0) throw new Error(`no metric ${paired.metric} to compare`);
    comparison = pairedSummary(paired.estimate, column(0, ka), column(1, kb), {
      resamples,
      confidence,
      seed,
    });
  }
  return { intervals, ...(comparison ? { comparison } : {}) };
}
