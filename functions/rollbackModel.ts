import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { z } from 'zod';
import { ValidationError } from '../lib/errors';
import { errorProblem, zodProblem } from '../lib/http/problem';
import { requesterOf } from '../lib/approval/principal';
import type { ApprovalRecord } from '../lib/contracts/approvalRecord';
import type { ModelRegistry } from '../lib/registry/registry';
import { ROLLBACK_PREFIX, planRollback } from '../lib/registry/rollback';
import { getServices } from '../app/services';
import { startNudge } from '../lib/checks/nudge';
import { checkDeps } from '../lib/services';
import { PRODUCTION_ALIAS } from '../lib/registry/records';
import { requireJsonContentType } from './support/http';

/**
 * `POST /api/models/{name}/rollback` (function key): moves `production` back to the version it
 * pointed at before its last promotion, or to `to`, with a reason. Only a version that was
 * approved and in production before is a target (lib/registry/rollback.ts). The move is
 * ETag-conditioned and appended to the alias history like every other, naming the caller and the
 * approval behind the version; scoring picks it up within SCORING_ALIAS_TTL_MS.
 */

const bodySchema = z
  .object({
    reason: z.string().trim().min(3, 'say why (at least 3 characters)').max(2000),
    /** A version that was approved and in production before; default: the one before the last promotion. */
    to: z.int().positive().optional(),
  })
  .strict();

export function createRollbackHandler(
  getRegistryFn: () => Promise<Pick<ModelRegistry, 'getModel' | 'moveAlias'>>,
  /** Called after the move so this instance's scoring cache answers with the new version at once. */
  onMoved: (modelName: string) => void = () => undefined,
  /** Approval records of one version, to say why a never-deployed version is refused. */
  findApprovals: (
    modelName: string,
    version: number,
  ) => Promise<Pick<ApprovalRecord, 'status'>[]> = async () => [],
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
      if (typeof raw === 'object' && raw !== null && 'by' in raw) {
        throw new ValidationError(
          'by_not_accepted',
          'Who rolled back is the caller the platform reports (the signed-in principal, else anonymous), never a body field: remove "by".',
          { field: 'by' },
        );
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
      const plan = await planRollback(model, parsed.data.to, async (v) =>
        (await findApprovals(name, v)).some((a) => a.status === 'rejected'),
      );
      // Who rolled back is who the platform says called, never a body field.
      const by = requesterOf((h) => request.headers.get(h));
      const { move } = await registry.moveAlias({
        modelName: name,
        alias: PRODUCTION_ALIAS,
        to: plan.to,
        expectedFrom: plan.from,
        by,
        reason: `${ROLLBACK_PREFIX}${parsed.data.reason}`,
        approvalRef: plan.approvalRef,
      });
      onMoved(name);
      context.log(
        `rollback of ${name}: production ${plan.from} -> ${plan.to} by ${by}: ${parsed.data.reason}`,
      );
      return { status: 200, jsonBody: { modelName: name, from: plan.from, to: plan.to, move } };
    } catch (err) {
      return errorProblem(err, context.invocationId);
    }
  };
}

app.http('rollbackModel', {
  route: 'api/models/{name}/rollback',
  methods: ['POST'],
  authLevel: 'function',
  handler: createRollbackHandler(
    async () => (await getServices()).registry,
    (name) => {
      getServices()
        .then((s) => {
          s.scoring.invalidate(name);
          // The deployment checks on this model are decided now, not at the next timer tick.
          startNudge(() => checkDeps(s), { aliasMoved: name });
        })
        .catch(() => undefined);
    },
    async (name, version) => (await getServices()).approvals.findByCandidate(name, version),
  ),
});
