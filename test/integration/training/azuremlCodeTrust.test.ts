/**
 * Review of issue 15, MEDIUM: Azure ML code uploads (1) took `code` from any host folder and sent
 * it to the workspace, and (2) sent the app's Storage token and the files to whatever host the
 * workspaceblobstore datastore named. Now the folder must be inside USER_CODE_ROOT and the datastore
 * must name https, a plain account name and an Azure storage suffix (`datastore_untrusted`).
 */
import type { AccessToken, TokenCredential } from '@azure/identity';
import path from 'node:path';
import { AzureMlClient } from '../../../lib/training/backends/azuremlClient';
import { datastoreBlobEndpoint, resolveCode } from '../../../lib/training/backends/azuremlUserJob';
import type { FakeAzureMl } from '../../support/fakes/azureml';
import { startFakeAzureMl } from '../../support/fakes/azureml';

class TestCredential implements TokenCredential {
  scopes: string[] = [];
  async getToken(scopes: string | string[]): Promise<AccessToken> {
    this.scopes.push(...(Array.isArray(scopes) ? scopes : [scopes]));
    return { token: 'fake-arm-token', expiresOnTimestamp: Date.now() + 3_600_000 };
  }
}

const repo = path.resolve(__dirname, '..', '..', '..');
const sklearnExample = path.join(repo, 'examples', 'training', 'sklearn');

describe('azureml code uploads stay inside USER_CODE_ROOT and go only to Azure storage', () => {
  let fake: FakeAzureMl;
  let credential: TestCredential;
  let client: AzureMlClient;
  const start = async (storageAccount?: string) => {
    fake = await startFakeAzureMl(storageAccount ? { storageAccount } : {});
    credential = new TestCredential();
    client = new AzureMlClient({
      endpoint: fake.url,
      subscriptionId: 'sub-1',
      resourceGroup: 'rg-sluice',
      workspace: 'mlw-sluice',
      credential,
      sleep: async () => undefined,
    });
  };
  afterEach(async () => {
    await fake?.close();
  });

  it('a code folder outside USER_CODE_ROOT is refused before the workspace is asked anything', async () => {
    await start();
    await expect(resolveCode(client, '/etc', { codeRoot: sklearnExample })).rejects.toMatchObject({
      code: 'code_outside_root',
    });
    await expect(
      resolveCode(client, '../sklearn-pyfunc', { codeRoot: sklearnExample, baseDir: sklearnExample }),
    ).rejects.toMatchObject({
      code: 'code_outside_root',
    });
    expect(fake.requests).toEqual([]);
  });

  it('a datastore whose account name smuggles another host gets no token and no files (datastore_untrusted)', async () => {
    await start('attacker.example.net#');
    await expect(resolveCode(client, sklearnExample, { codeRoot: repo })).rejects.toMatchObject({
      code: 'datastore_untrusted',
    });
    expect(credential.scopes.filter((s) => s.includes('storage'))).toEqual([]);
    expect(fake.requests.filter((r) => r.method === 'PUT')).toEqual([]);
  });

  it.each([
    [{ accountName: 'stml', protocol: 'http', endpoint: 'core.windows.net' }],
    [{ accountName: 'stml', protocol: 'https', endpoint: 'evil.example.com' }],
    [{ accountName: 'stml', protocol: 'https', endpoint: 'core.windows.net.evil.example.com' }],
    [{ accountName: 'st.ml', protocol: 'https', endpoint: 'core.windows.net' }],
  ])('refuses the datastore %j', (ds) => {
    expect(() => datastoreBlobEndpoint(ds)).toThrow(expect.objectContaining({ code: 'datastore_untrusted' }));
  });

  it.each([
    ['core.windows.net', 'https://stml.blob.core.windows.net'],
    ['core.chinacloudapi.cn', 'https://stml.blob.core.chinacloudapi.cn'],
    ['core.usgovcloudapi.net', 'https://stml.blob.core.usgovcloudapi.net'],
  ])('accepts Azure storage (%s), and the configured endpoint as it is', (endpoint, url) => {
    expect(datastoreBlobEndpoint({ accountName: 'stml', protocol: 'https', endpoint })).toBe(url);
    expect(
      datastoreBlobEndpoint(
        { accountName: 'x', protocol: 'http', endpoint: 'nope' },
        'http://127.0.0.1:1/a/',
      ),
    ).toBe('http://127.0.0.1:1/a');
  });
});
