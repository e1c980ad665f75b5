import type { ColumnarDataset } from '../../../lib/training/dataset';
import { selectRows } from '../../../lib/training/dataset';
import { createPrng, permutation } from '../../../lib/training/prng';
import { rowHashes, splitByRowHash } from '../../../lib/training/split';
import { syntheticClassification } from '../../../lib/training/synthetic';

const fractions = { train: 0.7, validation: 0.15, holdout: 0.15 };

/** Each row's content as a string, to compare splits of re-ordered datasets. */
function rowKeys(ds: ColumnarDataset, rows: ArrayLike<number>): string[] {
  return Array.from(rows, (r) =>
    ds.columns
      .map((c) => (c.type === 'numeric' ? String(c.values[r]) : (c.levels[c.codes[r]!] ?? '')))
      .join('|'),
  ).sort();
}

describe('seeded PRNG', () => {
  it('repeats for a seed and differs across seeds', () => {
    const a = createPrng(7);
    const b = createPrng(7);
    const c = createPrng(8);
    const xs = Array.from({ length: 5 }, () => a.nextUint32());
    expect(Array.from({ length: 5 }, () => b.nextUint32())).toEqual(xs);
    expect(Array.from({ length: 5 }, () => c.nextUint32())).not.toEqual(xs);
  });

  it('draws uniformly in range', () => {
    const p = createPrng(1);
    const counts = new Array(10).fill(0);
    for (let i = 0; i < 100_000; i++) {
      const x = p.next();
      expect(x >= 0 && x < 1).toBe(true);
      counts[p.nextInt(10)]++;
    }
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(500);
    expect(Array.from(permutation(10, createPrng(2))).sort((x, y) => x - y)).toEqual([
      0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
    ]);
  });
});

describe('split by row hash', () => {
  const ds = syntheticClassification({ rows: 20_000, features: 3, seed: 1, withSegment: true });

  it('is deterministic and close to the requested fractions', () => {
    const a = splitByRowHash(ds, fractions, 42);
    const b = splitByRowHash(ds, fractions, 42);
    expect(Array.from(a.holdout)).toEqual(Array.from(b.holdout));
    expect(a.train.length + a.validation.length + a.holdout.length).toBe(20_000);
    expect(a.train.length / 20_000).toBeCloseTo(0.7, 1);
    expect(a.holdout.length / 20_000).toBeCloseTo(0.15, 1);
  });

  it('puts each row in the same part after the dataset is shuffled', () => {
    const shuffled = selectRows(ds, permutation(ds.rowCount, createPrng(3)));
    const a = splitByRowHash(ds, fractions, 42);
    const b = splitByRowHash(shuffled, fractions, 42);
    expect(rowKeys(shuffled, b.holdout)).toEqual(rowKeys(ds, a.holdout));
    expect(rowKeys(shuffled, b.validation)).toEqual(rowKeys(ds, a.validation));
  });

  it('keeps old rows in their part when new rows are appended', () => {
    const head = selectRows(
      ds,
      Uint32Array.from({ length: 10_000 }, (_, i) => i),
    );
    const a = splitByRowHash(head, fractions, 42);
    const b = splitByRowHash(ds, fractions, 42);
    expect(Array.from(b.holdout.filter((r) => r < 10_000))).toEqual(Array.from(a.holdout));
  });

  it('changes with the seed and can hash a key column only', () => {
    expect(Array.from(splitByRowHash(ds, fractions, 1).holdout)).not.toEqual(
      Array.from(splitByRowHash(ds, fractions, 2).holdout),
    );
    const byKey = rowHashes(ds, 5, ['x0']);
    const all = rowHashes(ds, 5);
    expect(byKey[0]).not.toBe(all[0]);
  });

  it('does not collapse repeated identical rows into one part', () => {
    const codes = new Int32Array(3_000).map((_, i) => i % 3);
    const few: ColumnarDataset = {
      rowCount: 3_000,
      columns: [{ name: 'c', type: 'categorical', codes, levels: ['a', 'b', 'c'] }],
    };
    const s = splitByRowHash(few, fractions, 42);
    expect(s.holdout.length).toBeGreaterThan(300);
    expect(s.train.length).toBeGreaterThan(1_800);
  });
});

describe('bulk draws', () => {
  it('fillInts gives exactly the numbers of repeated nextInt calls', () => {
    const a = createPrng(11);
    const b = createPrng(11);
    const bulk = new Uint32Array(5_000);
    a.fillInts(bulk, 777);
    expect(Array.from(bulk)).toEqual(Array.from({ length: 5_000 }, () => b.nextInt(777)));
    expect(a.nextUint32()).toBe(b.nextUint32());
  });
});
