import type { z } from 'zod';
import { importModelActivity } from '../lib/contracts/mlflowCandidate';
import { NonRetriableError } from '../lib/errors';
import type { ImportDeps } from '../lib/mlflow/promote';
import { importMlflowModel } from '../lib/mlflow/promote';
import type { Services } from '../lib/services';
import { registerActivityFactory } from './support/define';

type Input = z.output<typeof importModelActivity.input>;
type Output = z.input<typeof importModelActivity.output>;

/**
 * The train step of a promoted run (docs/mlflow.md): the MLflow model the run was started with,
 * downloaded, checked as a user job's output and stored under its digest (lib/mlflow/promote.ts).
 * An MLflow outage is retried by the activity's bounded policy; a model that fails the check ends
 * the run with the check's reason.
 */
export function importModel(
  deps: Omit<ImportDeps, 'tracking'> & { tracking: ImportDeps['tracking'] | undefined },
) {
  return async (input: Input): Promise<Output> => {
    const { tracking } = deps;
    if (!tracking)
      throw new NonRetriableError(
        'mlflow_not_configured',
        'this run promotes an MLflow model, but MLFLOW_TRACKING_URI is no longer set',
      );
    return importMlflowModel(
      { ...deps, tracking },
      {
        candidate: input.candidate,
        spec: input.spec,
        dataset: input.dataset,
        ...(input.pipeline ? { pipeline: input.pipeline } : {}),
      },
    );
  };
}

/** The activity as the app builds it from its services (exported for tests of that wiring). */
export const importModelOf = (services: Services) =>
  importModel({
    store: services.artifacts,
    tracking: services.mlflowModels?.tracking,
    // A Unity Catalog candidate is read through the registry (MLFLOW_REGISTRY_URI=databricks-uc).
    ...(services.mlflowModels?.registry ? { registry: services.mlflowModels.registry } : {}),
    ...(services.mlflowModels?.unityCatalog ? { unityCatalog: services.mlflowModels.unityCatalog } : {}),
    ...(services.mlflowModels?.databricks ? { databricks: services.mlflowModels.databricks } : {}),
    contractOf: services.contractOf,
    maxModelBytes: services.config.MODEL_MAX_BYTES,
  });

registerActivityFactory(importModelActivity, importModelOf);
