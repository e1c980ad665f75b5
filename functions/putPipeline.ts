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
import { checkUserCodePolicy, LocalJobError, preflightLocalJob } from '../lib/training/userJob/preflight';
import { userCodePolicy } from '../lib/training/userJob/codePolicy';
import { isAssetReference } from '../lib/training/backends/azuremlUserJob';
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
  (deps: Pick<Services, 'pipelines' | 'artifacts' | 'config'> & Partial<Pick<Services, 'runs'>>) =>
  async (request: HttpRequest): Promise<HttpResponseInit> => {
    const name = request.params.name ?? '';
    const nameCheck = pipelineNameSchema.safeParse(name);
    if (!nameCheck.success) return zodProblem(nameCheck.error, 'invalid_pipeline_name', 'name');
    const expectedVersion = expectedVersionOf(request);
    if (typeof expectedVersion === 'string') {
      return problem(400, 'invalid_if_match', expectedVersion, { field: 'If-Match' });
    }
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
      // The app runs local jobs itself: they must be allowed here (USER_CODE_LOCAL), the folder inside
      // USER_CODE_ROOT and the programs there now (all checked again at each run).
      try {
        await preflightLocalJob(training, { policy: userCodePolicy(deps.config) });
      } catch (err) {
        if (!(err instanceof LocalJobError)) throw err;
        return problem(400, err.code, err.message, { field: `training.${err.field}` });
      }
    } else if (isCustomSpec(training) && training.score !== undefined) {
      // Other backends train elsewhere, but a python_function model's `score` command runs here.
      const policy = userCodePolicy(deps.config);
      if (!policy.local)
        return problem(
          400,
          'user_code_disabled',
          "the score command would run on the app's host, which USER_CODE_LOCAL does not allow here: give the model an ONNX flavor and drop `score`",
          { field: 'training.score' },
        );
      if (training.backend === 'azureml' && !isAssetReference(training.code)) {
        try {
          await checkUserCodePolicy(training.code, policy, { local: false });
        } catch (err) {
          if (!(err instanceof LocalJobError)) throw err;
          return problem(400, err.code, err.message, { field: `training.${err.field}` });
        }
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
    const stored =
      expectedVersion === undefined
        ? await deps.pipelines.put(name, parsed.data, by, new Date())
        : await deps.pipelines.put(name, parsed.data, by, new Date(), { expectedVersion });
    return {
      status: 201,
      headers: {
        location: `/api/pipelines/${name}?version=${stored.version}`,
        etag: pipelineEtag(stored.version),
      },
      jsonBody: {
        name: stored.name,
        version: stored.version,
        createdAt: stored.createdAt,
        ...(warnings.length > 0 ? { warnings } : {}),
      },
    };
  };

/** A pipeline's ETag is its latest version number, quoted: what `If-Match` on PUT names. */
export const pipelineEtag = (version: number) => `"${version}"`;

/**
 * The version a conditional PUT expects to replace: `If-Match: "N"` (the ETag a GET answered), or
 * `If-None-Match: *` for "create only; no pipeline of this name yet" (0). Undefined when the PUT is
 * unconditional; a string says what is wrong with the header.
 */
function expectedVersionOf(request: HttpRequest): number | undefined | string {
  const match = request.headers.get('if-match');
  const noneMatch = request.headers.get('if-none-match');
  if (match !== null && noneMatch !== null) return 'send If-Match or If-None-Match, not both';
  if (noneMatch !== null) {
    return noneMatch.trim() === '*' ? 0 : `If-None-Match must be *, got "${noneMatch}"`;
  }
  if (match === null) return undefined;
  const m = /^\s*(?:W\/)?"?([1-9][0-9]{0,8})"?\s*$/.exec(match);
  return m ? Number(m[1]) : `If-Match must be one version ETag such as "3", got "${match}"`;
}

app.http('putPipeline', {
  route: 'api/pipelines/{name}',
  methods: ['PUT'],
  authLevel: 'function',
  handler: withProblems(withServices(putPipeline)),
});
