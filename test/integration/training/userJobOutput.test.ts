import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServices, type RunningServices } from '../../../devhost/services';
import { trainingJobRequestSchema } from '../../../lib/contracts/trainingJob';
import { inferDatasetContract } from '../../../lib/data/checking/inferDatasetContract';
import { conformTable } from '../../../lib/data/checking/conform';
import { encodeColumnar } from '../../../lib/data/reading/columnar';
import { readDataset } from '../../../lib/data/reading/readDataset';
import { ARTIFACT_SIDECAR_FILE, openModelFolder } from '../../../lib/mlmodel/blobFolder';
import { describeModel } from '../../../lib/scoring/scorer';
import { ArtifactStore } from '../../../lib/storage';
import { collectJobModel, downloadBlobPrefix, prepareJobData } from '../../../lib/training/userJob/output';
import { memoryLog } from '../../devhost/servicesLog';

jest.setTimeout(120_000);

const csv = [
  'id,x,color,label',
  ...Array.from(
    { length: 60 },
    (_, i) => `${i},${i * 0.5},${i % 3 ? 'red' : 'blue'},${i % 2 ? 'cat' : 'dog'}`,
  ),
].join('\n');

describe('user job output: data prepared from the run, model folder collected', () => {
  let services: RunningServices;
  let store: ArtifactStore;
  let work: string;
  let request: ReturnType<typeof trainingJobRequestSchema.parse>;

  beforeAll(async () => {
    services = await startServices({ dataDir: null, log: memoryLog() });
    store = ArtifactStore.fromConnectionString(services.storageConnectionString);
    await store.ensureContainers();
    work = await mkdtemp(path.join(tmpdir(), 'sluice-output-'));
    const read = await readDataset(Buffer.from(csv));
    const contract = inferDatasetContract(read.table);
    const table = conformTable(read.table, contract);
    const stored = await store.putContentAddressed('datasets', Buffer.concat(encodeColumnar(table)), {
      prefix: 'columnar',
    });
    request = trainingJobRequestSchema.parse({
      jobId: 'job-output-1',
      spec: {
        algorithm: 'custom',
        code: '/nonexistent',
        command: 'python3 train.py',
        target: 'label',
        features: ['x', 'color'],
      },
      dataset: { uri: stored.uri, sha256: stored.sha256 },
      contract,
    });
  });
  afterAll(async () => {
    await services?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('writes the split files of the run, with the contract, for a custom spec', async () => {
    const data = await prepareJobData(store, request, path.join(work, 'data'));
    expect(data.task).toBe('classification');
    expect(data.classes).toEqual(['cat', 'dog']);
    expect(data.train.rows + data.validation.rows + data.holdout.rows).toBe(60);
    expect((await readFile(data.train.csv, 'utf8')).split('\n')[0]).toBe('x,color,label');
    expect(JSON.parse(await readFile(data.contractFile, 'utf8'))).toEqual(
      JSON.parse(JSON.stringify(request.contract)),
    );
  });

  it('refuses a built-in spec', async () => {
    const builtIn = trainingJobRequestSchema.parse({
      ...request,
      spec: { algorithm: 'ridge', target: 'x', features: ['id'] },
    });
    await expect(prepareJobData(store, builtIn, path.join(work, 'nope'))).rejects.toMatchObject({
      code: 'not_a_custom_job',
    });
  });

  it('downloads a remote output folder, checks it and stores it under its digest', async () => {
    const data = await prepareJobData(store, request, path.join(work, 'data2'));
    const prefix = { container: 'jobs', path: 'job-output-1/output' };
    await store.put(
      { ...prefix, path: `${prefix.path}/MLmodel` },
      'flavors:\n  python_function:\n    loader_module: m\n',
    );
    await store.put({ ...prefix, path: `${prefix.path}/model/weights.bin` }, Buffer.from([9, 8, 7]));
    await store.put({ ...prefix, path: `${prefix.path}/metrics.json` }, '{"auc": 0.9}');
    const out = path.join(work, 'out');
    expect(await downloadBlobPrefix(store, prefix, out, { maxBytes: 1e6 })).toEqual({
      files: 3,
      bytes: expect.any(Number),
    });
    const result = await collectJobModel(store, out, data, 1e6);
    expect(result).toMatchObject({
      algorithm: 'custom',
      task: 'classification',
      metrics: { job: { auc: 0.9 } },
      artifact: {
        format: 'mlflow',
        flavor: 'python_function',
        target: 'label',
        classes: ['cat', 'dog'],
        files: 3,
      },
    });
    expect(result.artifact?.features).toEqual([
      { name: 'x', kind: 'number' },
      { name: 'color', kind: 'string' },
    ]);
    const opened = await openModelFolder(store, result.modelUri, result.modelDigest);
    expect([...(await opened.read('model/weights.bin'))]).toEqual([9, 8, 7]);
  });

  it('refuses an empty or oversized remote output before writing a byte', async () => {
    await expect(
      downloadBlobPrefix(store, { container: 'jobs', path: 'job-nothing/output' }, path.join(work, 'o2'), {
        maxBytes: 10,
      }),
    ).rejects.toMatchObject({ code: 'model_output_empty' });
    await expect(
      downloadBlobPrefix(store, { container: 'jobs', path: 'job-output-1/output' }, path.join(work, 'o3'), {
        maxBytes: 10,
      }),
    ).rejects.toMatchObject({ code: 'model_too_large' });
  });

  it('stops downloading a blob that grew past the limit after it was listed (model_too_large)', async () => {
    const prefix = { container: 'jobs', path: 'job-grew/output' };
    const weights = { ...prefix, path: `${prefix.path}/weights.bin` };
    await store.put(
      { ...prefix, path: `${prefix.path}/MLmodel` },
      'flavors:\n  python_function:\n    loader_module: m\n',
    );
    await store.put(weights, Buffer.alloc(100, 1));
    // The job is still writing: once the listing (with 100 bytes) is done, the blob becomes 1 MB.
    const racing = {
      async *list(container: string, p?: string) {
        yield* store.list(container, p);
        await store.put(weights, Buffer.alloc(1_000_000, 2), { condition: 'overwrite' });
      },
      getStream: store.getStream.bind(store),
    };
    const out = path.join(work, 'grew');
    await expect(downloadBlobPrefix(racing, prefix, out, { maxBytes: 10_000 })).rejects.toMatchObject({
      code: 'model_too_large',
      message: expect.stringContaining('weights.bin grew after it was listed'),
    });
    const { size } = await stat(path.join(out, 'weights.bin')).catch(() => ({ size: 0 }));
    expect(size).toBeLessThanOrEqual(10_000);
  });

  it("keeps a wide model's description off the job result, in the stored folder (payload bound)", async () => {
    const data = await prepareJobData(store, request, path.join(work, 'data-wide'));
    const wide = {
      ...data,
      featureKinds: Array.from({ length: 400 }, (_, i) => ({
        name: `feature_with_a_long_name_${i}`,
        kind: 'number' as const,
      })),
    };
    const out = path.join(work, 'wide');
    await mkdir(out, { recursive: true });
    await writeFile(path.join(out, 'MLmodel'), 'flavors:\n  python_function:\n    loader_module: m\n');
    const result = await collectJobModel(store, out, wide, 1e6);
    expect(result.artifact).toBeUndefined();
    expect(JSON.stringify(result).length).toBeLessThan(16 * 1024);
    const described = await describeModel(store, { uri: result.modelUri, digest: result.modelDigest });
    expect(described).toMatchObject({ flavor: 'python_function', target: 'label', classes: ['cat', 'dog'] });
    expect(described?.features).toHaveLength(400);
    const opened = await openModelFolder(store, result.modelUri, result.modelDigest);
    expect(opened.manifest.map((e) => e.path)).toEqual(['MLmodel', ARTIFACT_SIDECAR_FILE]);

    // A narrow model keeps it inline, and the folder is the job's own.
    const narrow = await collectJobModel(store, out, data, 1e6);
    expect(narrow.artifact?.features).toHaveLength(2);
    expect((await openModelFolder(store, narrow.modelUri, narrow.modelDigest)).manifest).toHaveLength(1);
  });

  it("refuses a job folder with a file named like Sluice's own description", async () => {
    const data = await prepareJobData(store, request, path.join(work, 'data-reserved'));
    const out = path.join(work, 'reserved');
    await mkdir(out, { recursive: true });
    await writeFile(path.join(out, 'MLmodel'), 'flavors:\n  python_function:\n    loader_module: m\n');
    await writeFile(path.join(out, ARTIFACT_SIDECAR_FILE), '{}');
    await expect(collectJobModel(store, out, data, 1e6)).rejects.toMatchObject({
      code: 'model_output_invalid',
      message: expect.stringContaining(ARTIFACT_SIDECAR_FILE),
    });
  });

  it('refuses a model folder without MLmodel, naming what it found', async () => {
    const data = await prepareJobData(store, request, path.join(work, 'data3'));
    const out = path.join(work, 'bad');
    await mkdir(out, { recursive: true });
    await writeFile(path.join(out, 'model.pkl'), 'x');
    await expect(collectJobModel(store, out, data, 1e6)).rejects.toMatchObject({ code: 'mlmodel_missing' });
  });
});
