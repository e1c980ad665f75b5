import type { Column, Table } from '../table';
import { BOOL_NULL, NULL_CODE } from '../table';
import type { ColumnType } from '../../contracts/datasetContract';
import { skipEqual, SortScratch, sortedNonNull } from './sort';

/**
 * Per-column statistics (TFX StatisticsGen's role), computed on typed columns in one sort and a
 * few linear passes. The JSON part goes into the validation report; `ColumnStats` keeps the sorted
 * values and category counts for validation and drift, so nothing is sorted twice.
 */

export const QUANTILES = {
  p01: 0.01,
  p05: 0.05,
  p25: 0.25,
  p50: 0.5,
  p75: 0.75,
  p95: 0.95,
  p99: 0.99,
} as const;
export type QuantileName = keyof typeof QUANTILES;
export const HISTOGRAM_BINS = 20;
export const TOP_CATEGORIES = 10;

export interface NumericSummary {
  /** Non-null values. */
  count: number;
  min: number;
  max: number;
  mean: number;
  /** Sample standard deviation (n − 1), 0 for a single value. */
  std: number;
  /** Every value is a whole number. */
  integral: boolean;
  quantiles: Record<QuantileName, number>;
  /** Equal-width bins over [min, max]: `edges` has one more entry than `counts`; the last bin is closed. */
  histogram: { edges: number[]; counts: number[] };
}

export interface CategorySummary {
  top: { value: string; count: number }[];
  /** Non-null values outside `top`. */
  otherCount: number;
}

/** One column's statistics as they appear in the report (datetimes in epoch milliseconds). */
export interface ColumnProfile {
  name: string;
  type: ColumnType;
  /** Rows, nulls included. */
  count: number;
  /** Nulls, including values that could not be read as the column's type (`invalid`). */
  nulls: number;
  invalid: number;
  distinct: number;
  numeric?: NumericSummary;
  categories?: CategorySummary;
  boolean?: { trueCount: number; falseCount: number };
  /** Internal, not in the report: rows per dictionary code. */
  codeCounts?: Int32Array;
}

/**
 * Gives a category profile its rows per dictionary code: kept off the report (not enumerable), so
 * it must be put back wherever a profile is rebuilt from data (a stored profile, a cloned message).
 */
export function attachCodeCounts(profile: ColumnProfile, counts: Int32Array): ColumnProfile {
  Object.defineProperty(profile, 'codeCounts', { value: counts, enumerable: false });
  return profile;
}

/** What validation and drift reuse: sorted non-null values, or counts per dictionary code. */
export interface ColumnStats {
  sorted?: Float64Array;
  /** Set when `sorted` is a systematic sample of this many values, not the whole column. */
  sampled?: number;
  codeCounts?: Int32Array;
  /** Boolean columns: the counts drift compares (so a reference needs no values). */
  booleanCounts?: { trueCount: number; falseCount: number };
}

export interface TableProfile {
  rows: number;
  columns: ColumnProfile[];
  stats: ColumnStats[];
}

/** Linear-interpolation quantile of sorted values (numpy's default, Hyndman–Fan type 7). */
export function quantileSorted(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const h = (n - 1) * p;
  const lo = Math.floor(h);
  const a = sorted[lo]!;
  if (lo + 1 >= n) return a;
  return a + (h - lo) * (sorted[lo + 1]! - a);
}

interface SortedMoments {
  sum: number;
  /** Sum of squared deviations from the mean. */
  sq: number;
  distinct: number;
  integral: boolean;
}

/**
 * Whether runs of equal values are long (over ~60 on average: a few distinct values), judged on up
 * to 1,024 evenly spaced neighbour pairs. Shorter runs are summed faster value by value.
 */
function mostlyRuns(sorted: Float64Array): boolean {
  const n = sorted.length;
  const probes = Math.min(1024, n - 1);
  let equal = 0;
  for (let p = 0; p < probes; p++) {
    const k = Math.floor((p * (n - 1)) / probes);
    if (sorted[k] === sorted[k + 1]) equal++;
  }
  return equal * 64 >= probes * 63;
}

function momentsByValue(sorted: Float64Array): SortedMoments {
  const n = sorted.length;
  let sum = 0;
  let distinct = 1;
  let integral = true;
  let prev = sorted[0]!;
  for (let i = 0; i < n; i++) {
    const v = sorted[i]!;
    sum += v;
    if (v !== prev) {
      distinct++;
      prev = v;
    }
    if (integral && v !== Math.floor(v)) integral = false;
  }
  const mean = sum / n;
  let sq = 0;
  for (let i = 0; i < n; i++) {
    const d = sorted[i]! - mean;
    sq += d * d;
  }
  return { sum, sq, distinct, integral };
}

