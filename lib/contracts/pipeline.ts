import { z } from 'zod';
import { runSourceSchema, runStatusSchema, stepUpdateSchema, stopReasonSchema } from '../runs/model';
import { defineActivity } from './activity';

/** The orchestration that runs one pipeline run; its instance id is the run id. */
export const PIPELINE_ORCHESTRATOR = 'trainingPipeline';
/** Raised on a run's instance by `POST /api/runs/{id}/cancel` (after the run document records the request). */
export const CANCEL_RUN_EVENT = 'CancelRun';

export const pipelineRunInputSchema = z.object({
  runId: z.string().min(1).max(200),
  pipeline: z.string().min(1).max(64),
  pipelineVersion: z.number().int().positive(),
  source: runSourceSchema,
  requestedBy: z.string().max(320),
});
export type PipelineRunInput = z.infer<typeof pipelineRunInputSchema>;

export const pipelineRunOutputSchema = z.object({
  runId: z.string(),
  status: runStatusSchema,
  stopReason: stopReasonSchema.optional(),
  reason: z.string().optional(),
  deployedVersion: z.number().int().optional(),
});
export type PipelineRunOutput = z.infer<typeof pipelineRunOutputSchema>;

const runRef = z.object({ runId: z.string().min(1), pipeline: z.string().min(1) });

/** Applies one step change to the run document (idempotent: the same update twice is one change). */
export const recordRunStepActivity = defineActivity(
  'recordRunStep',
  runRef.extend({ update: stepUpdateSchema, metrics: z.record(z.string(), z.unknown()).optional() }),
  z.object({ status: runStatusSchema, cancelRequested: z.boolean() }),
);

/** Ends the run document with its final status and reason. */
export const finishRunActivity = defineActivity(
  'finishRun',
  runRef.extend({
    status: runStatusSchema,
    stopReason: stopReasonSchema.optional(),
    reason: z.string().max(4_000).optional(),
    at: z.iso.datetime(),
    approval: z.record(z.string(), z.unknown()).optional(),
    deployment: z.record(z.string(), z.unknown()).optional(),
    reports: z.record(z.string(), z.string()).optional(),
  }),
  z.object({ status: runStatusSchema }),
);
