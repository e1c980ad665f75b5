import { NonRetriableError } from '../errors';
import type { Column, ColumnarDataset } from './dataset';
import { getColumn } from './dataset';

/** A feature as the model sees it; stored in the model JSON so scoring needs nothing else. */
export type FeatureSchema =
  { name: string; type: 'numeric' } | { name: string; type: 'categorical'; categories: string[] };

/** Standardization and one-hot layout of the linear models. */
export type LinearFeature =
  | { name: string; type: 'numeric'; mean: number; scale: number }
  | { name: string; type: 'categorical'; categories: string[] };

/** Categories kept per categorical feature; rarer ones are treated as unknown (all-zero one-hot). */
export const MAX_CATEGORIES = 255;

/**
 * The feature schema of a training run. Categories come from the dataset contract when it lists
 * them, otherwise from the levels seen in the training rows (most frequent first up to
 * {@link MAX_CATEGORIES}, then sorted, so the order does not depend on row order).
 */
export function inferFeatureSchema(
  ds: ColumnarDataset,
  featureNames: readonly string[],
  rows: ArrayLike<number>,
  contractCategories: Readonly<Record<string, readonly string[]>> = {},
): FeatureSchema[] {
  return featureNames.map((name): FeatureSchema => {
    const col = getColumn(ds, name);
    if (col.type === 'numeric') return { name, type: 'numeric' };
    const fromContract = contractCategories[name];
    if (fromContract)
      return { name, type: 'categorical', categories: [...fromContract].slice(0, MAX_CATEGORIES) };
    const counts = new Float64Array(col.levels.length);
    for (let i = 0; i < rows.length; i++) {
      const c = col.codes[rows[i]!]!;
      if (c >= 0) counts[c]!++;
    }
    const seen = col.levels
      .map((level, i) => ({ level, n: counts[i]! }))
      .filter((x) => x.n > 0)
      .sort((a, b) => b.n - a.n || cmp(a.level, b.level))
      .slice(0, MAX_CATEGORIES)
      .map((x) => x.level)
      .sort(cmp);
    return { name, type: 'categorical', categories: seen };
  });
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Maps a column's level codes to indexes in `categories` (-1 when unknown). */
export function levelMap(levels: readonly string[], categories: readonly string[]): Int32Array {
  const index = new Map(categories.map((c, i) => [c, i]));
  return Int32Array.from(levels, (l) => index.get(l) ?? -1);
}

function categoricalCodes(col: Column, categories: readonly string[]): Int32Array {
  if (col.type !== 'categorical') {
    // A numeric column used as a categorical feature: its values' decimal strings are the levels.
    const out = new Int32Array(col.values.length);
    const index = new Map(categories.map((c, i) => [c, i]));
    for (let i = 0; i < out.length; i++) {
      const v = col.values[i]!;
      out[i] = Number.isNaN(v) ? -1 : (index.get(String(v)) ?? -1);
    }
    return out;
  }
  const map = levelMap(col.levels, categories);
  const out = new Int32Array(col.codes.length);
  for (let i = 0; i < out.length; i++) {
    const c = col.codes[i]!;
    out[i] = c < 0 ? -1 : map[c]!;
  }
  return out;
}

function numericValues(col: Column, name: string): Float64Array {
  if (col.type !== 'numeric') {
    throw new NonRetriableError(
      'feature_type_mismatch',
      `feature "${name}" is numeric in the model but categorical in the data`,
    );
  }
  return col.values;
}

/** Fits means and scales (population standard deviation; 1 for constant columns) on `rows`. */
export function fitLinearFeatures(
  ds: ColumnarDataset,
  schema: readonly FeatureSchema[],
  rows: ArrayLike<number>,
): LinearFeature[] {
  return schema.map((f): LinearFeature => {
    if (f.type === 'categorical') return f;
    const v = numericValues(getColumn(ds, f.name), f.name);
    let n = 0;
    let mean = 0;
    let m2 = 0;
    for (let i = 0; i < rows.length; i++) {
      const x = v[rows[i]!]!;
      if (Number.isNaN(x)) continue;
      n++;
      const d = x - mean;
      mean += d / n;
      m2 += d * (x - mean);
    }
    const sd = n > 1 ? Math.sqrt(m2 / n) : 0;
    return { name: f.name, type: 'numeric', mean: n > 0 ? mean : 0, scale: sd > 1e-12 ? sd : 1 };
  });
}

export function linearWidth(features: readonly LinearFeature[]): number {
  let p = 0;
  for (const f of features) p += f.type === 'numeric' ? 1 : f.categories.length;
  return p;
}

/**
 * Row-major design matrix (n × p) for the linear models: numeric features standardized (missing →
 * 0, the training mean), categorical features one-hot (unknown or missing → all zeros).
 */
export function encodeLinear(
  ds: ColumnarDataset,
  features: readonly LinearFeature[],
): { X: Float64Array; p: number } {
  const n = ds.rowCount;
  const p = linearWidth(features);
  const X = new Float64Array(n * p);
  let offset = 0;
  for (const f of features) {
    const col = getColumn(ds, f.name);
    if (f.type === 'numeric') {
      const v = numericValues(col, f.name);
      const inv = 1 / f.scale;
      for (let i = 0, j = offset; i < n; i++, j += p) {
        const x = v[i]!;
        X[j] = Number.isNaN(x) ? 0 : (x - f.mean) * inv;
      }
      offset += 1;
    } else {
      const codes = categoricalCodes(col, f.categories);
      for (let i = 0, j = offset; i < n; i++, j += p) {
        const c = codes[i]!;
        if (c >= 0) X[j + c] = 1;
      }
      offset += f.categories.length;
    }
  }
  return { X, p };
}

/**
 * Column-major raw features for the tree ensemble: numeric values as they are, categorical ones as
 * their index in the schema's categories (ordinal encoding); missing or unknown → NaN.
 */
export function encodeRaw(ds: ColumnarDataset, schema: readonly FeatureSchema[]): Float64Array[] {
  return schema.map((f) => {
    const col = getColumn(ds, f.name);
    if (f.type === 'numeric') return numericValues(col, f.name);
    const codes = categoricalCodes(col, f.categories);
    const out = new Float64Array(codes.length);
    for (let i = 0; i < out.length; i++) out[i] = codes[i]! < 0 ? NaN : codes[i]!;
    return out;
  });
}

/** Class labels of a target column, sorted (numerically when every label is a number). */
export function inferClasses(ds: ColumnarDataset, target: string, rows: ArrayLike<number>): string[] {
  const col = getColumn(ds, target);
  const seen = new Set<string>();
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    if (col.type === 'numeric') {
      const v = col.values[r]!;
      if (!Number.isNaN(v)) seen.add(String(v));
    } else {
      const c = col.codes[r]!;
      if (c >= 0) seen.add(col.levels[c]!);
    }
  }
  const labels = [...seen];
  if (labels.every((l) => Number.isFinite(Number(l)))) return labels.sort((a, b) => Number(a) - Number(b));
  return labels.sort(cmp);
}

/** Class indexes of the target (-1 when missing or not one of `classes`). */
export function encodeClassTarget(
  ds: ColumnarDataset,
  target: string,
  classes: readonly string[],
): Int32Array {
  return categoricalCodes(getColumn(ds, target), classes);
}

/** The numeric target of a regression. */
export function encodeRegressionTarget(ds: ColumnarDataset, target: string): Float64Array {
  const col = getColumn(ds, target);
  if (col.type !== 'numeric') {
    throw new NonRetriableError(
      'target_type_mismatch',
      `regression target "${target}" must be a numeric column`,
    );
  }
  return col.values;
}
