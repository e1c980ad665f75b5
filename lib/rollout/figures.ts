import { normalQuantile } from '../evaluation/power';
import type { GuardBreach, GuardEvidence, RolloutGuards, TrafficFigures } from '../contracts/rollout';
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
 *
 * `smoothed`: the observed shares are (count + ½) / (n + ½·k) (a Jeffreys prior) rather than
 * count / n floored at 1e-4, so an observed bin that is empty by chance adds about e · ln(2e·n)
 * rather than e · ln(e / 0.0001) (≈ 0.69 for a decile bin, enough alone to breach a 0.4 limit).
 * The rollout's PSI guard and monitoring's prediction drift smooth (docs/rollout.md, PSI and sample size).
 */
export function psi(
  expected: readonly number[],
  observed: readonly number[],
  options: { smoothed?: boolean } = {},
): number | null {
  const total = observed.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const k = expected.length;
  let sum = 0;
  for (let i = 0; i < k; i++) {
    const e = Math.max(expected[i]!, PSI_FLOOR);
    const count = observed[i] ?? 0;
    const a = options.smoothed ? (count + 0.5) / (total + 0.5 * k) : Math.max(count / total, PSI_FLOOR);
    sum += (a - e) * Math.log(a / e);
  }
  return sum;
}

/** Bins (or classes) of a reference: the k of its PSI, for psiRowsNeeded. */
export function referenceBins(reference: PredictionReference): number {
  return reference.kind === 'bins' ? reference.expected.length : Object.keys(reference.expected).length;
}

/** PSI of observed prediction counts (bins, or counts by class) against a reference. */
export function predictionPsi(
  reference: PredictionReference,
  observed: { bins?: readonly number[]; classes?: Readonly<Record<string, number>> },
  options: { smoothed?: boolean } = {},
): number | null {
  if (reference.kind === 'bins')
    return observed.bins ? psi(reference.expected, observed.bins, options) : null;
  if (!observed.classes) return null;
  const labels = [...new Set([...Object.keys(reference.expected), ...Object.keys(observed.classes)])];
  return psi(
    labels.map((l) => reference.expected[l] ?? 0),
    labels.map((l) => observed.classes![l] ?? 0),
    options,
  );
}

/**
 * The p-quantile of a χ² distribution with `dof` degrees of freedom (Wilson–Hilferty: within 1 % of
 * the exact value for dof ≥ 3 at p = 0.95; exact enough for a row minimum). z is the standard normal
 * quantile of p, from Acklam's rational approximation.
 */
export function chiSquareQuantile(p: number, dof: number): number {
  const z = normalQuantile(p);
  const v = Math.max(dof, 1);
  const c = 2 / (9 * v);
  return v * Math.max(0, 1 - c + z * Math.sqrt(c)) ** 3;
}

/**
 * The share of PSI judgments of a good candidate (live predictions from the same distribution as
 * its holdout) that the row minimum lets breach by sampling noise alone, at the minimum itself;
 * fewer with every row beyond it (docs/rollout.md, PSI and sample size).
 */
export const PSI_FALSE_ALARM_RATE = 0.05;

/**
 * Live rows the PSI guard needs before it judges, so that a good candidate breaches `limit` by
 * sampling noise in at most PSI_FALSE_ALARM_RATE of judgments. With nothing shifted, PSI over k bins
 * is about χ²(k − 1) · (1/n + 1/m): n live rows against a reference from m holdout rows. So
 * n ≥ c / (limit − c/m), c the χ²(k − 1) quantile at 1 − PSI_FALSE_ALARM_RATE. When the holdout
 * alone is too noisy for the limit (c/m over ¾ of it), more live rows cannot help: n = 4c / limit,
 * and the docs say to evaluate on more holdout rows or raise the limit. Never fewer than minSamples.
 * `holdoutRows` 0 (unknown) counts the live side only.
 */
