import type { BackendName } from '../lib/contracts/training';
import * as df from 'durable-functions';
import type { OrchestrationContext, OrchestrationHandler, Task } from 'durable-functions';
import { ingestDatasetActivity, validateDatasetActivity } from '../lib/contracts/data';
import { deployModelActivity, takeDeploymentLockActivity } from '../lib/contracts/deploy';
import {
  MAX_TRAINING_ATTEMPTS,
  approvalGateOrchestration,
  trainingMonitorOrchestration,
} from '../lib/contracts/orchestrations';
import {
  DATASET_COLUMNAR_BYTES_TAG,
  DATASET_COLUMNAR_SHA256_TAG,
  DATASET_COLUMNAR_URI_TAG,
  PIPELINE_ORCHESTRATOR,
  buildEvidenceActivity,
  pipelineRunInputSchema,
  reserveApprovalActivity,
  resolveReferenceActivity,
  type PipelineRunInput,
  type PipelineRunOutput,
} from '../lib/contracts/pipeline';
import {
  evaluateModelActivity,
  registerModelActivity,
  submitTrainingActivity,
  type TrainingMonitorOutput,
} from '../lib/contracts/training';
import { importModelActivity } from '../lib/contracts/mlflowCandidate';
import { ROLLOUT_REVISION, rolloutOrchestration, rolloutStepsOf } from '../lib/contracts/rollout';
import { RunStop, runLifecycle } from '../lib/runs/lifecycle';
import { nextWindowOpening, windowWaitReason } from '../lib/pipelines/window';
import { trainingPipelineRevision2 } from './legacy/trainingPipelineRevision2';
import { trainingPipelineRevision3 } from './legacy/trainingPipelineRevision3';
import { ActivityFailedError, callActivity, callSubOrchestrator } from './support/call';

/** Slack on top of the training spec's own time limit before the monitor gives up on a job. */
const MONITOR_SLACK_SECONDS = 300;
/** Failure codes that mean the machine running the job went away, not that the job failed. */
const WORKER_DIED: ReadonlySet<string> = new Set(['worker_died', 'worker_crashed']);
/**
 * Poll quickly at first: most local jobs end within seconds, and each poll is one small activity.
 * The interval still grows to the monitor's maximum for long jobs.
 */
const MONITOR_POLLING = { firstPollSeconds: 1, backoff: 1.25 } as const;

/**
 * Deployments refused for a reason that is a normal ending, not a failure: production moved while
 * the run waited (a rollback), so its evidence is stale; or the approval already moved production
 * once (an execution that slipped past beginRun).
 */
const DEPLOY_REFUSED: Readonly<Record<string, 'superseded' | 'duplicate_execution'>> = {
  production_moved: 'superseded',
  approval_consumed: 'duplicate_execution',
};

/**
 * How often a deployment waiting for its model's deployment lock asks again: soon at first (most
 * deployments are one activity), then less often up to a minute, so an hours-long rollout of the
 * holder costs the waiter's history a few events a minute at most.
 */
const LOCK_POLLING = { firstSeconds: 2, backoff: 1.5, maxSeconds: 60 } as const;

const APPROVAL_STOP = {
  rejected: 'approval_rejected',
  withdrawn: 'approval_withdrawn',
  expired: 'approval_timed_out',
} as const;

/**
 * One pipeline run: ingest → validate → train (submit + trainingMonitor) → evaluate → register →
 * approvalGate → deploy. The run ledger (lib/runs/lifecycle.ts) records every step on the run
 * document as it starts and ends; each gate can stop the run with a reason (a {@link RunStop}),
 * which is a normal ending, not a failure. The custom status names the current step. The instance
 * id is the run id.
 *
 * Runs started before revision 4 replay the body they were recorded with
 * (orchestrators/legacy/trainingPipelineRevision3.ts, …Revision2.ts); a change to the sequence of
 * calls below needs a new revision in the same way. Revision 4: every deployment takes its model's
 * deployment lock first (lib/registry/deployLock.ts).
 */
