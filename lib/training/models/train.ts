import { NonRetriableError } from '../../errors';
import { classificationMetricFns, regressionMetricFns } from '../../metrics/metrics';
import type { ColumnarDataset } from '../dataset';
import { getColumn, selectRows } from '../dataset';
import {
  encodeClassTarget,
  encodeLinear,
  encodeRaw,
  encodeRegressionTarget,
  fitLinearFeatures,
  inferClasses,
  inferFeatureSchema,
} from '../features';
import type { RowSplit } from '../split';
import { splitByRowHash } from '../split';
import type { BuiltInTrainingSpec, TrainingSpec } from '../../contracts/trainingSpec';
import type { StopSignal } from './common';
import type { ModelJson } from './format';
import { fitGbt } from './gbt';
import { fitLogistic } from './logistic';
import { loadModel } from './predict';
import { fitRidge } from './ridge';

export type Task = 'classification' | 'regression';

export interface TrainResult {
  model: ModelJson;
  /** Metrics of the fitted model on each part of the split (empty parts are left out). */
  metrics: {
    train: Record<string, number>;
    validation?: Record<string, number>;
    holdout?: Record<string, number>;
  };
  rows: { train: number; validation: number; holdout: number; droppedMissingTarget: number };
  iterations: number;
  /** False when the optimizer stopped on its iteration limit, the time limit or a cancel. */
  converged: boolean;
}

/** Classification or regression, from the algorithm and, for the tree ensemble, the target's type. */
export function taskOf(spec: TrainingSpec, ds: ColumnarDataset): Task {
  if (spec.algorithm === 'logistic_regression') return 'classification';
  if (spec.algorithm === 'custom' && spec.task) return spec.task;
  if (spec.algorithm === 'ridge') return 'regression';
  return spec.task ?? (getColumn(ds, spec.target).type === 'categorical' ? 'classification' : 'regression');
}

/** The deterministic split a spec gives on a dataset (hash over the key columns, else target + features). */
export function splitForSpec(ds: ColumnarDataset, spec: TrainingSpec): RowSplit {
  const key = spec.split.key ?? [spec.target, ...spec.features].sort();
  return splitByRowHash(ds, spec.split, spec.seed, key);
}

function withTarget(rows: Uint32Array, ok: (r: number) => boolean): Uint32Array {
  return rows.filter(ok);
}

/**
 * Trains the model a spec describes on a columnar dataset: split by row hash, encode features from
 * the training rows only, fit, serialize to {@link ModelJson}, then score the serialized model on
 * every part of the split (so the metrics describe exactly the artifact that ships).
 */
export function trainModel(ds: ColumnarDataset, spec: TrainingSpec, stop: StopSignal = {}): TrainResult {
  if (spec.algorithm === 'custom') {
    throw new NonRetriableError(
      'not_a_builtin_algorithm',
      "a custom job runs the user's code, not a built-in algorithm",
    );
  }
  return trainBuiltIn(ds, spec, stop);
}

