/**
 * The canary PSI guard against sampling noise (docs/rollout.md, "PSI and sample size"). With 10
 * reference bins from 100 holdout rows and a 0.4 limit, the old rule judged from 50 rows, where a
 * candidate whose live predictions come from its holdout's own distribution breached about one
 * judgment in five; the guard now judges from psiRowsNeeded (90) rows, where it breaches at the
 * documented ≈ 5 % per judgment, under 1 % from twice that; a shifted candidate still breaches.
 * Seeded.
 */
import { rolloutGuardsSchema } from '../../../lib/contracts/rollout';
import type { TrafficFigures } from '../../../lib/contracts/rollout';
import {
  binOf,
  buildReference,
  judgeGuards,
  predictionPsi,
  psiRowsNeeded,
} from '../../../lib/rollout/figures';

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const HOLDOUT = 100;
const TRIALS = 4000;
const guards = rolloutGuardsSchema.parse({ minSamples: 20, maxPredictionPsi: 0.4 });

/** Share of trials that breach: the guard, and the plain limit over the same rows. */
function breachRate(seed: number, rows: number, shift: number): { guard: number; plainLimit: number } {
  const r = prng(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  let guard = 0;
  let plainLimit = 0;
  for (let t = 0; t < TRIALS; t++) {
    const reference = buildReference(Array.from({ length: HOLDOUT }, normal))!;
    if (reference.kind !== 'bins') throw new Error('numeric predictions make bins');
    const bins = new Array<number>(reference.edges.length + 1).fill(0);
    for (let i = 0; i < rows; i++) bins[binOf(reference.edges, normal() + shift)]!++;
    const psi = predictionPsi(reference, { bins })!;
    const figures: TrafficFigures = {
      requests: rows,
      errors: 0,
      errorRate: 0,
      latencyP99Ms: 1,
      predictedRows: rows,
      psi,
      compared: 0,
      agreement: null,
      productionRequests: rows,
    };
    if (judgeGuards('canary', guards, figures, bins.length).length > 0) guard++;
    if (psi > guards.maxPredictionPsi) plainLimit++;
  }
  return { guard: guard / TRIALS, plainLimit: plainLimit / TRIALS };
}

describe('the PSI guard and sample size', () => {
  const minimum = psiRowsNeeded(10, guards.maxPredictionPsi, guards.minSamples);

  it('judges from enough rows that the live side noise is a quarter of the limit', () => {
    expect(minimum).toBe(90);
    expect(psiRowsNeeded(10, 0.25, 20)).toBe(144);
    expect(psiRowsNeeded(3, 0.25, 20)).toBe(32);
  });

  it('a same-distribution sample breaches at the documented rate: ≈ 5 % at the minimum, < 1 % at twice it', () => {
    // Below the minimum the guard does not judge; the old rule judged from 50 rows.
    const old = breachRate(20, 50, 0);
    expect(old.guard).toBe(0);
    expect(old.plainLimit).toBeGreaterThan(0.15);
    expect(breachRate(21, minimum, 0).guard).toBeLessThanOrEqual(0.06);
    expect(breachRate(22, 2 * minimum, 0).guard).toBeLessThanOrEqual(0.01);
  });

  it('a shifted sample still breaches at the minimum', () => {
    expect(breachRate(23, minimum, 1).guard).toBeGreaterThan(0.95);
  });
});
