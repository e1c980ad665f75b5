import { z } from 'zod';
import { datasetContractSchema } from './datasetContract';
import { modelArtifactSchema } from './modelArtifact';
import { trainingSpecSchema } from './trainingSpec';

/**
 * What Sluice hands a training backend and what a finished job gives back. Job states and results
 * cross the Durable boundary (checkTraining, the trainingMonitor output), so they live here with no
 * I/O; the backend interface itself is lib/training/backends/types.ts.
 */
export const jobIdSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{2,62}$/, 'lower-case letters, digits, "-" or "_", 3-63 characters');

/**
 * The MLflow run a user's job logs into (docs/mlflow.md, "A job that logs to MLflow"): the run
 * Sluice mirrors its own run to, made before the job is submitted. No credentials: each backend
 * says how the job authenticates (lib/training/backends/mlflowEnv.ts).
 */
export const mlflowLinkSchema = z.object({
  /** MLFLOW_TRACKING_URI as configured (`https://…`, `databricks`, `azureml://…`). */
  trackingUri: z.string().min(1),
  experimentId: z.string().min(1),
  runId: z.string().min(1),
});
export type MlflowLink = z.infer<typeof mlflowLinkSchema>;

export const trainingJobRequestSchema = z.object({
  /** Deterministic (from the run), so a retried submit finds the job it already started. */
  jobId: jobIdSchema,
  spec: trainingSpecSchema,
  /** The dataset's columnar form (lib/data/reading/columnar.ts) and its SHA-256. */
  dataset: z.object({ uri: z.string().min(1), sha256: z.string().regex(/^[0-9a-f]{64}$/) }),
  runId: z.string().optional(),
  /** The pipeline's dataset contract (a user job gets it as SLUICE_CONTRACT and its data conformed to it). */
  contract: datasetContractSchema.optional(),
  /**
   * The MLflow run the job's own MLflow logging goes to (MLFLOW_RUN_ID, MLFLOW_EXPERIMENT_ID); not
   * part of the job's stored request, which a retried submit compares (the link can differ).
   */
  mlflow: mlflowLinkSchema.optional(),
});
export type TrainingJobRequest = z.output<typeof trainingJobRequestSchema>;
export type TrainingJobRequestInput = z.input<typeof trainingJobRequestSchema>;

export const jobStates = ['queued', 'running', 'completed', 'failed', 'canceled'] as const;
export type JobState = (typeof jobStates)[number];
export const jobResultSchema = z.object({
  /**
   * Where the model was written and its digest (the one the registry records and approval binds
   * to): a legacy JSON artifact and its SHA-256, or an MLflow folder's manifest and its digest.
   */
  modelUri: z.string(),
  modelDigest: z.string().regex(/^[0-9a-f]{64}$/),
  algorithm: z.string(),
  task: z.string(),
  metrics: z.record(z.string(), z.record(z.string(), z.number().nullable())),
  rows: z.record(z.string(), z.number()),
  iterations: z.number().int(),
  converged: z.boolean(),
  /** The model is an MLflow folder (lib/contracts/modelArtifact.ts); absent = a legacy JSON artifact. */
  artifact: modelArtifactSchema.optional(),
  /**
   * User jobs on the local backend: the manifest digest of the code folder that ran (without .git,
   * __pycache__, .ipynb_checkpoints), so approval can bind the code as well as the model.
   */
  codeDigest: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
});
export type JobResult = z.infer<typeof jobResultSchema>;
