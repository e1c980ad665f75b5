import { z } from 'zod';
import { NonRetriableError } from '../../errors';
import type { ColumnarDataset, ColumnTypes } from '../dataset';
import { datasetFromRecords } from '../dataset';
import { encodeLinear, encodeRaw } from '../features';
import type { ModelJson } from './format';
import { modelSchema } from './format';
import { compileEnsemble, gbtScores, scoresToProba } from './gbt';
import { logisticProba } from './logistic';
import { ridgePredict } from './ridge';

/**
 * Smallest probability a classifier answers: every class probability lies in [ε, 1 − ε]. A model
 * that is "certain" still answers 0.9999999, not 1, so a log-loss stays finite and nobody reads a
 * probability as a guarantee. 1e-7 is above float32's spacing just below 1 (6e-8), so an ONNX
 * graph, which computes in float32, can apply the same bound; it is far below the 1e-6 within
 * which the ONNX export must agree with this scorer.
 */
export const PROBABILITY_EPSILON = 1e-7;

/**
 * Clips n × K row-major class probabilities in place to [ε, 1 − ε]. Binary rows are clipped and
 * stay complementary; a multiclass row has each probability raised to at least ε and is scaled
 * back to sum 1 (so none is 0 and none is 1). The most probable class never changes.
 */
export function clipProbabilities(
  P: Float64Array,
  n: number,
  K: number,
  eps = PROBABILITY_EPSILON,
): Float64Array {
  for (let i = 0, o = 0; i < n; i++, o += K) {
    if (K === 2) {
      // Both ends written as ε and 1 − ε (1 − (1 − ε) is not ε in floating point).
      const p1 = P[o + 1]!;
      if (p1 >= 1 - eps) [P[o], P[o + 1]] = [eps, 1 - eps];
      else if (p1 <= eps) [P[o], P[o + 1]] = [1 - eps, eps];
      continue;
    }
    let sum = 0;
    let raised = false;
    for (let k = 0; k < K; k++) {
      if (P[o + k]! < eps) {
        P[o + k] = eps;
        raised = true;
      }
      sum += P[o + k]!;
    }
    if (raised) for (let k = 0; k < K; k++) P[o + k]! /= sum;
  }
  return P;
}

/** A model ready to score: parsed, validated, with its parameters in typed arrays. */
export interface LoadedModel {
  readonly definition: ModelJson;
  /** Class labels for classification, undefined for regression. */
  readonly classes: readonly string[] | undefined;
  /** The column types scoring input must have (for {@link datasetFromRecords}). */
  readonly columnTypes: ColumnTypes;
  /** n × K class probabilities, row-major. Classification only. */
  predictProba(ds: ColumnarDataset): Float64Array;
  /** Regression: predicted values. Classification: index of the most probable class. */
  predict(ds: ColumnarDataset): Float64Array;
  /** Most probable class label per row. Classification only. */
  predictLabels(ds: ColumnarDataset): string[];
  /** Scores plain records (missing or extra fields allowed; missing ones count as missing values). */
  predictRecords(records: readonly Record<string, unknown>[]): Float64Array;
}

/** Parses and validates a model JSON value (never trusts it) and prepares it for scoring. */
export function loadModel(json: unknown): LoadedModel {
  const parsed = modelSchema.safeParse(json);
  if (!parsed.success) {
    throw new NonRetriableError(
      'invalid_model',
      `not a valid Sluice model:\n${z.prettifyError(parsed.error)}`,
    );
  }
  const m = parsed.data;
  const classes = m.target.classes;
  const K = classes?.length ?? 0;
  const columnTypes: ColumnTypes = Object.fromEntries(m.features.map((f) => [f.name, f.type]));

  let proba: (ds: ColumnarDataset) => Float64Array;
  switch (m.algorithm) {
    case 'logistic_regression': {
      const coef = Float64Array.from(m.params.coefficients.flat());
      const b = Float64Array.from(m.params.intercepts);
      const outputs = K === 2 ? 1 : K;
      const p = m.params.coefficients[0]?.length ?? 0;
      if (
        m.params.coefficients.length !== outputs ||
        m.params.coefficients.some((r) => r.length !== p) ||
        b.length !== outputs
      ) {
        throw new NonRetriableError(
          'invalid_model',
          'logistic regression parameters do not match the number of classes',
        );
      }
      proba = (ds) => {
        const { X, p: width } = encodeLinear(ds, m.preprocessing.features);
        if (width !== p)
          throw new NonRetriableError('invalid_model', 'coefficients do not match the feature layout');
        return logisticProba(X, p, ds.rowCount, K, coef, b);
      };
      break;
    }
    case 'gradient_boosting': {
      const { baseScore, trees, outputs } = m.params;
      const expected = m.task === 'multiclass' ? K : 1;
      if (outputs !== expected || baseScore.length !== outputs || trees.length % outputs !== 0) {
        throw new NonRetriableError('invalid_model', 'tree ensemble outputs do not match the task');
      }
      const objective = m.task;
      const ensemble = compileEnsemble(trees);
      proba = (ds) =>
        scoresToProba(
          gbtScores(encodeRaw(ds, m.features), ds.rowCount, baseScore, ensemble, outputs),
          ds.rowCount,
          objective,
          K,
        );
      break;
    }
    case 'ridge': {
      const coef = Float64Array.from(m.params.coefficients);
      proba = (ds) => {
        const { X, p } = encodeLinear(ds, m.preprocessing.features);
        if (p !== coef.length)
          throw new NonRetriableError('invalid_model', 'coefficients do not match the feature layout');
        return ridgePredict(X, p, ds.rowCount, coef, m.params.intercept);
      };
      break;
    }
  }

  if (classes) {
    const raw = proba;
    proba = (ds) => clipProbabilities(raw(ds), ds.rowCount, K);
  }

  const requireClasses = (): readonly string[] => {
    if (!classes) throw new NonRetriableError('not_a_classifier', 'this model is a regression model');
    return classes;
  };
  const argmax = (P: Float64Array, n: number): Float64Array => {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let best = 0;
      for (let k = 1; k < K; k++) if (P[i * K + k]! > P[i * K + best]!) best = k;
      out[i] = best;
    }
    return out;
  };
  const predict = (ds: ColumnarDataset): Float64Array =>
    classes ? argmax(proba(ds), ds.rowCount) : proba(ds);

  return {
    definition: m,
    classes,
    columnTypes,
    predictProba: (ds) => {
      requireClasses();
      return proba(ds);
    },
    predict,
    predictLabels: (ds) => {
      const c = requireClasses();
      return Array.from(predict(ds), (k) => c[k]!);
    },
    predictRecords: (records) => predict(datasetFromRecords(records, columnTypes)),
  };
}
