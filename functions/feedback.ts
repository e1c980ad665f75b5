import { app, type HttpRequest, type HttpResponseInit } from '@azure/functions';
import { withServices } from '../app/services';
import { acceptFeedback } from '../lib/monitoring/feedback';
import type { Services } from '../lib/services';
import { readJsonBody, withProblems } from './support/http';

/**
 * `POST /api/models/{name}/feedback` (function key): `{ "labels": [ { "predictionId", "row"?, "label" } ] }`
 * (at most 1,000). Each label is joined to its sampled prediction and stored; the answer says how
 * many were accepted and which could not be joined, and why (lib/monitoring/feedback.ts).
 */
export function createFeedbackHandler(deps: Pick<Services, 'monitoring' | 'now'>) {
  return withProblems(async (request: HttpRequest): Promise<HttpResponseInit> => {
    const name = request.params.name ?? '';
    const body = await readJsonBody(request, 512 * 1024);
    const result = await acceptFeedback(deps.monitoring, name, body, deps.now());
    return { status: 200, jsonBody: result };
  });
}

app.http('modelFeedback', {
  route: 'api/models/{name}/feedback',
  methods: ['POST'],
  authLevel: 'function',
  handler: withServices((s: Services) => createFeedbackHandler(s)),
});
