import { ConfigError, loadConfig } from '../../../lib/config';
import { AZURE_DATABRICKS_SCOPE, AZURE_ML_SCOPE, mlflowTarget } from '../../../lib/mlflow/target';

const base = {
  COSMOS_ENDPOINT: 'http://127.0.0.1:8081',
  ARTIFACT_STORAGE_CONNECTION: 'UseDevelopmentStorage=true',
};
const AML =
  'azureml://westeurope.api.azureml.ms/mlflow/v1.0/subscriptions/0000/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws';

function refusal(env: Record<string, string>): string {
  try {
    loadConfig({ ...base, ...env });
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('accepted');
}

describe('MLflow settings', () => {
  it.each(['file:///tmp/mlruns', './mlruns', 'sqlite:///mlflow.db', 'databricks://profile', 'ftp://host'])(
    'refuses the tracking URI %s at start-up, naming the setting',
    (uri) => {
      const msg = refusal({ MLFLOW_TRACKING_URI: uri });
      expect(msg).toContain('MLFLOW_TRACKING_URI');
      expect(msg).toContain('azureml://');
    },
  );

  it('refuses a wrong registry URI naming MLFLOW_REGISTRY_URI', () => {
    expect(refusal({ MLFLOW_TRACKING_URI: 'http://mlflow:5000', MLFLOW_REGISTRY_URI: 'file:/x' })).toContain(
      'MLFLOW_REGISTRY_URI',
    );
  });

  it('needs DATABRICKS_HOST and a workspace folder for `databricks`', () => {
    const msg = refusal({ MLFLOW_TRACKING_URI: 'databricks' });
    expect(msg).toContain('DATABRICKS_HOST');
    expect(msg).toContain('MLFLOW_EXPERIMENT_PREFIX');
  });

  it('refuses an alias MLflow reserves', () => {
    for (const alias of ['v3', 'latest', 'has space'])
      expect(refusal({ MLFLOW_TRACKING_URI: 'https://m', MLFLOW_PRODUCTION_ALIAS: alias })).toContain(
        'MLFLOW_PRODUCTION_ALIAS',
      );
    expect(loadConfig({ ...base, MLFLOW_TRACKING_URI: 'https://m' }).MLFLOW_PRODUCTION_ALIAS).toBe(
      'production',
    );
  });

  it('needs the user name and password together', () => {
    expect(refusal({ MLFLOW_TRACKING_URI: 'https://m', MLFLOW_TRACKING_USERNAME: 'u' })).toContain(
      'MLFLOW_TRACKING_PASSWORD',
    );
  });

  it('resolves a plain server: basic wins over a token, a token is a bearer, else none', () => {
    const c = (env: Record<string, string>) =>
      loadConfig({ ...base, MLFLOW_TRACKING_URI: 'https://mlflow.example.com/', ...env });
    expect(mlflowTarget(c({}), 'https://mlflow.example.com/')).toEqual({
      baseUrl: 'https://mlflow.example.com',
      auth: { kind: 'none' },
      flavor: 'mlflow',
    });
    expect(mlflowTarget(c({ MLFLOW_TRACKING_TOKEN: 't' }), 'https://m').auth).toEqual({
      kind: 'bearer',
      token: 't',
    });
    expect(
      mlflowTarget(
        c({ MLFLOW_TRACKING_TOKEN: 't', MLFLOW_TRACKING_USERNAME: 'u', MLFLOW_TRACKING_PASSWORD: 'p' }),
        'https://m',
      ).auth,
    ).toEqual({ kind: 'basic', username: 'u', password: 'p' });
  });

  it('resolves `databricks` to DATABRICKS_HOST with the app identity, or a token when one is set', () => {
    const env = {
      ...base,
      MLFLOW_TRACKING_URI: 'databricks',
      DATABRICKS_HOST: 'https://adb-1.2.azuredatabricks.net/',
      MLFLOW_EXPERIMENT_PREFIX: '/Shared/sluice/',
    };
    expect(mlflowTarget(loadConfig(env), 'databricks')).toEqual({
      baseUrl: 'https://adb-1.2.azuredatabricks.net',
      auth: { kind: 'entra', scope: AZURE_DATABRICKS_SCOPE },
      flavor: 'databricks',
    });
    expect(mlflowTarget(loadConfig({ ...env, DATABRICKS_TOKEN: 'dapi1' }), 'databricks').auth).toEqual({
      kind: 'bearer',
      token: 'dapi1',
    });
  });

  it('resolves an azureml:// URI to its https workspace URL with an ARM token', () => {
    const t = mlflowTarget(loadConfig({ ...base, MLFLOW_TRACKING_URI: AML }), AML);
    expect(t.baseUrl).toBe(AML.replace('azureml://', 'https://'));
    expect(t.auth).toEqual({ kind: 'entra', scope: AZURE_ML_SCOPE });
  });
});

describe('review of issue 15: MLflow credentials go only where they belong', () => {
  it.each([
    'azureml://evil.example.com/mlflow/v1.0/subscriptions/0000/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws',
    'azureml://westeurope.api.azureml.ms.evil.example.com/mlflow/v1.0',
    'azureml://evil.example.com\\@westeurope.api.azureml.ms/mlflow/v1.0',
    'azureml://user@westeurope.api.azureml.ms/mlflow/v1.0',
  ])('an azureml:// URI must name an Azure ML host: %s is refused naming the setting', (uri) => {
    expect(refusal({ MLFLOW_TRACKING_URI: uri })).toContain('MLFLOW_TRACKING_URI');
    expect(refusal({ MLFLOW_TRACKING_URI: 'https://m', MLFLOW_REGISTRY_URI: uri })).toContain(
      'MLFLOW_REGISTRY_URI',
    );
    // And the resolver refuses it too, whatever config it is handed.
    const c = loadConfig({ ...base, MLFLOW_TRACKING_URI: AML });
    expect(() => mlflowTarget(c, uri)).toThrow(ConfigError);
  });

  it.each([
    'azureml://chinaeast2.api.ml.azure.cn/mlflow/v1.0/subscriptions/0/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws',
    'azureml://usgovvirginia.api.ml.azure.us/mlflow/v1.0/subscriptions/0/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws',
  ])('accepts the sovereign clouds: %s', (uri) => {
    const t = mlflowTarget(loadConfig({ ...base, MLFLOW_TRACKING_URI: uri }), uri);
    expect(t.baseUrl).toBe(uri.replace('azureml://', 'https://'));
  });

  it('plain http:// with a token or password only on loopback; without credentials anywhere', () => {
    const credentials: Record<string, string>[] = [
      { MLFLOW_TRACKING_TOKEN: 't' },
      { MLFLOW_TRACKING_USERNAME: 'u', MLFLOW_TRACKING_PASSWORD: 'p' },
    ];
    for (const creds of credentials) {
      expect(refusal({ MLFLOW_TRACKING_URI: 'http://mlflow.internal:5000', ...creds })).toContain(
        'MLFLOW_TRACKING_URI',
      );
      for (const host of ['localhost:5000', '127.0.0.1:5000', '[::1]:5000'])
        expect(
          loadConfig({ ...base, MLFLOW_TRACKING_URI: `http://${host}`, ...creds }).MLFLOW_TRACKING_URI,
        ).toBe(`http://${host}`);
    }
    expect(loadConfig({ ...base, MLFLOW_TRACKING_URI: 'http://mlflow:5000' }).MLFLOW_TRACKING_URI).toBe(
      'http://mlflow:5000',
    );
    const c = loadConfig({ ...base, MLFLOW_TRACKING_URI: 'https://m', MLFLOW_TRACKING_TOKEN: 't' });
    expect(() => mlflowTarget(c, 'http://mlflow.internal:5000')).toThrow(ConfigError);
  });
});