export const trainingPipeline: OrchestrationHandler = function* (
  context: OrchestrationContext,
): Generator<Task, PipelineRunOutput, unknown> {
  const input = pipelineRunInputSchema.parse(context.df.getInput());
  if ((input.revision ?? 1) <= 2) {
    const legacy = trainingPipelineRevision2(context) as Generator<Task, PipelineRunOutput, unknown>;
    return yield* legacy;
  }
  if (input.revision === 3) return yield* trainingPipelineRevision3(context, input);
  return yield* runPipeline(context, input);
};

function* runPipeline(
  context: OrchestrationContext,
  input: PipelineRunInput,
): Generator<Task, PipelineRunOutput, unknown> {
  const run = runLifecycle<Task>(context, input, (def, activityInput) =>
    callActivity(context, def, activityInput),
  );
  const { runId, pipeline, pinned } = run;

  // Claims the run for this execution: a restarted or duplicated one stops here.
  const refused = yield* run.begin();
  if (refused) return refused;

  return yield* run.execute(function* () {
    const def = yield* run.definition();

    const ingested = yield* run.step('ingest', function* () {
      const out = yield* run.call(ingestDatasetActivity, { runId, source: input.source, pipeline: pinned });
      return {
        result: out,
        outputs: {
          rows: out.rows,
          columns: out.columns,
          sha256: out.raw.sha256,
          bytes: out.raw.bytes,
          rawUri: out.raw.uri,
          columnarUri: out.columnar.uri,
          format: out.format,
        },
      };
    });

    // Validated against the data the production model was trained on.
    const validated = yield* run.step('validate', function* () {
      const production = yield* run.call(resolveReferenceActivity, { modelName: def.modelName });
      const out = yield* run.call(validateDatasetActivity, {
        runId,
        dataset: { columnar: ingested.columnar, raw: ingested.raw, format: ingested.format },
        ...(production.reference ? { reference: production.reference } : {}),
        pipeline: pinned,
      });
      run.report('validation', out.report.uri);
      const outputs = {
        status: out.status,
        headline: out.headline,
        errors: out.errors,
        warnings: out.warnings,
        drift: out.drift,
        driftedColumns: out.driftedColumns,
        reportUri: out.report.uri,
      };
      if (!out.passed) {
        throw new RunStop(
          { status: 'stopped', stopReason: 'validation_failed', reason: out.headline },
          { outputs, error: { code: 'validation_failed', message: out.headline } },
        );
      }
      return { result: out, outputs };
    });

    // Submit, then watch the job in a sub-orchestration with its own bounded history. A job whose
    // worker died (host killed, process crashed) is the machine's fault, not the spec's: it is
    // submitted again under a new job id, a bounded number of times.
    const trained = yield* run.step('train', function* () {
      // A promoted run (docs/mlflow.md): the model was trained elsewhere and resolved at start; it
      // is imported and checked as a job's output would be. Runs trained here never take this branch.
      if (input.candidate) {
        const mlflow = input.candidate.mlflow;
        const imported = {
          imported: 'mlflow' as const,
          mlflowUri: mlflow.uri,
          ...(mlflow.name ? { mlflowModel: mlflow.name } : {}),
          ...(mlflow.version ? { mlflowVersion: mlflow.version } : {}),
          ...(mlflow.runId ? { mlflowRunId: mlflow.runId } : {}),
        };
        let result;
        try {
          result = yield* run.call(importModelActivity, {
            runId,
            candidate: mlflow,
            spec: def.training,
            dataset: ingested.columnar,
            pipeline: pinned,
          });
        } catch (err) {
          if (!(err instanceof ActivityFailedError)) throw err;
          const why = `${mlflow.uri}: ${err.message.slice(0, 2_000)}`;
          throw new RunStop(
            { status: 'failed', stopReason: 'training_failed', reason: why },
            { outputs: imported, error: { code: err.code, message: why } },
          );
        }
        return {
          result,
          outputs: {
            ...imported,
            algorithm: result.algorithm,
            modelUri: result.modelUri,
            modelDigest: result.modelDigest,
          },
          metrics: { training: result.metrics },
        };
      }
      let job: { jobId: string; backend: BackendName };
      let watched: TrainingMonitorOutput;
      for (let attempt = 1; ; attempt++) {
        // Quick: the step's start is written with the job id, before the job is watched.
        job = yield* run.call(
          submitTrainingActivity,
          {
            runId,
            spec: def.training,
            dataset: ingested.columnar,
            pipeline: pinned,
            ...(attempt > 1 ? { attempt } : {}),
          },
          { flush: false },
        );
        // Written before the monitor starts, so a cancel can stop the job while it trains.
        run.progress({ jobId: job.jobId, backend: job.backend, attempt }, attempt - 1);
        const deadline = new Date(
          context.df.currentUtcDateTime.getTime() +
            (def.training.timeLimitSeconds + MONITOR_SLACK_SECONDS) * 1000,
        ).toISOString();
        watched = yield* run.wait(
          callSubOrchestrator(
            context,
            trainingMonitorOrchestration,
            { jobId: job.jobId, backend: job.backend, runId, deadline, ...MONITOR_POLLING },
            trainingMonitorOrchestration.instanceId(runId, attempt),
          ),
        );
        const died = watched.state === 'failed' && WORKER_DIED.has(watched.error?.code ?? '');
        if (!died || attempt >= MAX_TRAINING_ATTEMPTS) break;
        run.log(`training job ${job.jobId} died (${watched.error?.code}); submitting attempt ${attempt + 1}`);
      }
      if (watched.state !== 'completed' || !watched.result) {
        const why = watched.error?.message ?? `training job ${watched.jobId} ended ${watched.state}`;
        const tail = watched.logTail.slice(-10);
        const tailText = tail.join('\n');
        const canceled = watched.state === 'canceled';
        throw new RunStop(
          canceled
            ? { status: 'canceled', stopReason: 'canceled', reason: why }
            : {
                status: 'failed',
                stopReason: 'training_failed',
                reason: tailText ? `${why}\n${tailText}` : why,
              },
          {
            status: canceled ? 'canceled' : 'failed',
            outputs: { jobId: watched.jobId, backend: job.backend, logTail: tail },
            error: { code: watched.error?.code ?? `training_${watched.state}`, message: why },
          },
        );
      }
      const result = watched.result;
      return {
        result,
        outputs: {
          jobId: watched.jobId,
          backend: job.backend,
          algorithm: result.algorithm,
          modelUri: result.modelUri,
          modelDigest: result.modelDigest,
          ...(result.codeDigest ? { codeDigest: result.codeDigest } : {}),
          iterations: result.iterations,
          converged: result.converged,
        },
        metrics: { training: result.metrics },
      };
    });

    // Candidate and production on the same rows, then the policy's verdict; a candidate that
    // passes is registered (alias `staging`).
    const candidate = { uri: trained.modelUri, sha256: trained.modelDigest };
    const { evaluated, registered } = yield* run.step('evaluate', function* () {
      const out = yield* run.call(evaluateModelActivity, {
        runId,
        modelName: def.modelName,
        candidate,
        // An MLflow folder (built-in or the user's); absent in histories recorded before them.
        ...(trained.artifact ? { candidateArtifact: trained.artifact } : {}),
        dataset: { uri: ingested.columnar.uri, sha256: ingested.columnar.sha256 },
        spec: def.training,
        policy: def.evaluation,
        ...(def.goldenSet ? { goldenSet: def.goldenSet } : {}),
        pipeline: pinned,
      });
      run.report('evaluation', out.report.uri);
      const summary = {
        primaryMetric: out.primaryMetric,
        candidate: out.candidate,
        champion: out.champion,
        ...(out.championVersion ? { championVersion: out.championVersion } : {}),
        ...(out.candidateInterval ? { candidateInterval: out.candidateInterval } : {}),
        ...(out.championInterval ? { championInterval: out.championInterval } : {}),
        ...(out.difference ? { difference: out.difference } : {}),
        passed: out.passed,
        reasons: out.reasons.slice(0, 10),
        rows: out.rows,
      };
      if (!out.passed) {
        const failed = out.reasons.filter((r) => !r.passed).map((r) => r.message);
        const why = failed.join('; ') || 'the candidate did not meet the evaluation policy';
        // The production model itself collapsed on this data: the data is suspect, not the candidate.
        const code = out.reasons.some((r) => !r.passed && r.check === 'champion_collapsed')
          ? 'champion_collapsed'
          : 'evaluation_failed';
        throw new RunStop(
          { status: 'stopped', stopReason: code, reason: why },
          {
            outputs: { reportUri: out.report.uri },
            error: { code, message: why },
            metrics: { evaluation: summary },
          },
        );
      }
      const version = yield* run.call(registerModelActivity, {
        runId,
        modelName: def.modelName,
        model: candidate,
        ...(trained.artifact ? { artifact: trained.artifact } : {}),
        datasetSha256: ingested.raw.sha256,
        algorithm: trained.algorithm,
        metrics: trained.metrics.validation ?? trained.metrics.train ?? {},
        spec: def.training,
        tags: {
          pipeline,
          [DATASET_COLUMNAR_URI_TAG]: ingested.columnar.uri,
          [DATASET_COLUMNAR_SHA256_TAG]: ingested.columnar.sha256,
          [DATASET_COLUMNAR_BYTES_TAG]: String(ingested.columnar.bytes),
        },
        alias: 'staging',
      });
      return {
        result: { evaluated: out, registered: version },
        outputs: { reportUri: out.report.uri, modelVersion: version.version },
        metrics: { evaluation: summary },
      };
    });

    // People decide on exactly this model and dataset, and only on fresh evidence: one run of a
    // pipeline at a time holds the approval slot, and only while production still is the champion
    // the candidate was compared with. Otherwise the run stops before anyone is asked.
    const reserved = yield* run.call(
      reserveApprovalActivity,
      {
        runId,
        pipeline,
        modelName: def.modelName,
        championVersion: evaluated.championVersion ?? null,
        at: run.now(),
      },
      { flush: false },
    );
    if (!reserved.granted) {
      throw new RunStop({
        status: 'stopped',
        stopReason: 'superseded',
        reason: reserved.reason ?? 'superseded by another run of this pipeline',
      });
    }

    const gate = yield* run.step('approve', function* () {
      const evidence = yield* run.call(buildEvidenceActivity, {
        runId,
        pipeline,
        validationReport: validated.report,
        evaluationReport: evaluated.report,
      });
      const out = yield* run.wait(
        callSubOrchestrator(
          context,
          approvalGateOrchestration,
          {
            runId,
            pipeline,
            requestedBy: input.requestedBy,
            candidate: {
              modelName: def.modelName,
              modelVersion: registered.version,
              modelDigest: registered.modelDigest,
              datasetDigest: ingested.raw.sha256,
              // Only user code has one, so built-in runs make exactly the calls they made before.
              ...(trained.codeDigest ? { codeDigest: trained.codeDigest } : {}),
            },
            policy: def.approval,
            evidence,
          },
          approvalGateOrchestration.instanceId(runId),
        ),
      );
      const approval = {
        approvalId: out.approvalId,
        outcome: out.outcome,
        approvedBy: out.approvedBy,
        rejectedBy: out.rejectedBy,
        escalated: out.escalated,
        decidedAt: out.decidedAt,
        reasons: out.reasons.slice(0, 10),
      };
      if (out.outcome !== 'approved') {
        const why = out.reasons.join('; ') || `approval ${out.outcome}`;
        throw new RunStop(
          { status: 'stopped', stopReason: APPROVAL_STOP[out.outcome], reason: why, approval },
          { outputs: approval, error: { code: `approval_${out.outcome}`, message: why } },
        );
      }
      return { result: { ...out, approval }, outputs: approval };
    });

    // Move the production alias to exactly the approved version, and only over the production
    // version the candidate was evaluated against.
    const deployed = yield* run.step('deploy', function* () {
      // A deployment window holds an approved deployment until it opens (a durable timer; a run
      // with no window makes exactly the calls it made before windows existed).
      const window = def.deploymentWindow;
      /** Waits until the window is open (now, or at its next opening); true when it had to wait. */
      const untilWindowOpens = function* (): Generator<Task, boolean, unknown> {
        if (!window) return false;
        const now = context.df.currentUtcDateTime;
        const opensAt = nextWindowOpening(window, now);
        if (opensAt.getTime() <= now.getTime()) return false;
        const reason = windowWaitReason(window, opensAt);
        context.df.setCustomStatus({ runId, step: 'deploy', waitingFor: 'deployment_window', reason });
        run.progress({ windowWait: { reason, opensAt: opensAt.toISOString() } });
        yield* run.wait(
          (function* () {
            yield context.df.createTimer(opensAt);
          })(),
        );
        return true;
      };
      yield* untilWindowOpens();
      // One deployment of a model at a time, whichever pipeline it comes from: the lock is held from
      // here until this run ends (its direct deploy or its whole rollout), released by every ending
      // (lib/runs/ending.ts). Waits while another run holds it, asking again on a durable timer; the
      // window is checked again before every ask, so a long wait for the lock never ends in a
      // deployment outside the window (a run whose first ask is granted makes the same calls).
      for (let delay: number = LOCK_POLLING.firstSeconds, shown = ''; ;) {
        const lock = yield* run.call(
          takeDeploymentLockActivity,
          { runId, pipeline, modelName: def.modelName, at: run.now() },
          { flush: false },
        );
        if (lock.granted) {
          if (lock.reason) run.log(lock.reason);
          if (shown || window) context.df.setCustomStatus({ runId, step: 'deploy' });
          break;
        }
        const holder = lock.holder ?? { runId: 'another run', pipeline: 'another pipeline' };
        if (holder.runId !== shown) {
          shown = holder.runId;
          const reason = lock.reason ?? `waiting for the deployment lock of ${def.modelName}`;
          context.df.setCustomStatus({ runId, step: 'deploy', waitingFor: 'deployment_lock', reason });
          run.progress({ lockWait: { reason, holder } });
        }
        const at = new Date(context.df.currentUtcDateTime.getTime() + delay * 1000);
        yield* run.wait(
          (function* () {
            yield context.df.createTimer(at);
          })(),
        );
        delay = Math.min(delay * LOCK_POLLING.backoff, LOCK_POLLING.maxSeconds);
        // The window may have closed while this run waited for the lock.
        if (yield* untilWindowOpens()) shown = '';
      }
      // Shadow and canary: a guarded rollout first; it moves production itself once every step
      // passed. Direct (the default, and every definition pinned before rollouts) as before.
      const deployment = def.deployment;
      if (deployment && deployment.strategy !== 'direct') {
        const out = yield* run.wait(
          callSubOrchestrator(
            context,
            rolloutOrchestration,
            {
              // New rollouts pass a step only once every guard was judged (docs/rollout.md).
              revision: ROLLOUT_REVISION,
              runId,
              pipeline,
              approvalId: gate.approvalId,
              deploymentId: run.executionId,
              candidate: gate.candidate,
              expectedProduction: evaluated.championVersion ?? null,
              strategy: deployment.strategy,
              steps: rolloutStepsOf(deployment),
              guards: deployment.guards,
              checkEverySeconds: deployment.checkEverySeconds,
            },
            rolloutOrchestration.instanceId(runId),
          ),
        );
        if (out.outcome === 'completed' && out.deployment)
          return { result: out.deployment, outputs: out.deployment };
        const refused = out.code ? DEPLOY_REFUSED[out.code] : undefined;
        const stopReason =
          refused ?? (out.outcome === 'rolled_back' ? 'rollout_rolled_back' : 'rollout_aborted');
        throw new RunStop(
          { status: 'stopped', stopReason, reason: out.reason.slice(0, 2_000) },
          { error: { code: out.code ?? `rollout_${out.outcome}`, message: out.reason.slice(0, 2_000) } },
        );
      }
      try {
        const out = yield* run.call(deployModelActivity, {
          runId,
          pipeline,
          approvalId: gate.approvalId,
          deploymentId: run.executionId,
          candidate: gate.candidate,
          expectedProduction: evaluated.championVersion ?? null,
        });
        return { result: out, outputs: out };
      } catch (err) {
        const stopReason = err instanceof ActivityFailedError ? DEPLOY_REFUSED[err.code] : undefined;
        if (!stopReason) throw err;
        const message = (err as ActivityFailedError).message.slice(0, 2_000);
        throw new RunStop(
          { status: 'stopped', stopReason, reason: message },
          { error: { code: (err as ActivityFailedError).code, message } },
        );
      }
    });
    return yield* run.finish({
      status: 'succeeded',
      deployment: deployed,
      approval: gate.approval,
      deployedVersion: deployed.version,
    });
  });
}

df.app.orchestration(PIPELINE_ORCHESTRATOR, trainingPipeline);
