import type { Config } from '../config';
import { ConfigError, mlflowUriProblem } from '../config';

/** Microsoft Entra scope of Azure Databricks (its first-party application id). */
export const AZURE_DATABRICKS_SCOPE = '2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default';
/** Azure ML's MLflow endpoint takes an Azure Resource Manager token. */
export const AZURE_ML_SCOPE = 'https://management.azure.com/.default';

/** How requests to an MLflow server are authenticated. */
export type MlflowAuth =
  | { kind: 'none' }
  | { kind: 'bearer'; token: string }
  | { kind: 'basic'; username: string; password: string }
  /** A Microsoft Entra token from the app's identity, for this scope. */
  | { kind: 'entra'; scope: string };

/** Where the MLflow REST API is: calls go to `${baseUrl}/api/2.0/mlflow/...`. */
export interface MlflowTarget {
  baseUrl: string;
  auth: MlflowAuth;
  /** What kind of server, for the docs and the UI links. */
  flavor: 'mlflow' | 'databricks' | 'azureml';
  /**
   * The registry is Databricks Unity Catalog (`databricks-uc`): registry calls go to MLflow's
   * `unity-catalog/` endpoints, and versions are registered as lib/mlflow/unityCatalog.ts does.
   */
  unityCatalog?: boolean;
}

/**
 * Resolves an MLflow tracking (or registry) URI as MLflow's own clients do:
 * - `http(s)://host[/path]`: the server itself; MLFLOW_TRACKING_USERNAME/PASSWORD (HTTP Basic) win
 *   over MLFLOW_TRACKING_TOKEN (bearer), as in MLflow; neither = no authentication.
 * - `databricks`: the workspace at DATABRICKS_HOST; MLFLOW_TRACKING_TOKEN, else DATABRICKS_TOKEN,
 *   else an Entra token for Azure Databricks from the app's identity. (`databricks://profile`
 *   names a ~/.databrickscfg profile, which a Function App does not have; the config refuses it.)
 * - `databricks-uc` (registry only): the same workspace, its Unity Catalog registry.
 * - `azureml://<region>.api.azureml.ms/mlflow/v1.0/subscriptions/…/workspaces/<ws>`: the same URL
 *   with https, and an Entra token for Azure Resource Manager, unless a token is set.
 * Settings are already validated by lib/config.ts (mlflowUriProblem: an azureml:// host of Azure ML,
 * http:// with credentials only on loopback), so this does not fail on a parsed config.
 */
export function mlflowTarget(config: Config, uri: string): MlflowTarget {
  const trim = (u: string) => u.replace(/\/+$/, '');
  const token = config.MLFLOW_TRACKING_TOKEN;
  // Checked at start-up too; again here, since this decides where the app's credentials go.
  const why = mlflowUriProblem(uri, Boolean(token || config.MLFLOW_TRACKING_PASSWORD));
  if (why) throw new ConfigError(`MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI ${uri}: ${why}`);
  if (uri === 'databricks' || uri === 'databricks-uc') {
    const t = token ?? config.DATABRICKS_TOKEN;
    return {
      baseUrl: trim(config.DATABRICKS_HOST ?? ''),
      auth: t ? { kind: 'bearer', token: t } : { kind: 'entra', scope: AZURE_DATABRICKS_SCOPE },
      flavor: 'databricks',
      ...(uri === 'databricks-uc' ? { unityCatalog: true } : {}),
    };
  }
  if (uri.startsWith('azureml://')) {
    return {
      // From the parsed URI (host and path only), so what was checked is where the token goes.
      baseUrl: trim(new URL(`https://${new URL(uri).host}${new URL(uri).pathname}`).href),
      auth: token ? { kind: 'bearer', token } : { kind: 'entra', scope: AZURE_ML_SCOPE },
      flavor: 'azureml',
    };
  }
  const auth: MlflowAuth =
    config.MLFLOW_TRACKING_USERNAME && config.MLFLOW_TRACKING_PASSWORD
      ? {
          kind: 'basic',
          username: config.MLFLOW_TRACKING_USERNAME,
          password: config.MLFLOW_TRACKING_PASSWORD,
        }
      : token
        ? { kind: 'bearer', token }
        : { kind: 'none' };
  return { baseUrl: trim(uri), auth, flavor: 'mlflow' };
}
