import { app, type HttpRequest, type HttpResponseInit } from '@azure/functions';
import { requesterOf } from '../lib/approval/principal';
import { zodProblem, problem } from '../lib/http/problem';
import {
  definitionBlobProblems,
  pipelineDefinitionSchema,
  pipelineNameSchema,
} from '../lib/pipelines/definition';
import type { Services } from '../lib/services';
import { withServices } from '../app/services';
import { readJsonBody, withProblems } from './support/http';

const MAX_DEFINITION_BYTES = 1024 * 1024;

/** `PUT /api/pipelines/{name}`: validates a definition and stores it as a new version. */
export const putPipeline =
  (deps: Pick<Services, 'pipelines' | 'artifacts'>) =>
  async (request: HttpRequest): Promise<HttpResponseInit> => {
    const name = request.params.name ?? '';
    const nameCheck = pipelineNameSchema.safeParse(name);
    if (!nameCheck.success) return zodProblem(nameCheck.error, 'invalid_pipeline_name', 'name');
    const body = await readJsonBody(request, MAX_DEFINITION_BYTES);
    if (typeof body === 'object' && body !== null && !Array.isArray(body) && !('name' in body)) {
      (body as Record<string, unknown>).name = name;
    }
    const parsed = pipelineDefinitionSchema.safeParse(body);
    if (!parsed.success) return zodProblem(parsed.error, 'invalid_pipeline');
    if (parsed.data.name !== name) {
      return problem(
        400,
        'name_mismatch',
        `the body names "${parsed.data.name}" but the URL names "${name}"`,
        {
          field: 'name',
        },
      );
    }
    const missing = await definitionBlobProblems(parsed.data, deps.artifacts);
    if (missing.length > 0) {
      return problem(400, 'blob_not_found', missing.map((m) => `${m.field}: ${m.message}`).join('; '), {
        field: missing[0]!.field,
        errors: missing,
      });
    }
    const by = requesterOf((h) => request.headers.get(h));
    const stored = await deps.pipelines.put(name, parsed.data, by, new Date());
    return {
      status: 201,
      headers: { location: `/api/pipelines/${name}?version=${stored.version}` },
      jsonBody: { name: stored.name, version: stored.version, createdAt: stored.createdAt },
    };
  };

app.http('putPipeline', {
  route: 'pipelines/{name}',
  methods: ['PUT'],
  authLevel: 'function',
  handler: withProblems(withServices(putPipeline)),
});
