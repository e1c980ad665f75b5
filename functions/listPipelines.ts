import { app, type HttpResponseInit } from '@azure/functions';
import { withServices } from '../app/services';
import type { Services } from '../lib/services';
import { withProblems } from './support/http';

/** `GET /api/pipelines`: every pipeline at its latest version. */
export const listPipelines = (deps: Pick<Services, 'pipelines'>) => async (): Promise<HttpResponseInit> => {
  const all = await deps.pipelines.list();
  return {
    jsonBody: all.map((p) => ({
      name: p.name,
      version: p.version,
      updatedAt: p.createdAt,
      description: p.definition.description,
      schedule: p.definition.schedule?.cron,
    })),
  };
};

app.http('listPipelines', {
  route: 'api/pipelines',
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: withProblems(withServices(listPipelines)),
});
