import type { PredictionReference } from '../../../lib/rollout/records';
import { binOf, buildReference, psi } from '../../../lib/rollout/figures';
import { createPrng } from '../../../lib/training/prng';

/**
 * The seeded simulation behind docs/rollout.md (PSI and sample size): a model's holdout predictions
 * (m rows) make the reference, as startRollout builds it; its live predictions (n rows) come from
 * the same distribution shifted by `shift` standard deviations (0: a good candidate). Returns the
 * PSI of each trial, as the rollout guard computes it (smoothed) or as before (floored).
 */
export function simulatePsi(opts: {
  seed: number;
  trials: number;
  holdoutRows: number;
  liveRows: number;
  shift?: number;
  bins?: number;
  smoothed?: boolean;
}): number[] {
  const prng = createPrng(opts.seed);
  const normal = (): number => {
    // Box–Muller; 1 − u keeps the logarithm finite.
    const u = 1 - prng.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * prng.next());
  };
  const out: number[] = [];
  for (let t = 0; t < opts.trials; t++) {
    const holdout = Float64Array.from({ length: opts.holdoutRows }, normal);
    const ref = buildReference(holdout, opts.bins ?? 10) as Extract<PredictionReference, { kind: 'bins' }>;
    const counts = new Array<number>(ref.expected.length).fill(0);
    for (let i = 0; i < opts.liveRows; i++) counts[binOf(ref.edges, normal() + (opts.shift ?? 0))]!++;
    out.push(psi(ref.expected, counts, { smoothed: opts.smoothed ?? true })!);
  }
  return out;
}

/** Share of values above the limit. */
export const shareAbove = (values: readonly number[], limit: number): number =>
  values.filter((v) => v > limit).length / values.length;
