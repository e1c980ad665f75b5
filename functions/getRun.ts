import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import { problem } from '../lib/http/problem';
import { runLinks, timeBreakdown } from '../lib/runs/document';
import { reconcileRun } from '../lib/runs/reconcile';
import type { Services } from '../lib/services';
import { withServices } from '../app/services';
import { reconcileDeps } from './support/reconcile';
import { withProblems } from './support/http';

/**
 * `GET /api/runs/{id}`: the run document with its time split into compute, people and queued. A
 * run that has not ended is first reconciled with its orchestration (terminated from outside,
 * failed, missing: it ends with a stop reason saying so). A reconciliation that cannot reach the
 * Durable API leaves the document as it is. `links` says where to open its reports (the reports
 * API, never a storage URL) and its console page.
 */
export const getRun =
  (deps: Pick<Services, 'runs' | 'approvals' | 'slots' | 'deployLocks'>) =>
  async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    const id = request.params.id ?? '';
    let run = await deps.runs.find(id);
    if (!run) return problem(404, 'run_not_found', `no run with id ${id}`, { field: 'id' });
    try {
      run = await reconcileRun(reconcileDeps(deps, context), run);
    } catch (err) {
      context.warn(`run ${id}: could not reconcile with its orchestration: ${(err as Error).message}`);
    }
    return { jsonBody: { ...run, timing: timeBreakdown(run, new Date()), links: runLinks(run) } };
  };

app.http('getRun', {
  route: 'api/runs/{id}',
  methods: ['GET'],
  authLevel: 'anonymous',
  extraInputs: [df.input.durableClient()],
  handler: withProblems(withServices(getRun)),
});
