import type { GuardBreach, RolloutGuards, TrafficFigures } from '../contracts/rollout';
import type { PredictionReference } from './records';

/**
 * The arithmetic of traffic stats, pure: latency buckets and their p99, prediction histograms
 * against a holdout reference and their PSI, and the guards' verdict.
 */

/** Upper edges (ms) of the latency buckets; one more bucket holds everything slower. */
export const LATENCY_EDGES_MS: readonly number[] = [
  1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 2000, 5000, 10000,
];

export function latencyBucket(ms: number): number {
  let lo = 0;
  let hi = LATENCY_EDGES_MS.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ms <= LATENCY_EDGES_MS[mid]!) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** The quantile q of bucketed latencies, as its bucket's upper edge (the slowest bucket: twice the last edge). */
export function bucketQuantile(counts: readonly number[], q: number): number | null {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = Math.ceil(q * total);
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i]!;
    if (seen >= rank) return LATENCY_EDGES_MS[i] ?? 2 * LATENCY_EDGES_MS[LATENCY_EDGES_MS.length - 1]!;
  }
  return null;
}

/** The bin of a value among increasing inner edges: bin i holds (edges[i-1], edges[i]]. */
export function binOf(edges: readonly number[], v: number): number {
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (v <= edges[mid]!) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/**
 * The reference of a model's holdout predictions: deciles for numbers (ties merged, so every bin
 * edge is distinct), predicted-class shares for labels. Undefined with no predictions.
 */
export function buildReference(
  predictions: ArrayLike<number> | readonly string[],
  bins = 10,
): PredictionReference | undefined {
  const n = predictions.length;
  if (n === 0) return undefined;
  if (typeof predictions[0] === 'string') {
    const counts: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const c = predictions[i] as string;
      counts[c] = (counts[c] ?? 0) + 1;
    }
    return {
      kind: 'classes',
      expected: Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, v / n])),
    };
  }
  const sorted = Float64Array.from(predictions as ArrayLike<number>).sort();
  const edges: number[] = [];
  for (let b = 1; b < bins; b++) {
    const e = sorted[Math.min(n - 1, Math.floor((b * n) / bins))]!;
    if (edges.length === 0 || e > edges[edges.length - 1]!) edges.push(e);
  }
  const counts = new Array<number>(edges.length + 1).fill(0);
  for (let i = 0; i < n; i++) counts[binOf(edges, sorted[i]!)]!++;
  return { kind: 'bins', edges, expected: counts.map((c) => c / n) };
}

/** Shares below this count as this (an empty bin would make PSI infinite). */
const PSI_FLOOR = 1e-4;

/**
 * Population stability index of observed counts against expected shares: Σ (a − e) · ln(a / e).
 * Under 0.1 is usually read as stable, over 0.25 as a real shift. Null with no observations.
 */
export function psi(expected: readonly number[], observed: readonly number[]): number | null {
  const total = observed.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  let sum = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = Math.max(expected[i]!, PSI_FLOOR);
    const a = Math.max((observed[i] ?? 0) / total, PSI_FLOOR);
    sum += (a - e) * Math.log(a / e);
  }
  return sum;
}

/** PSI of observed prediction counts (bins, or counts by class) against a reference. */
export function predictionPsi(
  reference: PredictionReference,
  observed: { bins?: readonly number[]; classes?: Readonly<Record<string, number>> },
): number | null {
  if (reference.kind === 'bins') return observed.bins ? psi(reference.expected, observed.bins) : null;
  if (!observed.classes) return null;
  const labels = [...new Set([...Object.keys(reference.expected), ...Object.keys(observed.classes)])];
  return psi(
    labels.map((l) => reference.expected[l] ?? 0),
    labels.map((l) => observed.classes![l] ?? 0),
  );
}

/** Whether a candidate's prediction agrees with production's (see rolloutGuardsSchema.agreementTolerance). */
export function agrees(candidate: string | number, production: string | number, tolerance: number): boolean {
  if (typeof candidate === 'number' && typeof production === 'number') {
    return Math.abs(candidate - production) <= tolerance * Math.max(Math.abs(production), 1);
  }
  return candidate === production;
}

/** Latency p99 is judged from this many successful candidate requests on. */
export const MIN_P99_SAMPLES = 100;

const round = (x: number, digits = 4): number => Number(x.toFixed(digits));

/**
 * The guards' verdict on a step's figures. Each guard is judged only on enough evidence: error rate
 * from `minSamples` candidate requests, latency p99 from max(`minSamples`, 100) successful ones, PSI from `minSamples` and at least 5 rows per
 * reference bin, agreement (shadow) from `minSamples` compared rows.
 */
export function judgeGuards(
  strategy: 'shadow' | 'canary',
  guards: RolloutGuards,
  figures: TrafficFigures,
  referenceBins: number,
): GuardBreach[] {
  const out: GuardBreach[] = [];
  const enough = figures.requests >= guards.minSamples;
  if (enough && figures.errorRate !== null && figures.errorRate > guards.maxErrorRate) {
    out.push({
      guard: 'maxErrorRate',
      value: round(figures.errorRate),
      limit: guards.maxErrorRate,
      message: `error rate ${(figures.errorRate * 100).toFixed(1)} % (${figures.errors} of ${figures.requests} candidate requests) is above ${(guards.maxErrorRate * 100).toFixed(1)} %`,
    });
  }
  // A p99 of fewer than 100 requests is their maximum: one cold start would decide it.
  const enoughForP99 = figures.requests - figures.errors >= Math.max(guards.minSamples, MIN_P99_SAMPLES);
  if (enoughForP99 && figures.latencyP99Ms !== null && figures.latencyP99Ms > guards.maxLatencyP99Ms) {
    out.push({
      guard: 'maxLatencyP99Ms',
      value: figures.latencyP99Ms,
      limit: guards.maxLatencyP99Ms,
      message: `candidate latency p99 ≤ ${figures.latencyP99Ms} ms is above ${guards.maxLatencyP99Ms} ms`,
    });
  }
  const rowsNeeded = Math.max(guards.minSamples, 5 * Math.max(referenceBins, 1));
  if (figures.psi !== null && figures.predictedRows >= rowsNeeded && figures.psi > guards.maxPredictionPsi) {
    out.push({
      guard: 'maxPredictionPsi',
      value: round(figures.psi),
      limit: guards.maxPredictionPsi,
      message: `the candidate's live predictions moved from its holdout predictions: PSI ${figures.psi.toFixed(3)} over ${figures.predictedRows} rows is above ${guards.maxPredictionPsi}`,
    });
  }
  if (
    strategy === 'shadow' &&
    figures.agreement !== null &&
    figures.compared >= guards.minSamples &&
    figures.agreement < guards.minShadowAgreement
  ) {
    out.push({
      guard: 'minShadowAgreement',
      value: round(figures.agreement),
      limit: guards.minShadowAgreement,
      message: `the candidate agrees with production on ${(figures.agreement * 100).toFixed(1)} % of ${figures.compared} rows, below ${(guards.minShadowAgreement * 100).toFixed(1)} %`,
    });
  }
  return out;
}
