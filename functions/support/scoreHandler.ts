import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { ValidationError } from '../../lib/errors';
import { errorProblem, problem } from '../../lib/http/problem';
import type { Prediction } from '../../lib/serving/production';
import { ModelNotServableError } from '../../lib/serving/production';
import { RowsError } from '../../lib/serving/rows';
import { requireJsonContentType } from './http';

/**
 * `POST /api/models/{name}/predict`: scores JSON rows with the model the `production` alias points
 * at, in process. Rows are checked against the model's feature schema (400 naming the field); the
 * answer carries the model version, class probabilities for classifiers, and a `warnings` entry
 * per row that had a category the model did not see in training. Model folders are scored through
 * ONNX; a python_function-only production version answers 409 `model_not_servable` with its
 * model and version.
 *
 * Under a rollout (docs/rollout.md) a share of requests may be answered by the approved candidate:
 * every answer names `modelVersion` and `variant` (`production` or `candidate`), also in the
 * `x-model-version` and `x-model-variant` headers. `X-Request-Key` (or a `key` field in the body)
 * makes the assignment sticky for that key.
 */

const MAX_BODY_BYTES = 4 * 1024 * 1024;

/** What answers predict: ProductionModels (production only) or RolloutServing (rollouts too). */
export interface Predictor {
  predict(
    name: string,
    body: unknown,
    key?: string,
  ): Promise<Prediction & { variant?: string; modelVersion?: number; predictionId?: string }>;
}

/** Longest request key (`X-Request-Key` or the body's `key`) that routes a request. */
const MAX_KEY_LENGTH = 256;

/** The request's routing key: the header, else the body's `key` field; undefined without one. */
function requestKey(request: HttpRequest, body: unknown): string | undefined {
  const header = request.headers.get('x-request-key');
  const field = (body as { key?: unknown } | null)?.key;
  const key = header ?? (typeof field === 'string' || typeof field === 'number' ? String(field) : undefined);
  if (key === undefined || key === '') return undefined;
  if (key.length > MAX_KEY_LENGTH)
    throw new ValidationError(
      'invalid_key',
      `The request key may have at most ${MAX_KEY_LENGTH} characters.`,
      {
        field: header ? 'X-Request-Key' : 'key',
      },
    );
  return key;
}

export function createScoreHandler(getModels: () => Promise<Predictor>) {
  return async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    try {
      const name = request.params.name ?? '';
      // JSON only: also keeps text/plain and form posts (no CORS preflight) out.
      requireJsonContentType(request);
      if (Number(request.headers.get('content-length') ?? '0') > MAX_BODY_BYTES) {
        throw new ValidationError('body_too_large', `Send at most ${MAX_BODY_BYTES} bytes per request.`, {
          status: 413,
        });
      }
      let body: unknown;
      try {
        body = await request.json();
      } catch {
        throw new ValidationError(
          'invalid_json',
          'The body must be JSON: {"rows": [ {feature: value, ...} ]}.',
          { field: '(body)' },
        );
      }
      const result = await (await getModels()).predict(name, body, requestKey(request, body));
      const variant = result.variant ?? 'production';
      return {
        status: 200,
        headers: {
          'x-model-version': String(result.version),
          'x-model-variant': variant,
          ...(result.predictionId ? { 'x-prediction-id': result.predictionId } : {}),
        },
        jsonBody: { ...result, modelVersion: result.version, variant },
      };
    } catch (err) {
      if (err instanceof ModelNotServableError) {
        // Registered and deployed, but not ONNX: say so, and which version, rather than a bare 409.
        const res = problem(409, err.code, err.message, { invocationId: context.invocationId });
        return {
          ...res,
          headers: { ...res.headers, 'x-model-version': String(err.version) },
          jsonBody: { ...res.jsonBody, model: err.modelName, version: err.version },
        };
      }
      if (err instanceof RowsError) {
        // Every bad field, so a client fixes its rows in one round.
        return problem(400, err.code, err.message, {
          field: err.field,
          errors: [...err.errors],
          ...(err.more > 0 ? { moreErrors: err.more } : {}),
          invocationId: context.invocationId,
        });
      }
      const code = (err as { code?: string }).code;
      if (
        code === 'model_digest_mismatch' ||
        code === 'BLOB_DIGEST_MISMATCH' ||
        code === 'invalid_model' ||
        code === 'onnx_invalid' ||
        code === 'version_not_found'
      ) {
        // The registry and the artifact disagree: refuse to serve rather than guess.
        context.error(`predict: ${(err as Error).message}`);
        return problem(503, code, (err as Error).message, { invocationId: context.invocationId });
      }
      const res = errorProblem(err, context.invocationId);
      if (res.status >= 500) context.error(`predict: ${(err as Error).message}`);
      return res;
    }
  };
}
