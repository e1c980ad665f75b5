import type { BackendName } from '../../contracts/training';
import type { TokenCredential } from '@azure/identity';
import type { Config } from '../../config';
import { NonRetriableError } from '../../errors';
import type { ArtifactStore } from '../../storage/blob';
import { AzureMlTrainingBackend } from './azureml';
import { DatabricksClient } from './databricksApi';
import { abfssJobRoot, DatabricksTrainingBackend } from './databricks';
import { LocalTrainingBackend } from './local';
import type { LOCAL_MLFLOW_CREDENTIALS } from './mlflowEnv';
import { userCodePolicy } from '../userJob/codePolicy';
import type { TrainingBackend } from './types';

/** The backend a training spec names. */
export type TrainingBackends = (name: BackendName) => TrainingBackend;

/**
 * The backends configured by the app settings: `local` always, `azureml` only when its workspace is
 * set (built on first use, so a pipeline that never picks it needs none of its settings).
 */
export function backendsFromConfig(
  config: Config,
  store: ArtifactStore,
  credential: () => TokenCredential,
): TrainingBackends {
  const local = new LocalTrainingBackend({
    files: store,
    heartbeatStaleMs: config.TRAINING_HEARTBEAT_STALE_SECONDS * 1000,
    env: {
      ARTIFACT_STORAGE_CONNECTION: config.ARTIFACT_STORAGE_CONNECTION,
      ARTIFACT_STORAGE_ACCOUNT_URL: config.ARTIFACT_STORAGE_ACCOUNT_URL,
      AZURE_CLIENT_ID: config.AZURE_CLIENT_ID,
      // worker/userJob.ts checks the job's model folder against it.
      MODEL_MAX_BYTES: String(config.MODEL_MAX_BYTES),
    },
    mlflowCredentials: localJobMlflowCredentials(config),
  });
  // Host code folders that leave for a remote backend must be inside USER_CODE_ROOT.
  const codeRoot = userCodePolicy(config).root;
  let azureml: AzureMlTrainingBackend | undefined;
  let databricks: DatabricksTrainingBackend | undefined;
  return (name) => {
    if (name === 'local') return local;
    if (name === 'databricks') {
      if (!config.DATABRICKS_HOST) {
        throw new NonRetriableError(
          'databricks_not_configured',
          'the databricks backend needs DATABRICKS_HOST (the workspace URL); DATABRICKS_JOB_ROOT, DATABRICKS_WEBHOOK_DESTINATION_ID and DATABRICKS_TOKEN are optional',
        );
      }
      databricks ??= new DatabricksTrainingBackend({
        client: new DatabricksClient({
          host: config.DATABRICKS_HOST,
          ...(config.DATABRICKS_TOKEN ? { token: config.DATABRICKS_TOKEN } : { credential }),
        }),
        store,
        jobRoot: config.DATABRICKS_JOB_ROOT ?? abfssJobRoot(store.account),
        ...(config.DATABRICKS_OUTPUT_ROOT ? { outputRoot: config.DATABRICKS_OUTPUT_ROOT } : {}),
        codeRoot,
        queuedLimitSeconds: config.TRAINING_QUEUED_LIMIT_SECONDS,
        maxModelBytes: config.MODEL_MAX_BYTES,
        ...(config.DATABRICKS_WEBHOOK_DESTINATION_ID
          ? { webhookDestinationId: config.DATABRICKS_WEBHOOK_DESTINATION_ID }
          : {}),
      });
      return databricks;
    }
    if (!config.AZUREML_SUBSCRIPTION_ID || !config.AZUREML_RESOURCE_GROUP || !config.AZUREML_WORKSPACE_NAME) {
      throw new NonRetriableError(
        'azureml_not_configured',
        'the azureml backend needs AZUREML_SUBSCRIPTION_ID, AZUREML_RESOURCE_GROUP and AZUREML_WORKSPACE_NAME',
      );
    }
    azureml ??= new AzureMlTrainingBackend({
      endpoint: config.AZUREML_ENDPOINT,
      subscriptionId: config.AZUREML_SUBSCRIPTION_ID,
      resourceGroup: config.AZUREML_RESOURCE_GROUP,
      workspace: config.AZUREML_WORKSPACE_NAME,
      apiVersion: config.AZUREML_API_VERSION,
      credential: credential(),
      // Built-in algorithms run the Sluice worker (its environment is checked when such a job is submitted).
      ...(config.AZUREML_ENVIRONMENT_ID ? { environmentId: config.AZUREML_ENVIRONMENT_ID } : {}),
      instanceType: config.AZUREML_INSTANCE_TYPE,
      ...(config.AZUREML_COMPUTE_ID ? { computeId: config.AZUREML_COMPUTE_ID } : {}),
      ...(config.AZUREML_CODE_ID ? { codeId: config.AZUREML_CODE_ID } : {}),
      storageBlobEndpoint: store.service.url,
      files: store,
      heartbeatStaleMs: Math.max(10 * 60_000, config.TRAINING_HEARTBEAT_STALE_SECONDS * 1000),
      // User jobs (algorithm "custom").
      store,
      ...(config.AZUREML_USER_ENVIRONMENT ? { userJobEnvironment: config.AZUREML_USER_ENVIRONMENT } : {}),
      codeRoot,
      queuedLimitSeconds: config.TRAINING_QUEUED_LIMIT_SECONDS,
      maxModelBytes: config.MODEL_MAX_BYTES,
      ...(config.AZUREML_JOBS_DATASTORE ? { jobsDatastore: config.AZUREML_JOBS_DATASTORE } : {}),
      ...(config.AZUREML_JOB_IDENTITY_CLIENT_ID
        ? {
            jobIdentity: {
              clientId: config.AZUREML_JOB_IDENTITY_CLIENT_ID,
              ...(config.AZUREML_JOB_IDENTITY_ID ? { resourceId: config.AZUREML_JOB_IDENTITY_ID } : {}),
            },
          }
        : {}),
    });
    return azureml;
  };
}

