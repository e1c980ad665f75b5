import type { PipelineRunInput } from '../contracts/pipeline';
import { PIPELINE_REVISION } from '../contracts/pipeline';
import type { RunStore } from './store';
import type { RunDocument, RunSource } from '../contracts/runDocument';
import type { RunCandidate } from '../contracts/mlflowCandidate';
import { newRunDocument } from './document';

/** Starts the orchestration (the Durable client's `startNew`), injected so lib/ stays host-agnostic. */
export type StartOrchestration = (instanceId: string, input: PipelineRunInput) => Promise<void>;

/**
 * Creates the run document, then starts its orchestration with the run id as instance id. Safe to
 * call twice for one id (a retried timer): the document is created once. If the start fails the
 * run is marked failed with the reason, so nothing looks started that is not.
 */
export async function launchRun(
  deps: { runs: RunStore },
  start: StartOrchestration,
  init: {
    runId: string;
    pipeline: string;
    pipelineVersion: number;
    source: RunSource;
    trigger: RunDocument['trigger'];
    now: Date;
    /** A model trained elsewhere, already resolved (docs/mlflow.md): the run imports it instead of training. */
    candidate?: RunCandidate;
  },
): Promise<RunDocument> {
  const doc = newRunDocument({
    id: init.runId,
    pipeline: init.pipeline,
    pipelineVersion: init.pipelineVersion,
    instanceId: init.runId,
    trigger: init.trigger,
    source: init.source,
    at: init.now.toISOString(),
  });
  const { run } = await deps.runs.create(init.candidate ? { ...doc, candidate: init.candidate } : doc);
  try {
    await start(init.runId, {
      runId: init.runId,
      pipeline: init.pipeline,
      pipelineVersion: init.pipelineVersion,
      source: init.source,
      requestedBy: init.trigger.by,
      revision: PIPELINE_REVISION,
      ...(init.candidate ? { candidate: init.candidate } : {}),
    });
  } catch (err) {
    await deps.runs.update(init.pipeline, init.runId, (r) => ({
      ...r,
      status: 'failed',
      stopReason: 'error',
      reason: `could not start the orchestration: ${(err as Error).message}`,
      endedAt: r.endedAt ?? new Date().toISOString(),
    }));
    throw err;
  }
  return run;
}
