import { z } from 'zod';
import { approvalPolicySchema } from './approvalPolicy';
import { evaluationPolicySchema } from './evaluationPolicy';
import { stepUpdateSchema, type StepName } from './runDocument';
import { trainingSpecSchema } from './trainingSpec';
import { deployModelActivity } from './deploy';
import { deploymentSpecSchema } from './rollout';
import { backendNameSchema } from './training';
import { deploymentWindowSchema } from './deploymentWindow';

/**
 * Contracts of the run ledger (lib/runs/lifecycle.ts): what the orchestration writes on the run
 * document about each step, the batched step updates recordRunStep applies, and the pinned
 * pipeline definition loadPipelineVersion returns. Everything here crosses the Durable boundary or
 * is read back from the run document, so it is a schema.
 */

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'a lower-case hex SHA-256');

/**
 * The parts of a pinned pipeline version the orchestration needs, parsed: pinned versions are
 * immutable, so the orchestration loads it once per run and never re-parses its sections. The
 * dataset contract stays out: data activities read it themselves, so large contracts never enter
 * the history. Parsing the output recorded by older code (the same fields, as plain records) gives
 * the same values the older code parsed itself.
 */
export const pinnedDefinitionSchema = z.object({
  modelName: z.string(),
  training: trainingSpecSchema,
  evaluation: evaluationPolicySchema,
  approval: approvalPolicySchema,
  goldenSet: z.object({ blob: z.string() }).optional(),
  /** `deployment.window` of the definition: the deploy step waits for it (docs/governance.md). */
  deploymentWindow: deploymentWindowSchema.optional(),
  /** Absent in versions stored (and histories recorded) before rollouts: a direct deployment. */
  deployment: deploymentSpecSchema.optional(),
});
export type PinnedDefinition = z.output<typeof pinnedDefinitionSchema>;

// Step outputs: the small summaries and references each step leaves on the run document. The run
// document stores them as records (older runs wrote the same fields by hand); these schemas are the
// one description writers are typed against and readers parse with.

export const ingestOutputsSchema = z.object({
  rows: z.number().int().nonnegative(),
  columns: z.number().int().nonnegative(),
  /** The raw upload's SHA-256, the digest approvals are bound to. */
  sha256,
  bytes: z.number().int().nonnegative(),
  rawUri: z.string(),
  columnarUri: z.string(),
  format: z.enum(['csv', 'jsonl', 'parquet']),
});

export const validateOutputsSchema = z.object({
  status: z.enum(['passed', 'warning', 'failed']),
  headline: z.string(),
  errors: z.number().int().nonnegative(),
  warnings: z.number().int().nonnegative(),
  drift: z.enum(['drifted', 'stable', 'notTestable', 'skipped']),
  driftedColumns: z.array(z.string()),
  reportUri: z.string(),
});

/** Written as soon as a training job is submitted, so a cancel can stop the job while it trains. */
export const trainJobOutputsSchema = z.object({
  jobId: z.string().min(1),
  backend: backendNameSchema,
  attempt: z.number().int().positive().optional(),
});

const trainJobStepOutputsSchema = trainJobOutputsSchema.extend({
  algorithm: z.string().optional(),
  modelUri: z.string().optional(),
  modelDigest: sha256.optional(),
  /** A local user job's code folder digest (lib/training/userJob/codeDigest.ts): the code that made the model. */
  codeDigest: sha256.optional(),
  iterations: z.number().int().optional(),
  converged: z.boolean().optional(),
  /** The last lines of a failed job's log. */
  logTail: z.array(z.string()).max(10).optional(),
});

