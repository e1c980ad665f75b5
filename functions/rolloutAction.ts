import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import { z } from 'zod';
import { withServices } from '../app/services';
import { requesterOf } from '../lib/approval/principal';
import { ROLLOUT_CONTROL_EVENT, rolloutActionSchema, rolloutActions } from '../lib/contracts/rollout';
import { ValidationError } from '../lib/errors';
import { errorProblem, problem, zodProblem } from '../lib/http/problem';
import type { RolloutStore } from '../lib/rollout/store';
import { AbortPendingError, requestControl } from '../lib/rollout/store';
import type { Services } from '../lib/services';
import { requireJsonContentType } from './support/http';

/**
 * `POST /api/models/{name}/rollout/{pause|resume|promote|abort}` (function key; the Operator role
 * behind App Service Authentication): an operator's request to the model's live rollout. The
 * request is stored on the rollout document first (numbered), then the rollout orchestration is
 * woken with an event; it applies the request at that wake-up, or at its next guard check if the
 * event is lost. Answers 202 with the request; 409 `no_live_rollout` when there is nothing to act on,
 * 409 `abort_pending` for a pause, resume or promote after an abort (an abort is final).
 */

const bodySchema = z.object({ reason: z.string().trim().max(500).optional() }).strict();

/** Wakes the rollout; the request is already safe on the rollout document, so a failure is only logged. */
export type WakeRollout = (rolloutId: string, data: unknown, context: InvocationContext) => Promise<void>;

export const raiseRolloutEvent: WakeRollout = async (rolloutId, data, context) => {
  await df.getClient(context).raiseEvent(rolloutId, ROLLOUT_CONTROL_EVENT, data);
};

export function createRolloutActionHandler(
  deps: { rollouts: Pick<RolloutStore, 'update'>; now: () => Date },
  wake: WakeRollout = raiseRolloutEvent,
) {
  return async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    try {
      const name = request.params.name ?? '';
      const action = rolloutActionSchema.safeParse(request.params.action);
      if (!action.success) {
        throw new ValidationError(
          'unknown_action',
          `"${request.params.action}" is not a rollout action; use one of ${rolloutActions.join(', ')}.`,
          { status: 404, field: 'action' },
        );
      }
      requireJsonContentType(request);
      const text = await request.text();
      let raw: unknown = {};
      if (text.trim() !== '') {
        try {
          raw = JSON.parse(text);
        } catch {
          throw new ValidationError('invalid_json', 'The body must be JSON: {"reason": "..."} or empty.', {
            field: '(body)',
          });
        }
      }
      const body = bodySchema.safeParse(raw);
      if (!body.success) return zodProblem(body.error);
      // Who acted is who the platform says called, never a body field.
      const by = requesterOf((h) => request.headers.get(h));
      let stored;
      try {
        stored = await requestControl(
          deps.rollouts,
          name,
          { action: action.data, by, ...(body.data.reason ? { reason: body.data.reason } : {}) },
          deps.now().toISOString(),
        );
      } catch (err) {
        // An abort is final: nothing may overwrite it before the rollout applies it.
        if (err instanceof AbortPendingError)
          return problem(409, 'abort_pending', err.message, { field: 'action' });
        throw err;
      }
      if (!stored) {
        return problem(409, 'no_live_rollout', `Model "${name}" has no rollout in progress.`, {
          field: 'name',
        });
      }
      try {
        await wake(stored.rolloutId, { action: action.data, seq: stored.control.seq }, context);
      } catch (err) {
        context.warn(
          `rollout ${stored.rolloutId}: wake-up failed, applied at its next check: ${(err as Error).message}`,
        );
      }
      context.log(`rollout ${stored.rolloutId}: ${action.data} requested by ${by}`);
      return {
        status: 202,
        jsonBody: { modelName: name, rolloutId: stored.rolloutId, runId: stored.runId, ...stored.control },
      };
    } catch (err) {
      return errorProblem(err, context.invocationId);
    }
  };
}

app.http('rolloutAction', {
  route: 'api/models/{name}/rollout/{action}',
  methods: ['POST'],
  authLevel: 'function',
  extraInputs: [df.input.durableClient()],
  handler: withServices((s: Services) => createRolloutActionHandler(s)),
});
