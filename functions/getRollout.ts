import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { withServices } from '../app/services';
import { errorProblem, problem } from '../lib/http/problem';
import { figuresOf, sumRecords } from '../lib/rollout/traffic';
import type { TrafficStore } from '../lib/rollout/traffic';
import type { RolloutStore } from '../lib/rollout/store';
import type { Services } from '../lib/services';

/**
 * `GET /api/models/{name}/rollout` (function key): the model's latest rollout as predict sees it
 * (strategy, state, step, percent, candidate, the last operator request) with the figures of its
 * current step so far: candidate requests, errors, latency p99, PSI against the holdout, shadow
 * agreement. 404 `no_rollout` when the model never had one.
 */
export function createGetRolloutHandler(deps: {
  rollouts: Pick<RolloutStore, 'get'>;
  traffic: Pick<TrafficStore, 'ofStep'>;
}) {
  return async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    try {
      const name = request.params.name ?? '';
      const doc = await deps.rollouts.get(name);
      if (!doc) return problem(404, 'no_rollout', `Model "${name}" has no rollout.`, { field: 'name' });
      const records = doc.step >= 0 ? await deps.traffic.ofStep(name, doc.rolloutId, doc.step) : [];
      const side = doc.strategy === 'canary' ? 'candidate' : 'shadow';
      const figures = figuresOf(
        sumRecords(records.filter((r) => r.variant === side)),
        sumRecords(records.filter((r) => r.variant === 'production')),
        doc.reference,
      );
      const { reference, ...rest } = doc;
      void reference;
      return { status: 200, jsonBody: { ...rest, figures } };
    } catch (err) {
      return errorProblem(err, context.invocationId);
    }
  };
}

app.http('getRollout', {
  route: 'api/models/{name}/rollout',
  methods: ['GET'],
  authLevel: 'function',
  handler: withServices((s: Services) => createGetRolloutHandler(s)),
});
