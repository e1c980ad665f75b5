import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import { withServices } from '../app/services';
import { startNudge } from '../lib/checks/nudge';
import { checkDeps } from '../lib/services';
import { requesterOf } from '../lib/approval/principal';
import { runChildInstanceIds } from '../lib/contracts/orchestrations';
import { readStepOutputs } from '../lib/contracts/run';
import { problem } from '../lib/http/problem';
import { endRun, withdrawalMessage } from '../lib/runs/ending';
import { terminalRunStatuses } from '../lib/runs/document';
import type { Services } from '../lib/services';
import { requireJsonContentType, withProblems } from './support/http';

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

/**
 * `POST /api/runs/{id}/cancel`: stops a run where it is. The training job (if one is running) is
 * cancelled on its backend, the run's orchestration and its sub-orchestrations (training monitor,
 * approval gate) are terminated, and the run ends as canceled (lib/runs/ending.ts `endRun`: every
 * unfinished step closed, a pending approval withdrawn — "This run was canceled on … by …" — and
 * the pipeline's approval slot released). Nothing is deployed after a cancel: deploy runs inside
 * the terminated orchestration.
 */
export const cancelRun =
  (deps: Pick<Services, 'runs' | 'approvals' | 'slots' | 'backend'>) =>
  async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    requireJsonContentType(request);
    const id = request.params.id ?? '';
    const run = await deps.runs.find(id);
    if (!run) return problem(404, 'run_not_found', `no run with id ${id}`, { field: 'id' });
    if (terminalRunStatuses.has(run.status)) {
      return problem(409, 'run_finished', `run ${id} already ended (${run.status})`, { field: 'id' });
    }
    // Who canceled is who the platform says called, never a client-chosen header.
    const by = requesterOf((h) => request.headers.get(h));
    const reason = `canceled by ${by}`;
    // A cancel in progress: reconciliation (lib/runs/reconcile.ts) reads this and does not judge the
    // run while its orchestration is terminated before the document below says canceled.
    await deps.runs.update(run.pipeline, id, (r) => ({ ...r, cancelRequested: true }));

    const client = df.getClient(context);
    // Parent first, so it schedules nothing new while the children are stopped.
    const terminated = [];
    for (const instance of [run.instanceId, ...runChildInstanceIds(id)]) {
      if (await terminateQuietly(client, instance, reason)) terminated.push(instance);
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
      status: 202,
      jsonBody: {
        runId: id,
        status: ended.status,
        terminated,
        ...(job ? { trainingJobCanceled: job.jobId } : {}),
        ...(approvalStatus ? { approval: approvalStatus } : {}),
      },
    };
  };

app.http('cancelRun', {
  route: 'api/runs/{id}/cancel',
  methods: ['POST'],
  authLevel: 'function',
  extraInputs: [df.input.durableClient()],
  handler: withProblems(
    withServices((s) => {
      const cancel = cancelRun(s);
      return async (request: HttpRequest, context: InvocationContext) => {
        const res = await cancel(request, context);
        // The deployment checks on this run are failed now, not at the next timer tick (not awaited).
        if (res.status === 202) startNudge(() => checkDeps(s), { runEnded: request.params.id ?? '' });
        return res;
      };
    }),
  ),
});
