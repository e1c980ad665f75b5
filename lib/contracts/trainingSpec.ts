import { z } from 'zod';
import { azuremlJobSettingsSchema, databricksJobSettingsSchema } from './backendJobs';

/**
 * The training spec of a pipeline: what to learn from which columns, with which algorithm and
 * bounded hyperparameters, on which backend. Bounds keep a typo (maxDepth: 600) from turning into a
 * job that runs for hours; an invalid spec fails fast and is never retried. It travels in the
 * submitTraining, evaluateModel and registerModel inputs, so it lives here with no I/O.
 */
/**
 * Logistic regression's regulariser in scikit-learn's terms: `C` is the inverse strength, and the
 * fit minimises Σᵢ wᵢ·logloss(i) + ‖β‖² / (2C) over the standardized coefficients (intercepts
 * unpenalised), which is scikit-learn's LogisticRegression objective. The default C = 1 is
 * scikit-learn's default. `l2` is the older spelling, a penalty on the *mean* loss:
 * (1/W)·Σᵢ wᵢ·logloss(i) + (l2/2)·‖β‖², the same fit as C = 1 / (l2 · W) with W the training rows'
 * total weight (their count without class weights); versions that stored it keep training as before.
 */
const logisticHyperparameters = z
  .object({
    /** Inverse regularisation strength, as scikit-learn's `C` (default 1.0). */
    C: z.number().gt(0).max(1e9).optional(),
    /** L2 penalty on the mean loss (the older spelling; C = 1 / (l2 · rows)). Not with `C`. */
    l2: z.number().min(0).max(100).optional(),
    maxIterations: z.number().int().min(1).max(10_000).default(300),
    /** Largest gradient component at convergence. */
    tolerance: z.number().positive().max(1).default(1e-6),
  })
  .strict()
  .superRefine((h, ctx) => {
    if (h.C !== undefined && h.l2 !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['l2'],
        message: "give C (scikit-learn's inverse strength) or l2 (the older spelling), not both",
      });
  })
  .transform(({ C, l2, ...rest }) => (l2 !== undefined ? { l2, ...rest } : { C: C ?? 1, ...rest }));

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

/** The split's default shares; a key left out takes its default. */
const SPLIT_DEFAULTS = { train: 0.7, validation: 0.15, holdout: 0.15 } as const;
const SPLIT_KEYS = ['train', 'validation', 'holdout'] as const;

const splitSchema = z
  .object({
    train: z.number().gt(0).max(1).optional(),
    validation: z.number().min(0).max(1).optional(),
    holdout: z.number().min(0).max(1).optional(),
    /** Columns hashed to place a row (an id column); all columns when omitted. */
    key: z.array(z.string().min(1)).min(1).optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    const share = (k: (typeof SPLIT_KEYS)[number]) => s[k] ?? SPLIT_DEFAULTS[k];
    const sum = SPLIT_KEYS.reduce((a, k) => a + share(k), 0);
    if (Math.abs(sum - 1) < 1e-9) return;
    const given = SPLIT_KEYS.filter((k) => s[k] !== undefined);
    const missing = SPLIT_KEYS.filter((k) => s[k] === undefined);
    if (given.length === 0 || missing.length === 0) {
      ctx.addIssue({ code: 'custom', message: 'train + validation + holdout must add up to 1' });
      return;
    }
    // Name the key that was left out: its default is what breaks the sum, not the keys given.
    const givenText = given.map((k) => `${k} ${s[k]}`).join(' + ');
    const left = 1 - given.reduce((a, k) => a + s[k]!, 0);
    for (const k of missing) {
      const hint =
        missing.length === 1 && left >= -1e-9
          ? `give ${k}: ${Math.max(0, Math.round(left * 1e9) / 1e9)}`
          : 'give every share, adding up to 1';
      ctx.addIssue({
        code: 'custom',
        path: [k],
        message: `${k} is missing: it defaults to ${SPLIT_DEFAULTS[k]}, and with ${givenText} the shares add up to ${Math.round(sum * 1e9) / 1e9}, not 1; ${hint}`,
      });
    }
  })
  // Same keys in the same order as before the defaults moved here (specs are hashed as JSON).
  .transform((s) => ({
    train: s.train ?? SPLIT_DEFAULTS.train,
    validation: s.validation ?? SPLIT_DEFAULTS.validation,
    holdout: s.holdout ?? SPLIT_DEFAULTS.holdout,
    ...(s.key ? { key: s.key } : {}),
  }));

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
  backend: z.enum(['local', 'azureml', 'databricks']).default('local'),
});

