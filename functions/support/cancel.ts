import type { InvocationContext } from '@azure/functions';
import type * as df from 'durable-functions';
import { approvalInstanceId, runChildInstanceIds } from '../../lib/contracts/orchestrations';
import { readStepOutputs } from '../../lib/contracts/run';
import { ROLLOUT_CONTROL_EVENT, rolloutInstanceId } from '../../lib/contracts/rollout';
import { endLiveRollout, requestControl } from '../../lib/rollout/store';
import type { RunDocument } from '../../lib/contracts/runDocument';
import { ValidationError } from '../../lib/errors';
import { endRun, withdrawalMessage } from '../../lib/runs/ending';
import type { Services } from '../../lib/services';

async function terminateQuietly(
  client: df.DurableClient,
  instanceId: string,
  reason: string,
): Promise<boolean> {
  try {
    await client.terminate(instanceId, reason);
    return true;
  } catch {
    return false; // not started yet, or already finished: nothing to stop
  }
}

export type CancelDeps = Pick<Services, 'runs' | 'approvals' | 'slots' | 'deployLocks' | 'backend'> &
  Partial<Pick<Services, 'rollouts'>>;

export interface CancelOutcome {
  runId: string;
  status: string;
  terminated: string[];
  trainingJobCanceled?: string;
  approval?: string;
}

/**
 * Cancels a run that has not ended (the caller has checked): the one path both this endpoint and the
 * console's Cancel button (functions/console.ts) take. `by` is who the platform says asked.
 */
export async function cancelRunNow(
  deps: CancelDeps,
  client: df.DurableClient,
  run: RunDocument,
  by: string,
  context: InvocationContext,
): Promise<CancelOutcome> {
  const id = run.id;
  const reason = `canceled by ${by}`;
  // A cancel in progress: reconciliation (lib/runs/reconcile.ts) reads this and does not judge the
  // run while its orchestration is terminated before the document below says canceled.
  // Refused once deploy has claimed the run (ETag-conditioned, activities/deployModel.ts): production
  // is moving or has moved, and a cancel must never be followed by a production move.
  await deps.runs.update(run.pipeline, id, (r) => {
    if (r.deploying)
      throw new ValidationError(
        'run_deploying',
        `run ${id} is deploying (since ${r.deploying.at}): it can no longer be canceled. Roll the model back once the run ends.`,
        { status: 409, field: 'id' },
      );
    return { ...r, cancelRequested: true };
  });

  // Parent first, so it schedules nothing new while the children are stopped; the rollout too
  // (docs/rollout.md): a terminated rollout moves nothing more, and its document is ended below.
  const rolloutId = rolloutInstanceId(id);
  const terminated = [];
  for (const instance of [run.instanceId, ...runChildInstanceIds(id), rolloutId]) {
    if (await terminateQuietly(client, instance, reason)) terminated.push(instance);
  }

  // Whatever step the run was in, a rollout of its candidate may be live (or about to start: the
  // startRollout activity re-reads cancelRequested after writing the document). The abort is
  // stored (sticky, with who asked), then the document ended here, since no orchestration is left
  // to apply it; the event is for a rollout that somehow survived termination.
  const rolloutModel = deps.rollouts ? await candidateModelOf(deps, run) : undefined;
  if (deps.rollouts && rolloutModel) {
    const now = new Date().toISOString();
    const stored = await requestControl(
      deps.rollouts,
      rolloutModel,
      { action: 'abort', by, reason: 'the run was canceled' },
      now,
      rolloutId,
    );
    await endLiveRollout(deps.rollouts, rolloutModel, rolloutId, 'aborted', `the run was ${reason}`, now);
    if (stored) {
      await client
        .raiseEvent(rolloutId, ROLLOUT_CONTROL_EVENT, { action: 'abort', seq: stored.control.seq })
        .catch(() => undefined);
    }
  }

  // The job the train step is running, as the orchestration recorded it (typed, parsed).
  const train = run.steps.find((s) => s.name === 'train');
  const outputs = train?.status === 'running' ? readStepOutputs(run.steps, 'train') : undefined;
  // A promoted run's train step imports a model: there is no job to stop.
  const job = outputs && 'jobId' in outputs ? outputs : undefined;
  if (job) await deps.backend(job.backend).cancel(job.jobId);

  const at = new Date().toISOString();
  const { run: ended, approvalStatus } = await endRun(
    deps,
    run,
    { status: 'canceled', stopReason: 'canceled', reason, at },
    {
      withdrawal: () => ({
        reason: 'canceled',
        message: withdrawalMessage('canceled', at, { by }),
        by,
        at,
      }),
    },
  );
  context.log(
    `run ${id} canceled by ${by}; terminated ${terminated.join(', ') || 'nothing'}; job ${job?.jobId ?? 'none'}`,
  );
  return {
    runId: id,
    status: ended.status,
    terminated,
    ...(job ? { trainingJobCanceled: job.jobId } : {}),
    ...(approvalStatus ? { approval: approvalStatus } : {}),
  };
}

/**
 * The model a run's rollout would be of: the rollout record on the run document (written with
 * the first step), else the candidate its approval was asked for (a rollout starts only after
 * approval). Undefined: the run never reached approval, so no rollout can exist.
 */
async function candidateModelOf(deps: CancelDeps, run: RunDocument): Promise<string | undefined> {
  const fromRecord = (run.rollout as { modelName?: unknown } | undefined)?.modelName;
  if (typeof fromRecord === 'string') return fromRecord;
  const approvalId = readStepOutputs(run.steps, 'approve')?.approvalId ?? approvalInstanceId(run.id);
  const record = await deps.approvals.getRecord(run.id, approvalId).catch(() => undefined);
  return record?.candidate.modelName;
}
