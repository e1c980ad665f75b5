import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import { withServices } from '../app/services';
import { startNudge } from '../lib/checks/nudge';
import { checkDeps } from '../lib/services';
import { requesterOf } from '../lib/approval/principal';
import { problem } from '../lib/http/problem';
import { terminalRunStatuses } from '../lib/runs/document';
import { cancelRunNow, type CancelDeps } from './support/cancel';
import { requireJsonContentType, withProblems } from './support/http';

/**
 * `POST /api/runs/{id}/cancel`: stops a run where it is. The training job (if one is running) is
 * cancelled on its backend, the run's orchestration and its sub-orchestrations (training monitor,
 * approval gate) are terminated, and the run ends as canceled (lib/runs/ending.ts `endRun`: every
 * unfinished step closed, a pending approval withdrawn — "This run was canceled on … by …" — and
 * the pipeline's approval slot released). Nothing is deployed after a cancel: deploy runs inside
 * the terminated orchestration, and a rollout (its own orchestration) is asked to abort.
 */
export const cancelRun =
  (deps: CancelDeps) =>
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
    const outcome = await cancelRunNow(deps, df.getClient(context), run, by, context);
    return { status: 202, jsonBody: outcome };
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
