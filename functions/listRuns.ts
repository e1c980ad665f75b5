import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import { zodProblem } from '../lib/http/problem';
import { getRunDeps } from '../lib/runs/deps';
import { runStatusSchema, terminalRunStatuses } from '../lib/runs/model';
import { reconcileRun } from '../lib/runs/reconcile';
import { reconcileDeps } from './support/reconcile';
import { z } from 'zod';
import { withProblems } from './support/http';

const querySchema = z.object({
  pipeline: z.string().min(1).max(64).optional(),
  status: runStatusSchema.optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
});

/**
 * `GET /api/runs?pipeline=&status=&limit=`: newest first. Runs on the page that have not ended are
 * reconciled with their orchestrations first (see getRun).
 */
export async function listRuns(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const q = querySchema.safeParse(Object.fromEntries(request.query.entries()));
  if (!q.success) return zodProblem(q.error, 'invalid_query');
  const deps = await getRunDeps();
  const listed = await deps.runs.list(q.data);
  const reconcile = reconcileDeps(deps, context);
  const runs = await Promise.all(
    listed.map(async (r) => {
      if (terminalRunStatuses.has(r.status)) return r;
      try {
        return await reconcileRun(reconcile, r);
      } catch (err) {
        context.warn(`run ${r.id}: could not reconcile with its orchestration: ${(err as Error).message}`);
        return r;
      }
    }),
  );
  return {
    jsonBody: runs.map((r) => ({
      id: r.id,
      pipeline: r.pipeline,
      pipelineVersion: r.pipelineVersion,
      status: r.status,
      stopReason: r.stopReason,
      createdAt: r.createdAt,
      endedAt: r.endedAt,
      trigger: r.trigger,
    })),
  };
}

app.http('listRuns', {
  route: 'runs',
  methods: ['GET'],
  authLevel: 'anonymous',
  extraInputs: [df.input.durableClient()],
  handler: withProblems(listRuns),
});
