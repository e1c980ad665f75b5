import type { InvocationContext } from '@azure/functions';
import type * as df from 'durable-functions';
import { runChildInstanceIds } from '../../lib/contracts/orchestrations';
import { readStepOutputs } from '../../lib/contracts/run';
import { ROLLOUT_CONTROL_EVENT, rolloutInstanceId } from '../../lib/contracts/rollout';
import { requestControl } from '../../lib/rollout/store';
import type { RunDocument } from '../../lib/contracts/runDocument';
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

export type CancelDeps = Pick<Services, 'runs' | 'approvals' | 'slots' | 'backend'> &
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
  await deps.runs.update(run.pipeline, id, (r) => ({ ...r, cancelRequested: true }));

  // Parent first, so it schedules nothing new while the children are stopped.
  const terminated = [];
  for (const instance of [run.instanceId, ...runChildInstanceIds(id)]) {
    if (await terminateQuietly(client, instance, reason)) terminated.push(instance);
  }

  // A rollout runs as its own orchestration: it is asked to abort (docs/rollout.md), so it stops
  // routing traffic to the candidate and never moves production.
  const rolloutModel = (run.rollout as { modelName?: unknown } | undefined)?.modelName;
  if (deps.rollouts && typeof rolloutModel === 'string') {
    const rolloutId = rolloutInstanceId(id);
    const stored = await requestControl(
      deps.rollouts,
      rolloutModel,
      { action: 'abort', by, reason: 'the run was canceled' },
      new Date().toISOString(),
      rolloutId,
    );
    if (stored) {
      await client
        .raiseEvent(rolloutId, ROLLOUT_CONTROL_EVENT, { action: 'abort', seq: stored.control.seq })
        .catch(() => undefined); // applied at its next guard check anyway
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
