import type { Column, Table } from '../table';
import { BOOL_NULL, isDictionary } from '../table';
import type {
  ColumnContract,
  DatasetContract,
  DriftMetric,
  DriftSettings,
  DriftThresholds,
} from '../../contracts/datasetContract';
import type { ColumnProfile, ColumnStats, TableProfile } from './profile';
import { quantileSorted } from './profile';
import { skipEqual } from './sort';

/**
 * Drift between a reference (the data the production model was trained on) and the current data.
 * Verdicts rest on effect sizes with thresholds — PSI, Jensen–Shannon distance, normalized
 * Wasserstein, the KS statistic D — which stay put as samples grow, unlike p-values, which flag
 * every column of a large dataset (evidentlyai/evidently#20, #50). KS p-values are reported,
 * Holm-adjusted across columns, and gate only if the contract asks. Columns with fewer than
 * `minSampleSize` values on either side are "notTestable", never "drifted".
 */

/** Floor for an empty bin's share in PSI (the usual 1e-4), so one empty bin does not make PSI infinite. */
export const PSI_EPSILON = 1e-4;

function shares(counts: readonly number[]): number[] {
  const total = counts.reduce((a, b) => a + b, 0);
  return counts.map((c) => (total > 0 ? c / total : 0));
}

/** Population Stability Index Σ (q − p) ln(q / p) over bins, shares floored at PSI_EPSILON. */
export function psi(referenceCounts: readonly number[], currentCounts: readonly number[]): number {
  const p = shares(referenceCounts);
  const q = shares(currentCounts);
  let sum = 0;
  for (let i = 0; i < p.length; i++) {
    const a = Math.max(p[i]!, PSI_EPSILON);
    const b = Math.max(q[i] ?? 0, PSI_EPSILON);
    sum += (b - a) * Math.log(b / a);
  }
  return sum;
}

/** Jensen–Shannon distance (square root of the divergence, log base 2): 0 identical, 1 disjoint. */
export function jensenShannon(referenceCounts: readonly number[], currentCounts: readonly number[]): number {
  const p = shares(referenceCounts);
  const q = shares(currentCounts);
  let d = 0;
  for (let i = 0; i < p.length; i++) {
    const a = p[i]!;
    const b = q[i] ?? 0;
    const m = (a + b) / 2;
    if (a > 0) d += 0.5 * a * Math.log2(a / m);
    if (b > 0) d += 0.5 * b * Math.log2(b / m);
  }
  return Math.sqrt(Math.max(0, Math.min(1, d)));
}

/** Wasserstein-1 distance between two empirical distributions given sorted: ∫ |F_a − F_b| dx. */
export function wasserstein1(a: Float64Array, b: Float64Array): number {
  const n = a.length;
  const m = b.length;
  if (n === 0 || m === 0) return NaN;
  let i = 0;
  let j = 0;
  let x = Math.min(a[0]!, b[0]!);
  let area = 0;
  while (i < n || j < m) {
    const next = j >= m || (i < n && a[i]! <= b[j]!) ? a[i]! : b[j]!;
    area += Math.abs(i / n - j / m) * (next - x);
    x = next;
    while (i < n && a[i] === x) i++;
    while (j < m && b[j] === x) j++;
  }
  return area;
}

/** Two-sample Kolmogorov–Smirnov statistic D = sup |F_a − F_b| of sorted samples. */
export function ksStatistic(a: Float64Array, b: Float64Array): number {
  const n = a.length;
  const m = b.length;
  let i = 0;
  let j = 0;
  let d = 0;
  while (i < n && j < m) {
    const x = Math.min(a[i]!, b[j]!);
    while (i < n && a[i] === x) i++;
    while (j < m && b[j] === x) j++;
    d = Math.max(d, Math.abs(i / n - j / m));
  }
  return d;
}

/** KS statistic and Wasserstein-1 together, in one merge of the two sorted samples. */
export function ksAndWasserstein(a: Float64Array, b: Float64Array): { ks: number; wasserstein: number } {
  const n = a.length;
  const m = b.length;
  if (n === 0 || m === 0) return { ks: NaN, wasserstein: NaN };
  let i = 0;
  let j = 0;
  let d = 0;
  let area = 0;
  let x = Math.min(a[0]!, b[0]!);
  while (i < n || j < m) {
    const av = i < n ? a[i]! : Infinity;
    const bv = j < m ? b[j]! : Infinity;
    const next = av <= bv ? av : bv;
    const gap = i / n - j / m;
    area += (gap < 0 ? -gap : gap) * (next - x);
    x = next;
    // A lone value steps on; a run of equal ones is crossed by galloping (see skipEqual).
    if (i < n && a[i] === x) i = i + 1 < n && a[i + 1] === x ? skipEqual(a, i + 1, x) : i + 1;
    if (j < m && b[j] === x) j = j + 1 < m && b[j + 1] === x ? skipEqual(b, j + 1, x) : j + 1;
    const diff = i / n - j / m;
    const ad = diff < 0 ? -diff : diff;
    if (ad > d) d = ad;
  }
  return { ks: d, wasserstein: area };
}

