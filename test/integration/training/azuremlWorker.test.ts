/** @jest-environment ./test/support/onnxEnvironment.js */
/**
 * The Azure ML worker mode end to end against the ARM fake: the fake runs the real Sluice worker
 * (worker/trainingJob.ts in folder mode) as the command job, uploads its output folder to
 * `jobs/<jobId>/` in Azurite, and the backend collects the MLflow folder the worker left in
 * `model/` (lib/training/backends/azuremlWorkerModel.ts).
 */
import type { AccessToken, TokenCredential } from '@azure/identity';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { startServices, type RunningServices } from '../../../devhost/services';
import type { TrainingJobRequestInput } from '../../../lib/contracts/trainingJob';
import { isModelFolderUri, openModelFolder } from '../../../lib/mlmodel/blobFolder';
import { OnnxModels } from '../../../lib/mlmodel/onnxModels';
import { loadScorer } from '../../../lib/scoring/scorer';
import { ArtifactStore } from '../../../lib/storage';
import type { AzureMlOptions } from '../../../lib/training/backends/azureml';
import { AzureMlTrainingBackend, jobOutputDatastore } from '../../../lib/training/backends/azureml';
import { datasetFromRecords } from '../../../lib/training/dataset';
import { loadVerifiedModel } from '../../../lib/training/models/artifact';
import { syntheticClassification } from '../../../lib/training/synthetic';
import { columnarBytes } from '../../support/datasets';
import type { FakeAzureMl } from '../../support/fakes/azureml';
import { jobOutputContainer } from '../../../lib/training/userJob/outputGrant';
import { startFakeAzureMl } from '../../support/fakes/azureml';
import { memoryLog } from '../../devhost/servicesLog';

jest.setTimeout(180_000);

class TestCredential implements TokenCredential {
  async getToken(): Promise<AccessToken> {
    return { token: 'fake-arm-token', expiresOnTimestamp: Date.now() + 3_600_000 };
  }
}

const ROOT = path.resolve(__dirname, '../../..');
/** The worker as the job's environment runs it (here from source, through the tests' TS loader). */
const WORKER = `${process.execPath} -r ${ROOT}/test/support/registerTs.js ${ROOT}/worker/trainingJob.ts --request \${{inputs.request}} --dataset \${{inputs.dataset}} --out \${{outputs.job}}`;

