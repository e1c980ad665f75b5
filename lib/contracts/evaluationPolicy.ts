import { z } from 'zod';

/**
 * The evaluation policy of a pipeline and the metric names it may use. It travels in the
 * evaluateModel activity's input, so it lives here with no I/O; lib/evaluation/policy.ts applies it.
 */

export const classificationMetricNames = [
  'accuracy',
  'precision',
  'recall',
  'f1',
  'precision_macro',
  'recall_macro',
  'f1_macro',
  'roc_auc',
  'log_loss',
  'brier',
] as const;
export const regressionMetricNames = ['rmse', 'mae', 'r2'] as const;
export const metricNames = [...classificationMetricNames, ...regressionMetricNames] as const;
export type MetricName = (typeof metricNames)[number];

export const metricNameSchema = z.enum(metricNames);

const guardrailSchema = z
  .object({
    metric: metricNameSchema,
    /** The candidate's value must be at least this good. */
    threshold: z.number().optional(),
    /** The candidate may be worse than the champion by at most this much (point estimate). */
    maxDegradation: z.number().min(0).optional(),
  })
  .strict()
  .refine((g) => g.threshold !== undefined || g.maxDegradation !== undefined, {
    message: 'a guardrail needs a threshold, a maxDegradation, or both',
  });

const sliceGuardSchema = z
  .object({
    /** A categorical column of the evaluation data; each of its values is a slice. */
    column: z.string().min(1),
    /** Defaults to the primary metric. */
    metric: metricNameSchema.optional(),
    /** No slice may be worse than the champion on that slice by more than this. */
    maxDegradation: z.number().min(0),
    /** Slices with fewer rows are reported but not judged. */
    minRows: z.number().int().min(1).default(30),
  })
  .strict();

export const evaluationPolicySchema = z
  .object({
    primaryMetric: metricNameSchema,
    /** The candidate's primary metric must be at least this good. */
    threshold: z.number().optional(),
    comparison: z
      .discriminatedUnion('mode', [
        z
          .object({
            /** The candidate must beat the champion. */
            mode: z.literal('superiority'),
            minImprovement: z.number().min(0).default(0),
            /**
             * true: the lower bound of the improvement's confidence interval must exceed
             * minImprovement. false: the point estimate must reach it.
             */
            requireSignificance: z.boolean().default(true),
          })
          .strict(),
        z
          .object({
            /** The candidate may be worse than the champion by less than `margin`, with confidence. */
            mode: z.literal('non_inferiority'),
            margin: z.number().min(0),
          })
          .strict(),
      ])
      .prefault({ mode: 'superiority' }),
    confidence: z.number().min(0.5).max(0.999).default(0.95),
    bootstrap: z
      .object({
        resamples: z.number().int().min(100).max(20_000).default(1_000),
        seed: z.number().int().min(0).max(0xffffffff).default(1),
      })
      .strict()
      .prefault({}),
    guardrails: z.array(guardrailSchema).max(20).default([]),
    sliceGuards: z.array(sliceGuardSchema).max(10).default([]),
    /** Fewer evaluation rows than this fail the evaluation: a tiny holdout proves nothing. */
    minRows: z.number().int().min(1).default(30),
    /**
     * What applies to the first model of a pipeline, when there is no champion:
     * `thresholds_only` judges the absolute thresholds (primary and guardrails) and skips every
     * comparison, so with no thresholds the first model passes; `fail` refuses it (a person
     * registers the first production model by hand).
     */
    noChampion: z.enum(['thresholds_only', 'fail']).default('thresholds_only'),
    /**
     * The production model judged against itself: its primary metric on this run's evaluation rows
     * (with its bootstrap interval) against the value recorded when it was registered. When even
     * the best end of today's interval is worse than the recorded value by more than `margin`, the
     * data or its labels changed under the model (shuffled or re-coded labels, a broken join):
     * `stop` fails the evaluation with check `champion_collapsed` (the run stops with that reason),
     * `warn` lists it as a passed check with the same message, `off` skips it.
     */
    championCollapse: z
      .object({
        margin: z.number().min(0).default(0.1),
        action: z.enum(['stop', 'warn', 'off']).default('stop'),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type EvaluationPolicy = z.output<typeof evaluationPolicySchema>;
export type EvaluationPolicyInput = z.input<typeof evaluationPolicySchema>;
