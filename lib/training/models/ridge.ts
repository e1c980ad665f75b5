import { NonRetriableError } from '../../errors';

export interface RidgeHyperparameters {
  /** L2 penalty on the coefficients (not the intercept), in units of the mean squared error. */
  alpha: number;
}

export interface RidgeFit {
  coefficients: Float64Array;
  intercept: number;
}

/**
 * Weighted ridge regression in closed form: minimizes Σ wᵢ (yᵢ − b − xᵢ·β)² / Σ wᵢ + α‖β‖² by
 * solving the (p+1)² normal equations with a Cholesky factorization (p is small: one column per
 * numeric feature or category).
 */
export function fitRidge(
  X: Float64Array,
  p: number,
  y: Float64Array,
  weights: Float64Array,
  hp: RidgeHyperparameters,
): RidgeFit {
  const n = y.length;
  const q = p + 1; // last column: intercept
  const A = new Float64Array(q * q);
  const rhs = new Float64Array(q);
  let wSum = 0;
  const xi = new Float64Array(q);
  for (let i = 0, row = 0; i < n; i++, row += p) {
    const w = weights[i]!;
    if (w === 0) continue;
    wSum += w;
    for (let j = 0; j < p; j++) xi[j] = X[row + j]!;
    xi[p] = 1;
    const yi = y[i]!;
    for (let a = 0; a < q; a++) {
      const wa = w * xi[a]!;
      if (wa === 0) continue;
      rhs[a]! += wa * yi;
      const base = a * q;
      for (let b = 0; b <= a; b++) A[base + b]! += wa * xi[b]!;
    }
  }
  if (wSum === 0)
    throw new NonRetriableError('no_training_rows', 'ridge regression needs at least one training row');
  for (let a = 0; a < q; a++) {
    for (let b = 0; b <= a; b++) A[a * q + b]! /= wSum;
    rhs[a]! /= wSum;
  }
  // A tiny jitter keeps the system positive definite with alpha = 0 and collinear one-hot columns.
  for (let a = 0; a < p; a++) A[a * q + a]! += hp.alpha + 1e-10;
  A[p * q + p]! += 1e-12;
  const beta = choleskySolve(A, rhs, q);
  return { coefficients: beta.slice(0, p), intercept: beta[p]! };
}

/** Solves A x = b for symmetric positive definite A (lower triangle used), in place. */
function choleskySolve(A: Float64Array, b: Float64Array, q: number): Float64Array {
  for (let j = 0; j < q; j++) {
    let s = A[j * q + j]!;
    for (let k = 0; k < j; k++) s -= A[j * q + k]! * A[j * q + k]!;
    if (!(s > 0))
      throw new NonRetriableError('singular_system', 'ridge normal equations are not positive definite');
    const l = Math.sqrt(s);
    A[j * q + j] = l;
    for (let i = j + 1; i < q; i++) {
      let t = A[i * q + j]!;
      for (let k = 0; k < j; k++) t -= A[i * q + k]! * A[j * q + k]!;
      A[i * q + j] = t / l;
    }
  }
  const x = Float64Array.from(b);
  for (let i = 0; i < q; i++) {
    let t = x[i]!;
    for (let k = 0; k < i; k++) t -= A[i * q + k]! * x[k]!;
    x[i] = t / A[i * q + i]!;
  }
  for (let i = q - 1; i >= 0; i--) {
    let t = x[i]!;
    for (let k = i + 1; k < q; k++) t -= A[k * q + i]! * x[k]!;
    x[i] = t / A[i * q + i]!;
  }
  return x;
}

export function ridgePredict(
  X: Float64Array,
  p: number,
  n: number,
  coefficients: ArrayLike<number>,
  intercept: number,
): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0, row = 0; i < n; i++, row += p) {
    let s = intercept;
    for (let j = 0; j < p; j++) s += X[row + j]! * coefficients[j]!;
    out[i] = s;
  }
  return out;
}