describe('azureml worker mode: the worker’s MLflow folder collected, checked and stored once', () => {
  let services: RunningServices;
  let store: ArtifactStore;
  let fake: FakeAzureMl;
  let dataset: { uri: string; sha256: string };
  const onnx = new OnnxModels();

  beforeAll(async () => {
    services = await startServices({ dataDir: null, log: memoryLog() });
    store = ArtifactStore.fromConnectionString(services.storageConnectionString);
    await store.ensureContainers();
    const bytes = columnarBytes(syntheticClassification({ rows: 800, features: 3, seed: 11 }));
    const stored = await store.putContentAddressed('datasets', bytes, { prefix: 'columnar' });
    dataset = { uri: stored.uri, sha256: stored.sha256 };
  });
  afterAll(async () => {
    await onnx.dispose();
    await services?.stop();
  });
  beforeEach(async () => {
    fake = await startFakeAzureMl({
      blobAccountUrl: store.service.url,
      execute: {
        read: async (uri) => (await store.getBuffer(uri)).data,
        write: async (uri, bytes) => {
          await store.put(uri, bytes, { condition: 'overwrite' });
        },
      },
    });
  });
  afterEach(async () => {
    await fake.close();
  });

  /** `after`: shell run in the output folder once the worker exited 0 (an older or a broken worker). */
  const backend = (after?: string, extra: Partial<AzureMlOptions> = {}) =>
    new AzureMlTrainingBackend({
      endpoint: fake.url,
      subscriptionId: 'sub-1',
      resourceGroup: 'rg-sluice',
      workspace: 'mlw-sluice',
      credential: new TestCredential(),
      environmentId: 'azureml:sluice-node22:1',
      command: after ? `${WORKER} && cd \${{outputs.job}} && ${after}` : WORKER,
      storageBlobEndpoint: store.service.url,
      files: store,
      store,
      sleep: async () => undefined,
      ...extra,
    });

  const request = (jobId: string): TrainingJobRequestInput => ({
    jobId,
    runId: 'run-w',
    spec: {
      algorithm: 'logistic_regression',
      target: 'label',
      features: ['x0', 'x1', 'x2'],
      timeLimitSeconds: 300,
    },
    dataset,
  });

  const poll = async (b: AzureMlTrainingBackend, jobId: string) => {
    for (let i = 0; i < 20; i++) {
      const s = await b.status(jobId);
      if (s.state === 'completed' || s.state === 'failed' || s.state === 'canceled') return s;
    }
    throw new Error(`job ${jobId} did not end`);
  };

  const blobsUnder = async (container: string, prefix: string): Promise<string[]> => {
    const out: string[] = [];
    for await (const b of store.list(container, prefix)) out.push(b.path);
    return out.sort();
  };

  it('reports the stored folder and its artifact, scores it through ONNX as the JSON model, and collects it once', async () => {
    const b = backend();
    await b.submit(request('wk-1'));
    // The worker's output folder is its own container, through its own SAS datastore.
    const outputs = (fake.jobs.get('wk-1')!.body.properties as { outputs: Record<string, { uri: string }> })
      .outputs;
    expect(outputs.job!.uri).toBe(`azureml://datastores/${jobOutputDatastore('wk-1')}/paths/`);
    expect(fake.datastores.get(jobOutputDatastore('wk-1'))).toMatchObject({
      containerName: jobOutputContainer('wk-1'),
      credentials: { credentialsType: 'Sas' },
    });
    const s = await poll(b, 'wk-1');
    expect(fake.jobs.get('wk-1')!.exitCode).toBe(0);
    // Ended: the datastore holding the SAS is gone.
    expect(fake.datastores.has(jobOutputDatastore('wk-1'))).toBe(false);
    expect(s.error).toBeUndefined();
    expect(s).toMatchObject({ state: 'completed', backendStatus: 'Completed' });
    const result = s.result!;
    expect(isModelFolderUri(result.modelUri)).toBe(true);
    expect(result).toMatchObject({
      algorithm: 'logistic_regression',
      task: 'binary',
      artifact: {
        format: 'mlflow',
        flavor: 'onnx',
        onnxPath: 'model.onnx',
        task: 'classification',
        target: 'label',
        classes: ['no', 'yes'],
        inputLayout: 'per-feature',
        features: [
          { name: 'x0', kind: 'number' },
          { name: 'x1', kind: 'number' },
          { name: 'x2', kind: 'number' },
        ],
        files: 3,
      },
    });
    // The summary the worker reported travels on.
    expect(result.rows.train).toBeGreaterThan(0);
    expect(result.metrics.holdout).toBeDefined();

    const folder = await openModelFolder(store, result.modelUri, result.modelDigest);
    expect(folder.manifest.map((f) => f.path)).toEqual(['MLmodel', 'model.json', 'model.onnx']);
    // The folder's model.json is the JSON the worker wrote beside it (its reported digest).
    // The worker wrote to its own output container (a SAS for it alone), not to the jobs container.
    expect(await store.exists({ container: 'jobs', path: 'wk-1/model.json' })).toBe(false);
    const legacy = (await store.getBuffer({ container: jobOutputContainer('wk-1'), path: 'model.json' }))
      .data;
    expect(await folder.read('model.json')).toEqual(legacy);
    const json = loadVerifiedModel(legacy, createHash('sha256').update(legacy).digest('hex'));

    // Scored through onnxruntime, as evaluation and predict do, equal to the JSON model.
    const scorer = await loadScorer(
      { store, onnx },
      { uri: result.modelUri, digest: result.modelDigest, artifact: result.artifact! },
    );
    expect(scorer.kind).toBe('onnx');
    const rows = [
      { x0: 0.3, x1: -1.2, x2: 2 },
      { x0: -2, x1: 0.5, x2: 0.1 },
    ];
    const scored = await scorer.scoreRows(rows);
    const expected = json.predictProba(datasetFromRecords(rows, json.columnTypes));
    expect(scored.probabilities).toHaveLength(expected.length);
    scored.probabilities!.forEach((p, i) => expect(Math.abs(p - expected[i]!)).toBeLessThan(1e-6));

    // Once: with the downloaded folder gone, a later poll answers the same from the record.
    const record = (await store.getJson({ container: 'jobs', path: 'wk-1/model-collected.json' })).value;
    expect(record).toMatchObject({ jobId: 'wk-1', result: { modelDigest: result.modelDigest } });
    for (const p of await blobsUnder(jobOutputContainer('wk-1'), 'model/'))
      await store.delete({ container: jobOutputContainer('wk-1'), path: p });
    await expect(b.status('wk-1')).resolves.toMatchObject({ state: 'completed', result });
  });

  it('keeps the legacy JSON result for a worker output without model/ (an older worker)', async () => {
    const b = backend('rm -rf model');
    await b.submit(request('wk-2'));
    const s = await poll(b, 'wk-2');
    expect(s.state).toBe('completed');
    const legacy = (await store.getBuffer({ container: jobOutputContainer('wk-2'), path: 'model.json' }))
      .data;
    expect(s.result!.artifact).toBeUndefined();
    expect(s.result!.modelUri.endsWith('model.json')).toBe(true);
    expect(s.result!.modelDigest).toBe(createHash('sha256').update(legacy).digest('hex'));
    expect(await store.exists({ container: 'jobs', path: 'wk-2/model-collected.json' })).toBe(false);
  });

  it('fails with model_digest_mismatch when model/model.json is not the model the worker reported, and stores nothing', async () => {
    const before = await blobsUnder('models', 'mlflow/');
    const b = backend(`printf ' ' >> model/model.json`);
    await b.submit(request('wk-3'));
    const s = await poll(b, 'wk-3');
    expect(s).toMatchObject({
      state: 'failed',
      backendStatus: 'Completed',
      error: {
        code: 'model_digest_mismatch',
        message: expect.stringContaining('not the digest it reported'),
      },
    });
    expect(s.result).toBeUndefined();
    expect(await blobsUnder('models', 'mlflow/')).toEqual(before);
    // The failure is recorded: a later poll gives the same answer.
    await expect(b.status('wk-3')).resolves.toMatchObject({
      state: 'failed',
      error: { code: 'model_digest_mismatch' },
    });
  });

  it('fails with onnx_invalid when model.onnx is not an ONNX graph', async () => {
    const b = backend(`printf 'not onnx' > model/model.onnx`);
    await b.submit(request('wk-4'));
    await expect(poll(b, 'wk-4')).resolves.toMatchObject({
      state: 'failed',
      error: { code: 'onnx_invalid' },
    });
  });

  it('fails with mlmodel_invalid when MLmodel does not parse', async () => {
    const b = backend(`printf 'flavors: [\\n' > model/MLmodel`);
    await b.submit(request('wk-5'));
    await expect(poll(b, 'wk-5')).resolves.toMatchObject({
      state: 'failed',
      error: { code: 'mlmodel_invalid' },
    });
  });

  it('fails with model_too_large when the folder is over the size limit', async () => {
    const b = backend(undefined, { maxModelBytes: 200 });
    await b.submit(request('wk-6'));
    await expect(poll(b, 'wk-6')).resolves.toMatchObject({
      state: 'failed',
      error: { code: 'model_too_large' },
    });
  });
});
