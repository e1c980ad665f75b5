/**
 * A linked local job gets the app's MLflow credential only when MLFLOW_LOCAL_JOB_CREDENTIALS says
 * so, and then only the one the app signs in to MLflow with (security review: the training
 * backend's Databricks token was handed to user code).
 */
import { loadConfig } from '../../../lib/config';
import { localJobMlflowCredentials } from '../../../lib/training/backends/fromConfig';
import { mlflowJobVariables } from '../../../lib/training/backends/mlflowEnv';

const link = { runId: 'r1', experimentId: '7', trackingUri: 'databricks' };
const base = {
  COSMOS_ENDPOINT: 'http://127.0.0.1:8081/',
  ARTIFACT_STORAGE_CONNECTION: 'UseDevelopmentStorage=true',
  MLFLOW_TRACKING_URI: 'databricks',
  MLFLOW_EXPERIMENT_PREFIX: '/Shared/sluice/',
  DATABRICKS_HOST: 'https://adb-1.azuredatabricks.net',
  DATABRICKS_TOKEN: 'backend-token-with-job-rights',
};

it('passes no credential by default', () => {
  const config = loadConfig(base);
  expect(config.MLFLOW_LOCAL_JOB_CREDENTIALS).toBe('none');
  expect(localJobMlflowCredentials(config)).toEqual({});
  expect(mlflowJobVariables(link, 'local', localJobMlflowCredentials(config))).toEqual({
    MLFLOW_RUN_ID: 'r1',
    MLFLOW_EXPERIMENT_ID: '7',
    MLFLOW_TRACKING_URI: 'databricks',
  });
});

it('with host, a databricks job gets the MLflow token the app uses, never the backend token instead', () => {
  const config = loadConfig({
    ...base,
    MLFLOW_TRACKING_TOKEN: 'mlflow-only-token',
    MLFLOW_LOCAL_JOB_CREDENTIALS: 'host',
  });
  const vars = mlflowJobVariables(link, 'local', localJobMlflowCredentials(config));
  expect(vars).toMatchObject({
    DATABRICKS_HOST: 'https://adb-1.azuredatabricks.net',
    DATABRICKS_TOKEN: 'mlflow-only-token',
  });
  expect(Object.values(vars)).not.toContain('backend-token-with-job-rights');
});

it('refuses a value it does not know, naming the setting', () => {
  expect(() => loadConfig({ ...base, MLFLOW_LOCAL_JOB_CREDENTIALS: 'yes' })).toThrow(
    /MLFLOW_LOCAL_JOB_CREDENTIALS/,
  );
});
