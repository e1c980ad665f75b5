import type { AccessToken, TokenCredential } from '@azure/identity';
import { AzureMlTrainingBackend, mapAzureMlStatus } from '../../../lib/training/backends/azureml';
import type { BlobLocation, JobFiles } from '../../../lib/training/backends/types';
import type { TrainingJobRequestInput } from '../../../lib/contracts/trainingJob';
import type { FakeAzureMl } from '../../support/fakes/azureml';
import { startFakeAzureMl } from '../../support/fakes/azureml';
import { sampleTrainingResult } from '../../support/trainingSample';

/** A token source like ManagedIdentityCredential, without an identity endpoint. */
class StaticCredential implements TokenCredential {
  scopes: string[] = [];
  constructor(private readonly token: string) {}
  async getToken(scopes: string | string[]): Promise<AccessToken> {
    this.scopes.push(...(Array.isArray(scopes) ? scopes : [scopes]));
    return { token: this.token, expiresOnTimestamp: Date.now() + 3_600_000 };
  }
}

/** The job's output folder as the worker leaves it (in memory here; Blob in production). */
class MemoryFiles implements JobFiles {
  readonly blobs = new Map<string, string>();
  async put(ref: BlobLocation, data: Uint8Array | string, options?: { condition?: 'create' | 'overwrite' }) {
    const key = `${ref.container}/${ref.path}`;
    if (options?.condition !== 'overwrite' && this.blobs.has(key))
      return { ok: this.blobs.get(key) === String(data) };
    this.blobs.set(key, typeof data === 'string' ? data : Buffer.from(data).toString('utf8'));
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

const request = (jobId: string): TrainingJobRequestInput => ({
  jobId,
  runId: 'run-7',
  spec: { algorithm: 'logistic_regression', target: 'label', features: ['a', 'b'], timeLimitSeconds: 900 },
  dataset: {
    uri: 'https://acct.blob.core.windows.net/datasets/sha256/' + 'a'.repeat(64),
    sha256: 'a'.repeat(64),
  },
});

describe('azureml training backend against the ARM fake', () => {
  let fake: FakeAzureMl;
  let files: MemoryFiles;
  let credential: StaticCredential;
  let backend: AzureMlTrainingBackend;

  beforeEach(async () => {
    fake = await startFakeAzureMl();
    files = new MemoryFiles();
    credential = new StaticCredential('fake-arm-token');
    backend = new AzureMlTrainingBackend(backendOptions());
  });
  afterEach(async () => {
    await fake.close();
  });

  it('creates a command job with the documented body and a management-scope token', async () => {
    await expect(backend.submit(request('job-1'))).resolves.toEqual({ jobId: 'job-1', created: true });
    const put = fake.requests.find((r) => r.method === 'PUT')!;
    expect(put.path).toBe(
      '/subscriptions/sub-1/resourceGroups/rg-sluice/providers/Microsoft.MachineLearningServices/workspaces/mlw-sluice/jobs/job-1',
    );
    expect(put.apiVersion).toBe('2024-04-01');
    expect(credential.scopes).toContain('https://management.azure.com/.default');
    const p = fake.jobs.get('job-1')!.body.properties;
    expect(p).toMatchObject({
      jobType: 'Command',
      environmentId: 'azureml:sluice-node22:1',
      resources: { instanceCount: 1 },
      limits: { jobLimitsType: 'Command', timeout: 'PT900S' },
      inputs: {
        dataset: {
          jobInputType: 'uri_file',
          uri: 'https://acct.blob.core.windows.net/datasets/sha256/' + 'a'.repeat(64),
        },
        request: {
          jobInputType: 'uri_file',
          uri: 'https://acct.blob.core.windows.net/jobs/job-1/request.json',
        },
      },
      outputs: {
        job: {
          jobOutputType: 'uri_folder',
          uri: 'https://acct.blob.core.windows.net/jobs/job-1/',
          mode: 'ReadWriteMount',
        },
      },
      tags: { 'sluice.jobId': 'job-1', 'sluice.runId': 'run-7' },
    });
    expect(p.command).toContain('${{outputs.job}}');
    expect(JSON.parse(files.blobs.get('jobs/job-1/request.json')!)).toMatchObject({ jobId: 'job-1' });
  });

  it('does not create a second job when submit is retried', async () => {
    await backend.submit(request('job-2'));
    await expect(backend.submit(request('job-2'))).resolves.toEqual({ jobId: 'job-2', created: false });
    expect(fake.requests.filter((r) => r.method === 'PUT')).toHaveLength(1);
  });

  it('walks NotStarted → Queued → Preparing → Running → Finalizing → Completed, with the files the job wrote', async () => {
    await backend.submit(request('job-3'));
    const seen: string[] = [];
    for (let i = 0; i < 3; i++) seen.push((await backend.status('job-3')).state);
    files.blobs.set(
      'jobs/job-3/status.json',
      JSON.stringify({
        jobId: 'job-3',
        state: 'running',
        progress: 0.5,
        iteration: 40,
        metrics: { loss: 0.41 },
        logTail: ['iteration 40 loss 0.41'],
        updatedAt: new Date().toISOString(),
      }),
    );
    const running = await backend.status('job-3');
    expect(running).toMatchObject({
      state: 'running',
      backendStatus: 'Running',
      progress: 0.5,
      metrics: { loss: 0.41 },
      logTail: ['iteration 40 loss 0.41'],
    });
    const finalizing = await backend.status('job-3');
    expect(finalizing).toMatchObject({ state: 'running', backendStatus: 'Finalizing' });
    files.blobs.set(
      'jobs/job-3/status.json',
      JSON.stringify({
        jobId: 'job-3',
        state: 'completed',
        progress: 1,
        updatedAt: new Date().toISOString(),
        result: sampleTrainingResult('b'.repeat(64)),
      }),
    );
    const done = await backend.status('job-3');
    expect(seen).toEqual(['queued', 'queued', 'queued']);
    expect(done).toMatchObject({
      state: 'completed',
      backendStatus: 'Completed',
      result: { modelDigest: 'b'.repeat(64) },
    });
  });

  it('reports a failed job with the log tail the worker left', async () => {
    fake.setScript(['NotStarted', 'Running', 'Failed']);
    await backend.submit(request('job-4'));
    await backend.status('job-4');
    files.blobs.set(
      'jobs/job-4/status.json',
      JSON.stringify({
        jobId: 'job-4',
        state: 'failed',
        progress: 0.1,
        updatedAt: new Date().toISOString(),
        logTail: ['reading dataset', 'Error: out of memory'],
        error: { code: 'worker_crashed', message: 'out of memory' },
      }),
    );
    await backend.status('job-4');
    const failed = await backend.status('job-4');
    expect(failed).toMatchObject({
      state: 'failed',
      backendStatus: 'Failed',
      error: { code: 'worker_crashed' },
      logTail: ['reading dataset', 'Error: out of memory'],
    });
  });

  it('treats Completed without a model as a failure', async () => {
    fake.setScript(['Completed']);
    await backend.submit(request('job-5'));
    await expect(backend.status('job-5')).resolves.toMatchObject({
      state: 'failed',
      error: { code: 'no_model_output' },
    });
  });

  it('cancels with POST …/cancel (202) and ends Canceled; canceling a finished job is a no-op', async () => {
    await backend.submit(request('job-6'));
    await backend.cancel('job-6');
    expect(fake.requests.filter((r) => r.method === 'POST').map((r) => r.path)).toEqual([
      '/subscriptions/sub-1/resourceGroups/rg-sluice/providers/Microsoft.MachineLearningServices/workspaces/mlw-sluice/jobs/job-6/cancel',
    ]);
    expect((await backend.status('job-6')).backendStatus).toBe('CancelRequested');
    expect((await backend.status('job-6')).state).toBe('canceled');
    await backend.cancel('job-6');
    expect(fake.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
  });

  it('maps ARM errors: 404 and bad requests are not retried, 429/503 are', async () => {
    await expect(backend.status('nope')).rejects.toMatchObject({
      name: 'NonRetriableError',
      code: 'azureml_job_not_found',
    });
    // 503 on every attempt (the client retries 4 times): transient for the caller's own retry policy.
    fake.failNext(503, 4);
    await expect(backend.status('nope')).rejects.toMatchObject({ name: 'TransientError' });
    const badVersion = new AzureMlTrainingBackend({ ...backendOptions(), apiVersion: '1999-01-01' });
    await expect(badVersion.submit(request('job-7'))).rejects.toMatchObject({
      name: 'NonRetriableError',
      message: expect.stringContaining('InvalidApiVersionParameter'),
    });
    const noAuth = new AzureMlTrainingBackend({
      ...backendOptions(),
      credential: new StaticCredential('wrong'),
    });
    await expect(noAuth.status('job-1')).rejects.toMatchObject({
      message: expect.stringContaining('AuthenticationFailed'),
    });
  });

  it('uses a configured api-version and compute cluster', async () => {
    const b = new AzureMlTrainingBackend({
      ...backendOptions(),
      apiVersion: '2024-10-01',
      computeId:
        '/subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/w/computes/cpu',
    });
    await b.submit(request('job-8'));
    expect(fake.requests.at(-1)!.apiVersion).toBe('2024-10-01');
    expect(fake.jobs.get('job-8')!.body.properties.computeId).toMatch(/computes\/cpu$/);
    expect(fake.jobs.get('job-8')!.body.properties.resources).toBeUndefined();
  });

  it('fails a worker job stuck in the queue past its limit, and cancels it', async () => {
    fake.setScript(['Queued']);
    await backend.submit(request('job-9'));
    await expect(backend.status('job-9')).resolves.toMatchObject({ state: 'queued' });
    fake.setCreatedAt('job-9', new Date(Date.now() - 2 * 3600_000).toISOString());
    const strict = new AzureMlTrainingBackend({ ...backendOptions(), queuedLimitSeconds: 3600 });
    await expect(strict.status('job-9')).resolves.toMatchObject({
      state: 'failed',
      error: { code: 'queued_too_long', message: expect.stringContaining('over the limit of 3600 s') },
    });
    expect(fake.jobs.get('job-9')!.status).toBe('CancelRequested');
  });

  it('refuses a built-in algorithm when no worker environment is configured', async () => {
    const { environmentId: _unused, ...rest } = backendOptions();
    const noWorker = new AzureMlTrainingBackend(rest);
    await expect(noWorker.submit(request('job-10'))).rejects.toMatchObject({
      name: 'NonRetriableError',
      code: 'azureml_not_configured',
      message: expect.stringContaining('AZUREML_ENVIRONMENT_ID'),
    });
    expect(fake.jobs.has('job-10')).toBe(false);
  });

  it('maps every documented status', () => {
    expect(['NotStarted', 'Starting', 'Provisioning', 'Preparing', 'Queued'].map(mapAzureMlStatus)).toEqual(
      Array(5).fill('queued'),
    );
    expect(['Running', 'Finalizing', 'CancelRequested'].map(mapAzureMlStatus)).toEqual(
      Array(3).fill('running'),
    );
    expect(['Completed', 'Failed', 'Canceled'].map(mapAzureMlStatus)).toEqual([
      'completed',
      'failed',
      'canceled',
    ]);
  });

  function backendOptions() {
    return {
      endpoint: fake.url,
      subscriptionId: 'sub-1',
      resourceGroup: 'rg-sluice',
      workspace: 'mlw-sluice',
      credential,
      environmentId: 'azureml:sluice-node22:1',
      storageBlobEndpoint: 'https://acct.blob.core.windows.net',
      files,
      sleep: async () => undefined,
    };
  }
});
