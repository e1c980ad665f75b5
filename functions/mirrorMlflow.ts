import { app, type InvocationContext, type Timer } from '@azure/functions';
import { withServices } from '../app/services';
import { mirrorPendingRuns } from '../lib/mlflow/mirror';
import type { Services } from '../lib/services';

/**
 * Every minute: the MLflow outbox (docs/mlflow.md). Mirrors each run not yet synced to the MLflow
 * tracking server, as far as its run document goes; a run that MLflow cannot take now (an outage,
 * throttling) keeps `mlflow: pending` with a backoff and is caught up by a later tick. Runs never
 * wait on it. Does nothing when MLFLOW_TRACKING_URI is not set.
 */
export const mirrorMlflow =
  (deps: Pick<Services, 'mlflow'>) =>
  async (timer: Timer, context: InvocationContext): Promise<void> => {
    if (!deps.mlflow) return;
    const outcomes = await mirrorPendingRuns(deps.mlflow);
    for (const o of outcomes) {
      if (o.status === 'synced') context.log(`mlflow: run ${o.runId} synced`);
      else if ('error' in o)
        context.warn(`mlflow: run ${o.runId} ${o.status}: ${o.error.code}: ${o.error.message}`);
    }
    if (timer.isPastDue) context.log('mlflow mirror tick was past due');
  };

app.timer('mirrorMlflow', {
  schedule: '0 * * * * *',
  handler: withServices(mirrorMlflow),
});