/** A promoted run's train step: no job ran; the model was imported from MLflow (docs/mlflow.md). */
export const trainImportOutputsSchema = z.object({
  imported: z.literal('mlflow'),
  /** The model URI as given, and what it resolved to. */
  mlflowUri: z.string(),
  mlflowModel: z.string().optional(),
  mlflowVersion: z.string().optional(),
  mlflowRunId: z.string().optional(),
  algorithm: z.string().optional(),
  modelUri: z.string().optional(),
  modelDigest: sha256.optional(),
  /** Never set on an import (no code ran here, no iterations); listed so readers of either shape type-check. */
  codeDigest: z.undefined().optional(),
  iterations: z.number().int().optional(),
  converged: z.boolean().optional(),
});

export const trainOutputsSchema = z.union([trainJobStepOutputsSchema, trainImportOutputsSchema]);

export const evaluateOutputsSchema = z.object({
  reportUri: z.string(),
  /** The registered candidate (absent when the candidate failed the policy and was not registered). */
  modelVersion: z.number().int().optional(),
});

export const approveOutputsSchema = z.object({
  approvalId: z.string(),
  outcome: z.enum(['approved', 'rejected', 'expired', 'withdrawn']),
  approvedBy: z.array(z.string()),
  rejectedBy: z.array(z.string()),
  escalated: z.boolean(),
  decidedAt: z.iso.datetime(),
  reasons: z.array(z.string()).max(10),
});

export const deployOutputsSchema = deployModelActivity.output.extend({
  /** Set while an approved deployment waits for its pipeline's deployment window. */
  windowWait: z.object({ reason: z.string(), opensAt: z.iso.datetime() }).optional(),
  /** Set while an approved deployment waits for the run that holds its model's deployment lock. */
  lockWait: z
    .object({ reason: z.string(), holder: z.object({ runId: z.string(), pipeline: z.string() }) })
    .optional(),
});

/** Each step's outputs schema, by step name. */
export const stepOutputsSchemas = {
  ingest: ingestOutputsSchema,
  validate: validateOutputsSchema,
  train: trainOutputsSchema,
  evaluate: evaluateOutputsSchema,
  approve: approveOutputsSchema,
  deploy: deployOutputsSchema,
} as const satisfies Record<StepName, z.ZodType>;
export type StepOutputs<S extends StepName> = z.input<(typeof stepOutputsSchemas)[S]>;

/**
 * A step's outputs as the run document holds them, parsed with the step's schema; undefined when
 * the step has none or they do not match (a reader must not trust half-written outputs).
 */
export function readStepOutputs<S extends StepName>(
  steps: readonly { name: string; outputs?: Record<string, unknown> | undefined }[],
  step: S,
): z.output<(typeof stepOutputsSchemas)[S]> | undefined {
  const outputs = steps.find((s) => s.name === step)?.outputs;
  if (!outputs) return undefined;
  const parsed = stepOutputsSchemas[step].safeParse(outputs);
  return parsed.success ? (parsed.data as z.output<(typeof stepOutputsSchemas)[S]>) : undefined;
}

/** At most this many step updates go in one recordRunStep call (a run has six steps). */
export const MAX_STEP_UPDATES = 12;

/**
 * Step updates applied in order in one write, each with its own `at`, so batching loses nothing
 * from the timeline. Metrics are merged into the run's metrics.
 */
export const stepUpdatesSchema = z.array(stepUpdateSchema).min(1).max(MAX_STEP_UPDATES);

const runRef = { runId: z.string().min(1), pipeline: z.string().min(1) };

/**
 * recordRunStep's input: a list of updates (revision 3 on), or the single update older executions
 * still in flight send (revisions 1 and 2 replay recorded calls with this shape).
 */
export const recordRunStepInputSchema = z.union([
  z.object({ ...runRef, updates: stepUpdatesSchema, metrics: z.record(z.string(), z.unknown()).optional() }),
  z.object({ ...runRef, update: stepUpdateSchema, metrics: z.record(z.string(), z.unknown()).optional() }),
]);

/** The updates of either shape of {@link recordRunStepInputSchema}, in order. */
export function updatesOf(
  input: z.output<typeof recordRunStepInputSchema>,
): z.output<typeof stepUpdateSchema>[] {
  return 'updates' in input ? input.updates : [input.update];
}
