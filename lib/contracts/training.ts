import { z } from 'zod';
import { evaluationPolicySchema } from './evaluationPolicy';
import { modelArtifactSchema } from './modelArtifact';
import { aliasNameSchema, modelNameSchema } from './modelNames';
import { jobResultSchema, jobStates } from './trainingJob';
import { trainingSpecSchema } from './trainingSpec';
import { defineActivity } from './activity';

/**
 * Contracts of the train, evaluate and register steps. Payloads are references (blob URIs with
 * SHA-256) and small summaries; models, datasets and the evaluation report stay in Blob Storage.
 */

/** Sub-orchestration that polls a training job until it ends; its instance id is {@link trainingMonitorInstanceId}. */
export const TRAINING_MONITOR_ORCHESTRATOR = 'trainingMonitor';
/** Raised on the monitor instance (e.g. from an Azure ML job-status Event Grid event) to poll at once. */
export const TRAINING_COMPLETED_EVENT = 'TrainingCompleted';

export const trainingMonitorInstanceId = (runId: string, attempt = 1): string =>
  attempt > 1 ? `${runId}:train:${attempt}` : `${runId}:train`;

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'a lower-case hex SHA-256');
const blobRef = z.object({ uri: z.string().min(1), sha256 });
export const backendNameSchema = z.enum(['local', 'azureml', 'databricks']);
export type BackendName = z.infer<typeof backendNameSchema>;

export const submitTrainingActivity = defineActivity(
  'submitTraining',
  z.object({
    runId: z.string().min(1).max(200),
    spec: trainingSpecSchema,
    /** The dataset's columnar form. */
    dataset: blobRef,
    /** The pipeline version whose dataset contract supplies the categories of categorical features. */
    pipeline: z.object({ name: z.string().min(1), version: z.number().int().positive() }).optional(),
    /** A later attempt (after the previous job's worker died) gets a job id of its own. */
    attempt: z.number().int().min(1).max(10).optional(),
  }),
  z.object({ jobId: z.string(), backend: backendNameSchema, created: z.boolean() }),
  { firstRetryIntervalMs: 2_000, maxAttempts: 4, backoffCoefficient: 2, maxRetryIntervalMs: 30_000 },
);

const jobRef = z.object({ jobId: z.string().min(1), backend: backendNameSchema });

export const trainingStatusSchema = z.object({
  jobId: z.string(),
  state: z.enum(jobStates),
  progress: z.number(),
  iteration: z.number().int(),
  metrics: z.record(z.string(), z.number().nullable()),
  /** The last lines of the job's log (each cut to 300 characters). */
  logTail: z.array(z.string().max(300)).max(20),
  error: z.object({ code: z.string(), message: z.string().max(2_000) }).optional(),
  result: jobResultSchema.optional(),
  backendStatus: z.string().optional(),
  heartbeatAt: z.string().optional(),
});
export type TrainingStatus = z.infer<typeof trainingStatusSchema>;

export const checkTrainingActivity = defineActivity('checkTraining', jobRef, trainingStatusSchema, {
  firstRetryIntervalMs: 2_000,
  maxAttempts: 5,
  backoffCoefficient: 2,
  maxRetryIntervalMs: 30_000,
});

export const cancelTrainingActivity = defineActivity(
  'cancelTraining',
  jobRef,
  z.object({ jobId: z.string() }),
);

export const trainingMonitorInputSchema = jobRef.extend({
  runId: z.string().min(1),
  /** Give up (and cancel the job) after this instant. */
  deadline: z.iso.datetime(),
  /** First poll interval, growing by `backoff` per poll up to `maxPollSeconds`. */
  firstPollSeconds: z.number().int().min(1).max(3_600).default(5),
  maxPollSeconds: z.number().int().min(1).max(3_600).default(300),
  backoff: z.number().min(1).max(4).default(1.5),
  /** Polls so far, carried across continue-as-new. */
  polls: z.number().int().min(0).default(0),
});
export type TrainingMonitorInput = z.input<typeof trainingMonitorInputSchema>;

export const trainingMonitorOutputSchema = z.object({
  jobId: z.string(),
  state: z.enum(jobStates),
  polls: z.number().int(),
  result: jobResultSchema.optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  logTail: z.array(z.string()).max(20),
});
export type TrainingMonitorOutput = z.infer<typeof trainingMonitorOutputSchema>;

const absoluteInterval = z.object({
  lower: z.number().nullable(),
  upper: z.number().nullable(),
  confidence: z.number(),
});
const reasonSummary = z.object({ check: z.string(), passed: z.boolean(), message: z.string().max(300) });

export const evaluateModelActivity = defineActivity(
  'evaluateModel',
  z.object({
    runId: z.string().min(1).max(200),
    modelName: modelNameSchema,
    candidate: blobRef,
    /** The candidate is an MLflow model folder (from the job result); absent = a legacy JSON artifact. */
    candidateArtifact: modelArtifactSchema.optional(),
    /** The run's dataset (columnar form); its holdout rows, by the spec's split, are evaluated. */
    dataset: blobRef,
    spec: trainingSpecSchema,
    policy: evaluationPolicySchema,
    /** The pipeline's pinned golden set (CSV or JSONL blob), parsed with the pipeline's dataset contract. */
    goldenSet: z.object({ blob: z.string().min(3) }).optional(),
    pipeline: z.object({ name: z.string().min(1), version: z.number().int().positive() }).optional(),
  }),
  z.object({
    report: blobRef,
    passed: z.boolean(),
    rows: z.number().int(),
    primaryMetric: z.string(),
    candidate: z.number().nullable(),
    champion: z.number().nullable(),
    championVersion: z.number().int().optional(),
    /** Bootstrap intervals of the candidate's and the champion's primary metric (absent before they existed). */
    candidateInterval: absoluteInterval.optional(),
    championInterval: absoluteInterval.optional(),
    difference: z
      .object({
        estimate: z.number().nullable(),
        lower: z.number().nullable(),
        upper: z.number().nullable(),
        confidence: z.number(),
      })
      .optional(),
    /** Failed checks first, then passed ones, at most 30. */
    reasons: z.array(reasonSummary).max(30),
  }),
  { firstRetryIntervalMs: 2_000, maxAttempts: 3, backoffCoefficient: 2, maxRetryIntervalMs: 20_000 },
);

export const registerModelActivity = defineActivity(
  'registerModel',
  z.object({
    runId: z.string().min(1).max(200),
    modelName: modelNameSchema,
    model: blobRef,
    /** The model is an MLflow model folder (from the job result); absent = a legacy JSON artifact. */
    artifact: modelArtifactSchema.optional(),
    datasetSha256: sha256,
    algorithm: z.string().min(1),
    metrics: z.record(z.string(), z.number().nullable()),
    spec: trainingSpecSchema,
    tags: z.record(z.string(), z.string()).optional(),
    /** Point this alias (e.g. `staging`) at the new version. */
    alias: aliasNameSchema.optional(),
  }),
  z.object({ modelName: z.string(), version: z.number().int(), created: z.boolean(), modelDigest: sha256 }),
);
