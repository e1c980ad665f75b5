import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { withServices } from '../app/services';
import { errorProblem, problem } from '../lib/http/problem';
import type { MonitoringStore } from '../lib/monitoring/store';
import type { Services } from '../lib/services';

/**
 * `GET /api/models/{name}/monitoring` (function key): the model's latest monitoring document
 * (docs/monitoring.md) — window, sampled rows, volume, error rate, latency, feature and prediction
 * drift, the live metric with its CI once labels arrived, the finding and what it led to — and the
 * model's retraining proposals with their decisions. 404 `no_monitoring` before the first window.
 */
export function createGetMonitoringHandler(deps: { store: Pick<MonitoringStore, 'get' | 'proposals'> }) {
  return async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    try {
      const name = request.params.name ?? '';
      const [doc, proposals] = await Promise.all([deps.store.get(name), deps.store.proposals(name)]);
      if (!doc)
        return problem(404, 'no_monitoring', `Model "${name}" has no monitoring window computed yet.`, {
          field: 'name',
        });
      return {
        status: 200,
        jsonBody: {
          ...doc,
          proposals: proposals.map(({ notified, ...p }) => ({ ...p, notified: notified.length })),
        },
      };
    } catch (err) {
      return errorProblem(err, context.invocationId);
    }
  };
}

app.http('getMonitoring', {
  route: 'api/models/{name}/monitoring',
  methods: ['GET'],
  authLevel: 'function',
  handler: withServices((s: Services) => createGetMonitoringHandler({ store: s.monitoring.store })),
});
