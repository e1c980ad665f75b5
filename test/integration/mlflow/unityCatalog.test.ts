/**
 * A model version in Unity Catalog's MLflow registry, against the fake speaking the flow of
 * MLflow's protos over HTTP: the registered model, the version created PENDING_REGISTRATION with
 * its storage location, temporary credentials (an Azure user delegation SAS), every file written
 * there with Put Blob, the version finalized READY; then the alias. Each call is asserted, and so
 * are the refusals: a name without three parts, credentials that are not Azure's, a failed write
 * (nothing finalized).
 */
import type { ExportedFolder } from '../../../lib/mlflow/export';
import { MlflowClient } from '../../../lib/mlflow/client';
import {
  abfssBlobContainer,
  abfssBlobUrl,
  completeUcVersion,
  registerUcVersion,
} from '../../../lib/mlflow/unityCatalog';
import { FakeMlflow } from '../../support/fakes/mlflow';
import { startOtherOrigin } from '../../support/otherOrigin';

const folder = (files: Record<string, string>): ExportedFolder => ({
  digest: 'd'.repeat(64),
  origin: 'stored',
  paths: Object.keys(files),
  async *files() {
    for (const [path, text] of Object.entries(files)) yield { path, bytes: Buffer.from(text) };
  },
});
const model = { MLmodel: 'flavors:\n  onnx: {}\n', 'model.onnx': 'onnx-bytes', 'extra/notes.txt': 'hi' };

