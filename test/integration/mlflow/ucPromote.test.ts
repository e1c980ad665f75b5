/** @jest-environment ./test/support/onnxEnvironment.js */
/**
 * Promoting a model version from Databricks Unity Catalog, against the fake MLflow server (Unity
 * Catalog's registry endpoints, its temporary credentials and its Azure storage's List Blobs / Get
 * Blob over HTTP) and Azurite: `models:/<catalog>.<schema>.<model>/<v>` and `…@<alias>` resolved at
 * start with READ credentials and every call asserted; the train step's import reading the files
 * with a fresh READ SAS, through a storage outage; and the refusals, each named and nothing stored:
 * unknown model, version or alias, a version not READY, S3/GCS/default storage, a location off Azure
 * Storage, storage refusing the SAS, a folder without MLmodel, one too large, a three-level name
 * without the Unity Catalog registry. No error message carries a SAS.
 */
import { importModel } from '../../../activities/importModel';
import { importModelActivity } from '../../../lib/contracts/mlflowCandidate';
import { openModelFolder } from '../../../lib/mlmodel/blobFolder';
import { MlflowClient } from '../../../lib/mlflow/client';
import type { PromoteDeps } from '../../../lib/mlflow/promote';
import { resolveMlflowCandidate } from '../../../lib/mlflow/promote';
import type { ArtifactStore } from '../../../lib/storage/blob';
import type { BlobEmulator } from '../../support/emulators';
import type { FakeMlflow } from '../../support/fakes/mlflow';
import {
  contract,
  loggedModelFolder,
  refusal,
  spec,
  startPromoteStores,
  storedModelPaths,
} from '../../support/mlflowPromote';
import { startOtherOrigin } from '../../support/otherOrigin';

jest.setTimeout(120_000);

const UC = 'main.ml.churn';
const storageOf = (v: string) => `abfss://uc@fakeuc.dfs.core.windows.net/models/${UC}/versions/${v}`;

/** An ONNX model folder as a Databricks notebook's log_model would write it, one file in a subfolder. */
const modelFiles = (): Record<string, Buffer> => ({
  ...loggedModelFolder(),
  'metadata/requirements.txt': Buffer.from('onnxruntime\n'),
});

