import { z } from 'zod';

/** The steps of a pipeline run, in order. */
export const stepNames = ['ingest', 'validate', 'train', 'evaluate', 'approve', 'deploy'] as const;
export type StepName = (typeof stepNames)[number];

export const stepStatusSchema = z.enum(['pending', 'running', 'succeeded', 'failed', 'skipped', 'canceled']);
export type StepStatus = z.infer<typeof stepStatusSchema>;

/** Which part of the wall clock a step spends: machines working, or people deciding. */
export const stepKind: Record<StepName, 'compute' | 'people'> = {
  ingest: 'compute',
  validate: 'compute',
  train: 'compute',
  evaluate: 'compute',
  approve: 'people',
  deploy: 'compute',
};

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
export const terminalRunStatuses: ReadonlySet<RunStatus> = new Set([
  'succeeded',
  'stopped',
  'failed',
  'canceled',
]);

/**
 * Why a run ended early: each one is a normal outcome, not a crash. docs/pipeline.md explains each.
 * - `superseded`: stopped before approval was asked, because production moved after the run was
 *   evaluated, or another run of the pipeline holds its approval slot; or at deploy, because
 *   production moved while it waited.
 * - `approval_withdrawn`: the approval was withdrawn (the run was ended from outside) while waiting.
 * - `duplicate_execution`: a restarted or duplicated orchestration of a run that already has one;
 *   it stops at once (its own output only: the run document stays the first execution's).
 * - `orchestration_*`: found by reconciliation: the orchestration was terminated from outside,
 *   failed without recording an ending, completed without one, or does not exist.
 */
export const stopReasonSchema = z.enum([
  'validation_failed',
  'evaluation_failed',
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
});

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
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
  endedAt: z.iso.datetime().optional(),
  steps: z.array(stepSchema),
  metrics: z.record(z.string(), z.unknown()).default({}),
  approval: z.record(z.string(), z.unknown()).optional(),
  deployment: z.record(z.string(), z.unknown()).optional(),
  reports: z.record(z.string(), z.string()).default({}),
  cancelRequested: z.boolean().optional(),
  /**
   * The one orchestration execution that runs this run (claimed by its first activity). A
   * restarted or duplicated orchestration with the same run id finds another execution here and
   * stops without touching the run or its approval.
   */
  execution: z.object({ instanceId: z.string(), executionId: z.string(), at: z.iso.datetime() }).optional(),
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

/** Applies a step update; pure so it can be retried (same update twice gives the same document). */
export function applyStepUpdate(run: RunDocument, u: StepUpdate): RunDocument {
  const steps = run.steps.map((s) => {
    if (s.name !== u.step) return s;
    const next: Step = { ...s, status: u.status, attempt: u.attempt ?? s.attempt };
    if (u.status === 'running') next.startedAt = s.startedAt ?? u.at;
    if (['succeeded', 'failed', 'skipped', 'canceled'].includes(u.status)) {
      next.startedAt = s.startedAt ?? u.at;
      next.endedAt = u.at;
    }
    if (u.outputs) next.outputs = { ...(s.outputs ?? {}), ...u.outputs };
    if (u.error) next.error = u.error;
    return next;
  });
  let status = run.status;
  if (!terminalRunStatuses.has(status)) {
    if (u.step === 'approve' && u.status === 'running') status = 'waiting_for_approval';
    else if (u.status === 'running') status = 'running';
  }
  return { ...run, steps, status, updatedAt: maxIso(run.updatedAt, u.at) };
}

/**
 * Applies step updates in order, each with its own `at` (a batch loses nothing from the timeline),
 * then merges `metrics` into the run's metrics. Pure, like {@link applyStepUpdate}.
 */
export function applyStepUpdates(
  run: RunDocument,
  updates: readonly StepUpdate[],
  metrics?: Record<string, unknown>,
): RunDocument {
  const next = updates.reduce(applyStepUpdate, run);
  return metrics ? { ...next, metrics: { ...next.metrics, ...metrics } } : next;
}

/** Wall-clock split of a run: compute (steps run by machines), people (approval), queued (the rest). */
export function timeBreakdown(
  run: RunDocument,
  now: Date,
): { totalMs: number; computeMs: number; peopleMs: number; queuedMs: number } {
  const start = Date.parse(run.createdAt);
  const end = run.endedAt ? Date.parse(run.endedAt) : now.getTime();
  let computeMs = 0;
  let peopleMs = 0;
  for (const s of run.steps) {
    if (!s.startedAt) continue;
    const d = Math.max(0, (s.endedAt ? Date.parse(s.endedAt) : end) - Date.parse(s.startedAt));
    if (stepKind[s.name] === 'people') peopleMs += d;
    else computeMs += d;
  }
  const totalMs = Math.max(0, end - start);
  return { totalMs, computeMs, peopleMs, queuedMs: Math.max(0, totalMs - computeMs - peopleMs) };
}

export function newRunDocument(init: {
  id: string;
  pipeline: string;
  pipelineVersion: number;
  instanceId: string;
  trigger: z.infer<typeof runTriggerSchema>;
  source: RunSource;
  at: string;
}): RunDocument {
  return {
    ...init,
    status: 'queued',
    createdAt: init.at,
    updatedAt: init.at,
    steps: stepNames.map((name) => ({ name, status: 'pending', attempt: 0 })),
    metrics: {},
    reports: {},
  };
}

function maxIso(a: string, b: string): string {
  return Date.parse(a) >= Date.parse(b) ? a : b;
}
