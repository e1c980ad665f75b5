import { app, type HttpRequest, type HttpResponseInit } from '@azure/functions';
import { getServices } from '../app/services';
import type { ModelRegistry } from '../lib/registry/registry';
import { withProblems } from './support/http';

/** `GET /api/models`: every registered model with its latest version, aliases and tags. */
export function createListModelsHandler(registry: () => Promise<ModelRegistry>) {
  return async (_request: HttpRequest): Promise<HttpResponseInit> => {
    const models = await (await registry()).listModels();
    return { jsonBody: { models } };
  };
}

app.http('listModels', {
  route: 'api/models',
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: withProblems(createListModelsHandler(async () => (await getServices()).registry)),
});
