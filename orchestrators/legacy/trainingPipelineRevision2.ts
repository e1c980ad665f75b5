import type { BackendName } from '../../lib/contracts/training';
/**
 * FROZEN: the trainingPipeline body of revisions 1 and 2, kept so runs started before revision 3
 * replay exactly the activity sequence their Durable history recorded (a run waits for approval
 * for days; changing the sequence under it would fail its replay with a non-determinism error).
 * Not registered: orchestrators/trainingPipeline.ts dispatches here on `input.revision <= 2`.
 *
 * Do not edit the body. It is main@7076411's, except that the two sub-orchestrations are called
 * through their descriptors (same names, inputs and instance ids, so the same actions) and import
 * paths. The golden histories of test/fixtures/pipeline-golden replay through it.
 *
 * Delete this file (and the dispatch) once no run of revision 1 or 2 can still be running: when
 * every run created before revision 3 was deployed is terminal. An approval waits at most 30 days,
 * twice with escalation (lib/contracts/approvalPolicy.ts MAX_APPROVAL_TIMEOUT_MS), so 61 days after that
 * deploy at the latest; check `GET /api/runs` for non-terminal runs older than the deploy first.
 */
import type { OrchestrationContext, OrchestrationHandler, Task } from 'durable-functions';
import { approvalPolicySchema } from '../../lib/contracts/approvalPolicy';
import type { ApprovalGateInput } from '../../lib/contracts/approval';
import { ingestDatasetActivity, validateDatasetActivity } from '../../lib/contracts/data';
import { deployModelActivity } from '../../lib/contracts/deploy';
import { approvalGateOrchestration, trainingMonitorOrchestration } from '../../lib/contracts/orchestrations';
import {
  DATASET_COLUMNAR_BYTES_TAG,
  DATASET_COLUMNAR_SHA256_TAG,
  DATASET_COLUMNAR_URI_TAG,
  beginRunActivity,
  buildEvidenceActivity,
  finishRunActivity,
  loadPipelineVersionActivity,
  pipelineRunInputSchema,
  recordRunStepActivity,
  reserveApprovalActivity,
  resolveReferenceActivity,
  type PipelineRunOutput,
} from '../../lib/contracts/pipeline';
import {
  evaluateModelActivity,
  registerModelActivity,
  submitTrainingActivity,
  trainingMonitorInstanceId,
  type TrainingMonitorOutput,
} from '../../lib/contracts/training';
import { evaluationPolicySchema } from '../../lib/contracts/evaluationPolicy';
import type { RunStatus, StepName, StepStatus, StopReason } from '../../lib/contracts/runDocument';
import { trainingSpecSchema } from '../../lib/contracts/trainingSpec';
import { ActivityFailedError, callActivity, callSubOrchestrator } from '../support/call';

/** Slack on top of the training spec's own time limit before the monitor gives up on a job. */
const MONITOR_SLACK_SECONDS = 300;
/** Jobs submitted at most per run when workers die under them (see WORKER_DIED). */
const MAX_TRAINING_ATTEMPTS = 2;
/** Failure codes that mean the machine running the job went away, not that the job failed. */
const WORKER_DIED: ReadonlySet<string> = new Set(['worker_died', 'worker_crashed']);
/**
 * Poll quickly at first: most local jobs end within seconds, and each poll is one small activity.
 * The interval still grows to the monitor's maximum for long jobs.
 */
const MONITOR_POLLING = { firstPollSeconds: 1, backoff: 1.25 } as const;

/**
 * One pipeline run: ingest → validate → train (submit + trainingMonitor) → evaluate → register →
 * approvalGate → deploy. Every step is recorded on the run document (Cosmos) as it starts and ends;
 * each gate can stop the run with a reason, which is a normal ending, not a failure. The custom
 * status names the current step. The instance id is the run id.
 */
