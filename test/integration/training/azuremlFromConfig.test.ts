import type { AccessToken, TokenCredential } from '@azure/identity';
import { loadConfig } from '../../../lib/config';
import { ArtifactStore } from '../../../lib/storage';
import { backendsFromConfig } from '../../../lib/training/backends/fromConfig';
import type { FakeAzureMl } from '../../support/fakes/azureml';
import { startFakeAzureMl } from '../../support/fakes/azureml';

const credential: TokenCredential = {
  getToken: async (): Promise<AccessToken> => ({
    token: 'fake-arm-token',
    expiresOnTimestamp: Date.now() + 3_600_000,
  }),
};
const base = {
  COSMOS_ENDPOINT: 'http://127.0.0.1:8081',
  ARTIFACT_STORAGE_CONNECTION: 'UseDevelopmentStorage=true',
};
// Built from a connection string: nothing is contacted until a blob is read or written.
const store = ArtifactStore.fromConnectionString('UseDevelopmentStorage=true');

describe('the azureml backend from the app settings', () => {
  let fake: FakeAzureMl;
  beforeEach(async () => {
    fake = await startFakeAzureMl();
  });
  afterEach(async () => {
    await fake.close();
  });

  it('needs the workspace; the worker environment only for built-in algorithms', async () => {
    const none = backendsFromConfig(loadConfig(base), store, () => credential);
    expect(() => none('azureml')).toThrow(expect.objectContaining({ code: 'azureml_not_configured' }));

    const config = loadConfig({
      ...base,
      AZUREML_SUBSCRIPTION_ID: 'sub-1',
      AZUREML_RESOURCE_GROUP: 'rg',
      AZUREML_WORKSPACE_NAME: 'mlw',
      AZUREML_ENDPOINT: fake.url,
      AZUREML_USER_ENVIRONMENT: 'azureml:sklearn-onnx:2',
      AZUREML_JOBS_DATASTORE: 'sluicejobs',
      AZUREML_QUEUED_LIMIT_SECONDS: '900',
    });
    expect(config.AZUREML_QUEUED_LIMIT_SECONDS).toBe(900);
    const backends = backendsFromConfig(config, store, () => credential);
    const azureml = backends('azureml');
    expect(backends('azureml')).toBe(azureml);
    await expect(
      azureml.submit({
        jobId: 'job-cfg-1',
        spec: { algorithm: 'ridge', target: 'y', features: ['x'], backend: 'azureml' },
        dataset: { uri: 'https://acct.blob.core.windows.net/datasets/x', sha256: 'a'.repeat(64) },
      }),
    ).rejects.toMatchObject({
      code: 'azureml_not_configured',
      message: expect.stringContaining('AZUREML_ENVIRONMENT_ID'),
    });
    expect(fake.requests.map((r) => `${r.method} ${r.path.split('/').slice(-2).join('/')}`)).toEqual([
      'GET jobs/job-cfg-1',
    ]);
  });
});
