/**
 * submitTraining wakes the run's training monitor once the local job's final status is written,
 * so the pipeline does not wait out a poll interval; a retried submit and a later attempt wake the
 * right monitor once each. Real Azurite, a real worker process.
 */
import { submitTraining } from '../../../activities/submitTraining';
import { submitTrainingActivity, trainingMonitorInstanceId } from '../../../lib/contracts/training';
import { trainingJobId } from '../../../lib/training/jobId';
import resources from '../../../lib/resources.json';
import { ArtifactStore } from '../../../lib/storage/blob';
import type { LocalTrainingBackend } from '../../../lib/training/backends/local';
import { syntheticClassification } from '../../../lib/training/synthetic';
import { columnarBytes } from '../../support/datasets';
import { localWorkerBackend } from '../../support/localWorker';
import type { BlobEmulator } from '../../support/emulators';
import { startAzuriteBlob } from '../../support/emulators';

jest.setTimeout(120_000);

describe('submitTraining wakes the training monitor', () => {
  let azurite: BlobEmulator;
  let store: ArtifactStore;
  let local: LocalTrainingBackend;
  let dataset: { uri: string; sha256: string };

  beforeAll(async () => {
    azurite = await startAzuriteBlob();
    store = ArtifactStore.fromConnectionString(azurite.connectionString);
    await store.ensureContainers();
    local = localWorkerBackend(store, azurite.connectionString);
    const data = syntheticClassification({ rows: 500, features: 3, seed: 5 });
    const stored = await store.putContentAddressed(resources.blobContainers.datasets, columnarBytes(data));
    dataset = { uri: stored.uri, sha256: stored.sha256 };
  });
  afterAll(async () => {
    await local?.stopAll();
    await azurite?.stop();
  });

  it('raises the wake-up once, after the final status is readable, for the attempt that was submitted', async () => {
    const woken: { instance: string; jobId: string; state: string }[] = [];
    const wakeCalls: string[] = [];
    const wake = async (instance: string, jobId: string) => {
      wakeCalls.push(instance);
      woken.push({ instance, jobId, state: (await local.status(jobId)).state });
    };
    const deps = { backend: () => local };
    const spec = { algorithm: 'logistic_regression', target: 'label', features: ['x0', 'x1', 'x2'] };
    const first = submitTrainingActivity.input.parse({ runId: 'wake-run', spec, dataset });
    const second = submitTrainingActivity.input.parse({ runId: 'wake-run', spec, dataset, attempt: 2 });

    const a = await submitTraining(deps, wake)(first);
    const again = await submitTraining(deps, wake)(first); // a retried activity: same job, no second wake
    const b = await submitTraining(deps, wake)(second);
    expect(a.jobId).toBe(trainingJobId('wake-run'));
    expect(again).toEqual({ ...a, created: false });
    expect(b.jobId).toBe(trainingJobId('wake-run', 2));
    expect(b.jobId).not.toBe(a.jobId);

    // submitTraining chains its wake-up onto the job's end (`whenEnded`) before returning, so once
    // both ends have settled here every wake-up it could ever raise has been called, a duplicate
    // included: no sleep needed to give a second one time to show up.
    const ends = [a.jobId, b.jobId].map((jobId) => local.whenEnded(jobId));
    expect(ends).not.toContain(undefined);
    await Promise.all(ends);
    expect(wakeCalls.sort()).toEqual([
      trainingMonitorInstanceId('wake-run'),
      trainingMonitorInstanceId('wake-run', 2),
    ]);
    // Each wake-up reads the job's status before it records it: wait for both, bounded.
    const deadline = Date.now() + 30_000;
    while (woken.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(woken.sort((x, y) => x.instance.localeCompare(y.instance))).toEqual([
      { instance: trainingMonitorInstanceId('wake-run'), jobId: a.jobId, state: 'completed' },
      { instance: trainingMonitorInstanceId('wake-run', 2), jobId: b.jobId, state: 'completed' },
    ]);
    expect(trainingMonitorInstanceId('wake-run', 2)).toBe('wake-run:train:2');
  });
});
