import { z } from 'zod';

/**
 * The training spec of a pipeline: what to learn from which columns, with which algorithm and
 * bounded hyperparameters, on which backend. Bounds keep a typo (maxDepth: 600) from turning into a
 * job that runs for hours; an invalid spec fails fast and is never retried. It travels in the
 * submitTraining, evaluateModel and registerModel inputs, so it lives here with no I/O.
 */
const logisticHyperparameters = z
  .object({
    /** L2 penalty on the standardized coefficients. */
    l2: z.number().min(0).max(100).default(1e-4),
    maxIterations: z.number().int().min(1).max(10_000).default(300),
    /** Largest gradient component at convergence. */
    tolerance: z.number().positive().max(1).default(1e-6),
  })
  .strict();

const gbtHyperparameters = z
  .object({
    rounds: z.number().int().min(1).max(5_000).default(100),
    learningRate: z.number().min(0.001).max(1).default(0.1),
    maxDepth: z.number().int().min(1).max(16).default(6),
    minSamplesLeaf: z.number().int().min(1).max(1_000_000).default(20),
    l2: z.number().min(0).max(1_000).default(1),
    minSplitGain: z.number().min(0).max(1_000_000).default(0),
    maxBins: z.number().int().min(2).max(255).default(255),
    subsample: z.number().min(0.05).max(1).default(1),
    colsample: z.number().min(0.05).max(1).default(1),
    /** Rounds without improvement of the validation loss before stopping (0 = off). */
    earlyStoppingRounds: z.number().int().min(0).max(1_000).default(20),
  })
  .strict();

const ridgeHyperparameters = z
  .object({
    alpha: z.number().min(0).max(1_000_000).default(1),
  })
  .strict();

const splitSchema = z
  .object({
    train: z.number().gt(0).max(1).default(0.7),
    validation: z.number().min(0).max(1).default(0.15),
    holdout: z.number().min(0).max(1).default(0.15),
    /** Columns hashed to place a row (an id column); all columns when omitted. */
    key: z.array(z.string().min(1)).min(1).optional(),
  })
  .strict()
  .refine((s) => Math.abs(s.train + s.validation + s.holdout - 1) < 1e-9, {
    message: 'train + validation + holdout must add up to 1',
  });

/** A training job's wall-clock limit: one second to seven days, an hour by default. */
export const timeLimitSecondsSchema = z
  .number()
  .int()
  .min(1)
  .max(7 * 86_400)
  .default(3_600);

const base = z.object({
  /** Target column. */
  target: z.string().min(1),
  /** Feature columns; their types come from the dataset contract. */
  features: z.array(z.string().min(1)).min(1).max(10_000),
  /** Categories per categorical feature from the dataset contract (otherwise: levels seen in training). */
  categories: z.record(z.string(), z.array(z.string()).min(1).max(255)).optional(),
  /** Per-class weights for classification: none, inversely proportional to frequency, or explicit. */
  classWeight: z
    .union([z.enum(['none', 'balanced']), z.record(z.string(), z.number().positive().max(1_000_000))])
    .default('none'),
  seed: z.number().int().min(0).max(0xffffffff).default(42),
  split: splitSchema.prefault({}),
  timeLimitSeconds: timeLimitSecondsSchema,
  backend: z.enum(['local', 'azureml']).default('local'),
});

export const trainingSpecSchema = z
  .discriminatedUnion('algorithm', [
    base.extend({
      algorithm: z.literal('logistic_regression'),
      hyperparameters: logisticHyperparameters.prefault({}),
    }),
    base.extend({
      algorithm: z.literal('gradient_boosting'),
      /** Classification or regression; inferred from the target column's type when omitted. */
      task: z.enum(['classification', 'regression']).optional(),
      hyperparameters: gbtHyperparameters.prefault({}),
    }),
    base.extend({
      algorithm: z.literal('ridge'),
      hyperparameters: ridgeHyperparameters.prefault({}),
    }),
  ])
  .superRefine((spec, ctx) => {
    const seen = new Set<string>();
    spec.features.forEach((f, i) => {
      if (f === spec.target)
        ctx.addIssue({ code: 'custom', path: ['features', i], message: 'the target cannot be a feature' });
      if (seen.has(f))
        ctx.addIssue({ code: 'custom', path: ['features', i], message: `duplicate feature "${f}"` });
      seen.add(f);
    });
    if (spec.algorithm === 'ridge' && spec.classWeight !== 'none') {
      ctx.addIssue({
        code: 'custom',
        path: ['classWeight'],
        message: 'class weights apply to classification only',
      });
    }
  });

export type TrainingSpec = z.output<typeof trainingSpecSchema>;
export type TrainingSpecInput = z.input<typeof trainingSpecSchema>;
export type Algorithm = TrainingSpec['algorithm'];
