import type { NumericColumn } from '../../../lib/data/table';
import { emptyIssues } from '../../../lib/data/table';
import {
  histogramSorted,
  profileColumn,
  quantileSorted,
  systematicSample,
} from '../../../lib/data/profiling/profile';
import { skipEqual, SortScratch, sortedNonNull } from '../../../lib/data/profiling/sort';
import { rng } from '../../../bench/data/generate';
import { parse } from './helpers';

const num = (values: number[]): NumericColumn => ({
  name: 'x',
  type: 'number',
  values: Float64Array.from(values),
  issues: emptyIssues(),
});

describe('profile statistics against hand-computed values', () => {
  it('count, nulls, min, max, mean, sample std, quantiles of 2, 4, 4, 4, 5, 5, 7, 9 and a null', () => {
    const { profile } = profileColumn(num([4, 2, 5, NaN, 4, 9, 4, 5, 7]), 9);
    expect(profile).toMatchObject({ count: 9, nulls: 1, distinct: 5 });
    const s = profile.numeric!;
    expect(s.count).toBe(8);
    expect(s.min).toBe(2);
    expect(s.max).toBe(9);
    expect(s.mean).toBe(5);
    // Σ(x − 5)² = 9+1+1+1+0+0+4+16 = 32; sample variance 32/7
    expect(s.std).toBeCloseTo(Math.sqrt(32 / 7), 12);
    // type-7 quantiles: h = 7p → p25: x[1.75] = 4, p50: x[3.5] = 4.5, p75: x[5.25] = 5 + 0.25·2 = 5.5
    expect(s.quantiles.p25).toBe(4);
    expect(s.quantiles.p50).toBe(4.5);
    expect(s.quantiles.p75).toBe(5.5);
    expect(s.quantiles.p01).toBeCloseTo(2 + 0.07 * 2, 12);
    expect(s.integral).toBe(true);
  });

  it('a column of few distinct values (summed run by run) has the statistics of the same values one by one', () => {
    // 60,000 values, 6 distinct: the run-by-run path; 2, 4, 4, 4, 5, 5, 7, 9 repeated, so the
    // hand-computed figures above hold, and one half-integer makes the column not integral.
    const base = [4, 2, 5, 4, 9, 4, 5, 7];
    const values = Array.from({ length: 60_000 }, (_, i) => base[i % 8]!);
    values[123] = 4.5;
    const { profile } = profileColumn(num(values), values.length);
    const s = profile.numeric!;
    expect(profile.distinct).toBe(6);
    expect(s.integral).toBe(false);
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    const sq = values.reduce((a, v) => a + (v - mean) ** 2, 0);
    expect(s.mean).toBeCloseTo(mean, 12);
    expect(s.std).toBeCloseTo(Math.sqrt(sq / (values.length - 1)), 12);
    // Sorted: 7,500 twos, 22,499 fours, the 4.5 at index 29,999, fives from 30,000: p50 = x[29,999.5]
    expect(s.quantiles.p50).toBe(4.75);
    // Whole numbers again: integral, and the same answer with the values given in another order.
    values[123] = 4;
    const again = profileColumn(num([...values].reverse()), values.length).profile;
    expect(again.distinct).toBe(5);
    expect(again.numeric!.integral).toBe(true);
    expect(again.numeric!.mean).toBe(5);
    expect(again.numeric!.std).toBeCloseTo(Math.sqrt((32 / 8) * (60_000 / 59_999)), 12);
  });

  it('histogram bins: equal width, last bin closed', () => {
    const h = histogramSorted(Float64Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 10]), 5);
    expect(h.edges).toEqual([0, 2, 4, 6, 8, 10]);
    expect(h.counts).toEqual([2, 2, 2, 2, 2]);
    expect(histogramSorted(Float64Array.from([3, 3]), 5)).toEqual({ edges: [3, 3], counts: [2] });
  });

  it('quantile of one value and of none', () => {
    expect(quantileSorted([7], 0.9)).toBe(7);
    expect(quantileSorted([], 0.5)).toBeNaN();
  });

  it('category counts, top values with ties broken by text, and the rest', async () => {
    const { table } = await parse('c\nb\na\nb\nc\n\na\nd\n');
    const { profile } = profileColumn(table.columns[0]!, table.rows);
    expect(profile).toMatchObject({ count: 7, nulls: 1, distinct: 4 });
    expect(profile.categories!.top).toEqual([
      { value: 'a', count: 2 },
      { value: 'b', count: 2 },
      { value: 'c', count: 1 },
      { value: 'd', count: 1 },
    ]);
    expect(profile.categories!.otherCount).toBe(0);
  });

  it('booleans: true and false counts', async () => {
    const { table } = await parse('f\ntrue\nfalse\nyes\n\nno\n');
    const { profile } = profileColumn(table.columns[0]!, table.rows);
    expect(profile.boolean).toEqual({ trueCount: 2, falseCount: 2 });
    expect(profile.nulls).toBe(1);
  });
});

