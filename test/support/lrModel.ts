import type { ModelJson } from '../../lib/training/models/format';

/**
 * A logistic-regression model artifact with `d` numeric features (f0..f{d-1}), built by hand with
 * a fixed pseudo-random generator: what the scoring tests and bench serve.
 */
export function logisticModel(d = 20, seed = 1, classes: [string, string] = ['no', 'yes']): ModelJson {
  let s = seed >>> 0 || 1;
  const rnd = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) % 20001) / 10000 - 1;
  };
  const names = Array.from({ length: d }, (_, i) => `f${i}`);
  return {
    format: 'sluice-model',
    formatVersion: 1,
    algorithm: 'logistic_regression',
    task: 'binary',
    target: { name: 'label', classes },
    features: names.map((name) => ({ name, type: 'numeric' as const })),
    preprocessing: {
      kind: 'standardize_onehot',
      features: names.map((name) => ({ name, type: 'numeric' as const, mean: 0, scale: 1 })),
    },
    params: { coefficients: [names.map(() => rnd())], intercepts: [rnd()] },
    training: { seed, hyperparameters: {}, iterations: 0, rows: { train: 0, validation: 0, holdout: 0 } },
  };
}

export function sampleRow(d = 20, offset = 0): Record<string, number> {
  return Object.fromEntries(Array.from({ length: d }, (_, i) => [`f${i}`, ((i * 7 + offset) % 11) / 5 - 1]));
}
