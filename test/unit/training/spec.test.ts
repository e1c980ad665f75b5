import { isNonRetriable } from '../../../lib/errors';
import { parseTrainingSpec } from '../../../lib/training/spec';
import { trainingSpecSchema } from '../../../lib/contracts/trainingSpec';

describe('training spec', () => {
  it('fills defaults for a minimal spec', () => {
    const s = parseTrainingSpec({ algorithm: 'gradient_boosting', target: 'y', features: ['a', 'b'] });
    expect(s.backend).toBe('local');
    expect(s.seed).toBe(42);
    expect(s.split).toEqual({ train: 0.7, validation: 0.15, holdout: 0.15 });
    if (s.algorithm !== 'gradient_boosting') throw new Error('wrong algorithm');
    expect(s.hyperparameters.rounds).toBe(100);
    expect(s.hyperparameters.maxDepth).toBe(6);
  });

  it('fails fast, not retriably, naming the bad field', () => {
    let err: unknown;
    try {
      parseTrainingSpec({
        algorithm: 'gradient_boosting',
        target: 'y',
        features: ['a'],
        hyperparameters: { maxDepth: 600 },
      });
    } catch (e) {
      err = e;
    }
    expect(isNonRetriable(err)).toBe(true);
    expect(err).toMatchObject({
      name: 'ValidationError',
      code: 'invalid_training_spec',
      field: 'hyperparameters.maxDepth',
      status: 400,
    });
    expect((err as Error).message).toContain('maxDepth');
  });

  it.each([
    [{ algorithm: 'random_forest', target: 'y', features: ['a'] }, 'algorithm'],
    [{ algorithm: 'ridge', target: 'y', features: [] }, 'features'],
    [{ algorithm: 'ridge', target: 'y', features: ['y'] }, 'features.0'],
    [{ algorithm: 'ridge', target: 'y', features: ['a', 'a'] }, 'features.1'],
    [{ algorithm: 'ridge', target: 'y', features: ['a'], classWeight: 'balanced' }, 'classWeight'],
    [
      { algorithm: 'ridge', target: 'y', features: ['a'], hyperparameters: { alpha: 1, lr: 3 } },
      'hyperparameters',
    ],
    [
      {
        algorithm: 'logistic_regression',
        target: 'y',
        features: ['a'],
        split: { train: 0.9, validation: 0.2, holdout: 0 },
      },
      'split',
    ],
    [{ algorithm: 'logistic_regression', target: 'y', features: ['a'], seed: -1 }, 'seed'],
    [{ algorithm: 'logistic_regression', target: 'y', features: ['a'], backend: 'sagemaker' }, 'backend'],
    [
      { algorithm: 'logistic_regression', target: 'y', features: ['a'], timeLimitSeconds: 0 },
      'timeLimitSeconds',
    ],
  ])('rejects %j (%s)', (input, field) => {
    const r = trainingSpecSchema.safeParse(input);
    expect(r.success).toBe(false);
    expect(r.error!.issues.map((i) => i.path.join('.'))).toContain(field);
  });
});
