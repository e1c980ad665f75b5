import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import { CANCEL_RUN_EVENT } from '../lib/contracts/pipeline';
import { problem } from '../lib/http/problem';
import { getRunDeps } from '../lib/runs/deps';
import { terminalRunStatuses } from '../lib/runs/model';
import { withProblems } from './support/http';

/**
 * `POST /api/runs/{id}/cancel`: records the request on the run document, then wakes the
 * orchestration, which cancels the training job (if any) and ends the run as canceled.
 */
export async function cancelRun(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const id = request.params.id ?? '';
  const deps = await getRunDeps();
  const run = await deps.runs.find(id);
  if (!run) return problem(404, 'run_not_found', `no run with id ${id}`, { field: 'id' });
  if (terminalRunStatuses.has(run.status)) {
    return problem(409, 'run_finished', `run ${id} already ended (${run.status})`, { field: 'id' });
  }
  await deps.runs.update(run.pipeline, id, (r) => ({ ...r, cancelRequested: true }));
  await df
    .getClient(context)
    .raiseEvent(run.instanceId, CANCEL_RUN_EVENT, { requestedAt: new Date().toISOString() });
  return { status: 202, jsonBody: { runId: id, cancelRequested: true } };
}

app.http('cancelRun', {
  route: 'runs/{id}/cancel',
  methods: ['POST'],
  authLevel: 'function',
  extraInputs: [df.input.durableClient()],
  handler: withProblems(cancelRun),
});
