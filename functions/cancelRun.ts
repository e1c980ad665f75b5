import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import { trainingMonitorInstanceId } from '../lib/contracts/training';
import { requesterOf } from '../lib/approval/principal';
import { problem } from '../lib/http/problem';
import { getRunDeps } from '../lib/runs/deps';
import { endRunApproval, endRunDocument, withdrawalMessage } from '../lib/runs/ending';
import { terminalRunStatuses } from '../lib/runs/model';
import { getTrainingDeps } from '../lib/training/deps';
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
 * approval gate) are terminated, and the run document ends as canceled with every unfinished step
 * marked canceled. Nothing is deployed after a cancel: deploy runs inside the terminated orchestration.
 * A pending approval is withdrawn ("This run was canceled on … by …") and the pipeline's approval
 * slot released.
 */
export async function cancelRun(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  requireJsonContentType(request);
  const id = request.params.id ?? '';
  const deps = await getRunDeps();
  const run = await deps.runs.find(id);
  if (!run) return problem(404, 'run_not_found', `no run with id ${id}`, { field: 'id' });
  if (terminalRunStatuses.has(run.status)) {
    return problem(409, 'run_finished', `run ${id} already ended (${run.status})`, { field: 'id' });
  }
  // Who canceled is who the platform says called, never a client-chosen header.
  const by = requesterOf((h) => request.headers.get(h));
  const reason = `canceled by ${by}`;
  await deps.runs.update(run.pipeline, id, (r) => ({ ...r, cancelRequested: true }));

  const client = df.getClient(context);
  // Parent first, so it schedules nothing new while the children are stopped.
  const terminated = [];
  const children = [trainingMonitorInstanceId(id), trainingMonitorInstanceId(id, 2), `${id}:approval`];
  for (const instance of [run.instanceId, ...children]) {
    if (await terminateQuietly(client, instance, reason)) terminated.push(instance);
  }

  const train = run.steps.find((s) => s.name === 'train');
  let jobCanceled: string | undefined;
  const jobId = train?.outputs?.jobId;
  const backend = train?.outputs?.backend;
  if (
    train?.status === 'running' &&
    typeof jobId === 'string' &&
    (backend === 'local' || backend === 'azureml')
  ) {
    const training = await getTrainingDeps();
    await training.backend(backend).cancel(jobId);
    jobCanceled = jobId;
  }

  const at = new Date().toISOString();
  const ended = await deps.runs.update(run.pipeline, id, (r) =>
    endRunDocument(r, { status: 'canceled', stopReason: 'canceled', reason, at }),
  );
  // Its approval closes with the run: the link stops taking decisions and the page says why.
  const { approvalStatus } = await endRunApproval(deps, run, {
    reason: 'canceled',
    message: withdrawalMessage('canceled', at, { by }),
    by,
    at,
  });
  context.log(
    `run ${id} canceled by ${by}; terminated ${terminated.join(', ') || 'nothing'}; job ${jobCanceled ?? 'none'}`,
  );
  return {
    status: 202,
    jsonBody: {
      runId: id,
      status: ended.status,
      terminated,
      ...(jobCanceled ? { trainingJobCanceled: jobCanceled } : {}),
      ...(approvalStatus ? { approval: approvalStatus } : {}),
    },
  };
}

app.http('cancelRun', {
  route: 'runs/{id}/cancel',
  methods: ['POST'],
  authLevel: 'function',
  extraInputs: [df.input.durableClient()],
  handler: withProblems(cancelRun),
});