export function psiRowsNeeded(limit: number, bins: number, holdoutRows: number, minSamples: number): number {
  const c = chiSquareQuantile(1 - PSI_FALSE_ALARM_RATE, Math.max(bins - 1, 1));
  const fromHoldout = holdoutRows > 0 ? c / holdoutRows : 0;
  const room = Math.max(limit - fromHoldout, limit / 4);
  return Math.max(minSamples, Math.ceil(c / room));
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

/** What a step's guards are judged against besides its figures: the PSI reference's size. */
export interface ReferenceShape {
  /** Bins (or classes) of the holdout reference; 0: no reference, so no PSI guard. */
  bins: number;
  /** Holdout rows the reference was built from (0: unknown). */
  holdoutRows?: number;
}

/**
 * How much evidence each configured guard has, and how much it needs before it is judged: error
 * rate from `minSamples` candidate requests, latency p99 from max(`minSamples`, 100) successful ones,
 * PSI from psiRowsNeeded rows (only with a reference), agreement (shadow) from `minSamples` compared
 * rows. A step of a rollout at revision 2 passes only once every guard here is judged.
 */
export function guardEvidence(
  strategy: 'shadow' | 'canary',
  guards: RolloutGuards,
  figures: TrafficFigures,
  reference: ReferenceShape,
): GuardEvidence[] {
  const out: GuardEvidence[] = [
    { guard: 'maxErrorRate', have: figures.requests, need: guards.minSamples, of: 'candidate requests' },
    {
      guard: 'maxLatencyP99Ms',
      have: figures.requests - figures.errors,
      need: Math.max(guards.minSamples, MIN_P99_SAMPLES),
      of: 'successful candidate requests',
    },
  ];
  if (reference.bins > 0) {
    out.push({
      guard: 'maxPredictionPsi',
      have: figures.predictedRows,
      need: psiRowsNeeded(
        guards.maxPredictionPsi,
        reference.bins,
        reference.holdoutRows ?? 0,
        guards.minSamples,
      ),
      of: 'predicted rows',
    });
  }
  if (strategy === 'shadow') {
    out.push({
      guard: 'minShadowAgreement',
      have: figures.compared,
      need: guards.minSamples,
      of: 'compared rows',
    });
  }
  return out;
}

/** The guards still short of evidence, with how much they have and need (empty: all judged). */
export function guardsWaiting(evidence: readonly GuardEvidence[]): GuardEvidence[] {
  return evidence.filter((e) => e.have < e.need);
}

/**
 * The guards' verdict on a step's figures. Each guard is judged only on enough evidence
 * (guardEvidence). `reference` is the PSI reference's size: a number is its bins alone (holdout size
 * unknown).
 */
export function judgeGuards(
  strategy: 'shadow' | 'canary',
  guards: RolloutGuards,
  figures: TrafficFigures,
  reference: number | ReferenceShape,
): GuardBreach[] {
  const shape = typeof reference === 'number' ? { bins: reference } : reference;
  const judged = new Set(
    guardEvidence(strategy, guards, figures, shape)
      .filter((e) => e.have >= e.need)
      .map((e) => e.guard),
  );
  const out: GuardBreach[] = [];
  if (judged.has('maxErrorRate') && figures.errorRate !== null && figures.errorRate > guards.maxErrorRate) {
    out.push({
      guard: 'maxErrorRate',
      value: round(figures.errorRate),
      limit: guards.maxErrorRate,
      message: `error rate ${(figures.errorRate * 100).toFixed(1)} % (${figures.errors} of ${figures.requests} candidate requests) is above ${(guards.maxErrorRate * 100).toFixed(1)} %`,
    });
  }
  // A p99 of fewer than 100 requests is their maximum: one cold start would decide it.
  if (
    judged.has('maxLatencyP99Ms') &&
    figures.latencyP99Ms !== null &&
    figures.latencyP99Ms > guards.maxLatencyP99Ms
  ) {
    out.push({
      guard: 'maxLatencyP99Ms',
      value: figures.latencyP99Ms,
      limit: guards.maxLatencyP99Ms,
      message: `candidate latency p99 ≤ ${figures.latencyP99Ms} ms is above ${guards.maxLatencyP99Ms} ms`,
    });
  }
  if (judged.has('maxPredictionPsi') && figures.psi !== null && figures.psi > guards.maxPredictionPsi) {
    out.push({
      guard: 'maxPredictionPsi',
      value: round(figures.psi),
      limit: guards.maxPredictionPsi,
      message: `the candidate's live predictions moved from its holdout predictions: PSI ${figures.psi.toFixed(3)} over ${figures.predictedRows} rows is above ${guards.maxPredictionPsi}`,
    });
  }
  if (
    judged.has('minShadowAgreement') &&
    figures.agreement !== null &&
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
