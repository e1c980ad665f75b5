import { z } from 'zod';
import { approvalPolicySchema } from '../contracts/approvalPolicy';
import { datasetContractSchema } from '../contracts/datasetContract';
import { evaluationPolicySchema } from '../contracts/evaluationPolicy';
import { datasetSourceProblem, splitBlobRef } from '../storage/datasetSource';
import { trainingSpecSchema } from '../contracts/trainingSpec';
import { scheduleSchema } from './schedule';

export const pipelineNameSchema = z
  .string()
  .regex(
    /^[a-z][a-z0-9-]{1,48}[a-z0-9]$/,
    'must be 3-50 lowercase letters, digits or dashes, starting with a letter',
  );

/**
 * A pipeline definition: the dataset contract, how to train, what the candidate must show, who
 * approves, and optionally when to retrain. `PUT /api/pipelines/{name}` stores each version; a run
 * pins the version it started with.
 */
export const pipelineDefinitionSchema = z
  .object({
    name: pipelineNameSchema,
    description: z.string().max(2_000).optional(),
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
    p.training.features.forEach((f, i) => {
      if (!columns.has(f))
        ctx.addIssue({
          code: 'custom',
          path: ['training', 'features', i],
          message: `"${f}" is not a dataset column`,
        });
    });
  });

export type PipelineDefinition = z.output<typeof pipelineDefinitionSchema>;
export type PipelineDefinitionInput = z.input<typeof pipelineDefinitionSchema>;

export const modelNameOf = (p: PipelineDefinition): string => p.modelName ?? p.name;
