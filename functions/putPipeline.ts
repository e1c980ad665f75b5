import { app, type HttpRequest, type HttpResponseInit } from '@azure/functions';
import { requesterOf } from '../lib/approval/principal';
import { zodProblem, problem } from '../lib/http/problem';
import {
  definitionBlobProblems,
  pipelineDefinitionSchema,
  pipelineNameSchema,
} from '../lib/pipelines/definition';
import { policyWarnings } from '../lib/pipelines/policyCheck';
import { isCustomSpec } from '../lib/contracts/trainingSpec';
import { LocalJobError, preflightLocalJob } from '../lib/training/userJob/preflight';
import type { Services } from '../lib/services';
import { withServices } from '../app/services';
import { readJsonBody, withProblems } from './support/http';

const MAX_DEFINITION_BYTES = 1024 * 1024;

/**
 * `PUT /api/pipelines/{name}`: validates a definition and stores it as a new version. `?rows=N`
 * says how many evaluation rows to expect; with it, or from the pipeline's last evaluated run, a
 * policy the holdout is too small to pass gets a warning in the answer's `warnings` (still stored).
 */
export const putPipeline =
  (deps: Pick<Services, 'pipelines' | 'artifacts'> & Partial<Pick<Services, 'runs'>>) =>
  async (request: HttpRequest): Promise<HttpResponseInit> => {
    const name = request.params.name ?? '';
    const nameCheck = pipelineNameSchema.safeParse(name);
    if (!nameCheck.success) return zodProblem(nameCheck.error, 'invalid_pipeline_name', 'name');
    const rowsParam = request.query.get('rows');
    const rows = rowsParam === null ? undefined : Number(rowsParam);
    if (rows !== undefined && !(Number.isInteger(rows) && rows > 0)) {
      return problem(400, 'invalid_rows', `rows must be a positive whole number, got "${rowsParam}"`, {
        field: 'rows',
      });
    }
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
    const { training } = parsed.data;
    if (isCustomSpec(training) && training.backend === 'local') {
      // The app runs local jobs itself: the folder and the programs must be here now (checked again at each run).
      try {
        await preflightLocalJob(training);
      } catch (err) {
        if (!(err instanceof LocalJobError)) throw err;
        return problem(400, err.code, err.message, { field: `training.${err.field}` });
      }
    }
    const missing = await definitionBlobProblems(parsed.data, deps.artifacts);
    if (missing.length > 0) {
      return problem(400, 'blob_not_found', missing.map((m) => `${m.field}: ${m.message}`).join('; '), {
        field: missing[0]!.field,
        errors: missing,
      });
    }
    const warnings = await policyWarnings(parsed.data.evaluation, name, {
      ...(rows !== undefined ? { rows } : {}),
      ...(deps.runs ? { runs: deps.runs } : {}),
    });
    const by = requesterOf((h) => request.headers.get(h));
    const stored = await deps.pipelines.put(name, parsed.data, by, new Date());
    return {
      status: 201,
      headers: { location: `/api/pipelines/${name}?version=${stored.version}` },
      jsonBody: {
        name: stored.name,
        version: stored.version,
        createdAt: stored.createdAt,
        ...(warnings.length > 0 ? { warnings } : {}),
      },
    };
  };

app.http('putPipeline', {
  route: 'pipelines/{name}',
  methods: ['PUT'],
  authLevel: 'function',
  handler: withProblems(withServices(putPipeline)),
});
