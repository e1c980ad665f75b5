import type { ColumnarDataset } from './dataset';
import { getColumn } from './dataset';
import { hashString, mix32 } from './prng';

export interface SplitFractions {
  train: number;
  validation: number;
  holdout: number;
}

export interface RowSplit {
  train: Uint32Array;
  validation: Uint32Array;
  holdout: Uint32Array;
}

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);
const MISSING = 0x6d697373; // any constant; marks a missing cell

/**
 * A 32-bit hash per row over the given columns (all columns when `keyColumns` is omitted), mixed
 * with the row's occurrence number among identical rows. A row's hash depends only on its values,
 * the seed and how many identical rows precede it, never on its position otherwise: the same row
 * lands in the same split when the dataset is re-ingested, re-ordered or appended to (identical rows
 * are interchangeable, so their order does not matter). Counting occurrences keeps low-cardinality
 * data (a few distinct rows repeated many times) from collapsing into a single split.
 */
export function rowHashes(ds: ColumnarDataset, seed: number, keyColumns?: readonly string[]): Uint32Array {
  const cols = keyColumns ? keyColumns.map((k) => getColumn(ds, k)) : ds.columns;
  const n = ds.rowCount;
  const h = new Uint32Array(n).fill(mix32(seed ^ 0x5bd1e995));
  for (const col of cols) {
    if (col.type === 'numeric') {
      const v = col.values;
      for (let i = 0; i < n; i++) {
        const x = v[i]!;
        let a: number;
        let b: number;
        if (Number.isNaN(x)) {
          a = MISSING;
          b = MISSING;
        } else {
          f64[0] = x === 0 ? 0 : x; // -0 and 0 hash alike
          a = u32[0]!;
          b = u32[1]!;
        }
        h[i] = step(step(h[i]!, a), b);
      }
    } else {
      const levelHash = col.levels.map((l) => hashString(l));
      const codes = col.codes;
      for (let i = 0; i < n; i++) {
        const c = codes[i]!;
        h[i] = step(h[i]!, c < 0 ? MISSING : levelHash[c]!);
      }
    }
  }
  const seen = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const content = mix32(h[i]!);
    const k = seen.get(content) ?? 0;
    seen.set(content, k + 1);
    h[i] = k === 0 ? content : mix32(step(content, k));
  }
  return h;
}

function step(h: number, v: number): number {
  h = Math.imul(h ^ v, 0x9e3779b1);
  return ((h << 13) | (h >>> 19)) >>> 0;
}

/**
 * Deterministic train/validation/holdout split by row hash: a row goes to train when
 * hash/2^32 < train, to validation when below train + validation, else to holdout.
 */
export function splitByRowHash(
  ds: ColumnarDataset,
  fractions: SplitFractions,
  seed: number,
  keyColumns?: readonly string[],
): RowSplit {
  const hashes = rowHashes(ds, seed, keyColumns);
  const trainCut = fractions.train * 4294967296;
  const valCut = (fractions.train + fractions.validation) * 4294967296;
  const which = new Uint8Array(ds.rowCount);
  const counts = [0, 0, 0];
  for (let i = 0; i < hashes.length; i++) {
    const x = hashes[i]!;
    const k = x < trainCut ? 0 : x < valCut ? 1 : 2;
    which[i] = k;
    counts[k]!++;
  }
  const out = [new Uint32Array(counts[0]!), new Uint32Array(counts[1]!), new Uint32Array(counts[2]!)];
  const pos = [0, 0, 0];
  for (let i = 0; i < which.length; i++) {
    const k = which[i]!;
    out[k]![pos[k]!++] = i;
  }
  return { train: out[0]!, validation: out[1]!, holdout: out[2]! };
}