/**
 * The MLflow credentials a linked local job gets (mlflowEnv.ts): none unless
 * MLFLOW_LOCAL_JOB_CREDENTIALS is `host`, and then exactly the one Sluice itself signs in to MLflow
 * with: for `databricks`, MLFLOW_TRACKING_TOKEN when set (never the training backend's broader
 * DATABRICKS_TOKEN in its place).
 */
export function localJobMlflowCredentials(
  config: Pick<
    Config,
    | 'MLFLOW_LOCAL_JOB_CREDENTIALS'
    | 'MLFLOW_TRACKING_TOKEN'
    | 'MLFLOW_TRACKING_USERNAME'
    | 'MLFLOW_TRACKING_PASSWORD'
    | 'DATABRICKS_HOST'
    | 'DATABRICKS_TOKEN'
  >,
): Partial<Record<(typeof LOCAL_MLFLOW_CREDENTIALS)[number], string>> {
  if (config.MLFLOW_LOCAL_JOB_CREDENTIALS !== 'host') return {};
  const databricksToken = config.MLFLOW_TRACKING_TOKEN ?? config.DATABRICKS_TOKEN;
  return {
    ...(config.MLFLOW_TRACKING_TOKEN ? { MLFLOW_TRACKING_TOKEN: config.MLFLOW_TRACKING_TOKEN } : {}),
    ...(config.MLFLOW_TRACKING_USERNAME ? { MLFLOW_TRACKING_USERNAME: config.MLFLOW_TRACKING_USERNAME } : {}),
    ...(config.MLFLOW_TRACKING_PASSWORD ? { MLFLOW_TRACKING_PASSWORD: config.MLFLOW_TRACKING_PASSWORD } : {}),
    ...(config.DATABRICKS_HOST ? { DATABRICKS_HOST: config.DATABRICKS_HOST } : {}),
    ...(databricksToken ? { DATABRICKS_TOKEN: databricksToken } : {}),
  };
}
