import type { MlflowLink } from '../contracts/trainingJob';
import type { MlflowMirror } from '../contracts/runDocument';
import type { RunStore } from '../runs/store';
import type { MirrorDeps } from './mirror';
import { findOrCreateRun } from './mirror';

/**
 * Linking a training job to the run's MLflow run (docs/mlflow.md, "A job that logs to MLflow"):
 * before a job is submitted, the MLflow run Sluice mirrors the Sluice run to is found or made (the
 * mirror usually made it at ingest already) and its ids are stored on the run document, so the job
 * gets MLFLOW_RUN_ID / MLFLOW_EXPERIMENT_ID and its own `mlflow.start_run()` logs into that run
 * instead of making a second one. The mirror then logs into the same run (params write-once,
 * mirror.ts).
 *
 * Linking never holds a run up: the client given here makes one short attempt, and any failure
 * (MLflow down, refused, the run store down) submits the job without a link; the mirror makes the
 * run later, and a job that logs to MLflow then makes its own.
 */
export interface LinkDeps {
  /** A client that fails fast (one attempt, a short timeout): the submit waits for it. */
  client: MirrorDeps['client'];
  runs: Pick<RunStore, 'find' | 'update'>;
  trainingOf: MirrorDeps['trainingOf'];
  experimentPrefix: string;
  publicBaseUrl: string;
  /** MLFLOW_TRACKING_URI as configured: what the job is told. */
  trackingUri: string;
}

export type LinkOutcome =
  { linked: MlflowLink } | { linked?: undefined; error: { code: string; message: string } };

export async function linkTrainingJob(
  deps: LinkDeps,
  sluiceRunId: string,
  jobId: string,
): Promise<LinkOutcome> {
  try {
    const run = await deps.runs.find(sluiceRunId);
    if (!run) return { error: { code: 'run_not_found', message: `no Sluice run ${sluiceRunId}` } };
    let ids =
      run.mlflow?.runId && run.mlflow.experimentId
        ? { experimentId: run.mlflow.experimentId, runId: run.mlflow.runId }
        : undefined;
    if (!ids) {
      const training = await deps.trainingOf(run.pipeline, run.pipelineVersion);
      ids = await findOrCreateRun(deps, { run, training, publicBaseUrl: deps.publicBaseUrl });
    }
    const made = ids;
    const doc = await deps.runs.update(run.pipeline, run.id, (r) => {
      const m: MlflowMirror = r.mlflow ?? { status: 'pending', done: [], attempts: 0 };
      // The mirror stored a run meanwhile: that one is the run's MLflow run, and the job's.
      const own = m.runId && m.experimentId ? { experimentId: m.experimentId, runId: m.runId } : made;
      return { ...r, mlflow: { ...m, ...own, linkedJob: jobId } };
    });
    const experimentId = doc.mlflow?.experimentId ?? made.experimentId;
    const runId = doc.mlflow?.runId ?? made.runId;
    return { linked: { trackingUri: deps.trackingUri, experimentId, runId } };
  } catch (err) {
    const e = err as { code?: string; message?: string };
    return {
      error: { code: e.code ?? 'mlflow_link_failed', message: (e.message ?? String(err)).slice(0, 300) },
    };
  }
}
