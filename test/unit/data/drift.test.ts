import { parseDatasetContract } from '../../../lib/contracts/datasetContract';
import {
  computeDrift,
  holmAdjust,
  jensenShannon,
  ksAndWasserstein,
  ksPValue,
  ksStatistic,
  psi,
  quantileBins,
  wasserstein1,
} from '../../../lib/data/profiling/drift';
import { profileTable } from '../../../lib/data/profiling/profile';
import { rng } from '../../../bench/data/generate';
import { parse } from './helpers';

const f64 = (v: number[]): Float64Array => Float64Array.from(v).sort();

describe('drift metrics against known values', () => {
  it('PSI of 50/50 vs 25/75 is 0.25·ln2 + 0.25·ln1.5', () => {
    expect(psi([50, 50], [25, 75])).toBeCloseTo(0.25 * Math.log(2) + 0.25 * Math.log(1.5), 12);
    expect(psi([10, 20, 30], [10, 20, 30])).toBe(0);
  });

  it('PSI floors an empty bin at 1e-4 instead of going infinite', () => {
    // (1e-4 − 0.5)·ln(1e-4/0.5) + (1 − 0.5)·ln(1/0.5)
    expect(psi([50, 50], [0, 100])).toBeCloseTo((1e-4 - 0.5) * Math.log(1e-4 / 0.5) + 0.5 * Math.log(2), 12);
  });

  it('Jensen–Shannon distance: 0 for identical, 1 for disjoint, 0.220896 for 50/50 vs 25/75', () => {
    expect(jensenShannon([1, 2, 3], [2, 4, 6])).toBe(0);
    expect(jensenShannon([1, 0], [0, 1])).toBeCloseTo(1, 12);
    expect(jensenShannon([50, 50], [25, 75])).toBeCloseTo(0.2208958, 6);
  });

  it('Wasserstein-1: a shift by c costs c; a point mass moved half-way costs half', () => {
    expect(wasserstein1(f64([0, 1, 3]), f64([5, 6, 8]))).toBeCloseTo(5, 12);
    expect(wasserstein1(f64([0, 0]), f64([0, 2]))).toBeCloseTo(1, 12);
    expect(wasserstein1(f64([1, 2, 3]), f64([1, 2, 3]))).toBe(0);
  });

  it('two-sample KS statistic with ties', () => {
    expect(ksStatistic(f64([1, 2, 3, 4]), f64([3, 4, 5, 6]))).toBe(0.5);
    expect(ksStatistic(f64([1, 1, 2]), f64([1, 2, 2]))).toBeCloseTo(1 / 3, 12);
    expect(ksStatistic(f64([1, 2]), f64([3, 4]))).toBe(1);
  });

  it('the fused one-pass KS + Wasserstein equals the two separate computations', () => {
    const r = rng(3);
    for (let k = 0; k < 5; k++) {
      const a = f64(Array.from({ length: 500 + k * 37 }, () => Math.round(r() * 50) / 10));
      const b = f64(Array.from({ length: 800 - k * 41 }, () => Math.round((r() + 0.1 * k) * 50) / 10));
      const both = ksAndWasserstein(a, b);
      expect(both.ks).toBeCloseTo(ksStatistic(a, b), 12);
      expect(both.wasserstein).toBeCloseTo(wasserstein1(a, b), 10);
    }
  });

  it('merging long runs of equal values (by galloping) gives exactly what stepping through them gives', () => {
    const r = rng(4);
    const runs = f64(
      Array.from({ length: 20_000 }, () => [0, 1, 1, 2, 7][Math.floor(r() * 5)]!).sort((x, y) => x - y),
    );
    const mixed = f64(Array.from({ length: 3_000 }, () => Math.round(r() * 800) / 100).sort((x, y) => x - y));
    for (const [a, b] of [
      [runs, mixed],
      [mixed, runs],
      [runs, runs.subarray(5_000)],
    ] as const) {
      const both = ksAndWasserstein(a, b);
      expect(both.ks).toBe(ksStatistic(a, b));
      expect(both.wasserstein).toBe(wasserstein1(a, b));
    }
  });

  it('KS p-value follows the Kolmogorov distribution (λ = 1.358 → p ≈ 0.05)', () => {
    const n = 1_000_000;
    const en = Math.sqrt(n / 2);
    const d = 1.358 / (en + 0.12 + 0.11 / en);
    expect(ksPValue(d, n, n)).toBeCloseTo(0.05, 3);
    expect(ksPValue(0, 100, 100)).toBe(1);
  });

  it('Holm adjustment', () => {
    expect(holmAdjust([0.01, 0.04, 0.03])).toEqual([0.03, 0.06, 0.06]);
  });

  it('quantile bins: edges at the reference deciles, counts of both sides', () => {
    const ref = f64(Array.from({ length: 100 }, (_, i) => i));
    const cur = f64(Array.from({ length: 100 }, (_, i) => i + 50));
    const bins = quantileBins(ref, cur, 4);
    expect(bins.edges).toEqual([24.75, 49.5, 74.25]);
    expect(bins.reference).toEqual([25, 25, 25, 25]);
    expect(bins.current).toEqual([0, 0, 25, 75]);
  });
});