describe('sorting numeric columns', () => {
  const check = (values: Float64Array): void => {
    const expected = Array.from(values)
      .filter((v) => !Number.isNaN(v))
      .sort((a, b) => a - b);
    expect(Array.from(sortedNonNull(values))).toEqual(expected);
  };
  it('sorts random doubles of both signs, with nulls, like a comparison sort', () => {
    const r = rng(7);
    check(
      Float64Array.from({ length: 50_000 }, (_, i) =>
        i % 97 === 0 ? NaN : (r() - 0.4) * 10 ** Math.floor(r() * 12 - 6),
      ),
    );
  });
  it('sorts decimals and integers (the counting-sort path) exactly', () => {
    const r = rng(8);
    check(Float64Array.from({ length: 20_000 }, () => Math.round((r() - 0.5) * 100_000) / 100));
    check(Float64Array.from({ length: 20_000 }, () => Math.floor(r() * 90)));
  });
  it('sorts two-decimal values over a wide range, negatives included (the scaled-integer radix path)', () => {
    const r = rng(10);
    check(
      Float64Array.from({ length: 30_000 }, (_, i) =>
        i % 50 === 0 ? NaN : Math.round((r() - 0.3) * 1e8) / 100,
      ),
    );
  });
  it('sorts values that share their high bits (the run fix-up path)', () => {
    const r = rng(9);
    check(Float64Array.from({ length: 20_000 }, () => 1 + r() * 1e-9));
  });
  it('sorts column after column in shared scratch memory, larger and smaller, every path', () => {
    const r = rng(11);
    const columns = [
      Float64Array.from({ length: 30_000 }, () => Math.floor(r() * 90)), // counting
      Float64Array.from({ length: 40_000 }, (_, i) => (i % 7 ? Math.round((r() - 0.3) * 1e8) / 100 : NaN)), // scaled radix
      Float64Array.from({ length: 25_000 }, () => (r() - 0.5) * 1e12 * r()), // float radix
      Float64Array.from({ length: 1_000 }, () => r()), // small
      Float64Array.from({ length: 50_000 }, () => Math.floor(r() * 3)), // counting, longer than all before
      Float64Array.from({ length: 10_000 }, () => Math.floor(r() * 40)), // counting, shorter: same buffer
    ];
    for (const reuseOutput of [false, true]) {
      const scratch = new SortScratch(reuseOutput);
      const kept: Float64Array[] = [];
      for (const values of columns) {
        const expected = Array.from(values)
          .filter((v) => !Number.isNaN(v))
          .sort((a, b) => a - b);
        const sorted = sortedNonNull(values, scratch);
        expect(Array.from(sorted)).toEqual(expected);
        kept.push(sorted);
      }
      // Without reuseOutput every result is its own memory and survives the sorts after it; with it,
      // a sort no longer than the one before writes into that one's output buffer.
      if (!reuseOutput) kept.forEach((s, i) => expect(s).toEqual(sortedNonNull(columns[i]!)));
      expect(kept[5]!.buffer === kept[4]!.buffer).toBe(reuseOutput);
    }
  });
  it('skipEqual finds the end of a run of equal values: lone values, long runs, the last run', () => {
    const s = Float64Array.from([1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 5, 5]);
    expect(skipEqual(s, 0, 1)).toBe(1);
    expect(skipEqual(s, 1, 2)).toBe(10);
    expect(skipEqual(s, 4, 2)).toBe(10);
    expect(skipEqual(s, 10, 3)).toBe(11);
    expect(skipEqual(s, 11, 5)).toBe(13);
    expect(skipEqual(s, 10, 2)).toBe(10); // not at a run of x: stays
    expect(skipEqual(s, 13, 5)).toBe(13);
    const long = new Float64Array(100_003).fill(4);
    long[100_002] = 9;
    expect(skipEqual(long, 0, 4)).toBe(100_002);
  });
  it('returns a column already in order without nulls as it is (read-only), and copies it without its nulls', () => {
    const ordered = Float64Array.from([1, 2, 2, 5]);
    expect(sortedNonNull(ordered)).toBe(ordered);
    expect(Array.from(sortedNonNull(Float64Array.from([1, NaN, 3])))).toEqual([1, 3]);
  });
});

describe('sampled profiles (the drift reference)', () => {
  it('a systematic sample spans the column; count, min, max, mean and std stay exact', () => {
    const values = Float64Array.from({ length: 10_000 }, (_, i) => (i % 10 === 9 ? NaN : i));
    expect(Array.from(systematicSample(values, 9_000, 3_000)).slice(0, 4)).toEqual([0, 3, 6, 10]);
    const exact = profileColumn(num(Array.from(values)), values.length).profile.numeric!;
    const { profile, stats } = profileColumn(num(Array.from(values)), values.length, { sampleAbove: 1_000 });
    expect(stats.sampled).toBe(1_000);
    expect(stats.sorted).toHaveLength(1_000);
    expect(profile.nulls).toBe(1_000);
    expect(profile.numeric).toMatchObject({ count: 9_000, min: exact.min, max: exact.max });
    expect(profile.numeric!.mean).toBeCloseTo(exact.mean, 9);
    expect(profile.numeric!.std).toBeCloseTo(exact.std, 9);
    expect(profile.numeric!.quantiles.p50).toBeCloseTo(exact.quantiles.p50, -2);
  });
});
