import { app, type HttpRequest, type HttpResponseInit } from '@azure/functions';
import { zodProblem } from '../lib/http/problem';
import { withServices } from '../app/services';
import { runStatusSchema, stopReasonSchema } from '../lib/contracts/runDocument';
import type { Services } from '../lib/services';
import { z } from 'zod';
import { withProblems } from './support/http';

const querySchema = z.object({
  pipeline: z.string().min(1).max(64).optional(),
  status: runStatusSchema.optional(),
  stopReason: stopReasonSchema.optional(),
  /** The `x-next-before` header of the previous page: runs created before this instant. */
  before: z.iso.datetime().optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
});

/**
 * `GET /api/runs?pipeline=&status=&stopReason=&before=&limit=`: newest first, as stored, one page
 * (RunStore.page: keyset on createdAt, so a page costs the same however many runs there are); the
 * `x-next-before` header, when present, is the `before` of the next page. Runs are reconciled with
 * their orchestrations when read one by one (getRun) and by the reconcileRuns sweep, not per page.
 */
export const listRuns =
  (deps: Pick<Services, 'runs'>) =>
  async (request: HttpRequest): Promise<HttpResponseInit> => {
    const q = querySchema.safeParse(Object.fromEntries(request.query.entries()));
    if (!q.success) return zodProblem(q.error, 'invalid_query');
    const { limit, ...filter } = q.data;
    const page = await deps.runs.page(filter, limit);
    const runs = page.runs;
    return {
      ...(page.next ? { headers: { 'x-next-before': page.next } } : {}),
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
