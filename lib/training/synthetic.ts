import type { Column, ColumnarDataset } from './dataset';
import { createPrng } from './prng';

/**
 * Seeded synthetic datasets for tests, benchmarks and demos. `classification`: a logistic model
 * over `features` uniform(-2, 2) numeric columns, plus a nonlinear term and an optional categorical
 * column `segment` (levels a..d) that shifts the log-odds.
 */
export function syntheticClassification(options: {
  rows: number;
  features: number;
  seed: number;
  /** Strength of the signal; larger = more separable. */
  signal?: number;
  withSegment?: boolean;
  classes?: number;
}): ColumnarDataset {
  const { rows: n, features: d, seed } = options;
  const signal = options.signal ?? 3;
  const K = options.classes ?? 2;
  const prng = createPrng(seed);
  const columns: Column[] = [];
  const logits = new Float64Array(n * K);
  for (let j = 0; j < d; j++) {
    const values = new Float64Array(n);
    const w = Array.from({ length: K }, (_, k) => (((j + k) % 3) - 1) / Math.sqrt(d));
    for (let i = 0; i < n; i++) {
      const x = prng.next() * 4 - 2;
      values[i] = x;
      for (let k = 0; k < K; k++)
        logits[i * K + k]! += signal * w[k]! * x + (j === 1 && k === K - 1 ? Math.sin(3 * x) : 0);
    }
    columns.push({ name: `x${j}`, type: 'numeric', values });
  }
  if (options.withSegment) {
    const codes = new Int32Array(n);
    const shift = [-1, -0.3, 0.3, 1];
    for (let i = 0; i < n; i++) {
      const c = prng.nextInt(4);
      codes[i] = c;
      logits[i * K + K - 1]! += shift[c]!;
    }
    columns.push({ name: 'segment', type: 'categorical', codes, levels: ['a', 'b', 'c', 'd'] });
  }
  const codes = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    if (K === 2) {
      const z = logits[i * K + 1]! - logits[i * K]!;
      codes[i] = prng.next() < 1 / (1 + Math.exp(-z)) ? 1 : 0;
    } else {
      let max = -Infinity;
      for (let k = 0; k < K; k++) max = Math.max(max, logits[i * K + k]!);
      let sum = 0;
      for (let k = 0; k < K; k++) sum += Math.exp(logits[i * K + k]! - max);
      let u = prng.next() * sum;
      let k = 0;
      for (; k < K - 1; k++) {
        u -= Math.exp(logits[i * K + k]! - max);
        if (u < 0) break;
      }
      codes[i] = k;
    }
  }
  const levels = K === 2 ? ['no', 'yes'] : Array.from({ length: K }, (_, k) => `c${k}`);
  columns.push({ name: 'label', type: 'categorical', codes, levels });
  return { rowCount: n, columns };
}

/** A regression target y = Σ βⱼ xⱼ + noise with βⱼ = j + 1 (j < 5) and 0 after. */
export function syntheticRegression(options: {
  rows: number;
  features: number;
  seed: number;
  noise?: number;
}): ColumnarDataset {
  const { rows: n, features: d, seed } = options;
  const prng = createPrng(seed);
  const y = new Float64Array(n);
  const columns: Column[] = [];
  for (let j = 0; j < d; j++) {
    const values = new Float64Array(n);
    const beta = j < 5 ? j + 1 : 0;
    for (let i = 0; i < n; i++) {
      const x = prng.next() * 2 - 1;
      values[i] = x;
      y[i]! += beta * x;
    }
    columns.push({ name: `x${j}`, type: 'numeric', values });
  }
  const noise = options.noise ?? 0.1;
  for (let i = 0; i < n; i++) y[i]! += noise * (prng.next() + prng.next() + prng.next() - 1.5) * 2;
  columns.push({ name: 'y', type: 'numeric', values: y });
  return { rowCount: n, columns };
}