/** Asymptotic p-value of D for samples of sizes n and m (Kolmogorov distribution, Stephens' correction). */
export function ksPValue(d: number, n: number, m: number): number {
  const en = Math.sqrt((n * m) / (n + m));
  const lambda = (en + 0.12 + 0.11 / en) * d;
  if (lambda < 1e-3) return 1;
  let sum = 0;
  for (let k = 1; k <= 100; k++) {
    const term = (k % 2 === 1 ? 1 : -1) * Math.exp(-2 * k * k * lambda * lambda);
    sum += term;
    if (Math.abs(term) < 1e-12) break;
  }
  return Math.min(1, Math.max(0, 2 * sum));
}

/** Holm–Bonferroni adjusted p-values (same order as given). */
export function holmAdjust(pValues: readonly number[]): number[] {
  const order = pValues.map((p, i) => [p, i] as const).sort((x, y) => x[0] - y[0]);
  const out = new Array<number>(pValues.length);
  let running = 0;
  order.forEach(([p, i], rank) => {
    running = Math.max(running, Math.min(1, (pValues.length - rank) * p));
    out[i] = running;
  });
  return out;
}

/** Count of sorted values ≤ x. */
function upperBound(sorted: Float64Array, x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Bin edges at the reference's quantiles (distinct), and both samples' counts per bin. */
export function quantileBins(
  reference: Float64Array,
  current: Float64Array,
  bins: number,
): { edges: number[]; reference: number[]; current: number[] } {
  const edges: number[] = [];
  for (let k = 1; k < bins; k++) {
    const e = quantileSorted(reference, k / bins);
    if (edges.length === 0 || e > edges[edges.length - 1]!) edges.push(e);
  }
  const count = (s: Float64Array): number[] => {
    const out: number[] = [];
    let prev = 0;
    for (const e of edges) {
      const c = upperBound(s, e);
      out.push(c - prev);
      prev = c;
    }
    out.push(s.length - prev);
    return out;
  };
  return { edges, reference: count(reference), current: count(current) };
}

export interface MetricResult {
  value: number;
  threshold: number;
  drifted: boolean;
  /** KS only. */
  pValue?: number;
  pValueAdjusted?: number;
}

export type ColumnDriftStatus = 'drifted' | 'stable' | 'notTestable' | 'skipped';

export interface ColumnDrift {
  column: string;
  type: string;
  status: ColumnDriftStatus;
  reason?: string;
  weight: number;
  referenceCount: number;
  currentCount: number;
  /** The reference side is a systematic sample of this many of its `referenceCount` values. */
  referenceSample?: number;
  metrics: Partial<Record<DriftMetric, MetricResult>>;
  /**
   * Reference vs current counts for people to see (the console draws them): numbers in the
   * reference's quantile bins (`edges` between bins; the first and last bins are open), categories
   * as the most frequent values of both sides with the rest summed as `(other)`.
   */
  histogram?: DriftHistogram;
}

export type DriftHistogram =
  | { kind: 'numeric'; edges: number[]; reference: number[]; current: number[] }
  | { kind: 'category'; labels: string[]; reference: number[]; current: number[] };

/** Categories shown in a drift histogram; the rest are summed as `(other)`. */
export const HISTOGRAM_CATEGORIES = 12;

function categoryHistogram(counts: { keys: string[]; ref: number[]; cur: number[] }): DriftHistogram {
  const order = counts.keys
    .map((k, i) => ({ k, i, n: counts.ref[i]! + counts.cur[i]! }))
    .sort((a, b) => b.n - a.n || a.k.localeCompare(b.k));
  const shown = order.slice(0, HISTOGRAM_CATEGORIES);
  const rest = order.slice(HISTOGRAM_CATEGORIES);
  const h = {
    kind: 'category' as const,
    labels: shown.map((o) => o.k),
    reference: shown.map((o) => counts.ref[o.i]!),
    current: shown.map((o) => counts.cur[o.i]!),
  };
  if (rest.length > 0) {
    h.labels.push('(other)');
    h.reference.push(rest.reduce((a, o) => a + counts.ref[o.i]!, 0));
    h.current.push(rest.reduce((a, o) => a + counts.cur[o.i]!, 0));
  }
  return h;
}

export interface DatasetDrift {
  status: 'drifted' | 'stable' | 'notTestable';
  /** Weighted share of testable columns that drifted. */
  driftedShare: number;
  driftedColumns: string[];
  criticalDrifted: string[];
  testedColumns: number;
  rule: string;
  onDrift: 'fail' | 'warn';
  columns: ColumnDrift[];
}

/** Category counts aligned over the union of both sides' values. */
function categoryCounts(
  ref: Column,
  refStats: ColumnStats,
  cur: Column,
  curStats: ColumnStats,
): { keys: string[]; ref: number[]; cur: number[] } | undefined {
  const tally = (col: Column, stats: ColumnStats): Map<string, number> => {
    const m = new Map<string, number>();
    if (isDictionary(col)) {
      const counts = stats.codeCounts!;
      col.dictionary.forEach((t, c) => {
        if (counts[c]) m.set(t, (m.get(t) ?? 0) + counts[c]!);
      });
    } else if (col.type === 'boolean') {
      let t = stats.booleanCounts?.trueCount ?? 0;
      let f = stats.booleanCounts?.falseCount ?? 0;
      if (!stats.booleanCounts) {
        for (const v of col.values) {
          if (v === 1) t++;
          else if (v !== BOOL_NULL) f++;
        }
      }
      m.set('true', t).set('false', f);
    } else return m;
    return m;
  };
  const a = tally(ref, refStats);
  const b = tally(cur, curStats);
  const keys = [...new Set([...a.keys(), ...b.keys()])].sort();
  return { keys, ref: keys.map((k) => a.get(k) ?? 0), cur: keys.map((k) => b.get(k) ?? 0) };
}

function std(sorted: Float64Array): number {
  const n = sorted.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += sorted[i]!;
  mean /= n;
  let sq = 0;
  for (let i = 0; i < n; i++) sq += (sorted[i]! - mean) ** 2;
  return n > 1 ? Math.sqrt(sq / (n - 1)) : 0;
}

export interface DriftInput {
  table: Table;
  profile: TableProfile;
}

/** One side of one column for drift: the column, its profile stats and, for the reference, its profile. */
export interface DriftSide {
  col: Column;
  stats: ColumnStats;
  profile?: ColumnProfile;
}

/**
 * Drift of one contract column (before the Holm adjustment and the column verdict, which need every
 * column: see `finishDrift`). Validation calls it column by column, so the current data's sorted
 * values can be dropped as soon as the column is done.
 */
export function driftColumn(
  spec: ColumnContract,
  settings: DriftSettings,
  ref: DriftSide | undefined,
  cur: DriftSide | undefined,
): ColumnDrift {
  const over = settings.columns[spec.name];
  const base = {
    column: spec.name,
    type: spec.type,
    weight: over?.weight ?? 1,
    referenceCount: 0,
    currentCount: 0,
    metrics: {},
  };
  const skip = (reason: string): ColumnDrift => ({ ...base, status: 'skipped', reason });
  if (over?.ignore) return skip('ignored by the contract');
  if (!ref || !cur) return skip(!ref ? 'not in the reference' : 'not in the current data');
  const refStats = ref.stats;
  const curStats = cur.stats;
  const thresholds: DriftThresholds = { ...settings.thresholds, ...over?.thresholds };
  const numeric = (spec.type === 'number' || spec.type === 'integer') && refStats.sorted && curStats.sorted;
  const categorical = spec.type === 'category' || spec.type === 'boolean';
  if (spec.unique) return skip('a unique column (an identifier) has no distribution to compare');
  if (!numeric && !categorical)
    return skip(spec.type === 'datetime' ? 'datetimes move by design' : 'free text is not compared');
  const metrics: Partial<Record<DriftMetric, MetricResult>> = {};
  const result: ColumnDrift = { ...base, status: 'stable', metrics };
  const verdict = (value: number, metric: DriftMetric): MetricResult => ({
    value,
    threshold: thresholds[metric],
    drifted: value > thresholds[metric],
  });
  const tooFew = (): ColumnDrift => ({
    ...result,
    status: 'notTestable',
    reason: `fewer than ${settings.minSampleSize} values on one side`,
  });
  if (numeric) {
    const a = refStats.sorted!;
    const b = curStats.sorted!;
    result.referenceCount = ref.profile?.numeric?.count ?? a.length;
    result.currentCount = b.length;
    if (refStats.sampled !== undefined) result.referenceSample = refStats.sampled;
    if (result.referenceCount < settings.minSampleSize || b.length < settings.minSampleSize) return tooFew();
    const wanted = over?.metrics ?? settings.numeric;
    const bins = quantileBins(a, b, settings.bins);
    result.histogram = {
      kind: 'numeric',
      edges: bins.edges,
      reference: bins.reference,
      current: bins.current,
    };
    if (wanted.includes('psi') || wanted.includes('jensenShannon')) {
      if (wanted.includes('psi')) metrics.psi = verdict(psi(bins.reference, bins.current), 'psi');
      if (wanted.includes('jensenShannon'))
        metrics.jensenShannon = verdict(jensenShannon(bins.reference, bins.current), 'jensenShannon');
    }
    if (wanted.includes('wasserstein') || wanted.includes('ks')) {
      const both = ksAndWasserstein(a, b);
      if (wanted.includes('wasserstein')) {
        const s = ref.profile?.numeric?.std ?? std(a);
        const scale = s > 0 ? s : Math.max(Math.abs(a[0]!), 1);
        metrics.wasserstein = verdict(both.wasserstein / scale, 'wasserstein');
      }
      if (wanted.includes('ks'))
        metrics.ks = { ...verdict(both.ks, 'ks'), pValue: ksPValue(both.ks, a.length, b.length) };
    }
    return result;
  }
  const counts = categoryCounts(ref.col, refStats, cur.col, curStats);
  const refN = counts?.ref.reduce((x, y) => x + y, 0) ?? 0;
  const curN = counts?.cur.reduce((x, y) => x + y, 0) ?? 0;
  result.referenceCount = refN;
  result.currentCount = curN;
  if (counts && counts.keys.length > 0) result.histogram = categoryHistogram(counts);
  if (!counts || refN < settings.minSampleSize || curN < settings.minSampleSize) return tooFew();
  const wanted = (over?.metrics ?? settings.categorical).filter((m) => m === 'psi' || m === 'jensenShannon');
  if (wanted.includes('psi')) metrics.psi = verdict(psi(counts.ref, counts.cur), 'psi');
  if (wanted.includes('jensenShannon'))
    metrics.jensenShannon = verdict(jensenShannon(counts.ref, counts.cur), 'jensenShannon');
  return result;
}

/** Holm-adjusts the KS p-values across columns, decides each column and the dataset. */
export function finishDrift(results: ColumnDrift[], settings: DriftSettings): DatasetDrift {
  // Multiple testing: Holm over every KS test of this comparison.
  const ksRefs = results.map((r) => r.metrics.ks).filter((k): k is MetricResult => k !== undefined);
  const adjusted = holmAdjust(ksRefs.map((k) => k.pValue!));
  ksRefs.forEach((k, i) => {
    k.pValueAdjusted = adjusted[i]!;
    if (settings.ksPValue) k.drifted = k.drifted && k.pValueAdjusted < settings.ksPValue.alpha;
  });
  for (const r of results) {
    if (r.status !== 'stable') continue;
    const flags = Object.values(r.metrics).map((m) => m.drifted);
    const drifted =
      settings.columnRule === 'all' ? flags.length > 0 && flags.every(Boolean) : flags.some(Boolean);
    if (drifted) r.status = 'drifted';
  }
  const testable = results.filter((r) => r.status === 'drifted' || r.status === 'stable');
  const totalWeight = testable.reduce((a, r) => a + r.weight, 0);
  const drifted = testable.filter((r) => r.status === 'drifted');
  const driftedWeight = drifted.reduce((a, r) => a + r.weight, 0);
  const driftedShare = totalWeight > 0 ? driftedWeight / totalWeight : 0;
  const criticalDrifted = drifted
    .filter((r) => settings.verdict.critical.includes(r.column))
    .map((r) => r.column);
  const isDrifted =
    criticalDrifted.length > 0 || (driftedWeight > 0 && driftedShare >= settings.verdict.driftedShare);
  return {
    status: testable.length === 0 ? 'notTestable' : isDrifted ? 'drifted' : 'stable',
    driftedShare,
    driftedColumns: drifted.map((r) => r.column),
    criticalDrifted,
    testedColumns: testable.length,
    rule: `drifted when a critical column drifts or the weighted share of drifted columns reaches ${settings.verdict.driftedShare}`,
    onDrift: settings.verdict.onDrift,
    columns: results,
  };
}

/** Compares every column the contract declares (and both sides have) with the reference. */
export function computeDrift(
  reference: DriftInput,
  current: DriftInput,
  contract: DatasetContract,
): DatasetDrift {
  const side = (input: DriftInput, name: string, withProfile: boolean): DriftSide | undefined => {
    const i = input.table.columns.findIndex((c) => c.name === name);
    if (i === -1) return undefined;
    const s: DriftSide = { col: input.table.columns[i]!, stats: input.profile.stats[i]! };
    if (withProfile) s.profile = input.profile.columns[i]!;
    return s;
  };
  const results = contract.columns.map((spec) =>
    driftColumn(spec, contract.drift, side(reference, spec.name, true), side(current, spec.name, false)),
  );
  return finishDrift(results, contract.drift);
}