/** The same, run by run (each run of equal values crossed by galloping): costs the distinct values. */
function momentsByRun(sorted: Float64Array): SortedMoments {
  const n = sorted.length;
  const values: number[] = [];
  const counts: number[] = [];
  for (let i = 0; i < n;) {
    const v = sorted[i]!;
    const end = skipEqual(sorted, i, v);
    values.push(v);
    counts.push(end - i);
    i = end;
  }
  let sum = 0;
  let integral = true;
  for (let r = 0; r < values.length; r++) {
    const v = values[r]!;
    sum += v * counts[r]!;
    if (integral && v !== Math.floor(v)) integral = false;
  }
  const mean = sum / n;
  let sq = 0;
  for (let r = 0; r < values.length; r++) {
    const d = values[r]! - mean;
    sq += d * d * counts[r]!;
  }
  return { sum, sq, distinct: values.length, integral };
}

export function summarizeSorted(
  sorted: Float64Array,
  bins = HISTOGRAM_BINS,
): { summary: NumericSummary; distinct: number } | undefined {
  const n = sorted.length;
  if (n === 0) return undefined;
  const { sum, sq, distinct, integral } = mostlyRuns(sorted) ? momentsByRun(sorted) : momentsByValue(sorted);
  const mean = sum / n;
  const min = sorted[0]!;
  const max = sorted[n - 1]!;
  const quantiles = {} as Record<QuantileName, number>;
  for (const [name, p] of Object.entries(QUANTILES) as [QuantileName, number][])
    quantiles[name] = quantileSorted(sorted, p);
  return {
    summary: {
      count: n,
      min,
      max,
      mean,
      std: n > 1 ? Math.sqrt(sq / (n - 1)) : 0,
      integral,
      quantiles,
      histogram: histogramSorted(sorted, bins),
    },
    distinct,
  };
}

/** Index of the first value not below `x` (binary search). */
function lowerBound(sorted: Float64Array, x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Equal-width histogram of sorted values: a binary search per edge, not a pass over the values. */
export function histogramSorted(sorted: Float64Array, bins: number): { edges: number[]; counts: number[] } {
  const n = sorted.length;
  const min = sorted[0]!;
  const max = sorted[n - 1]!;
  if (min === max) return { edges: [min, max], counts: [n] };
  const width = (max - min) / bins;
  const edges = Array.from({ length: bins + 1 }, (_, i) => (i === bins ? max : min + i * width));
  const counts = new Array<number>(bins).fill(0);
  // Bin b holds [edges[b], edges[b + 1]); the last bin also holds max.
  let below = 0;
  for (let b = 0; b < bins - 1; b++) {
    const next = lowerBound(sorted, edges[b + 1]!);
    counts[b] = next - below;
    below = next;
  }
  counts[bins - 1] = n - below;
  return { edges, counts };
}

export function countCodes(codes: Int32Array, size: number): Int32Array {
  const counts = new Int32Array(size);
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i]!;
    if (c !== NULL_CODE) counts[c]!++;
  }
  return counts;
}

/**
 * Every k-th non-null value (k = ⌈n / size⌉), in row order: a deterministic sample that spans the
 * whole column, so a column stored in sorted order still yields every part of its range.
 */
export function systematicSample(values: Float64Array, nonNull: number, size: number): Float64Array {
  const step = Math.ceil(nonNull / size);
  const out = new Float64Array(Math.ceil(nonNull / step));
  let seen = 0;
  let j = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v !== v) continue;
    if (seen++ % step === 0) out[j++] = v;
  }
  return j === out.length ? out : out.subarray(0, j);
}

export interface ProfileOptions {
  /**
   * Numeric columns with more non-null values than this keep a systematic sample of about this size
   * as their sorted values (`ColumnStats.sampled`); count, nulls, min, max, mean and std stay exact.
   * For the drift reference: its sort is then cheap, and a 100,000-value sample moves KS by about
   * 0.004 (1.36/√m), far below any useful threshold.
   */
  sampleAbove?: number;
  /** Sort memory shared between columns (see SortScratch). */
  scratch?: SortScratch;
}