function trainBuiltIn(ds: ColumnarDataset, spec: BuiltInTrainingSpec, stop: StopSignal): TrainResult {
  const task = taskOf(spec, ds);
  const split = splitForSpec(ds, spec);
  if (split.train.length === 0)
    throw new NonRetriableError('no_training_rows', 'the split left no training rows');

  let classes: string[] | undefined;
  let yClass: Int32Array | undefined;
  let yValue: Float64Array | undefined;
  if (task === 'classification') {
    classes = inferClasses(ds, spec.target, split.train);
    if (classes.length < 2) {
      throw new NonRetriableError(
        'single_class',
        `target "${spec.target}" has fewer than 2 classes in the training rows`,
      );
    }
    yClass = encodeClassTarget(ds, spec.target, classes);
  } else {
    yValue = encodeRegressionTarget(ds, spec.target);
  }
  const hasTarget = (r: number) => (yClass ? yClass[r]! >= 0 : !Number.isNaN(yValue![r]!));
  const train = withTarget(split.train, hasTarget);
  const validation = withTarget(split.validation, hasTarget);
  const holdout = withTarget(split.holdout, hasTarget);
  const dropped =
    split.train.length +
    split.validation.length +
    split.holdout.length -
    train.length -
    validation.length -
    holdout.length;
  if (train.length === 0)
    throw new NonRetriableError('no_training_rows', `every training row is missing "${spec.target}"`);

  const K = classes?.length ?? 0;
  const weights = new Float64Array(ds.rowCount).fill(1);
  let classWeights: Record<string, number> | undefined;
  if (classes && spec.classWeight !== 'none') {
    const cw = spec.classWeight;
    if (cw === 'balanced') {
      const counts = new Float64Array(K);
      for (const r of train) counts[yClass![r]!]!++;
      classWeights = Object.fromEntries(
        classes.map((c, k) => [c, counts[k]! > 0 ? train.length / (K * counts[k]!) : 1]),
      );
    } else {
      const unknown = Object.keys(cw).filter((c) => !classes!.includes(c));
      if (unknown.length > 0) {
        throw new NonRetriableError(
          'unknown_class_weight',
          `class weights name classes not in the target: ${unknown.join(', ')}`,
        );
      }
      classWeights = Object.fromEntries(classes.map((c) => [c, cw[c] ?? 1]));
    }
    const byIndex = classes.map((c) => classWeights![c]!);
    for (let r = 0; r < ds.rowCount; r++) if (yClass![r]! >= 0) weights[r] = byIndex[yClass![r]!]!;
  }

  const features = inferFeatureSchema(ds, spec.features, train, spec.categories);
  const rowsInfo = { train: train.length, validation: validation.length, holdout: holdout.length };
  const info = {
    seed: spec.seed,
    hyperparameters: spec.hyperparameters as Record<string, unknown>,
    rows: rowsInfo,
    ...(classWeights ? { classWeights } : {}),
  };
  const target = { name: spec.target, ...(classes ? { classes } : {}) };
  let model: ModelJson;
  let iterations: number;
  let converged = true;

  switch (spec.algorithm) {
    case 'logistic_regression': {
      const linear = fitLinearFeatures(ds, features, train);
      const { X, p } = encodeLinear(selectRows(ds, train), linear);
      const y = Int32Array.from(train, (r) => yClass![r]!);
      const w = Float64Array.from(train, (r) => weights[r]!);
      const fit = fitLogistic(X, p, y, K, w, spec.hyperparameters, stop);
      const outputs = K === 2 ? 1 : K;
      iterations = fit.iterations;
      converged = fit.converged;
      model = {
        format: 'sluice-model',
        formatVersion: 1,
        algorithm: 'logistic_regression',
        task: K === 2 ? 'binary' : 'multiclass',
        target,
        features,
        preprocessing: { kind: 'standardize_onehot', features: linear },
        params: {
          coefficients: Array.from({ length: outputs }, (_, k) =>
            Array.from(fit.coefficients.subarray(k * p, (k + 1) * p)),
          ),
          intercepts: Array.from(fit.intercepts),
        },
        training: { ...info, iterations },
      };
      break;
    }
    case 'ridge': {
      const linear = fitLinearFeatures(ds, features, train);
      const { X, p } = encodeLinear(selectRows(ds, train), linear);
      const fit = fitRidge(
        X,
        p,
        Float64Array.from(train, (r) => yValue![r]!),
        Float64Array.from(train, (r) => weights[r]!),
        spec.hyperparameters,
      );
      iterations = 1;
      model = {
        format: 'sluice-model',
        formatVersion: 1,
        algorithm: 'ridge',
        task: 'regression',
        target,
        features,
        preprocessing: { kind: 'standardize_onehot', features: linear },
        params: { coefficients: Array.from(fit.coefficients), intercept: fit.intercept },
        training: { ...info, iterations },
      };
      break;
    }
    case 'gradient_boosting': {
      const objective = task === 'regression' ? 'regression' : K === 2 ? 'binary' : 'multiclass';
      const columns = encodeRaw(ds, features);
      const targetValues = yClass ?? yValue!;
      const fit = fitGbt(
        columns,
        train,
        targetValues,
        objective,
        K,
        weights,
        spec.hyperparameters,
        spec.seed,
        validation,
        stop,
      );
      iterations = fit.rounds;
      converged = fit.rounds === spec.hyperparameters.rounds || spec.hyperparameters.earlyStoppingRounds > 0;
      model = {
        format: 'sluice-model',
        formatVersion: 1,
        algorithm: 'gradient_boosting',
        task: objective,
        target,
        features,
        preprocessing: { kind: 'ordinal' },
        params: { baseScore: fit.baseScore, outputs: fit.outputs, trees: fit.trees },
        training: { ...info, iterations },
      };
      break;
    }
  }
  if (stop.shouldStop?.()) converged = false;

  const loaded = loadModel(model);
  const score = (rows: Uint32Array): Record<string, number> => {
    const part = selectRows(ds, rows);
    if (classes) {
      const fns = classificationMetricFns(
        Int32Array.from(rows, (r) => yClass![r]!),
        loaded.predictProba(part),
        K,
      );
      return Object.fromEntries(Object.entries(fns).map(([k, f]) => [k, f()]));
    }
    const fns = regressionMetricFns(
      Float64Array.from(rows, (r) => yValue![r]!),
      loaded.predict(part),
    );
    return Object.fromEntries(Object.entries(fns).map(([k, f]) => [k, f()]));
  };
  return {
    model,
    metrics: {
      train: score(train),
      ...(validation.length > 0 ? { validation: score(validation) } : {}),
      ...(holdout.length > 0 ? { holdout: score(holdout) } : {}),
    },
    rows: { ...rowsInfo, droppedMissingTarget: dropped },
    iterations,
    converged,
  };
}
