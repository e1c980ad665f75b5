// The queued limit has a neutral name (it bounds Azure ML and Databricks jobs alike); the old
// Azure ML name keeps working as a deprecated alias. Databricks runs get an output root of their own.
import { ConfigError, loadConfig } from '../../lib/config';
import { appSettings, SCENARIOS, sharedNames } from './helpers';

const base = {
  COSMOS_ENDPOINT: 'https://cosmos.example.net/',
  ARTIFACT_STORAGE_ACCOUNT_URL: 'https://st.blob.core.windows.net/',
};
const plain = (settings: Record<string, unknown>, prefix: string) =>
  Object.fromEntries(
    Object.entries(settings)
      .filter(([k]) => k.startsWith(prefix))
      .map(([k, v]) => [k, String(v)]),
  );

describe('TRAINING_QUEUED_LIMIT_SECONDS', () => {
  it('is named in lib/resources.json, set from trainingQueuedLimitSeconds, and not set without it', () => {
    expect(sharedNames().appSettings.azure).toMatchObject({
      trainingQueuedLimitSeconds: 'TRAINING_QUEUED_LIMIT_SECONDS',
      azureMlQueuedLimitSeconds: 'AZUREML_QUEUED_LIMIT_SECONDS',
    });
    expect(appSettings().TRAINING_QUEUED_LIMIT_SECONDS).toBeUndefined();
    const settings = appSettings({ trainingQueuedLimitSeconds: '1200' });
    expect(settings.TRAINING_QUEUED_LIMIT_SECONDS).toBe('1200');
    // Not tied to the Azure ML workspace: it bounds Databricks runs as well.
    expect(settings.AZUREML_WORKSPACE_NAME).toBeUndefined();
    const config = loadConfig({ ...base, ...plain(settings, 'TRAINING_') });
    expect(config.TRAINING_QUEUED_LIMIT_SECONDS).toBe(1200);
    expect(config.AZUREML_QUEUED_LIMIT_SECONDS).toBe(1200);
  });

  it('the deprecated AZUREML_QUEUED_LIMIT_SECONDS (and its Bicep parameter) still set it', () => {
    const settings = appSettings(SCENARIOS.azuremlAssets);
    expect(settings.AZUREML_QUEUED_LIMIT_SECONDS).toBe('1800');
    const config = loadConfig({ ...base, AZUREML_QUEUED_LIMIT_SECONDS: '1800' });
    expect(config.TRAINING_QUEUED_LIMIT_SECONDS).toBe(1800);
    expect(loadConfig(base).TRAINING_QUEUED_LIMIT_SECONDS).toBe(4 * 3600);
  });

  it('both names set: equal is fine, different is an error naming both', () => {
    expect(
      loadConfig({ ...base, TRAINING_QUEUED_LIMIT_SECONDS: '600', AZUREML_QUEUED_LIMIT_SECONDS: '600' })
        .TRAINING_QUEUED_LIMIT_SECONDS,
    ).toBe(600);
    const load = () =>
      loadConfig({ ...base, TRAINING_QUEUED_LIMIT_SECONDS: '600', AZUREML_QUEUED_LIMIT_SECONDS: '900' });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(/TRAINING_QUEUED_LIMIT_SECONDS \(600\).*AZUREML_QUEUED_LIMIT_SECONDS \(900\)/);
    expect(() => loadConfig({ ...base, TRAINING_QUEUED_LIMIT_SECONDS: 'soon' })).toThrow(
      /TRAINING_QUEUED_LIMIT_SECONDS/,
    );
  });
});

describe('DATABRICKS_OUTPUT_ROOT', () => {
  it('is set from databricksOutputRoot with the workspace, and loads', () => {
    const settings = appSettings(SCENARIOS.databricksAll);
    expect(settings.DATABRICKS_OUTPUT_ROOT).toBe('/Volumes/main/sluice/joboutputs');
    expect(appSettings(SCENARIOS.databricks).DATABRICKS_OUTPUT_ROOT).toBeUndefined();
    const { databricksHost: _h, ...rest } = SCENARIOS.databricksAll!;
    expect(appSettings(rest).DATABRICKS_OUTPUT_ROOT).toBeUndefined();
    expect(
      loadConfig({ ...base, DATABRICKS_OUTPUT_ROOT: String(settings.DATABRICKS_OUTPUT_ROOT) })
        .DATABRICKS_OUTPUT_ROOT,
    ).toBe('/Volumes/main/sluice/joboutputs');
  });
});