/** Exact moments and range of a column in one pass (for sampled profiles). */
function moments(values: Float64Array): {
  n: number;
  min: number;
  max: number;
  mean: number;
  std: number;
  integral: boolean;
} {
  let n = 0;
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let integral = true;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v !== v) continue;
    n++;
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
    if (integral && v !== Math.floor(v)) integral = false;
  }
  const mean = n > 0 ? sum / n : NaN;
  let m2 = 0; // second pass around the mean: cheaper than a division per value, and as stable
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v === v) m2 += (v - mean) * (v - mean);
  }
  return { n, min, max, mean, std: n > 1 ? Math.sqrt(m2 / (n - 1)) : 0, integral };
}

export function profileColumn(
  col: Column,
  rows: number,
  options: ProfileOptions = {},
): { profile: ColumnProfile; stats: ColumnStats } {
  const base = { name: col.name, type: col.type, count: rows, invalid: col.issues.count };
  switch (col.type) {
    case 'number':
    case 'integer':
    case 'datetime': {
      if (options.sampleAbove !== undefined && rows > options.sampleAbove) {
        const m = moments(col.values);
        if (m.n > options.sampleAbove) {
          const sorted = sortedNonNull(
            systematicSample(col.values, m.n, options.sampleAbove),
            options.scratch,
          );
          const s = summarizeSorted(sorted)!;
          const summary: NumericSummary = {
            ...s.summary,
            count: m.n,
            min: m.min,
            max: m.max,
            mean: m.mean,
            std: m.std,
            integral: m.integral,
          };
          // distinct is a lower bound here (from the sample)
          return {
            profile: { ...base, nulls: rows - m.n, distinct: s.distinct, numeric: summary },
            stats: { sorted, sampled: sorted.length },
          };
        }
      }
      const sorted = sortedNonNull(col.values, options.scratch);
      const s = summarizeSorted(sorted);
      const profile: ColumnProfile = { ...base, nulls: rows - sorted.length, distinct: s?.distinct ?? 0 };
      if (s) profile.numeric = s.summary;
      return { profile, stats: { sorted } };
    }
    case 'boolean': {
      let t = 0;
      let f = 0;
      for (let i = 0; i < col.values.length; i++) {
        const v = col.values[i];
        if (v === 1) t++;
        else if (v !== BOOL_NULL) f++;
      }
      return {
        profile: {
          ...base,
          nulls: rows - t - f,
          distinct: (t > 0 ? 1 : 0) + (f > 0 ? 1 : 0),
          boolean: { trueCount: t, falseCount: f },
        },
        stats: { booleanCounts: { trueCount: t, falseCount: f } },
      };
    }
    case 'category':
    case 'string': {
      const counts = countCodes(col.codes, col.dictionary.length);
      let nonNull = 0;
      let distinct = 0;
      const order: number[] = [];
      for (let c = 0; c < counts.length; c++) {
        const k = counts[c]!;
        if (k === 0) continue;
        nonNull += k;
        distinct++;
        order.push(c);
      }
      // Top values by count, ties by text, without sorting a large dictionary in full.
      const top = topCodes(order, counts, col.dictionary, TOP_CATEGORIES).map((c) => ({
        value: col.dictionary[c]!,
        count: counts[c]!,
      }));
      const topSum = top.reduce((a, t) => a + t.count, 0);
      const profile: ColumnProfile = {
        ...base,
        nulls: rows - nonNull,
        distinct,
        categories: { top, otherCount: nonNull - topSum },
      };
      return { profile: attachCodeCounts(profile, counts), stats: { codeCounts: counts } };
    }
  }
}

function topCodes(codes: number[], counts: Int32Array, dictionary: string[], k: number): number[] {
  const better = (a: number, b: number): boolean =>
    counts[a]! > counts[b]! || (counts[a] === counts[b] && dictionary[a]! < dictionary[b]!);
  const top: number[] = [];
  for (const c of codes) {
    if (top.length === k && !better(c, top[k - 1]!)) continue;
    let i = top.length === k ? k - 1 : top.length;
    top[i] = c;
    while (i > 0 && better(top[i]!, top[i - 1]!)) {
      [top[i], top[i - 1]] = [top[i - 1]!, top[i]!];
      i--;
    }
  }
  return top;
}

export function profileTable(table: Table, options: ProfileOptions = {}): TableProfile {
  const scratch = options.scratch ?? new SortScratch();
  const columns: ColumnProfile[] = [];
  const stats: ColumnStats[] = [];
  for (const col of table.columns) {
    const r = profileColumn(col, table.rows, { ...options, scratch });
    columns.push(r.profile);
    stats.push(r.stats);
  }
  return { rows: table.rows, columns, stats };
}