describe('promoting a Unity Catalog model version', () => {
  let azurite: BlobEmulator;
  let store: ArtifactStore;
  let fake: FakeMlflow;
  let deps: PromoteDeps;
  let registry: MlflowClient;
  let dataset: { uri: string; sha256: string };
  const files = modelFiles();
  const storageCalls = () => fake.calls.filter((c) => c.path.startsWith('/uc-storage'));
  const noSas = (text: string) => {
    expect(text).not.toContain('sig=');
    expect(text).not.toContain('fake-read-delegation');
    expect(text).not.toContain('fake-user-delegation');
  };
  const storeList = () => storedModelPaths(store);
  /** The train step's input for `candidate`, as the pipeline hands it over. */
  const importInput = (candidate: Awaited<ReturnType<typeof resolveMlflowCandidate>>) =>
    importModelActivity.input.parse({
      runId: 'churn-20260301-000000-abcd',
      candidate,
      spec,
      dataset,
      pipeline: { name: 'churn', version: 1 },
    });
  /** The import activity reading from Unity Catalog, checking against the pipeline's contract. */
  const ucImport = () =>
    importModel({
      store,
      tracking: deps.tracking,
      registry,
      unityCatalog: deps.unityCatalog!,
      contractOf: async () => contract,
    });

  beforeAll(async () => {
    ({ azurite, fake, store, dataset } = await startPromoteStores());
    const tracking = new MlflowClient({
      target: { baseUrl: fake.url, auth: { kind: 'bearer', token: 'dapi-test' }, flavor: 'databricks' },
      sleep: async () => undefined,
    });
    registry = new MlflowClient({
      target: {
        baseUrl: fake.url,
        auth: { kind: 'bearer', token: 'dapi-test' },
        flavor: 'databricks',
        unityCatalog: true,
      },
      sleep: async () => undefined,
    });
    deps = {
      tracking,
      registry,
      unityCatalog: {
        schema: 'main.ml',
        blobContainer: fake.ucContainerOf,
        retry: { maxTries: 3, retryDelayInMs: 1, maxRetryDelayInMs: 2 },
      },
    };
    fake.ucSeedVersion(UC, files, { runId: 'a'.repeat(32) }); // 1
    fake.ucSeedVersion(UC, files); // 2
    fake.models.get(UC)!.aliases.set('champion', '2');
  });
  afterAll(async () => {
    await Promise.all([azurite?.stop(), fake?.stop()]);
  });

  it('resolves a version and pins an alias with READ credentials, listing the files at start', async () => {
    fake.calls.length = 0;
    await expect(resolveMlflowCandidate(deps, `models:/${UC}/1`)).resolves.toEqual({
      uri: `models:/${UC}/1`,
      artifactPath: storageOf('1'),
      name: UC,
      version: '1',
      runId: 'a'.repeat(32),
      registry: 'databricks-uc',
    });
    expect(fake.calls.map((c) => `${c.method} ${c.path} ${c.status}`)).toEqual([
      'GET unity-catalog/model-versions/get 200',
      'POST unity-catalog/model-versions/generate-temporary-credentials 200',
      'GET /uc-storage/uc 200',
    ]);
    expect(fake.calls[0]!.authorization).toBe('Bearer dapi-test');
    expect(fake.calls[1]!.body).toEqual({
      name: UC,
      version: '1',
      operation: 'MODEL_VERSION_OPERATION_READ',
    });
    // The listing: the version's folder only, with the read-only SAS and no workspace token.
    expect(fake.calls[2]!.body).toMatchObject({
      comp: 'list',
      prefix: `models/${UC}/versions/1/`,
      sp: 'rl',
      sig: 'fake-read-delegation',
    });
    expect(fake.calls[2]!.authorization).toBeUndefined();

    fake.calls.length = 0;
    await expect(resolveMlflowCandidate(deps, `models:/${UC}@champion`)).resolves.toMatchObject({
      version: '2',
      artifactPath: storageOf('2'),
      registry: 'databricks-uc',
    });
    expect(fake.okCalls()[0]).toBe('GET unity-catalog/registered-models/alias');
    // Nothing went to the workspace registry's own endpoints.
    expect(fake.calls.filter((c) => /^(registered-models|model-versions)\//.test(c.path))).toEqual([]);
  });

  it('imports the version: a fresh READ SAS, each file read from its storage, checked and stored', async () => {
    const candidate = await resolveMlflowCandidate(deps, `models:/${UC}@champion`);
    const input = importInput(candidate);
    const activity = ucImport();
    fake.calls.length = 0;
    const first = await activity(input);
    expect(
      fake.calls
        .filter((c) => c.path.includes('generate-temporary-credentials'))
        .map((c) => c.body.operation),
    ).toEqual(['MODEL_VERSION_OPERATION_READ']);
    const reads = storageCalls()
      .filter((c) => c.path !== '/uc-storage/uc')
      .map((c) => c.path.replace(`/uc-storage/uc/models/${UC}/versions/2/`, ''));
    expect(reads.sort()).toEqual(Object.keys(files).sort());
    expect(storageCalls().every((c) => c.body.sig === 'fake-read-delegation' && !c.authorization)).toBe(true);
    expect(first).toMatchObject({
      algorithm: 'mlflow',
      task: 'classification',
      artifact: { format: 'mlflow', flavor: 'onnx', target: 'label', classes: ['no', 'yes'] },
    });
    const opened = await openModelFolder(store, first.modelUri, first.modelDigest);
    expect(opened.manifest.map((f) => f.path).sort()).toEqual(Object.keys(files).sort());

    // A storage outage (503s) is ridden out by the storage client's bounded retry: the same result.
    fake.calls.length = 0;
    fake.ucStorageFailures = 2;
    expect(await activity(input)).toEqual(first);
    expect(storageCalls().filter((c) => c.status === 503)).toHaveLength(2);
    // One that outlasts it is transient (the activity's retry policy tries again), without the SAS.
    fake.ucStorageFailures = 100;
    try {
      const down = await refusal(activity(input));
      expect(down).toMatchObject({
        code: 'mlflow_uc_download_failed',
        message: expect.stringContaining('503'),
      });
      expect(down.constructor.name).toBe('TransientError');
      noSas(down.message);
    } finally {
      fake.ucStorageFailures = 0;
    }
  });

  it('storage answering a redirect: refused, never followed, to another host or the same one', async () => {
    const candidate = await resolveMlflowCandidate(deps, `models:/${UC}/2`);
    const input = importInput(candidate);
    const activity = ucImport();
    const before = await storeList();
    // Another origin that counts what reaches it.
    const other = await startOtherOrigin(
      200,
      { 'content-type': 'application/xml' },
      '<?xml version="1.0" encoding="utf-8"?><EnumerationResults><Blobs/></EnumerationResults>',
    );
    const { host: otherHost, reached } = other;
    try {
      for (const [to, host] of [
        [`http://${otherHost}`, otherHost],
        // The same origin, elsewhere on it: the SDK's redirect policy would follow this one.
        [`${fake.url}/moved`, new URL(fake.url).host],
      ] as const) {
        fake.ucStorageRedirect = to;
        fake.calls.length = 0;
        const moved = await refusal(activity(input));
        expect(moved).toMatchObject({
          code: 'mlflow_storage_redirect_refused',
          message: expect.stringContaining(`storage answered 302, a redirect to ${host},`),
        });
        expect(moved.constructor.name).toBe('NonRetriableError');
        noSas(moved.message);
        expect(storageCalls().map((c) => c.status)).toEqual([302]);
        expect(fake.calls.some((c) => c.path.startsWith('/moved'))).toBe(false);
      }
      expect(reached).toEqual([]);
    } finally {
      fake.ucStorageRedirect = undefined;
      await other.close();
    }
    expect(await storeList()).toEqual(before);
  });

  it('lists a folder over several List Blobs pages', async () => {
    fake.ucListPageSize = 2;
    try {
      const candidate = await resolveMlflowCandidate(deps, `models:/${UC}/1`);
      expect(candidate.version).toBe('1');
      expect(storageCalls().filter((c) => c.body.comp === 'list').length).toBeGreaterThan(1);
    } finally {
      fake.ucListPageSize = 5_000;
    }
  });

  it('refuses at start, naming it, what it cannot promote', async () => {
    const seeded = (options: Parameters<FakeMlflow['ucSeedVersion']>[2], data = files) =>
      fake.ucSeedVersion(UC, data, options);
    const pending = seeded({ status: 'PENDING_REGISTRATION' });
    const s3 = seeded({ storageLocation: 's3://team-bucket/models/churn/7' });
    const offAzure = seeded({ storageLocation: 'abfss://uc@fakeuc.dfs.attacker.example/models/x' });
    const notModel = seeded({}, { 'notes.txt': Buffer.from('no model') });
    const cases: [string, string, RegExp][] = [
      [`models:/${UC}/99`, 'mlflow_model_not_found', /model version models:\/main\.ml\.churn\/99/],
      [`models:/${UC}@staging`, 'mlflow_model_not_found', /alias models:\/main\.ml\.churn@staging/],
      ['models:/main.ml.nobody/1', 'mlflow_model_not_found', /nobody/],
      [`models:/${UC}/${pending}`, 'mlflow_uc_version_not_ready', /PENDING_REGISTRATION, not READY/],
      [`models:/${UC}/${s3}`, 'mlflow_uc_storage_unsupported', /s3:\/\/team-bucket.*Amazon S3/],
      [`models:/${UC}/${offAzure}`, 'mlflow_uc_storage_unsupported', /attacker\.example/],
      [`models:/${UC}/${notModel}`, 'mlflow_not_a_model', /no MLmodel file \(it has notes\.txt\)/],
      ['models:/churn/1', 'mlflow_uri_invalid', /three-level names.*models:\/main\.ml\.churn\//],
    ];
    for (const [uri, code, message] of cases) {
      fake.calls.length = 0;
      const err = await refusal(resolveMlflowCandidate(deps, uri));
      expect({ uri, code: err.code, status: err.status, field: err.field }).toEqual({
        uri,
        code,
        status: 400,
        field: 'candidate.mlflow',
      });
      expect(err.message).toMatch(message);
      noSas(err.message);
    }
    // Storage off Azure never got a request, let alone the SAS (refused before credentials were asked).
    expect(fake.calls.some((c) => c.path.includes('generate-temporary-credentials'))).toBe(false);

    // Credentials of another cloud, and Databricks default storage, are refused naming what came.
    fake.ucCredentials = () => ({
      aws_temp_credentials: { access_key_id: 'AKIA', secret_access_key: 's', session_token: 't' },
    });
    try {
      const aws = await refusal(resolveMlflowCandidate(deps, `models:/${UC}/1`));
      expect(aws).toMatchObject({ code: 'mlflow_uc_storage_unsupported', status: 400 });
      expect(aws.message).toMatch(/Amazon S3 credentials/);
      fake.ucCredentials = () => ({
        azure_user_delegation_sas: { sas_token: 'x' },
        storage_mode: 'DEFAULT_STORAGE',
      });
      const dflt = await refusal(resolveMlflowCandidate(deps, `models:/${UC}/1`));
      expect(dflt).toMatchObject({ code: 'mlflow_uc_storage_unsupported' });
      expect(dflt.message).toMatch(/default storage/);
      // Storage refusing the SAS Unity Catalog handed out is not the caller's mistake: 502, no SAS.
      fake.ucCredentials = () => ({ azure_user_delegation_sas: { sas_token: 'sv=2021&sig=wrong-one' } });
      const refused = await refusal(resolveMlflowCandidate(deps, `models:/${UC}/1`));
      expect(refused).toMatchObject({ code: 'mlflow_uc_storage_refused', status: 502 });
      expect(refused.message).toMatch(/403 AuthenticationFailed/);
      expect(refused.message).not.toContain('wrong-one');
    } finally {
      fake.ucCredentials = undefined;
    }

    // Unity Catalog refusing Sluice's token: a 502 naming the credentials, as for every MLflow call.
    fake.token = 'another-token';
    try {
      expect(await refusal(resolveMlflowCandidate(deps, `models:/${UC}/1`))).toMatchObject({
        code: 'mlflow_forbidden',
        status: 502,
      });
    } finally {
      fake.token = undefined;
    }
  });

  it('refuses a three-level name when the registry is not Unity Catalog, naming MLFLOW_REGISTRY_URI', async () => {
    const plain = new MlflowClient({
      target: { baseUrl: fake.url, auth: { kind: 'none' }, flavor: 'mlflow' },
      sleep: async () => undefined,
    });
    const other = await refusal(
      resolveMlflowCandidate({ tracking: plain, registry: plain }, 'models:/main.ml.elsewhere/1'),
    );
    expect(other).toMatchObject({ code: 'mlflow_registry_not_unity_catalog', status: 400 });
    expect(other.message).toContain('MLFLOW_REGISTRY_URI=databricks-uc');
  });

  it('refuses in the train step a download over the size limit or changed since the start, storing nothing', async () => {
    const before = await storeList();
    const input = async (uri: string) =>
      importModelActivity.input.parse({
        runId: 'r',
        candidate: await resolveMlflowCandidate(deps, uri),
        spec,
        dataset,
      });
    const small = importModel({
      store,
      tracking: deps.tracking,
      registry,
      unityCatalog: deps.unityCatalog!,
      maxModelBytes: 1_000,
    });
    await expect(small(await input(`models:/${UC}/1`))).rejects.toMatchObject({ code: 'model_too_large' });

    const v = fake.ucSeedVersion(UC, files);
    // The files changed after the run started: the import lists afresh and checks what is there now.
    const gone = await input(`models:/${UC}/${v}`);
    fake.ucFiles.delete(`uc/models/${UC}/versions/${v}/model.onnx`);
    fake.ucFiles.set(`uc/models/${UC}/versions/${v}/zz-late.bin`, Buffer.alloc(10));
    const full = importModel({ store, tracking: deps.tracking, registry, unityCatalog: deps.unityCatalog! });
    const missing = await refusal(full(gone));
    expect(missing).toMatchObject({ code: 'onnx_invalid', message: expect.stringContaining('model.onnx') });
    noSas(missing.message);

    // Without the Unity Catalog registry any more, the run's import says so.
    const noUc = importModel({ store, tracking: deps.tracking });
    await expect(noUc(await input(`models:/${UC}/1`))).rejects.toMatchObject({
      code: 'mlflow_not_configured',
      message: expect.stringContaining('MLFLOW_REGISTRY_URI'),
    });
    expect(await storeList()).toEqual(before);
  });
});
