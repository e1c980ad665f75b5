import { app, type HttpRequest, type HttpResponseInit } from '@azure/functions';
import { zodProblem } from '../lib/http/problem';
import { withServices } from '../app/services';
import { runStatusSchema } from '../lib/contracts/runDocument';
import type { Services } from '../lib/services';
import { z } from 'zod';
import { withProblems } from './support/http';

const querySchema = z.object({
  pipeline: z.string().min(1).max(64).optional(),
  status: runStatusSchema.optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
});

/**
 * `GET /api/runs?pipeline=&status=&limit=`: newest first, as stored. Runs are reconciled with their
 * orchestrations when read one by one (getRun) and by the reconcileRuns sweep, not per page.
 */
export const listRuns =
  (deps: Pick<Services, 'runs'>) =>
  async (request: HttpRequest): Promise<HttpResponseInit> => {
    const q = querySchema.safeParse(Object.fromEntries(request.query.entries()));
    if (!q.success) return zodProblem(q.error, 'invalid_query');
    const runs = await deps.runs.list(q.data);
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
  };

app.http('listRuns', {
  route: 'api/runs',
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: withProblems(withServices(listRuns)),
});