describe('dataset drift verdicts', () => {
  const csv = (rows: number, seed: number, shift: number): string => {
    const r = rng(seed);
    const lines = ['x,y,c,id'];
    for (let i = 0; i < rows; i++) {
      const c = r() < 0.5 + 0.4 * shift ? 'a' : 'b';
      lines.push(`${(r() + shift).toFixed(4)},${r().toFixed(4)},${c},${i}`);
    }
    return lines.join('\n');
  };
  const contract = (extra: object = {}) =>
    parseDatasetContract({
      columns: [
        { name: 'x', type: 'number' },
        { name: 'y', type: 'number' },
        { name: 'c', type: 'category' },
        { name: 'id', type: 'integer', unique: true },
      ],
      drift: extra,
    });
  const drift = async (refText: string, curText: string, c = contract()) => {
    const ref = await parse(refText, { contract: c });
    const cur = await parse(curText, { contract: c });
    return computeDrift(
      { table: ref.table, profile: profileTable(ref.table) },
      { table: cur.table, profile: profileTable(cur.table) },
      c,
    );
  };

  it('same population on large samples: stable (effect sizes stay small as samples grow)', async () => {
    const d = await drift(csv(20_000, 1, 0), csv(20_000, 2, 0));
    expect(d.status).toBe('stable');
    expect(d.columns.find((c) => c.column === 'id')).toMatchObject({ status: 'skipped' });
    const x = d.columns.find((c) => c.column === 'x')!;
    expect(x.metrics.ks!.value).toBeLessThan(0.05);
    expect(x.metrics.ks!.pValueAdjusted).toBeGreaterThanOrEqual(x.metrics.ks!.pValue!);
  });

  it('a shifted column and category mix drift; the dataset verdict follows the weighted share', async () => {
    const d = await drift(csv(5_000, 1, 0), csv(5_000, 2, 0.5));
    expect(d.driftedColumns.sort()).toEqual(['c', 'x']);
    expect(d.driftedShare).toBeCloseTo(2 / 3, 12);
    expect(d.status).toBe('drifted');
    const light = await drift(
      csv(5_000, 1, 0),
      csv(5_000, 2, 0.5),
      contract({ columns: { x: { weight: 0 }, c: { weight: 0 } } }),
    );
    expect(light.status).toBe('stable');
    const critical = await drift(
      csv(5_000, 1, 0),
      csv(5_000, 2, 0.5),
      contract({ verdict: { driftedShare: 1, critical: ['x'] } }),
    );
    expect(critical).toMatchObject({ status: 'drifted', criticalDrifted: ['x'] });
  });

  it('fewer values than the minimum sample size: not testable, never drifted', async () => {
    const d = await drift(csv(50, 1, 0), csv(50, 2, 3));
    expect(d.status).toBe('notTestable');
    expect(d.columns.filter((c) => c.status === 'notTestable').map((c) => c.column)).toEqual(['x', 'y', 'c']);
  });
});
