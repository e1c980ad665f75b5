import { z } from 'zod';

/**
 * The model artifact: one JSON document with everything scoring needs (feature schema,
 * preprocessing, parameters). It holds no timestamps or durations, so the same data, spec and seed
 * give byte-identical JSON and therefore the same SHA-256 digest.
 */
const finite = z.number().refine(Number.isFinite, 'must be a finite number');

export const featureSchemaSchema = z.discriminatedUnion('type', [
  z.object({ name: z.string().min(1), type: z.literal('numeric') }).strict(),
  z
    .object({ name: z.string().min(1), type: z.literal('categorical'), categories: z.array(z.string()) })
    .strict(),
]);

const linearFeatureSchema = z.discriminatedUnion('type', [
  z
    .object({
      name: z.string().min(1),
      type: z.literal('numeric'),
      mean: finite,
      scale: finite.refine((s) => s > 0),
    })
    .strict(),
  z
    .object({ name: z.string().min(1), type: z.literal('categorical'), categories: z.array(z.string()) })
    .strict(),
]);

const flatTreeSchema = z
  .object({
    feature: z.array(z.number().int().min(-1)),
    threshold: z.array(finite),
    missingLeft: z.array(z.union([z.literal(0), z.literal(1)])),
    left: z.array(z.number().int().min(-1)),
    right: z.array(z.number().int().min(-1)),
    value: z.array(finite),
  })
  .strict()
  .refine((t) => {
    const n = t.feature.length;
    if (n === 0 || [t.threshold, t.missingLeft, t.left, t.right, t.value].some((a) => a.length !== n))
      return false;
    // children always come after their parent, so a tree cannot loop
    return t.feature.every(
      (f, i) => f < 0 || (t.left[i]! > i && t.left[i]! < n && t.right[i]! > i && t.right[i]! < n),
    );
  }, 'malformed tree');

const trainingInfoSchema = z
  .object({
    seed: z.number().int(),
    hyperparameters: z.record(z.string(), z.unknown()),
    iterations: z.number().int().min(0),
    rows: z.object({ train: z.number().int(), validation: z.number().int(), holdout: z.number().int() }),
    classWeights: z.record(z.string(), z.number()).optional(),
  })
  .strict();

const common = {
  format: z.literal('sluice-model'),
  formatVersion: z.literal(1),
  target: z.object({ name: z.string().min(1), classes: z.array(z.string()).min(2).optional() }).strict(),
  features: z.array(featureSchemaSchema).min(1),
  training: trainingInfoSchema,
};

export const modelSchema = z
  .discriminatedUnion('algorithm', [
    z
      .object({
        ...common,
        algorithm: z.literal('logistic_regression'),
        task: z.enum(['binary', 'multiclass']),
        preprocessing: z
          .object({ kind: z.literal('standardize_onehot'), features: z.array(linearFeatureSchema) })
          .strict(),
        /** One row per output: 1 for binary (the positive class = classes[1]), K for multinomial. */
        params: z.object({ coefficients: z.array(z.array(finite)), intercepts: z.array(finite) }).strict(),
      })
      .strict(),
    z
      .object({
        ...common,
        algorithm: z.literal('ridge'),
        task: z.literal('regression'),
        preprocessing: z
          .object({ kind: z.literal('standardize_onehot'), features: z.array(linearFeatureSchema) })
          .strict(),
        params: z.object({ coefficients: z.array(finite), intercept: finite }).strict(),
      })
      .strict(),
    z
      .object({
        ...common,
        algorithm: z.literal('gradient_boosting'),
        task: z.enum(['binary', 'multiclass', 'regression']),
        /** Numeric features raw, categorical ones as their index in `categories`; missing → NaN. */
        preprocessing: z.object({ kind: z.literal('ordinal') }).strict(),
        params: z
          .object({
            baseScore: z.array(finite).min(1),
            /** Trees per boosting round: 1, or K for multiclass. trees[round * outputs + k]. */
            outputs: z.number().int().min(1),
            trees: z.array(flatTreeSchema),
          })
          .strict(),
      })
      .strict(),
  ])
  .superRefine((m, ctx) => {
    const classification = m.task !== 'regression';
    if (classification !== Boolean(m.target.classes)) {
      ctx.addIssue({
        code: 'custom',
        path: ['target', 'classes'],
        message: 'classes are required exactly for classification',
      });
    }
    if (m.algorithm === 'gradient_boosting') {
      const d = m.features.length;
      m.params.trees.forEach((t, i) => {
        if (t.feature.some((f) => f >= d))
          ctx.addIssue({
            code: 'custom',
            path: ['params', 'trees', i],
            message: 'feature index out of range',
          });
      });
    }
  });

export type ModelJson = z.infer<typeof modelSchema>;
export type ModelTask = ModelJson['task'];