/** A user job's hyperparameters: any JSON object, passed on verbatim, bounded in size. */
export const userHyperparametersSchema = z
  .record(z.string(), z.unknown())
  .refine((h) => JSON.stringify(h).length <= 32_768, { message: 'hyperparameters are over 32 KB of JSON' });

/** A command line Sluice splits into words itself (never a shell); `${SLUICE_*}` placeholders allowed. */
export const commandLineSchema = z
  .string()
  .max(4096)
  .refine((c) => c.trim() !== '', { message: 'command is empty' });

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
    /**
     * The user's own training code under `sluice.job/v1` (lib/contracts/job.ts): `command` run in the
     * `code` folder (local: a path; azureml: a folder uploaded as a code asset, or an existing asset;
     * databricks: a workspace or volume path) writes an MLflow model folder to SLUICE_OUTPUT.
     */
    base.extend({
      algorithm: z.literal('custom'),
      /** Classification or regression; by default from the target's type (category, string, boolean → classification). */
      task: z.enum(['classification', 'regression']).optional(),
      code: z.string().min(1).max(1024),
      /** Required on local and azureml; on databricks the `databricks.task` says what runs. */
      command: commandLineSchema.optional(),
      /**
       * For models without an ONNX file (a python_function-only MLflow model): the command that
       * scores a model folder over rows (SLUICE_MODEL, SLUICE_INPUT, SLUICE_PREDICTIONS), run for
       * candidate and champion on the holdout.
       */
      score: commandLineSchema.optional(),
      hyperparameters: userHyperparametersSchema.default({}),
      azureml: azuremlJobSettingsSchema.optional(),
      databricks: databricksJobSettingsSchema.optional(),
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
    if (spec.algorithm === 'custom') {
      if (spec.backend !== 'databricks' && spec.command === undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['command'],
          message: `a custom job on ${spec.backend} needs a command`,
        });
      if (spec.azureml && spec.backend !== 'azureml')
        ctx.addIssue({
          code: 'custom',
          path: ['azureml'],
          message: `azureml settings given but the backend is ${spec.backend}`,
        });
      if (spec.databricks && spec.backend !== 'databricks')
        ctx.addIssue({
          code: 'custom',
          path: ['databricks'],
          message: `databricks settings given but the backend is ${spec.backend}`,
        });
      if (spec.classWeight !== 'none')
        ctx.addIssue({
          code: 'custom',
          path: ['classWeight'],
          message: 'classWeight applies to the built-in algorithms; pass it to your code in hyperparameters',
        });
    } else if (spec.backend === 'databricks') {
      ctx.addIssue({
        code: 'custom',
        path: ['backend'],
        message: 'the databricks backend runs your own code only (algorithm "custom")',
      });
    }
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
/** A spec the built-in algorithms train (everything but `custom`). */
export type BuiltInTrainingSpec = Exclude<TrainingSpec, { algorithm: 'custom' }>;
/** A spec that runs the user's own code under `sluice.job/v1`. */
export type CustomTrainingSpec = Extract<TrainingSpec, { algorithm: 'custom' }>;
export const isCustomSpec = (spec: TrainingSpec): spec is CustomTrainingSpec => spec.algorithm === 'custom';
