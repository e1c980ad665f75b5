/**
 * Unity Catalog's settings: MLFLOW_REGISTRY_URI=databricks-uc accepted with DATABRICKS_HOST and a
 * `<catalog>.<schema>` in MLFLOW_UC_SCHEMA, each wrong combination refused at start-up naming the
 * setting; the registry target and the three-level names Sluice's model names map to.
 */
import { ConfigError, loadConfig } from '../../../lib/config';
import { MlflowClient } from '../../../lib/mlflow/client';
import { AZURE_DATABRICKS_SCOPE, mlflowTarget } from '../../../lib/mlflow/target';
import { ucModelName } from '../../../lib/mlflow/unityCatalog';

const base = {
  COSMOS_ENDPOINT: 'http://127.0.0.1:8081',
  ARTIFACT_STORAGE_CONNECTION: 'UseDevelopmentStorage=true',
  MLFLOW_TRACKING_URI: 'databricks',
  MLFLOW_EXPERIMENT_PREFIX: '/Shared/sluice/',
  DATABRICKS_HOST: 'https://adb-1.2.azuredatabricks.net',
};

function refusal(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('accepted');
}

describe('Unity Catalog settings', () => {
  it('accepts databricks-uc with a <catalog>.<schema>, and targets the workspace registry', () => {
    const config = loadConfig({ ...base, MLFLOW_REGISTRY_URI: 'databricks-uc', MLFLOW_UC_SCHEMA: 'main.ml' });
    expect(config.MLFLOW_UC_SCHEMA).toBe('main.ml');
    const target = mlflowTarget(config, 'databricks-uc');
    expect(target).toEqual({
      baseUrl: 'https://adb-1.2.azuredatabricks.net',
      auth: { kind: 'entra', scope: AZURE_DATABRICKS_SCOPE },
      flavor: 'databricks',
      unityCatalog: true,
    });
    expect(new MlflowClient({ target }).unityCatalog).toBe(true);
    expect(mlflowTarget(config, 'databricks').unityCatalog).toBeUndefined();
  });

  it.each([
    'main',
    'main.ml.extra',
    'Main.ML',
    'main.m-l',
    'main.',
    '.ml',
    'main.ml ',
    `main.${'x'.repeat(256)}`,
  ])('refuses MLFLOW_UC_SCHEMA=%s naming the setting', (schema) => {
    const msg = refusal({ ...base, MLFLOW_REGISTRY_URI: 'databricks-uc', MLFLOW_UC_SCHEMA: schema });
    expect(msg).toContain('MLFLOW_UC_SCHEMA');
    expect(msg).toContain('<catalog>.<schema>');
  });

  it('needs MLFLOW_UC_SCHEMA and DATABRICKS_HOST with databricks-uc, and reads the schema only then', () => {
    expect(refusal({ ...base, MLFLOW_REGISTRY_URI: 'databricks-uc' })).toContain('MLFLOW_UC_SCHEMA');
    const { DATABRICKS_HOST: _h, ...noHost } = base;
    const msg = refusal({
      ...noHost,
      MLFLOW_TRACKING_URI: 'https://mlflow.example.com',
      MLFLOW_EXPERIMENT_PREFIX: '',
      MLFLOW_REGISTRY_URI: 'databricks-uc',
      MLFLOW_UC_SCHEMA: 'main.ml',
    });
    expect(msg).toContain('MLFLOW_REGISTRY_URI');
    expect(msg).toContain('DATABRICKS_HOST');
    expect(refusal({ ...base, MLFLOW_UC_SCHEMA: 'main.ml' })).toContain('MLFLOW_UC_SCHEMA');
  });

  it('refuses databricks-uc as the tracking URI, naming MLFLOW_TRACKING_URI', () => {
    const msg = refusal({ ...base, MLFLOW_TRACKING_URI: 'databricks-uc' });
    expect(msg).toContain('MLFLOW_TRACKING_URI');
    expect(msg).toContain('MLFLOW_REGISTRY_URI=databricks-uc');
  });

  it('maps Sluice model names to three-level Unity Catalog names', () => {
    expect(ucModelName('main.ml', 'churn')).toBe('main.ml.churn');
    expect(ucModelName('main.ml', 'Churn-EU.v2')).toBe('main.ml.churn_eu_v2');
    expect(ucModelName('cat.s', 'a_1')).toBe('cat.s.a_1');
  });
});
