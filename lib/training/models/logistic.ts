import { minimizeLbfgs } from './lbfgs';
import type { StopSignal } from './common';

export interface LogisticHyperparameters {
  /** scikit-learn's C: minimise Σ wᵢ·logloss + ‖β‖²/(2C) (intercepts unpenalised). Used when l2 is absent. */
  C?: number;
  /** L2 penalty on the coefficients (not the intercepts), in units of the mean loss: C = 1/(l2·W). */
  l2?: number;
  maxIterations: number;
  tolerance: number;
}

export interface LogisticFit {
  /** Row-major (classes' × p); classes' = 1 for a binary model, K for a multinomial one. */
  coefficients: Float64Array;
  intercepts: Float64Array;
  iterations: number;
  loss: number;
  converged: boolean;
}

/**
 * Fits binary (K = 2, one coefficient vector) or multinomial (K > 2, softmax) logistic regression
 * by L-BFGS on a row-major design matrix. `y` holds class indexes 0..K-1 and `weights` per-row
 * sample weights (class weights already applied).
 */
export function fitLogistic(
  X: Float64Array,
  p: number,
  y: Int32Array,
  K: number,
  weights: Float64Array,
  hp: LogisticHyperparameters,
  stop: StopSignal = {},
): LogisticFit {
  const n = y.length;
  const outputs = K === 2 ? 1 : K;
  let wSum = 0;
  for (let i = 0; i < n; i++) wSum += weights[i]!;
  const invW = 1 / wSum;
  const nCoef = outputs * p;
  // The loss below is the weighted mean (it is divided by W = Σ wᵢ), so scikit-learn's
  // Σ wᵢ·logloss + ‖β‖²/(2C), divided by W, is this loss + (λ/2)‖β‖² with λ = 1/(C·W).
  const lambda = hp.l2 ?? 1 / ((hp.C ?? 1) * wSum);
  const z = new Float64Array(outputs);

  const fgBinary = (theta: Float64Array, grad: Float64Array): number => {
    grad.fill(0);
    const b = theta[p]!;
    let loss = 0;
    let gb = 0;
    for (let i = 0, row = 0; i < n; i++, row += p) {
      let s = b;
      for (let j = 0; j < p; j++) s += X[row + j]! * theta[j]!;
      const yi = y[i]!;
      const wi = weights[i]!;
      // log(1 + e^s) - y s, computed without overflow
      const softplus = s > 0 ? s + Math.log1p(Math.exp(-s)) : Math.log1p(Math.exp(s));
      loss += wi * (softplus - yi * s);
      const prob = s >= 0 ? 1 / (1 + Math.exp(-s)) : Math.exp(s) / (1 + Math.exp(s));
      const r = wi * (prob - yi);
      if (r !== 0) {
        for (let j = 0; j < p; j++) grad[j]! += r * X[row + j]!;
        gb += r;
      }
    }
    loss *= invW;
    for (let j = 0; j < p; j++) grad[j]! *= invW;
    grad[p] = gb * invW;
    return loss + penalty(theta, grad, nCoef, lambda);
  };

  const fgMulti = (theta: Float64Array, grad: Float64Array): number => {
    grad.fill(0);
    let loss = 0;
    for (let i = 0, row = 0; i < n; i++, row += p) {
      let max = -Infinity;
      for (let k = 0; k < K; k++) {
        let s = theta[nCoef + k]!;
        const base = k * p;
        for (let j = 0; j < p; j++) s += X[row + j]! * theta[base + j]!;
        z[k] = s;
        if (s > max) max = s;
      }
      let sum = 0;
      for (let k = 0; k < K; k++) {
        const e = Math.exp(z[k]! - max);
        z[k] = e;
        sum += e;
      }
      const yi = y[i]!;
      const wi = weights[i]!;
      loss += wi * (Math.log(sum) - Math.log(z[yi]!));
      const inv = 1 / sum;
      for (let k = 0; k < K; k++) {
        const r = wi * (z[k]! * inv - (k === yi ? 1 : 0));
        const base = k * p;
        for (let j = 0; j < p; j++) grad[base + j]! += r * X[row + j]!;
        grad[nCoef + k]! += r;
      }
    }
    loss *= invW;
    for (let j = 0; j < grad.length; j++) grad[j]! *= invW;
    return loss + penalty(theta, grad, nCoef, lambda);
  };

  const theta0 = new Float64Array(nCoef + outputs);
  const result = minimizeLbfgs(K === 2 ? fgBinary : fgMulti, theta0, {
    maxIterations: hp.maxIterations,
    gradientTolerance: hp.tolerance,
    onIteration: (it, loss) => {
      stop.onProgress?.({ fraction: Math.min(1, it / hp.maxIterations), iteration: it, loss });
      return !stop.shouldStop?.();
    },
  });
  return {
    coefficients: result.x.slice(0, nCoef),
    intercepts: result.x.slice(nCoef),
    iterations: result.iterations,
    loss: result.loss,
    converged: result.converged,
  };
}

function penalty(theta: Float64Array, grad: Float64Array, nCoef: number, lambda: number): number {
  if (lambda === 0) return 0;
  let s = 0;
  for (let j = 0; j < nCoef; j++) {
    const t = theta[j]!;
    s += t * t;
    grad[j]! += lambda * t;
  }
  return 0.5 * lambda * s;
}

/** Class probabilities (n × K, row-major) of a fitted logistic model. */
export function logisticProba(
  X: Float64Array,
  p: number,
  n: number,
  K: number,
  coefficients: ArrayLike<number>,
  intercepts: ArrayLike<number>,
): Float64Array {
  const out = new Float64Array(n * K);
  if (K === 2) {
    const b = intercepts[0]!;
    for (let i = 0, row = 0; i < n; i++, row += p) {
      let s = b;
      for (let j = 0; j < p; j++) s += X[row + j]! * coefficients[j]!;
      const prob = s >= 0 ? 1 / (1 + Math.exp(-s)) : Math.exp(s) / (1 + Math.exp(s));
      out[2 * i] = 1 - prob;
      out[2 * i + 1] = prob;
    }
    return out;
  }
  for (let i = 0, row = 0; i < n; i++, row += p) {
    let max = -Infinity;
    const o = i * K;
    for (let k = 0; k < K; k++) {
      let s = intercepts[k]!;
      for (let j = 0; j < p; j++) s += X[row + j]! * coefficients[k * p + j]!;
      out[o + k] = s;
      if (s > max) max = s;
    }
    let sum = 0;
    for (let k = 0; k < K; k++) {
      const e = Math.exp(out[o + k]! - max);
      out[o + k] = e;
      sum += e;
    }
    for (let k = 0; k < K; k++) out[o + k]! /= sum;
  }
  return out;
}