export const trainingPipelineRevision2: OrchestrationHandler = function* (
  context: OrchestrationContext,
): Generator<Task, PipelineRunOutput, unknown> {
  const input = pipelineRunInputSchema.parse(context.df.getInput());
  const { runId, pipeline } = input;
  const ref = { runId, pipeline };
  const now = () => context.df.currentUtcDateTime.toISOString();
  const log = (message: string) => {
    if (!context.df.isReplaying) context.log(`trainingPipeline ${runId}: ${message}`);
  };

  function* mark(
    step: StepName,
    status: StepStatus,
    extra: {
      outputs?: Record<string, unknown>;
      error?: { code: string; message: string };
      metrics?: Record<string, unknown>;
      attempt?: number;
    } = {},
  ): Generator<Task, void, unknown> {
    if (status === 'running') context.df.setCustomStatus({ runId, step });
    yield* callActivity(context, recordRunStepActivity, {
      ...ref,
      update: {
        step,
        status,
        at: now(),
        ...(extra.attempt !== undefined ? { attempt: extra.attempt } : {}),
        ...(extra.outputs ? { outputs: extra.outputs } : {}),
        ...(extra.error ? { error: extra.error } : {}),
      },
      ...(extra.metrics ? { metrics: extra.metrics } : {}),
    });
  }

  function* finish(
    status: RunStatus,
    extra: {
      stopReason?: StopReason;
      reason?: string;
      deployment?: Record<string, unknown>;
      approval?: Record<string, unknown>;
      reports?: Record<string, string>;
      deployedVersion?: number;
    } = {},
  ): Generator<Task, PipelineRunOutput, unknown> {
    context.df.setCustomStatus({
      runId,
      step: 'done',
      status,
      ...(extra.stopReason ? { stopReason: extra.stopReason } : {}),
    });
    yield* callActivity(context, finishRunActivity, {
      ...ref,
      status,
      at: now(),
      ...(extra.stopReason ? { stopReason: extra.stopReason } : {}),
      ...(extra.reason ? { reason: extra.reason.slice(0, 4_000) } : {}),
      ...(extra.deployment ? { deployment: extra.deployment } : {}),
      ...(extra.approval ? { approval: extra.approval } : {}),
      ...(extra.reports ? { reports: extra.reports } : {}),
    });
    log(
      `${status}${extra.stopReason ? ` (${extra.stopReason})` : ''}${extra.reason ? `: ${extra.reason}` : ''}`,
    );
    return {
      runId,
      status,
      ...(extra.stopReason ? { stopReason: extra.stopReason } : {}),
      ...(extra.reason ? { reason: extra.reason } : {}),
      ...(extra.deployedVersion ? { deployedVersion: extra.deployedVersion } : {}),
    };
  }

  // This execution's id: the same on every replay, new for a restarted or duplicated execution.
  // It claims the run (revision 2 on) and is the deployment id that consumes the approval.
  const executionId = context.df.newGuid(`${context.df.instanceId}:execution`);
  // Runs started before revision 2 replay the step sequence they were recorded with.
  const revision = input.revision ?? 1;
  if (revision >= 2) {
    const begun = yield* callActivity(context, beginRunActivity, {
      ...ref,
      instanceId: context.df.instanceId,
      executionId,
      at: now(),
    });
    if (!begun.accepted) {
      const reason = begun.reason ?? 'another execution runs this run';
      context.df.setCustomStatus({
        runId,
        step: 'done',
        status: 'stopped',
        stopReason: 'duplicate_execution',
      });
      log(`refused: ${reason}`);
      return { runId, status: 'stopped', stopReason: 'duplicate_execution', reason };
    }
  }

  let current: StepName = 'ingest';
  const reports: Record<string, string> = {};
  try {
    const def = yield* callActivity(context, loadPipelineVersionActivity, {
      pipeline,
      version: input.pipelineVersion,
    });
    const spec = trainingSpecSchema.parse(def.training);
    const policy = evaluationPolicySchema.parse(def.evaluation);
    const approvalPolicy = approvalPolicySchema.parse(def.approval);
    const pinned = { name: pipeline, version: input.pipelineVersion };

    // 1 ingest
    yield* mark('ingest', 'running');
    const ingested = yield* callActivity(context, ingestDatasetActivity, {
      runId,
      source: input.source,
      pipeline: pinned,
    });
    yield* mark('ingest', 'succeeded', {
      outputs: {
        rows: ingested.rows,
        columns: ingested.columns,
        sha256: ingested.raw.sha256,
        bytes: ingested.raw.bytes,
        rawUri: ingested.raw.uri,
        columnarUri: ingested.columnar.uri,
        format: ingested.format,
      },
    });

    // 2 validate, against the data the production model was trained on
    current = 'validate';
    yield* mark('validate', 'running');
    const production = yield* callActivity(context, resolveReferenceActivity, { modelName: def.modelName });
    const validated = yield* callActivity(context, validateDatasetActivity, {
      runId,
      dataset: { columnar: ingested.columnar, raw: ingested.raw, format: ingested.format },
      ...(production.reference ? { reference: production.reference } : {}),
      pipeline: pinned,
    });
    reports.validation = validated.report.uri;
    const validationOutputs = {
      status: validated.status,
      headline: validated.headline,
      errors: validated.errors,
      warnings: validated.warnings,
      drift: validated.drift,
      driftedColumns: validated.driftedColumns,
      reportUri: validated.report.uri,
    };
    if (!validated.passed) {
      yield* mark('validate', 'failed', {
        outputs: validationOutputs,
        error: { code: 'validation_failed', message: validated.headline },
      });
      return yield* finish('stopped', {
        stopReason: 'validation_failed',
        reason: validated.headline,
        reports,
      });
    }
    yield* mark('validate', 'succeeded', { outputs: validationOutputs });

    // 3 train: submit, then watch the job in a sub-orchestration with its own bounded history
    current = 'train';
    yield* mark('train', 'running');
    // A job whose worker died (host killed, process crashed) is the machine's fault, not the
    // spec's: it is submitted again under a new job id, a bounded number of times.
    let job: { jobId: string; backend: BackendName };
    let trained: TrainingMonitorOutput;
    for (let attempt = 1; ; attempt++) {
      job = yield* callActivity(context, submitTrainingActivity, {
        runId,
        spec,
        dataset: ingested.columnar,
        pipeline: pinned,
        ...(attempt > 1 ? { attempt } : {}),
      });
      // Recorded at once so a cancel request can stop the job while it trains.
      yield* mark('train', 'running', {
        outputs: { jobId: job.jobId, backend: job.backend, attempt },
        attempt: attempt - 1,
      });
      const deadline = new Date(
        context.df.currentUtcDateTime.getTime() + (spec.timeLimitSeconds + MONITOR_SLACK_SECONDS) * 1000,
      ).toISOString();
      trained = yield* callSubOrchestrator(
        context,
        trainingMonitorOrchestration,
        { jobId: job.jobId, backend: job.backend, runId, deadline, ...MONITOR_POLLING },
        trainingMonitorInstanceId(runId, attempt),
      );
      const died = trained.state === 'failed' && WORKER_DIED.has(trained.error?.code ?? '');
      if (!died || attempt >= MAX_TRAINING_ATTEMPTS) break;
      log(`training job ${job.jobId} died (${trained.error?.code}); submitting attempt ${attempt + 1}`);
    }
    if (trained.state !== 'completed' || !trained.result) {
      const why = trained.error?.message ?? `training job ${trained.jobId} ended ${trained.state}`;
      const tail = trained.logTail.slice(-10).join('\n');
      yield* mark('train', trained.state === 'canceled' ? 'canceled' : 'failed', {
        outputs: { jobId: trained.jobId, backend: job.backend, logTail: trained.logTail.slice(-10) },
        error: { code: trained.error?.code ?? `training_${trained.state}`, message: why },
      });
      if (trained.state === 'canceled')
        return yield* finish('canceled', { stopReason: 'canceled', reason: why, reports });
      return yield* finish('failed', {
        stopReason: 'training_failed',
        reason: tail ? `${why}\n${tail}` : why,
        reports,
      });
    }
    const result = trained.result;
    const trainingMetrics = result.metrics.validation ?? result.metrics.train ?? {};
    yield* mark('train', 'succeeded', {
      outputs: {
        jobId: trained.jobId,
        backend: job.backend,
        algorithm: result.algorithm,
        modelUri: result.modelUri,
        modelDigest: result.modelDigest,
        iterations: result.iterations,
        converged: result.converged,
      },
      metrics: { training: result.metrics },
    });

    // 4 evaluate: candidate and production on the same rows, then the policy's verdict
    current = 'evaluate';
    yield* mark('evaluate', 'running');
    const candidate = { uri: result.modelUri, sha256: result.modelDigest };
    const evaluated = yield* callActivity(context, evaluateModelActivity, {
      runId,
      modelName: def.modelName,
      candidate,
      dataset: { uri: ingested.columnar.uri, sha256: ingested.columnar.sha256 },
      spec,
      policy,
      ...(def.goldenSet ? { goldenSet: def.goldenSet } : {}),
      pipeline: pinned,
    });
    reports.evaluation = evaluated.report.uri;
    const evaluation = {
      primaryMetric: evaluated.primaryMetric,
      candidate: evaluated.candidate,
      champion: evaluated.champion,
      ...(evaluated.championVersion ? { championVersion: evaluated.championVersion } : {}),
      ...(evaluated.difference ? { difference: evaluated.difference } : {}),
      passed: evaluated.passed,
      reasons: evaluated.reasons.slice(0, 10),
      rows: evaluated.rows,
    };
    if (!evaluated.passed) {
      const failed = evaluated.reasons.filter((r) => !r.passed).map((r) => r.message);
      const why = failed.join('; ') || 'the candidate did not meet the evaluation policy';
      yield* mark('evaluate', 'failed', {
        outputs: { reportUri: evaluated.report.uri },
        error: { code: 'evaluation_failed', message: why },
        metrics: { evaluation },
      });
      return yield* finish('stopped', { stopReason: 'evaluation_failed', reason: why, reports });
    }
    const registered = yield* callActivity(context, registerModelActivity, {
      runId,
      modelName: def.modelName,
      model: candidate,
      datasetSha256: ingested.raw.sha256,
      algorithm: result.algorithm,
      metrics: trainingMetrics,
      spec,
      tags: {
        pipeline,
        [DATASET_COLUMNAR_URI_TAG]: ingested.columnar.uri,
        [DATASET_COLUMNAR_SHA256_TAG]: ingested.columnar.sha256,
        [DATASET_COLUMNAR_BYTES_TAG]: String(ingested.columnar.bytes),
      },
      alias: 'staging',
    });
    yield* mark('evaluate', 'succeeded', {
      outputs: { reportUri: evaluated.report.uri, modelVersion: registered.version },
      metrics: { evaluation },
    });

    // 5 approve: people decide on exactly this model and dataset, and only on fresh evidence: one
    // run of a pipeline at a time holds the approval slot, and only while production still is the
    // champion the candidate was compared with. Otherwise the run stops before anyone is asked.
    if (revision >= 2) {
      const reserved = yield* callActivity(context, reserveApprovalActivity, {
        ...ref,
        modelName: def.modelName,
        championVersion: evaluated.championVersion ?? null,
        at: now(),
      });
      if (!reserved.granted) {
        return yield* finish('stopped', {
          stopReason: 'superseded',
          reason: reserved.reason ?? 'superseded by another run of this pipeline',
          reports,
        });
      }
    }
    current = 'approve';
    yield* mark('approve', 'running');
    const evidence = yield* callActivity(context, buildEvidenceActivity, {
      runId,
      pipeline,
      validationReport: validated.report,
      evaluationReport: evaluated.report,
    });
    const gateInput: ApprovalGateInput = {
      runId,
      pipeline,
      requestedBy: input.requestedBy,
      candidate: {
        modelName: def.modelName,
        modelVersion: registered.version,
        modelDigest: registered.modelDigest,
        datasetDigest: ingested.raw.sha256,
      },
      policy: approvalPolicy,
      evidence,
    };
    const gate = yield* callSubOrchestrator(
      context,
      approvalGateOrchestration,
      gateInput,
      approvalGateOrchestration.instanceId(runId),
    );
    const approval = {
      approvalId: gate.approvalId,
      outcome: gate.outcome,
      approvedBy: gate.approvedBy,
      rejectedBy: gate.rejectedBy,
      escalated: gate.escalated,
      decidedAt: gate.decidedAt,
      reasons: gate.reasons.slice(0, 10),
    };
    if (gate.outcome !== 'approved') {
      const why = gate.reasons.join('; ') || `approval ${gate.outcome}`;
      yield* mark('approve', 'failed', {
        outputs: approval,
        error: { code: `approval_${gate.outcome}`, message: why },
      });
      return yield* finish('stopped', {
        stopReason:
          gate.outcome === 'rejected'
            ? 'approval_rejected'
            : gate.outcome === 'withdrawn'
              ? 'approval_withdrawn'
              : 'approval_timed_out',
        reason: why,
        approval,
        reports,
      });
    }
    yield* mark('approve', 'succeeded', { outputs: approval });

    // 6 deploy: move the production alias to exactly the approved version
    current = 'deploy';
    yield* mark('deploy', 'running');
    const deployed = yield* callActivity(context, deployModelActivity, {
      runId,
      pipeline,
      approvalId: gate.approvalId,
      deploymentId: executionId,
      candidate: gate.candidate,
      // Deploy only over the production version the candidate was evaluated against.
      expectedProduction: evaluated.championVersion ?? null,
    });
    yield* mark('deploy', 'succeeded', { outputs: deployed });
    return yield* finish('succeeded', {
      deployment: deployed,
      approval,
      reports,
      deployedVersion: deployed.version,
    });
  } catch (err) {
    // Anything that escaped the gates: a step's retries ran out, or a non-retriable failure.
    const e = err as { message?: string; code?: string };
    const code = err instanceof ActivityFailedError ? err.code : (e.code ?? 'step_failed');
    const message = (e.message ?? String(err)).slice(0, 2_000);
    yield* mark(current, 'failed', { error: { code, message } });
    // Production moved while the run waited (a rollback): its evidence is stale, nothing deployed.
    if (code === 'production_moved')
      return yield* finish('stopped', { stopReason: 'superseded', reason: message, reports });
    // The approval already moved production once (an execution that slipped past beginRun).
    if (code === 'approval_consumed')
      return yield* finish('stopped', { stopReason: 'duplicate_execution', reason: message, reports });
    return yield* finish('failed', { stopReason: 'error', reason: `${current} failed: ${message}`, reports });
  }
};
