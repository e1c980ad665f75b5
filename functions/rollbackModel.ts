import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { z } from 'zod';
import { ValidationError } from '../lib/errors';
import { errorProblem, zodProblem } from '../lib/http/problem';
import type { ModelRegistry } from '../lib/registry/registry';
import { getProductionModels, getRegistry } from '../lib/serving/deps';
import { PRODUCTION_ALIAS } from '../lib/serving/production';
import { requireJsonContentType } from './support/http';

/**
 * `POST /api/models/{name}/rollback` (function key): moves `production` back to the version it
 * pointed at before its last move, or to `to`, with a reason. The move is ETag-conditioned and
 * appended to the alias history like every other; scoring picks it up within SCORING_ALIAS_TTL_MS.
 */

const ROLLBACK_PREFIX = 'rollback: ';

const bodySchema = z.object({
  reason: z.string().trim().min(3, 'say why (at least 3 characters)').max(2000),
  /** A specific earlier version; default: the one before the last move. */
  to: z.int().positive().optional(),
  by: z.string().trim().min(1).max(256).optional(),
});

export function createRollbackHandler(
  getRegistryFn: () => Promise<Pick<ModelRegistry, 'getModel' | 'moveAlias'>>,
  /** Called after the move so this instance's scoring cache answers with the new version at once. */
  onMoved: (modelName: string) => void = () => undefined,
) {
  return async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    try {
      requireJsonContentType(request);
      const name = request.params.name ?? '';
      let raw: unknown;
      try {
        raw = await request.json();
      } catch {
        throw new ValidationError('invalid_json', 'The body must be JSON: {"reason": "..."}.', {
          field: '(body)',
        });
      }
      const parsed = bodySchema.safeParse(raw);
      if (!parsed.success) return zodProblem(parsed.error);
      const registry = await getRegistryFn();
      const model = await registry.getModel(name);
      if (!model)
        throw new ValidationError('model_not_found', `No model named "${name}" is registered.`, {
          status: 404,
          field: 'name',
        });
      const current = model.head.aliases[PRODUCTION_ALIAS]?.version ?? null;
      if (current === null)
        throw new ValidationError('no_production_model', `Model "${name}" has no production version.`, {
          status: 409,
        });
      // The promotion that put the current version in place (a rollback's own move does not count,
      // so rolling back twice walks further back instead of undoing the rollback).
      const last = [...model.aliasHistory]
        .reverse()
        .find(
          (m) => m.alias === PRODUCTION_ALIAS && m.to === current && !m.reason.startsWith(ROLLBACK_PREFIX),
        );
      const target = parsed.data.to ?? last?.from ?? null;
      if (target === null) {
        throw new ValidationError(
          'nothing_to_roll_back',
          `Version ${current} is the first production version of "${name}"; name a version with "to".`,
          {
            status: 409,
            field: 'to',
          },
        );
      }
      if (target === current)
        throw new ValidationError('already_there', `Production already is version ${current}.`, {
          status: 409,
          field: 'to',
        });
      if (!model.versions.some((v) => v.version === target)) {
        throw new ValidationError('version_not_found', `Model "${name}" has no version ${target}.`, {
          status: 404,
          field: 'to',
        });
      }
      const by = parsed.data.by ?? request.headers.get('x-ms-client-principal-name') ?? 'api';
      const { move } = await registry.moveAlias({
        modelName: name,
        alias: PRODUCTION_ALIAS,
        to: target,
        expectedFrom: current,
        by,
        reason: `${ROLLBACK_PREFIX}${parsed.data.reason}`,
      });
      onMoved(name);
      context.log(`rollback of ${name}: production ${current} -> ${target} by ${by}: ${parsed.data.reason}`);
      return { status: 200, jsonBody: { modelName: name, from: current, to: target, move } };
    } catch (err) {
      return errorProblem(err, context.invocationId);
    }
  };
}

app.http('rollbackModel', {
  route: 'models/{name}/rollback',
  methods: ['POST'],
  authLevel: 'function',
  handler: createRollbackHandler(
    () => getRegistry(),
    (name) => {
      getProductionModels()
        .then((m) => m.invalidate(name))
        .catch(() => undefined);
    },
  ),
});
