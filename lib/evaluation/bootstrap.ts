import { createPrng } from '../training/prng';
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
  const { resamples, confidence, seed } = options;
  const estimate = metricA() - metricB();
  const prng = createPrng(seed);
  const counts = new Uint32Array(n);
  const draws = new Uint32Array(n);
  const diffs: number[] = [];
  let skipped = 0;
  for (let b = 0; b < resamples; b++) {
    counts.fill(0);
    prng.fillInts(draws, n);
    for (let i = 0; i < n; i++) counts[draws[i]!]!++;
    const diff = metricA(counts) - metricB(counts);
    if (Number.isFinite(diff)) diffs.push(diff);
    else skipped++;
  }
  diffs.sort((a, b) => a - b);
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
    counts.fill(0);
    prng.fillInts(draws, n);
    for (let i = 0; i < n; i++) counts[draws[i]!]!++;
    models.forEach((fns, m) => {
      for (const [k, f] of Object.entries(fns)) {
        const v = f(counts);
        if (Number.isFinite(v)) samples[m]![k]!.push(v);
      }
    });
  }
  const alpha = (1 - confidence) / 2;
  return samples.map((byMetric) =>
    Object.fromEntries(
      Object.entries(byMetric).map(([k, values]) => {
        values.sort((a, b) => a - b);
        return [
          k,
          values.length > 0
            ? { lower: quantile(values, alpha), upper: quantile(values, 1 - alpha) }
            : { lower: null, upper: null },
        ];
      }),
    ),
  );
}
