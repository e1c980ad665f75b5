import { z } from 'zod';
import { runCandidateSchema } from './mlflowCandidate';

/**
 * The run document and the parts of it that cross the Durable boundary: run source, status, stop
 * reason and step updates travel in activity inputs and outputs, so they live here with no I/O.
 * The pure functions that move a run document (apply a step update, time breakdown) stay in
 * lib/runs/document.ts.
 */

/** The steps of a pipeline run, in order. */
export const stepNames = ['ingest', 'validate', 'train', 'evaluate', 'approve', 'deploy'] as const;
export type StepName = (typeof stepNames)[number];

export const stepStatusSchema = z.enum(['pending', 'running', 'succeeded', 'failed', 'skipped', 'canceled']);
export type StepStatus = z.infer<typeof stepStatusSchema>;

export const stepSchema = z.object({
  name: z.enum(stepNames),
  status: stepStatusSchema,
  startedAt: z.iso.datetime().optional(),
  endedAt: z.iso.datetime().optional(),
  attempt: z.number().int().nonnegative().default(0),
  /** Small summaries and references (URIs, digests), never data. */
  outputs: z.record(z.string(), z.unknown()).optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
});
export type Step = z.infer<typeof stepSchema>;

export const runStatusSchema = z.enum([
  'queued',
  'running',
  'waiting_for_approval',
  'succeeded',
  'stopped',
  'failed',
  'canceled',
]);
export type RunStatus = z.infer<typeof runStatusSchema>;
/**
 * Why a run ended early: each one is a normal outcome, not a crash. docs/pipeline.md explains each.
 * - `superseded`: stopped before approval was asked, because production moved after the run was
 *   evaluated, or another run of the pipeline holds its approval slot; or at deploy, because
 *   production moved while it waited.
 * - `champion_collapsed`: evaluation found the production model far below what it scored when it
 *   was approved (the evaluation policy's `championCollapse`): the labels or the data changed.
 * - `approval_withdrawn`: the approval was withdrawn (the run was ended from outside) while waiting.
 * - `duplicate_execution`: a restarted or duplicated orchestration of a run that already has one;
 *   it stops at once (its own output only: the run document stays the first execution's).
 * - `orchestration_*`: found by reconciliation: the orchestration was terminated from outside,
 *   failed without recording an ending, completed without one, or does not exist.
 */
export const stopReasonSchema = z.enum([
  'validation_failed',
  'evaluation_failed',
  'champion_collapsed',
  'approval_rejected',
  'approval_timed_out',
  'approval_withdrawn',
  'training_failed',
  'superseded',
  'duplicate_execution',
  'canceled',
  'error',
  'orchestration_terminated',
  'orchestration_failed',
  'orchestration_ended',
  'orchestration_missing',
  'rollout_rolled_back',
  'rollout_aborted',
]);
export type StopReason = z.infer<typeof stopReasonSchema>;

export const runSourceSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('upload'),
    uri: z.string(),
    sha256: z.string(),
    bytes: z.number(),
    format: z.string(),
  }),
  z.object({ kind: z.literal('blob'), uri: z.string(), format: z.string().optional() }),
]);
export type RunSource = z.infer<typeof runSourceSchema>;

export const runTriggerSchema = z.object({
  kind: z.enum(['http', 'cli', 'timer', 'demo']),
  by: z.string().max(256),
  scheduleSlot: z.iso.datetime().optional(),
  /** The retraining proposal whose acceptance started the run (docs/monitoring.md); `by` is its accepter. */
  proposal: z.string().max(256).optional(),
});
export type RunTrigger = z.infer<typeof runTriggerSchema>;

/**
 * The run's mirror on an MLflow tracking server (docs/mlflow.md), written only by lib/mlflow's
 * mirror, never by the orchestration: `pending` until everything the run has is logged and it has
 * ended, `synced` then, `failed` with the reason when MLflow refused (retried with a longer backoff).
 * `runId` is stored before anything is logged, so a retry logs to the same MLflow run; `done` names
 * the sections already logged, so a retry logs none of them twice.
 */
