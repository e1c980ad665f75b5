import { z } from 'zod';
import { approvalPolicySchema } from '../contracts/approvalPolicy';
import { datasetContractSchema } from '../contracts/datasetContract';
import type { DatasetContract } from '../contracts/datasetContract';
import { evaluationPolicySchema } from '../contracts/evaluationPolicy';
import { deploymentSpecSchema } from '../contracts/rollout';
import { datasetSourceProblem, splitBlobRef } from '../storage/datasetSource';
import { trainingSpecSchema } from '../contracts/trainingSpec';
import { scheduleSchema } from './schedule';

export const pipelineNameSchema = z
  .string()
  .regex(
    /^[a-z][a-z0-9-]{1,48}[a-z0-9]$/,
    'must be 3-50 lowercase letters, digits or dashes, starting with a letter',
  );

/** The `monitoring` section (docs/monitoring.md). */
export const monitoringSpecSchema = z
  .object({
    /** Share of predict requests sampled, 0 to 1. */
    sampleRate: z.number().min(0).max(1),
    hashFeatures: z.array(z.string().min(1)).max(1000).default([]),
    dropFeatures: z.array(z.string().min(1)).max(1000).default([]),
    /** The window each monitoring document covers (the timer computes the last one; it runs every minute). */
    windowMinutes: z
      .int()
      .min(1)
      .max(7 * 24 * 60)
      .default(60),
    policy: z
      .object({
        /** A finding needs at least this many sampled rows in the window. */
        minSamples: z.int().min(1).max(1_000_000).default(200),
        /** Feature drift as the dataset contract judges it (its metrics and verdict): a finding when `drifted`. */
        featureDrift: z.boolean().default(true),
        /** A finding when the PSI of live predictions against the holdout predictions exceeds this. */
        maxPredictionPsi: z.number().positive().max(10).optional(),
      })
      .strict()
      .default({ minSamples: 200, featureDrift: true }),
    proposals: z
      .object({
        /** No new proposal within this many hours of the last one. */
        coolDownHours: z
          .number()
          .min(0)
          .max(24 * 365)
          .default(24),
        /** At most this many proposals per `budgetWindowHours`. */
        maxPerWindow: z.int().min(0).max(100).default(2),
        budgetWindowHours: z
          .number()
          .positive()
          .max(24 * 365)
          .default(7 * 24),
        /** How long a proposal's signed links stay valid. */
        linkHours: z
          .number()
          .positive()
          .max(24 * 90)
          .default(72),
      })
      .strict()
      .default({ coolDownHours: 24, maxPerWindow: 2, budgetWindowHours: 7 * 24, linkHours: 72 }),
  })
  .strict()
  .superRefine((m, ctx) => {
    const hashed = new Set(m.hashFeatures);
    m.dropFeatures.forEach((f, i) => {
      if (hashed.has(f))
        ctx.addIssue({
          code: 'custom',
          path: ['dropFeatures', i],
          message: `"${f}" is both hashed and dropped`,
        });
    });
  });
export type MonitoringSpec = z.output<typeof monitoringSpecSchema>;

/**
 * A pipeline definition: the dataset contract, how to train, what the candidate must show, who
 * approves, and optionally when to retrain. `PUT /api/pipelines/{name}` stores each version; a run
 * pins the version it started with.
 */
