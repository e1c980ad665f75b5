import { app, type InvocationContext, type Timer } from '@azure/functions';
import { withServices } from '../app/services';
import { monitorAll } from '../lib/monitoring/run';
import { PRODUCTION_ALIAS } from '../lib/registry/records';
import { monitoredReference } from '../lib/serving/reference';
import type { Services } from '../lib/services';

/**
 * Every minute: for each pipeline with a `monitoring` section whose last window has not been
 * computed yet, computes it (docs/monitoring.md), proposes a retrain on a finding, and stores the
 * model's monitoring document. A window is computed once (its end is on the document), so an
 * overlapping firing or a second host only repeats a computation, and the proposal slot is one
 * ETag-conditioned decision.
 */
export const monitorModels =
  (s: Services) =>
  async (timer: Timer, context: InvocationContext): Promise<void> => {
    const done = await monitorAll(
      {
        artifacts: s.artifacts,
        cosmos: s.cosmos,
        samples: s.monitoring.samples,
        store: s.monitoring.store,
        pipelines: s.pipelines,
        production: (name) => s.registry.resolveAlias(name, PRODUCTION_ALIAS),
        rollout: (name) => s.rollouts.get(name),
        reference: (version, now) => monitoredReference(s, version, now),
        proposals: async () => {
          const a = await s.approval();
          return {
            store: s.monitoring.store,
            keyring: a.keyring,
            notifier: a.notifier,
            publicBaseUrl: a.publicBaseUrl,
          };
        },
        log: (m) => context.warn(m),
      },
      s.now(),
    );
    for (const d of done)
      context.log(
        `monitoring of ${d.modelName}: ${d.samples.rows} rows, drift ${d.featureDrift.status}${d.finding.proposal ? `, proposal ${JSON.stringify(d.finding.proposal)}` : ''}`,
      );
    if (timer.isPastDue) context.log('monitoring tick was past due');
  };

app.timer('monitorModels', {
  schedule: '30 * * * * *',
  handler: withServices(monitorModels),
});
