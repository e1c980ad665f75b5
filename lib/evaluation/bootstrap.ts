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
