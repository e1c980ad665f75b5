import { app, type HttpRequest, type HttpResponseInit } from '@azure/functions';
import { problem } from '../lib/http/problem';
import { getRunDeps } from '../lib/runs/deps';
import { timeBreakdown } from '../lib/runs/model';
import { withProblems } from './support/http';

/** `GET /api/runs/{id}`: the run document with its time split into compute, people and queued. */
export async function getRun(request: HttpRequest): Promise<HttpResponseInit> {
  const id = request.params.id ?? '';
  const deps = await getRunDeps();
  const run = await deps.runs.find(id);
  if (!run) return problem(404, 'run_not_found', `no run with id ${id}`, { field: 'id' });
  return { jsonBody: { ...run, timing: timeBreakdown(run, new Date()) } };
}

app.http('getRun', {
  route: 'runs/{id}',
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: withProblems(getRun),
});
