import { app, type HttpRequest, type HttpResponseInit } from '@azure/functions';
import { getServices } from '../app/services';
import { problem } from '../lib/http/problem';
import { overrideLabel } from '../lib/registry/records';
import type { ModelRegistry } from '../lib/registry/registry';
import { withProblems } from './support/http';

/**
 * `GET /api/models/{name}`: the model's versions (newest first: digests, metrics, spec, run),
 * aliases (which version each points at, moved by whom and when) and the full alias history.
 */
export function createGetModelHandler(registry: () => Promise<ModelRegistry>) {
  return async (request: HttpRequest): Promise<HttpResponseInit> => {
    const name = request.params.name ?? '';
    const detail = await (await registry()).getModel(name);
    if (!detail) return problem(404, 'model_not_found', `no model named ${name}`, { field: 'name' });
    const { head, versions, aliasHistory } = detail;
    return {
      jsonBody: {
        modelName: head.modelName,
        latestVersion: head.latestVersion,
        tags: head.tags,
        createdAt: head.createdAt,
        updatedAt: head.updatedAt,
        aliases: head.aliases,
        // An overridden version says so in words too ("override, review required").
        versions: versions.map(({ id: _id, kind: _kind, ...v }) =>
          v.override ? { ...v, status: overrideLabel(v.override) } : v,
        ),
        aliasHistory: aliasHistory.map(({ id: _id, kind: _kind, ...h }) => h),
      },
    };
  };
}

app.http('getModel', {
  route: 'api/models/{name}',
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: withProblems(createGetModelHandler(async () => (await getServices()).registry)),
});