export const pipelineDefinitionSchema = z
  .object({
    name: pipelineNameSchema,
    description: z.string().max(2_000).optional(),
    /** Who answers for the model: a person or team (the evidence pack names them). */
    owner: z.string().trim().min(1).max(320).optional(),
    /** What the model is for, and what it must not be used for (the evidence pack shows it). */
    intendedUse: z.string().trim().min(1).max(4_000).optional(),
    /** Registry model name; defaults to the pipeline name. */
    modelName: pipelineNameSchema.optional(),
    dataset: datasetContractSchema,
    training: trainingSpecSchema,
    evaluation: evaluationPolicySchema,
    approval: approvalPolicySchema,
    /** Holdout rows pinned for every evaluation of this pipeline (`datasets/path` of a CSV or JSONL blob). */
    goldenSet: z
      .object({
        blob: z.string().superRefine((ref, ctx) => {
          const { container, path } = splitBlobRef(ref);
          const why = datasetSourceProblem(container, path);
          if (why) ctx.addIssue({ code: 'custom', message: why });
        }),
      })
      .optional(),
    schedule: scheduleSchema.optional(),
    /**
     * The predict endpoint. `outOfContract`: a feature value outside the dataset contract's
     * min/max or `values` is flagged per row in the answer's `warnings` (`warn`, the default) or
     * refuses the request with 400 listing every such field (`refuse`); `refuse` also refuses
     * categories the model never saw in training.
     */
    serving: z
      .object({ outOfContract: z.enum(['warn', 'refuse']).default('warn') })
      .strict()
      .optional(),
    /**
     * How an approved model reaches production (docs/rollout.md): `direct` (the default) moves the
     * production alias at once; `shadow` and `canary` roll it out in guarded steps first. `window`
     * limits when a deployment may start (docs/governance.md).
     */
    deployment: deploymentSpecSchema.optional(),
    /**
     * Live-traffic monitoring of the production model (docs/monitoring.md): the share of predict
     * requests sampled to Blob (features named in `hashFeatures` stored hashed, in `dropFeatures`
     * left out), the window drift is computed over, the drift policy, and how often a retrain may be
     * proposed.
     */
    monitoring: monitoringSpecSchema.optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    const columns = new Set(p.dataset.columns.map((c) => c.name));
    if (!columns.has(p.training.target)) {
      ctx.addIssue({
        code: 'custom',
        path: ['training', 'target'],
        message: `"${p.training.target}" is not a dataset column`,
      });
    }
    if (p.dataset.target !== undefined && p.dataset.target !== p.training.target) {
      ctx.addIssue({
        code: 'custom',
        path: ['training', 'target'],
        message: `differs from the dataset contract's target "${p.dataset.target}"`,
      });
    }
    const problem = algorithmTargetProblem(p);
    if (problem) ctx.addIssue({ code: 'custom', path: ['training', 'algorithm'], message: problem });
    for (const key of ['hashFeatures', 'dropFeatures'] as const) {
      p.monitoring?.[key].forEach((f, i) => {
        if (!columns.has(f))
          ctx.addIssue({
            code: 'custom',
            path: ['monitoring', key, i],
            message: `"${f}" is not a dataset column`,
          });
      });
    }
    p.training.features.forEach((f, i) => {
      if (!columns.has(f))
        ctx.addIssue({
          code: 'custom',
          path: ['training', 'features', i],
          message: `"${f}" is not a dataset column`,
        });
    });
  });

/**
 * Why the algorithm cannot learn the contract's target, or undefined: caught at PUT rather than
 * an hour later in training. The target's kind comes from the dataset contract's `task` when it
 * declares one, else from the column's type (a `number` column is continuous; `integer` may be
 * class labels or counts, so both kinds accept it).
 */
function algorithmTargetProblem(p: {
  dataset: DatasetContract;
  training: z.output<typeof trainingSpecSchema>;
}): string | undefined {
  const t = p.training;
  const column = p.dataset.columns.find((c) => c.name === t.target);
  if (!column) return undefined; // reported on training.target
  const task = p.dataset.task;
  const what = `target "${t.target}" is ${task ? `a ${task} target` : `a ${column.type} column`}`;
  const wantsRegression =
    t.algorithm === 'ridge' || (t.algorithm === 'gradient_boosting' && t.task === 'regression');
  const wantsClasses =
    t.algorithm === 'logistic_regression' ||
    (t.algorithm === 'gradient_boosting' && t.task === 'classification');
  if (wantsRegression) {
    const numeric = column.type === 'number' || column.type === 'integer';
    if (!numeric || task === 'binary' || task === 'multiclass') {
      return `${t.algorithm}${t.algorithm === 'ridge' ? '' : ' with task regression'} predicts a number, but the ${what}; use logistic_regression or gradient_boosting for classes`;
    }
  }
  if (wantsClasses) {
    if (task === 'regression' || column.type === 'number' || column.type === 'datetime') {
      return `${t.algorithm}${t.algorithm === 'logistic_regression' ? '' : ' with task classification'} predicts classes, but the ${what}; use ridge or gradient_boosting for a number`;
    }
  }
  return undefined;
}

export type PipelineDefinition = z.output<typeof pipelineDefinitionSchema>;
export type PipelineDefinitionInput = z.input<typeof pipelineDefinitionSchema>;

export const modelNameOf = (p: PipelineDefinition): string => p.modelName ?? p.name;

/**
 * What only storage can tell about a definition: its `goldenSet` blob must exist when it is saved,
 * not be found missing at the first evaluation. (A schedule's source may be uploaded later, so it
 * is not required here.) Each problem names its field.
 */
export async function definitionBlobProblems(
  def: PipelineDefinition,
  blobs: { exists(ref: { container: string; path: string }): Promise<boolean> },
): Promise<{ field: string; message: string }[]> {
  if (!def.goldenSet) return [];
  const location = splitBlobRef(def.goldenSet.blob);
  if (await blobs.exists(location)) return [];
  return [
    {
      field: 'goldenSet.blob',
      message: `no blob "${def.goldenSet.blob}": upload the golden set first (sluice datasets upload FILE) and name the blob it prints`,
    },
  ];
}