export const mlflowMirrorSchema = z.object({
  status: z.enum(['pending', 'synced', 'failed']),
  experimentId: z.string().optional(),
  runId: z.string().optional(),
  done: z.array(z.string()).default([]),
  attempts: z.number().int().nonnegative().default(0),
  /** Not before this instant (backoff after a failed attempt). */
  nextAttemptAt: z.iso.datetime().optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  syncedAt: z.iso.datetime().optional(),
  /** The deployed version as mirrored to the MLflow model registry (stored before the alias is set). */
  model: z.object({ name: z.string(), version: z.string(), alias: z.string().optional() }).optional(),
  /** The training job that was handed this MLflow run (MLFLOW_RUN_ID) and may log into it too. */
  linkedJob: z.string().optional(),
  /**
   * Params the job logged first with another value than Sluice's (params are write-once in
   * MLflow): Sluice's value is not logged and is kept here instead.
   */
  paramConflicts: z.array(z.object({ key: z.string(), sluice: z.string(), mlflow: z.string() })).optional(),
  /** The model folder uploaded as artifacts of the run (`mlflow-artifacts:/…`), once all of it is there. */
  artifactUri: z.string().optional(),
});
export type MlflowMirror = z.infer<typeof mlflowMirrorSchema>;

/** The run document in Cosmos DB (container `runs`, partition key `/pipeline`): what people read. */
export const runDocumentSchema = z.object({
  id: z.string(),
  pipeline: z.string(),
  pipelineVersion: z.number().int().positive(),
  instanceId: z.string(),
  status: runStatusSchema,
  stopReason: stopReasonSchema.optional(),
  reason: z.string().optional(),
  trigger: runTriggerSchema,
  source: runSourceSchema,
  /** A promoted run's candidate, trained elsewhere (docs/mlflow.md); absent when Sluice trains. */
  candidate: runCandidateSchema.optional(),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
  endedAt: z.iso.datetime().optional(),
  steps: z.array(stepSchema),
  metrics: z.record(z.string(), z.unknown()).default({}),
  approval: z.record(z.string(), z.unknown()).optional(),
  deployment: z.record(z.string(), z.unknown()).optional(),
  /** A shadow or canary rollout's timeline: steps with their figures, and how it ended (docs/rollout.md). */
  rollout: z.record(z.string(), z.unknown()).optional(),
  reports: z.record(z.string(), z.string()).default({}),
  /** Set by cancelRun before it terminates; reconciliation reads it to leave a cancel in progress alone; nothing else reads it. */
  cancelRequested: z.boolean().optional(),
  /**
   * Set by deployModel, in one ETag-conditioned write that also checks the run is not canceled or
   * ended, before production moves. A cancel after it is refused (`run_deploying`), so no cancel can
   * fall between deploy's run check and its alias move.
   */
  deploying: z.object({ deploymentId: z.string(), at: z.iso.datetime() }).optional(),
  /**
   * The one orchestration execution that runs this run (claimed by its first activity). A
   * restarted or duplicated orchestration with the same run id finds another execution here and
   * stops without touching the run or its approval.
   */
  execution: z.object({ instanceId: z.string(), executionId: z.string(), at: z.iso.datetime() }).optional(),
  /** The MLflow mirror's state (only when MLFLOW_TRACKING_URI is set). */
  mlflow: mlflowMirrorSchema.optional(),
  /**
   * The model whose deployment lock this run asked for (lib/registry/deployLock.ts), written before
   * the lock is taken, so whoever ends the run knows which lock to release.
   */
  deploymentLock: z.object({ modelName: z.string(), at: z.iso.datetime() }).optional(),
});
export type RunDocument = z.infer<typeof runDocumentSchema>;

/** A change to one step, applied by the `recordRunStep` activity. */
export const stepUpdateSchema = z.object({
  step: z.enum(stepNames),
  status: stepStatusSchema,
  at: z.iso.datetime(),
  attempt: z.number().int().nonnegative().optional(),
  outputs: z.record(z.string(), z.unknown()).optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
});
export type StepUpdate = z.infer<typeof stepUpdateSchema>;
