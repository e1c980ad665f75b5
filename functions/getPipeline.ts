import { app, type HttpRequest, type HttpResponseInit } from '@azure/functions';
import { problem } from '../lib/http/problem';
import type { Services } from '../lib/services';
import { withServices } from '../app/services';
import { withProblems } from './support/http';

/** `GET /api/pipelines/{name}[?version=N]`: a definition, its version and the version list. */
export const getPipeline =
  (deps: Pick<Services, 'pipelines'>) =>
  async (request: HttpRequest): Promise<HttpResponseInit> => {
    const name = request.params.name ?? '';
    const v = request.query.get('version');
    let version: number | undefined;
    if (v !== null) {
      version = Number(v);
      if (!Number.isInteger(version) || version < 1) {
        return problem(400, 'invalid_version', `version must be a positive integer, got "${v}"`, {
          field: 'version',
        });
      }
    }
    const found = await deps.pipelines.get(name, version);
    if (!found) {
      return problem(
        404,
        'pipeline_not_found',
        version ? `pipeline ${name} has no version ${version}` : `no pipeline named ${name}`,
        {
          field: 'name',
        },
      );
    }
    const versions = await deps.pipelines.versions(name);
    const latest = versions.reduce((m, v) => Math.max(m, v.version), found.version);
    return {
      // The latest version, whichever was asked for: it is what a conditional PUT must name.
      headers: { etag: `"${latest}"` },
      jsonBody: {
        name: found.name,
        version: found.version,
        createdAt: found.createdAt,
        createdBy: found.createdBy,
        definition: found.definition,
        versions,
      },
    };
  };

app.http('getPipeline', {
  route: 'api/pipelines/{name}',
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: withProblems(withServices(getPipeline)),
});
