import resources from '../../../lib/resources.json';
import { ArtifactStore } from '../../../lib/storage/blob';
import { LocalTrainingBackend } from '../../../lib/training/backends/local';
import type { JobStatus } from '../../../lib/training/backends/types';
import type { TrainingJobRequestInput } from '../../../lib/contracts/trainingJob';
import type { ColumnarDataset } from '../../../lib/training/dataset';
import { openModelFolder } from '../../../lib/mlmodel/blobFolder';
import { loadModel } from '../../../lib/training/models/predict';
import { syntheticClassification } from '../../../lib/training/synthetic';
import { columnarBytes } from '../../support/datasets';
import { localWorkerBackend } from '../../support/localWorker';
import type { BlobEmulator } from '../../support/emulators';
import { startAzuriteBlob } from '../../support/emulators';
import { gone } from '../../support/processes';

describe('local training backend: a real worker process on Azurite', () => {
  let azurite: BlobEmulator;
  let store: ArtifactStore;
  let backend: LocalTrainingBackend;
  let small: { uri: string; sha256: string };
  let large: { uri: string; sha256: string };

  const waitFor = async (jobId: string, done: (s: JobStatus) => boolean, b = backend, timeoutMs = 90_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await b.status(jobId);
      if (done(s)) return s;
      if (Date.now() > deadline) throw new Error(`job ${jobId} stuck: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  const statusFile = async (jobId: string) =>
    (
      await store.getJson<{ pid: number; state: string }>({
        container: resources.blobContainers.jobs,
        path: `${jobId}/status.json`,
      })
    ).value;

  const upload = async (ds: ColumnarDataset) => {
    const stored = await store.putContentAddressed(resources.blobContainers.datasets, columnarBytes(ds));
    return { uri: stored.uri, sha256: stored.sha256 };
  };
  const request = (jobId: string, over: Partial<TrainingJobRequestInput> = {}): TrainingJobRequestInput => ({
    jobId,
    spec: { algorithm: 'logistic_regression', target: 'label', features: ['x0', 'x1', 'x2', 'x3'] },
    dataset: small,
    ...over,
  });
  const slowSpec = {
    algorithm: 'gradient_boosting' as const,
    target: 'label',
    features: ['x0', 'x1', 'x2', 'x3'],
    hyperparameters: { rounds: 5_000, earlyStoppingRounds: 0, maxDepth: 8, minSamplesLeaf: 1 },
  };

  beforeAll(async () => {
    azurite = await startAzuriteBlob();
    store = ArtifactStore.fromConnectionString(azurite.connectionString);
    await store.ensureContainers();
    backend = localWorkerBackend(store, azurite.connectionString, { heartbeatStaleMs: 20_000 });
    small = await upload(syntheticClassification({ rows: 2_000, features: 4, seed: 1 }));
    large = await upload(syntheticClassification({ rows: 30_000, features: 4, seed: 2 }));
  }, 120_000);
  afterAll(async () => {
    await backend?.stopAll();
    await azurite?.stop();
  });

  it('trains in a child process and stores a verified model, once per job id', async () => {
    await expect(backend.submit(request('job-ok'))).resolves.toEqual({ jobId: 'job-ok', created: true });
    await expect(backend.submit(request('job-ok'))).resolves.toEqual({ jobId: 'job-ok', created: false });
    const done = await waitFor('job-ok', (s) => s.state !== 'queued' && s.state !== 'running');
    expect(done.state).toBe('completed');
    expect(done.progress).toBe(1);
    expect(done.result!.rows.train).toBeGreaterThan(1_000);
    expect(done.result!.metrics.holdout!.roc_auc).toBeGreaterThan(0.7);
    expect(done.logTail.some((l) => l.includes('trained logistic_regression'))).toBe(true);
    expect(done.heartbeatAt).toBeDefined();
    // An MLflow folder under its manifest digest (verified on open); model.json is the Sluice model.
    const folder = await openModelFolder(store, done.result!.modelUri, done.result!.modelDigest);
    expect(loadModel(JSON.parse((await folder.read('model.json')).toString('utf8'))).classes).toEqual([
      'no',
      'yes',
    ]);
    expect(done.result!.artifact).toMatchObject({
      flavor: 'onnx',
      onnxPath: 'model.onnx',
      classes: ['no', 'yes'],
    });
    const metrics = await store.getJson<{ history: unknown[] }>({
      container: 'jobs',
      path: 'job-ok/metrics.json',
    });
    expect(metrics.value.history.length).toBeGreaterThan(0);
    expect(await gone((await statusFile('job-ok')).pid)).toBe(true);
  }, 120_000);

  it('cancel stops the worker process', async () => {
    await backend.submit(request('job-cancel', { spec: slowSpec, dataset: large }));
    await waitFor('job-cancel', (s) => s.state === 'running' && s.iteration > 0);
    const { pid } = await statusFile('job-cancel');
    await backend.cancel('job-cancel');
    const s = await waitFor('job-cancel', (x) => x.state !== 'running');
    expect(s.state).toBe('canceled');
    expect(await gone(pid)).toBe(true);
    await backend.cancel('job-cancel'); // no-op on a finished job
  }, 120_000);

  it('a worker that dies is reported failed with its log tail', async () => {
    await backend.submit(request('job-killed', { spec: slowSpec, dataset: large }));
    await waitFor('job-killed', (s) => s.state === 'running' && s.iteration > 0);
    process.kill((await statusFile('job-killed')).pid, 'SIGKILL');
    const s = await waitFor('job-killed', (x) => x.state !== 'running');
    expect(s.state).toBe('failed');
    expect(s.error!.code).toBe('worker_crashed');
    expect(s.error!.message).toContain('SIGKILL');
    expect(s.logTail.some((l) => l.includes('dataset'))).toBe(true);
  }, 120_000);

  it('another instance sees a frozen worker as dead once its heartbeat is stale', async () => {
    await backend.submit(request('job-frozen', { spec: slowSpec, dataset: large }));
    await waitFor('job-frozen', (s) => s.state === 'running');
    const { pid } = await statusFile('job-frozen');
    process.kill(pid, 'SIGSTOP');
    try {
      const otherInstance = new LocalTrainingBackend({ files: store, heartbeatStaleMs: 1_500 });
      const s = await waitFor('job-frozen', (x) => x.state !== 'running', otherInstance, 30_000);
      expect(s.state).toBe('failed');
      expect(s.error!.code).toBe('worker_died');
    } finally {
      process.kill(pid, 'SIGKILL');
      process.kill(pid, 'SIGCONT');
    }
  }, 120_000);

  it('enforces the time limit', async () => {
    await backend.submit(request('job-slow', { spec: { ...slowSpec, timeLimitSeconds: 2 }, dataset: large }));
    const s = await waitFor('job-slow', (x) => x.state !== 'running' && x.state !== 'queued');
    expect(s.state).toBe('failed');
    expect(s.error!.code).toBe('time_limit_exceeded');
  }, 120_000);

  it('refuses a dataset whose bytes do not match their digest', async () => {
    await backend.submit(request('job-tampered', { dataset: { uri: small.uri, sha256: 'f'.repeat(64) } }));
    const s = await waitFor('job-tampered', (x) => x.state !== 'running' && x.state !== 'queued');
    expect(s.state).toBe('failed');
    expect(s.error!.code).toBe('BLOB_DIGEST_MISMATCH');
    expect(s.logTail.join('\n')).toContain('BLOB_DIGEST_MISMATCH');
  }, 120_000);

  it('an invalid request is refused before anything starts', async () => {
    await expect(
      backend.submit({
        ...request('job-bad'),
        spec: { algorithm: 'ridge', target: 'y', features: [] },
      } as TrainingJobRequestInput),
    ).rejects.toThrow();
    await expect(backend.status('job-bad')).rejects.toMatchObject({ code: 'job_not_found' });
  });
});
