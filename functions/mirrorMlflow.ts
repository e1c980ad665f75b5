import { app, type InvocationContext, type Timer } from '@azure/functions';
import { withServices } from '../app/services';
import { syncAliases } from '../lib/mlflow/aliases';
import { mirrorPendingRuns } from '../lib/mlflow/mirror';
import type { Services } from '../lib/services';

/**
 * Every minute: the MLflow outbox (docs/mlflow.md). Mirrors each run not yet synced to the MLflow
 * tracking server, as far as its run document goes; a run that MLflow cannot take now (an outage,
 * throttling) keeps `mlflow: pending` with a backoff and is caught up by a later tick. Runs never
 * wait on it. Then copies Sluice's production alias to MLflow after each move (rollbacks included)
 * and reports an MLflow alias moved by hand as diverged on the model. Does nothing when
 * MLFLOW_TRACKING_URI is not set.
 */
export const mirrorMlflow =
  (deps: Pick<Services, 'mlflow' | 'registry' | 'runs'>) =>
  async (timer: Timer, context: InvocationContext): Promise<void> => {
    if (!deps.mlflow) return;
    const outcomes = await mirrorPendingRuns(deps.mlflow);
    for (const o of outcomes) {
      if (o.status === 'synced') context.log(`mlflow: run ${o.runId} synced`);
      else if ('error' in o)
        context.warn(`mlflow: run ${o.runId} ${o.status}: ${o.error.code}: ${o.error.message}`);
    }
    // Then the production alias: rollbacks copied, hand-made moves reported (lib/mlflow/aliases.ts).
    const aliases = await syncAliases({
      registry: deps.registry,
      runs: deps.runs,
      mlflow: deps.mlflow.registry,
      alias: deps.mlflow.alias,
    });
    for (const a of aliases) {
      if (a.state === 'moved') context.log(`mlflow: model ${a.model} alias moved: ${a.status}`);
      else if (a.state === 'diverged' || a.state === 'failed')
        context.warn(`mlflow: model ${a.model} ${a.state}: ${a.status}`);
    }
    if (timer.isPastDue) context.log('mlflow mirror tick was past due');
  };

app.timer('mirrorMlflow', {
  schedule: '0 * * * * *',
  handler: withServices(mirrorMlflow),
});
