import { z } from 'zod';
import { runSourceSchema, runStatusSchema, stopReasonSchema } from './runDocument';
import { defineActivity } from './activity';
import { runCandidateSchema } from './mlflowCandidate';
import { pinnedDefinitionSchema, recordRunStepInputSchema, stepUpdatesSchema } from './run';

/** The orchestration that runs one pipeline run; its instance id is the run id. */
export const PIPELINE_ORCHESTRATOR = 'trainingPipeline';
/** The revision new runs start with (`pipelineRunInputSchema.revision`). */
export const PIPELINE_REVISION = 4;

export const pipelineRunInputSchema = z.object({
  runId: z.string().min(1).max(200),
  pipeline: z.string().min(1).max(64),
  pipelineVersion: z.number().int().positive(),
  source: runSourceSchema,
  requestedBy: z.string().max(320),
  /**
   * The orchestration revision the run was started with. Runs started before revision 2 (no field)
   * replay the step sequence they were recorded with; from 2 on the run claims its execution first
   * and its pipeline's approval slot before asking for approval; from 3 on step bookkeeping is
   * batched by the run ledger; from 4 on every deployment takes its model's deployment lock first
   * (see PIPELINE_REVISION and orchestrators/trainingPipeline.ts).
   */
  revision: z.int().positive().optional(),
  /**
   * A model trained elsewhere (MLflow), resolved at start: the train step imports it instead of
   * training. Absent on every run trained by Sluice, whose sequence of calls it leaves unchanged.
   */
  candidate: runCandidateSchema.optional(),
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

/**
 * Applies step changes to the run document in one write (idempotent: the same updates twice are one
 * change). Older executions' recorded `cancelRequested` in its output is ignored: only
 * reconciliation reads that flag, from the run document.
 */
export const recordRunStepActivity = defineActivity(
  'recordRunStep',
  recordRunStepInputSchema,
  z.object({ status: runStatusSchema }),
);

/** Ends the run document with its final status and reason, after the step updates still pending. */
export const finishRunActivity = defineActivity(
  'finishRun',
  runRef.extend({
    updates: stepUpdatesSchema.optional(),
    metrics: z.record(z.string(), z.unknown()).optional(),
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

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'a lower-case hex SHA-256');
const blobDigest = z.object({
  uri: z.string().min(1),
  sha256,
  bytes: z.number().int().nonnegative().optional(),
});

/** The pinned pipeline version, typed (see {@link pinnedDefinitionSchema}). */
export const loadPipelineVersionActivity = defineActivity(
  'loadPipelineVersion',
  z.object({ pipeline: z.string().min(1), version: z.number().int().positive() }),
  pinnedDefinitionSchema,
);

/**
 * The drift reference: the columnar dataset the production model was trained on (recorded as tags
 * on its registry version), or none for a pipeline's first model.
 */
export const resolveReferenceActivity = defineActivity(
  'resolveReference',
  z.object({ modelName: z.string().min(1) }),
  z.object({
    production: z.object({ version: z.number().int().positive(), modelDigest: sha256 }).optional(),
    reference: z
      .object({ columnar: blobDigest.extend({ bytes: z.number().int().nonnegative() }) })
      .optional(),
  }),
);

/** Summarises the validation and evaluation reports into the evidence reviewers see. */
export const buildEvidenceActivity = defineActivity(
  'buildEvidence',
  z.object({
    runId: z.string().min(1),
    pipeline: z.string().min(1),
    validationReport: blobDigest.optional(),
    evaluationReport: blobDigest,
  }),
  z.record(z.string(), z.unknown()),
);

/** Tags a registry version carries so later runs find the data it was trained on. */
export const DATASET_COLUMNAR_URI_TAG = 'dataset.columnar.uri';
export const DATASET_COLUMNAR_SHA256_TAG = 'dataset.columnar.sha256';
export const DATASET_COLUMNAR_BYTES_TAG = 'dataset.columnar.bytes';

/**
 * Claims the run document for this orchestration execution (first write wins, ETag-conditioned).
 * Refused for any other execution: a restart through the Durable API, or a duplicate start with
 * the same run id. The refused execution stops without touching the run or its approval.
 */
export const beginRunActivity = defineActivity(
  'beginRun',
  runRef.extend({
    instanceId: z.string().min(1).max(200),
    executionId: z.string().min(1).max(200),
    at: z.iso.datetime(),
  }),
  z.object({ accepted: z.boolean(), reason: z.string().optional() }),
);

/**
 * Before approval is asked: claims the pipeline's approval slot (one run of a pipeline at a time is
 * awaiting approval or deploying), then checks that production is still the champion the candidate
 * was evaluated against. Not granted means stop with `superseded` and the reason.
 */
export const reserveApprovalActivity = defineActivity(
  'reserveApproval',
  runRef.extend({
    modelName: z.string().min(1),
    /** The production version the candidate was evaluated against (null: there was none). */
    championVersion: z.int().positive().nullable(),
    at: z.iso.datetime(),
  }),
  z.object({ granted: z.boolean(), reason: z.string().optional(), holder: z.string().optional() }),
);

/** The activities that only write the run document (what bench:pipeline counts as bookkeeping). */
export const BOOKKEEPING_ACTIVITIES: ReadonlySet<string> = new Set([
  beginRunActivity.name,
  recordRunStepActivity.name,
  finishRunActivity.name,
]);