describe('Unity Catalog model versions', () => {
  let fake: FakeMlflow;
  let client: MlflowClient;
  beforeAll(async () => {
    fake = await new FakeMlflow().start();
    client = new MlflowClient({
      target: { baseUrl: fake.url, auth: { kind: 'none' }, flavor: 'databricks' },
      sleep: async () => undefined,
    });
  });
  afterAll(() => fake?.stop());

  it('creates pending, writes the files with the SAS, finalizes READY, and the alias can then be set', async () => {
    const mv = await registerUcVersion(
      client,
      {
        name: 'main.ml.churn',
        source: 'mlflow-artifacts:/1/r1/artifacts/model',
        run_id: 'r1',
        tags: [{ key: 'sluice.version', value: '3' }],
      },
      folder(model),
      { blobUrl: fake.ucBlobUrl },
    );
    expect(mv).toMatchObject({ name: 'main.ml.churn', version: '1', status: 'READY' });
    expect(fake.calls.map((c) => `${c.method} ${c.path} ${c.status}`)).toEqual([
      'POST unity-catalog/registered-models/create 200',
      'POST unity-catalog/model-versions/create 200',
      'POST unity-catalog/model-versions/generate-temporary-credentials 200',
      'PUT /uc-storage/uc/models/main.ml.churn/versions/1/MLmodel 201',
      'PUT /uc-storage/uc/models/main.ml.churn/versions/1/model.onnx 201',
      'PUT /uc-storage/uc/models/main.ml.churn/versions/1/extra/notes.txt 201',
      'POST unity-catalog/model-versions/finalize 200',
    ]);
    expect(fake.calls[2]!.body).toEqual({
      name: 'main.ml.churn',
      version: '1',
      operation: 'MODEL_VERSION_OPERATION_READ_WRITE',
    });
    expect(fake.ucFiles.get('uc/models/main.ml.churn/versions/1/model.onnx')?.toString()).toBe('onnx-bytes');
    await client.call('POST', 'unity-catalog/registered-models/alias', {
      name: 'main.ml.churn',
      alias: 'champion',
      version: mv.version,
    });
    // A second version of an existing model: the create answered RESOURCE_ALREADY_EXISTS is fine.
    fake.calls.length = 0;
    const second = await registerUcVersion(client, { name: 'main.ml.churn', source: 's' }, folder(model), {
      blobUrl: fake.ucBlobUrl,
    });
    expect(second.version).toBe('2');
    expect(fake.calls[0]).toMatchObject({ path: 'unity-catalog/registered-models/create', status: 400 });
  });

  it('refuses a two-part name before any call, and a failed write leaves the version unfinalized', async () => {
    fake.calls.length = 0;
    await expect(
      registerUcVersion(client, { name: 'ml.churn', source: 's' }, folder(model)),
    ).rejects.toMatchObject({
      code: 'mlflow_uc_name_invalid',
    });
    expect(fake.calls).toEqual([]);
    // The upload with a SAS the storage does not take: refused, nothing finalized.
    fake.calls.length = 0;
    const badFetch: typeof fetch = (url, init) => fetch(String(url).replace(/\?.*$/, '?sig=forged'), init);
    await expect(
      registerUcVersion(client, { name: 'main.ml.fraud', source: 's' }, folder(model), {
        blobUrl: fake.ucBlobUrl,
        fetch: badFetch,
      }),
    ).rejects.toMatchObject({ code: 'mlflow_uc_upload_failed' });
    expect(fake.calls.map((c) => c.path)).not.toContain('unity-catalog/model-versions/finalize');
    expect(fake.models.get('main.ml.fraud')!.versions.at(-1)!.status).toBe('PENDING_REGISTRATION');
  });

  it('finishes a pending version, leaves a READY one as it is, and refuses one Unity Catalog failed', async () => {
    // main.ml.fraud version 1 was left pending by the failed write above.
    fake.calls.length = 0;
    const done = await completeUcVersion(client, 'main.ml.fraud', '1', folder(model), {
      blobUrl: fake.ucBlobUrl,
    });
    expect(done).toMatchObject({ version: '1', status: 'READY' });
    expect(fake.calls.map((c) => c.path).filter((p) => !p.startsWith('/uc-storage'))).toEqual([
      'unity-catalog/model-versions/get',
      'unity-catalog/model-versions/generate-temporary-credentials',
      'unity-catalog/model-versions/finalize',
    ]);
    fake.calls.length = 0;
    await completeUcVersion(client, 'main.ml.fraud', '1', folder(model), { blobUrl: fake.ucBlobUrl });
    expect(fake.calls.map((c) => c.path)).toEqual(['unity-catalog/model-versions/get']);
    fake.models.get('main.ml.fraud')!.versions[0]!.status = 'FAILED_REGISTRATION';
    await expect(
      completeUcVersion(client, 'main.ml.fraud', '1', folder(model), { blobUrl: fake.ucBlobUrl }),
    ).rejects.toMatchObject({ code: 'mlflow_uc_version_failed' });
  });

  it('maps an abfss:// storage location to the blob endpoint', () => {
    expect(
      abfssBlobUrl('abfss://metastore@acct.dfs.core.windows.net/models/abc/versions/1', 'extra/a b.txt'),
    ).toBe('https://acct.blob.core.windows.net/metastore/models/abc/versions/1/extra/a%20b.txt');
    expect(() => abfssBlobUrl('s3://bucket/models/1', 'MLmodel')).toThrow(/abfss/);
    // The SAS is appended to this URL: a location on any host but Azure Storage is refused.
    expect(() => abfssBlobUrl('abfss://c@acct.dfs.attacker.example/models/1', 'MLmodel')).toThrow(
      /not an abfss:\/\/ location/,
    );
    expect(abfssBlobUrl('abfss://c@acct.dfs.core.usgovcloudapi.net/m/1', 'MLmodel')).toBe(
      'https://acct.blob.core.usgovcloudapi.net/c/m/1/MLmodel',
    );
  });

  it('refuses a location whose host only starts with an Azure Storage suffix', () => {
    // Not a path `.evil.com/x` on the real account: the host ends where the suffix does, at `/` or the end.
    for (const location of [
      'abfss://c@acct.dfs.core.windows.net.evil.com/x',
      'abfss://c@acct.dfs.core.windows.net.evil.com',
      'abfss://c@acct.dfs.core.windows.net:443/x',
      'abfss://c@acct.dfs.core.windows.netx/x',
    ])
      expect(() => abfssBlobContainer(location)).toThrow(
        expect.objectContaining({ code: 'mlflow_uc_storage_unsupported' }),
      );
    expect(abfssBlobContainer('abfss://c@acct.dfs.core.windows.net')).toEqual({
      containerUrl: 'https://acct.blob.core.windows.net/c',
      prefix: '',
    });
    expect(abfssBlobContainer('abfss://c@acct.dfs.core.windows.net/')).toEqual({
      containerUrl: 'https://acct.blob.core.windows.net/c',
      prefix: '',
    });
    expect(abfssBlobContainer('abfss://c@acct.dfs.core.windows.net//m/1/')).toEqual({
      containerUrl: 'https://acct.blob.core.windows.net/c',
      prefix: 'm/1',
    });
  });

  it('an upload answered with a redirect is refused, not resent where it points', async () => {
    const other = await startOtherOrigin(201);
    const { reached } = other;
    fake.ucStorageRedirect = `http://${other.host}`;
    try {
      const err = (await registerUcVersion(
        client,
        { name: 'main.ml.moved', source: 's', run_id: 'r1' },
        folder(model),
        { blobUrl: fake.ucBlobUrl },
      ).catch((e: unknown) => e)) as Error & { code: string };
      expect(err).toMatchObject({ name: 'NonRetriableError', code: 'mlflow_uc_upload_failed' });
      expect(err.message).toMatch(/answered 307$/);
      expect(err.message).not.toContain('sig=');
      expect(reached).toEqual([]);
      expect(fake.calls.filter((c) => c.path.includes('model-versions/finalize'))).toEqual([]);
    } finally {
      fake.ucStorageRedirect = undefined;
      await other.close();
    }
  });

  it('an upload that fails before an answer never puts the SAS into its error', async () => {
    const failing = (async (url: string | URL | Request) => {
      throw new TypeError(`Failed to parse URL from ${String(url)}`, {
        cause: { code: 'ERR_INVALID_URL' },
      });
    }) as typeof fetch;
    const err = (await registerUcVersion(
      client,
      { name: 'main.ml.leak', source: 's', run_id: 'r1' },
      folder(model),
      { blobUrl: fake.ucBlobUrl, fetch: failing },
    ).catch((e: unknown) => e)) as Error & { code: string; cause?: unknown };
    expect(err.code).toBe('mlflow_uc_upload_failed');
    expect(err.message).toBe('writing MLmodel failed: TypeError (ERR_INVALID_URL)');
    expect(err.cause).toBeUndefined();
    expect(JSON.stringify({ message: err.message, stack: err.stack })).not.toMatch(/sig=|sv=/);
  });
});
