import { app, type HttpResponseInit } from '@azure/functions';
import { getRunDeps } from '../lib/runs/deps';
import { withProblems } from './support/http';

/** `GET /api/pipelines`: every pipeline at its latest version. */
export async function listPipelines(): Promise<HttpResponseInit> {
  const deps = await getRunDeps();
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
}

app.http('listPipelines', {
  route: 'pipelines',
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: withProblems(listPipelines),
});
