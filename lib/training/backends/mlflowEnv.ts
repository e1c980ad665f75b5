import type { MlflowLink } from '../../contracts/trainingJob';

/**
 * The environment a training job gets so that MLflow's own client logs into the run Sluice mirrors
 * to (docs/mlflow.md, "A job that logs to MLflow"): `mlflow.start_run()` resumes the run named by
 * MLFLOW_RUN_ID instead of making one, in the experiment MLFLOW_EXPERIMENT_ID.
 *
 * Credentials go only where they stay on this machine:
 * - `local`: the job is a child process of the host, so it gets the host's own MLflow credentials
 *   (MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME/PASSWORD; DATABRICKS_HOST and DATABRICKS_TOKEN
 *   for `databricks`). They pass through the worker's environment, never a stored file.
 * - `azureml`, `databricks`: variables are part of the job's definition, which anyone who can read
 *   the job sees, so no secret is sent (on Databricks: a new cluster's `spark_env_vars`, elsewhere
 *   the launcher's `--env` parameters, a notebook's widgets, a wheel's named parameters; only these
 *   MLFLOW_* names and the SLUICE_* ones go there, databricksLauncher.ts `assertNoCredentials`). A
 *   job on the platform that is also the tracking server is
 *   authenticated by the platform (Azure ML compute is configured for its workspace's MLflow;
 *   Databricks jobs reach their workspace's with `databricks`). For any other server the job brings
 *   its own credentials (a Key Vault-backed or Databricks secret-backed variable of the user's).
 */
export type LinkedBackend = 'local' | 'azureml' | 'databricks';

/** The host settings a local job may be handed (names as MLflow and the Databricks SDK read them). */
export const LOCAL_MLFLOW_CREDENTIALS = [
  'MLFLOW_TRACKING_TOKEN',
  'MLFLOW_TRACKING_USERNAME',
  'MLFLOW_TRACKING_PASSWORD',
  'DATABRICKS_HOST',
  'DATABRICKS_TOKEN',
] as const;

export function mlflowJobVariables(
  link: MlflowLink | undefined,
  backend: LinkedBackend,
  credentials: Partial<Record<(typeof LOCAL_MLFLOW_CREDENTIALS)[number], string>> = {},
): Record<string, string> {
  if (!link) return {};
  const out: Record<string, string> = {
    MLFLOW_RUN_ID: link.runId,
    MLFLOW_EXPERIMENT_ID: link.experimentId,
  };
  // Azure ML compute sets its workspace's tracking URI (with the plugin's auth) itself.
  if (!(backend === 'azureml' && link.trackingUri.startsWith('azureml://')))
    out.MLFLOW_TRACKING_URI = link.trackingUri;
  if (backend === 'local') {
    const databricks = link.trackingUri === 'databricks';
    for (const key of LOCAL_MLFLOW_CREDENTIALS) {
      const value = credentials[key];
      if (!value) continue;
      if (key.startsWith('DATABRICKS_') && !databricks) continue;
      out[key] = value;
    }
  }
  return out;
}

/** The worker's environment variable that carries a local job's MLflow variables (JSON). */
export const LOCAL_MLFLOW_ENV = 'SLUICE_MLFLOW_ENV';

/**
 * The MLflow variables a local worker passes on to the user's process: only MLFLOW_* and
 * DATABRICKS_* names from {@link LOCAL_MLFLOW_ENV}; anything else, or JSON that is not an object
 * of strings, is ignored.
 */
export function localJobMlflowEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const raw = env[LOCAL_MLFLOW_ENV];
  if (!raw) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return {};
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(parsed as Record<string, unknown>))
    if (/^(MLFLOW|DATABRICKS)_[A-Z_]+$/.test(k) && typeof v === 'string') out[k] = v;
  return out;
}
