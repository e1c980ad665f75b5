// Azure ML jobs run as the user-assigned identity Bicep attaches to the workspace (serverless
// compute cannot use the workspace's system-assigned one): the job body the fake ARM receives
// names it by client id and resource id, as AZUREML_JOB_IDENTITY_CLIENT_ID and _ID configure it.
import type { AccessToken, TokenCredential } from '@azure/identity';
import { loadConfig } from '../../../lib/config';
import { AzureMlTrainingBackend } from '../../../lib/training/backends/azureml';
import type { BlobLocation, JobFiles } from '../../../lib/training/backends/types';
import type { FakeAzureMl } from '../../support/fakes/azureml';
import { startFakeAzureMl } from '../../support/fakes/azureml';

const credential: TokenCredential = {
  async getToken(): Promise<AccessToken> {
    return { token: 'fake-arm-token', expiresOnTimestamp: Date.now() + 3_600_000 };
  },
};

class MemoryFiles implements JobFiles {
  readonly blobs = new Map<string, string>();
  async put(ref: BlobLocation, data: Uint8Array | string) {
    this.blobs.set(`${ref.container}/${ref.path}`, String(data));
    return { ok: true };
  }
  async tryGetJson<T>(ref: BlobLocation) {
    const v = this.blobs.get(`${ref.container}/${ref.path}`);
    return v === undefined ? undefined : { value: JSON.parse(v) as T, etag: 'e' };
  }
  async exists(ref: BlobLocation) {
    return this.blobs.has(`${ref.container}/${ref.path}`);
  }
  uri(l: BlobLocation) {
    return `https://acct.blob.core.windows.net/${l.container}/${l.path}`;
  }
}

const UAMI =
  '/subscriptions/sub-1/resourceGroups/rg-sluice/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-mljobs-abc';

describe('the identity Azure ML jobs run as', () => {
  let fake: FakeAzureMl;
  beforeEach(async () => {
    fake = await startFakeAzureMl();
  });
  afterEach(async () => {
    await fake.close();
  });

  const submit = async (jobIdentity?: { clientId: string; resourceId?: string }) => {
    const backend = new AzureMlTrainingBackend({
      endpoint: fake.url,
      subscriptionId: 'sub-1',
      resourceGroup: 'rg-sluice',
      workspace: 'mlw-sluice',
      credential,
      environmentId: 'azureml:sluice-node22:1',
      storageBlobEndpoint: 'https://acct.blob.core.windows.net',
      files: new MemoryFiles(),
      sleep: async () => undefined,
      ...(jobIdentity ? { jobIdentity } : {}),
    });
    await backend.submit({
      jobId: 'job-1',
      runId: 'run-1',
      spec: { algorithm: 'logistic_regression', target: 'label', features: ['a'], timeLimitSeconds: 600 },
      dataset: {
        uri: 'https://acct.blob.core.windows.net/datasets/sha256/' + 'a'.repeat(64),
        sha256: 'a'.repeat(64),
      },
    });
    return fake.jobs.get('job-1')!.body.properties.identity;
  };

  it('names the user-assigned identity by client id and resource id when configured', async () => {
    await expect(
      submit({ clientId: '7d1c2f0e-0000-4000-8000-00000000beef', resourceId: UAMI }),
    ).resolves.toEqual({
      identityType: 'Managed',
      clientId: '7d1c2f0e-0000-4000-8000-00000000beef',
      resourceId: UAMI,
    });
  });

  it('stays a bare managed identity without one (a compute cluster with its own identity)', async () => {
    await expect(submit()).resolves.toEqual({ identityType: 'Managed' });
  });

  it('the settings Bicep writes parse into it', () => {
    const config = loadConfig({
      COSMOS_ENDPOINT: 'https://c.documents.azure.com/',
      ARTIFACT_STORAGE_ACCOUNT_URL: 'https://acct.blob.core.windows.net/',
      AZUREML_JOB_IDENTITY_CLIENT_ID: '7d1c2f0e-0000-4000-8000-00000000beef',
      AZUREML_JOB_IDENTITY_ID: UAMI,
    } as NodeJS.ProcessEnv);
    expect(config.AZUREML_JOB_IDENTITY_CLIENT_ID).toBe('7d1c2f0e-0000-4000-8000-00000000beef');
    expect(config.AZUREML_JOB_IDENTITY_ID).toBe(UAMI);
  });
});
