/** @jest-environment ./test/support/onnxEnvironment.js */
import type { AccessToken, TokenCredential } from '@azure/identity';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServices, type RunningServices } from '../../../devhost/services';
import type { TrainingJobRequestInput } from '../../../lib/contracts/trainingJob';
import { inferDatasetContract } from '../../../lib/data/checking/inferDatasetContract';
import { conformTable } from '../../../lib/data/checking/conform';
import { encodeColumnar } from '../../../lib/data/reading/columnar';
import { readDataset } from '../../../lib/data/reading/readDataset';
import { openModelFolder } from '../../../lib/mlmodel/blobFolder';
import { ArtifactStore } from '../../../lib/storage';
import type { AzureMlOptions } from '../../../lib/training/backends/azureml';
import { AzureMlTrainingBackend, jobOutputDatastore } from '../../../lib/training/backends/azureml';
import type { FakeAzureMl } from '../../support/fakes/azureml';
import { startFakeAzureMl } from '../../support/fakes/azureml';
import { codeFolderDigest } from '../../../lib/training/userJob/codeDigest';
import { jobOutputContainer } from '../../../lib/training/userJob/outputGrant';
import { memoryLog } from '../../devhost/servicesLog';

jest.setTimeout(180_000);

/** A token source like ManagedIdentityCredential; `fail` makes it throw as one without an identity does. */
class TestCredential implements TokenCredential {
  scopes: string[] = [];
  fail: Error | undefined;
  async getToken(scopes: string | string[]): Promise<AccessToken> {
    if (this.fail) throw this.fail;
    this.scopes.push(...(Array.isArray(scopes) ? scopes : [scopes]));
    return { token: 'fake-arm-token', expiresOnTimestamp: Date.now() + 3_600_000 };
  }
}

const sklearnExample = path.resolve(__dirname, '../../../examples/training/sklearn');
const IMAGE = 'mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest';

const csv = [
  'id,x,y,color,label',
  ...Array.from({ length: 240 }, (_, i) => {
    const x = ((i * 37) % 100) / 10;
    const y = ((i * 53) % 100) / 10;
    return `${i},${x},${y},${i % 3 ? 'red' : 'blue'},${x + y > 10 ? 'high' : 'low'}`;
  }),
].join('\n');

describe('azureml user jobs (sluice.job/v1) against the ARM fake, run for real', () => {
  let services: RunningServices;
  let store: ArtifactStore;
  let fake: FakeAzureMl;
  let credential: TestCredential;
  let dataset: { uri: string; sha256: string };
  let contract: ReturnType<typeof inferDatasetContract>;
  let work: string;
  const sleeps: number[] = [];

  beforeAll(async () => {
    services = await startServices({ dataDir: null, log: memoryLog() });
    store = ArtifactStore.fromConnectionString(services.storageConnectionString);
    await store.ensureContainers();
    const read = await readDataset(Buffer.from(csv));
    contract = inferDatasetContract(read.table);
    const table = conformTable(read.table, contract);
    const stored = await store.putContentAddressed('datasets', Buffer.concat(encodeColumnar(table)), {
      prefix: 'columnar',
    });
    dataset = { uri: stored.uri, sha256: stored.sha256 };
    work = await mkdtemp(path.join(tmpdir(), 'sluice-azureml-user-'));
  });
  afterAll(async () => {
    await services?.stop();
    await rm(work, { recursive: true, force: true });
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
    credential = new TestCredential();
    sleeps.length = 0;
  });
  afterEach(async () => {
    await fake.close();
  });

  const options = (extra: Partial<AzureMlOptions> = {}): AzureMlOptions => ({
    endpoint: fake.url,
    subscriptionId: 'sub-1',
    resourceGroup: 'rg-sluice',
    workspace: 'mlw-sluice',
    credential,
    storageBlobEndpoint: store.service.url,
    files: store,
    store,
    workspaceStorageEndpoint: fake.storageUrl,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    ...extra,
  });

  const request = (jobId: string, spec: Record<string, unknown> = {}): TrainingJobRequestInput => ({
    jobId,
    runId: 'run-9',
    spec: {
      algorithm: 'custom',
      backend: 'azureml',
      code: sklearnExample,
      command: '/usr/bin/python3 train.py',
      target: 'label',
      features: ['x', 'y', 'color'],
      hyperparameters: { C: 2 },
      azureml: { environment: IMAGE },
      timeLimitSeconds: 600,
      ...spec,
    } as TrainingJobRequestInput['spec'],
    dataset,
    contract,
  });

  /** Polls until the job ends (each GET of the fake is one step along its script). */
  const poll = async (backend: AzureMlTrainingBackend, jobId: string) => {
    const seen: string[] = [];
    for (let i = 0; i < 20; i++) {
      const s = await backend.status(jobId);
      seen.push(`${s.state}:${s.backendStatus ?? '-'}`);
      if (s.state === 'completed' || s.state === 'failed' || s.state === 'canceled') return { s, seen };
    }
    throw new Error(`job ${jobId} did not end: ${seen.join(', ')}`);
  };

  it('runs the scikit-learn example as a command job: code asset, image environment, uri_file inputs, the model collected once', async () => {
    const backend = new AzureMlTrainingBackend(options());
    await expect(backend.submit(request('user-1'))).resolves.toEqual({ jobId: 'user-1', created: true });

    // The code folder went to the workspace storage under its digest, then a code version named after it.
    const codeVersions = [...fake.assets.keys()].filter((k) => k.includes('/codes/'));
    expect(codeVersions).toHaveLength(1);
    expect(codeVersions[0]).toMatch(
      /\/workspaces\/mlw-sluice\/codes\/sluice-code-[0-9a-f]{32}\/versions\/1$/,
    );
    const code = fake.assets.get(codeVersions[0]!)!.properties;
    expect(code).toMatchObject({ isAnonymous: true });
    expect(code.codeUri).toMatch(/\/azureml-blobstore-0000\/LocalUpload\/[0-9a-f]{64}$/);
    expect([...fake.blobs.keys()].some((k) => k.endsWith('/train.py'))).toBe(true);
    expect(credential.scopes).toEqual(
      expect.arrayContaining(['https://management.azure.com/.default', 'https://storage.azure.com/.default']),
    );
    // The image got an environment version of its own.
    const envs = [...fake.assets.entries()].filter(([k]) => k.includes('/environments/'));
    expect(envs).toHaveLength(1);
    expect(envs[0]![0]).toMatch(/\/environments\/sluice-image\/versions\/[0-9a-f]{32}$/);
    expect(envs[0]![1].properties).toMatchObject({ image: IMAGE, osType: 'Linux' });

    const p = fake.jobs.get('user-1')!.body.properties as {
      command: string;
      inputs: Record<string, unknown>;
    };
    expect(p).toMatchObject({
      jobType: 'Command',
      codeId: codeVersions[0],
      environmentId: envs[0]![0],
      resources: { instanceCount: 1, instanceType: 'Standard_DS3_v2' },
      limits: { jobLimitsType: 'Command', timeout: 'PT600S' },
      tags: { 'sluice.jobId': 'user-1', 'sluice.runId': 'run-9', 'sluice.contract': 'sluice.job/v1' },
      environmentVariables: {
        SLUICE_JOB_ID: 'user-1',
        SLUICE_TARGET: 'label',
        SLUICE_FEATURES: '["x","y","color"]',
        SLUICE_TASK: 'classification',
        SLUICE_HYPERPARAMETERS: '{"C":2}',
        SLUICE_SEED: '42',
      },
      outputs: {
        model: {
          jobOutputType: 'uri_folder',
          // The job's own datastore (a SAS for its own container): never the jobs container.
          uri: `azureml://datastores/${jobOutputDatastore('user-1')}/paths/output/`,
          mode: 'Upload',
        },
      },
    });
    expect(Object.keys(p.inputs).sort()).toEqual(
      [
        'contract',
        'holdout',
        'holdout_parquet',
        'train',
        'train_parquet',
        'validation',
        'validation_parquet',
      ].sort(),
    );
    expect(p.inputs.train).toEqual({
      jobInputType: 'uri_file',
      uri: `${store.service.url}/jobs/user-1/data/train.csv`,
      mode: 'Download',
    });
    expect(p.command).toContain('SLUICE_TRAIN="${{inputs.train}}"');
    expect(p.command).toContain('SLUICE_OUTPUT="${{outputs.model}}"');
    expect(p.command.endsWith(' /usr/bin/python3 train.py')).toBe(true);
    expect(await store.exists({ container: 'jobs', path: 'user-1/data/train.parquet' })).toBe(true);
    // The run behind the job, for the Event Grid wake-up (jobOwnerLookup reads it).
    expect((await store.getJson({ container: 'jobs', path: 'user-1/request.json' })).value).toMatchObject({
      jobId: 'user-1',
      runId: 'run-9',
    });

    const { s, seen } = await poll(backend, 'user-1');
    expect(fake.jobs.get('user-1')!.exitCode).toBe(0);
    expect(seen).toEqual([
      'queued:NotStarted',
      'queued:Queued',
      'queued:Preparing',
      'running:Running',
      'running:Finalizing',
      'completed:-',
    ]);
    expect(s.result).toMatchObject({
      algorithm: 'custom',
      task: 'classification',
      modelDigest: expect.stringMatching(/^[0-9a-f]{64}$/),
      artifact: { format: 'mlflow', flavor: 'onnx', task: 'classification', classes: ['high', 'low'] },
    });
    expect(s.result!.metrics.job).toEqual(
      expect.objectContaining({ holdout_accuracy: expect.any(Number), train_log_loss: expect.any(Number) }),
    );
    const folder = await openModelFolder(store, s.result!.modelUri, s.result!.modelDigest);
    expect(folder.manifest.map((f) => f.path)).toEqual(expect.arrayContaining(['MLmodel', 'model.onnx']));

    // Collected once: later polls answer from the record, without asking Azure ML again.
    const before = fake.requests.length;
    await expect(backend.status('user-1')).resolves.toMatchObject({
      state: 'completed',
      result: { modelDigest: s.result!.modelDigest },
    });
    expect(fake.requests.length).toBe(before);
  });

  it("writes only through its own SAS datastore (deleted once collected), and the uploaded code's digest goes with the model", async () => {
    const backend = new AzureMlTrainingBackend(options());
    await backend.submit(request('user-sas'));
    const name = jobOutputDatastore('user-sas');
    const ds = fake.datastores.get(name)!;
    expect(ds).toMatchObject({
      datastoreType: 'AzureBlob',
      accountName: store.account,
      containerName: jobOutputContainer('user-sas'),
      credentials: { credentialsType: 'Sas', secrets: { secretsType: 'Sas' } },
    });
    const sas = new URLSearchParams((ds.credentials as { secrets: { sasToken: string } }).secrets.sasToken);
    expect(sas.get('sr')).toBe('c'); // one container: the job's own
    expect(sas.get('sp')).toBe('racwl'); // no delete
    // No output, input or setting of the job names a SAS-free way into Sluice's records.
    const p = fake.jobs.get('user-sas')!.body.properties as { outputs: Record<string, { uri: string }> };
    expect(Object.values(p.outputs).map((o) => o.uri)).toEqual([
      `azureml://datastores/${name}/paths/output/`,
    ]);

    const { s } = await poll(backend, 'user-sas');
    expect(s.state).toBe('completed');
    expect(s.result!.codeDigest).toBe(await codeFolderDigest(sklearnExample));
    // What the job wrote is in its own container; the datastore holding the SAS is gone.
    expect(await store.exists({ container: jobOutputContainer('user-sas'), path: 'output/MLmodel' })).toBe(
      true,
    );
    expect(await store.exists({ container: 'jobs', path: 'user-sas/output/MLmodel' })).toBe(false);
    expect(fake.datastores.has(name)).toBe(false);
  });

  it('names data and output through the jobs datastore when one is configured, and still trains', async () => {
    await fake.close();
    fake = await startFakeAzureMl({
      blobAccountUrl: store.service.url,
      datastores: { sluicejobs: `${store.service.url}/jobs` },
      execute: {
        read: async (uri) => (await store.getBuffer(uri)).data,
        write: async (uri, bytes) => {
          await store.put(uri, bytes, { condition: 'overwrite' });
        },
      },
    });
    const backend = new AzureMlTrainingBackend(options({ jobsDatastore: 'sluicejobs' }));
    await backend.submit(request('user-ds'));
    const p = fake.jobs.get('user-ds')!.body.properties as {
      inputs: Record<string, { uri: string }>;
      outputs: Record<string, { uri: string }>;
    };
    expect(p.inputs.train!.uri).toBe('azureml://datastores/sluicejobs/paths/user-ds/data/train.csv');
    expect(p.inputs.contract!.uri).toBe('azureml://datastores/sluicejobs/paths/user-ds/data/contract.json');
    expect(p.outputs.model!.uri).toBe(`azureml://datastores/${jobOutputDatastore('user-ds')}/paths/output/`);
    const { s } = await poll(backend, 'user-ds');
    expect(s).toMatchObject({
      state: 'completed',
      result: { algorithm: 'custom', artifact: { flavor: 'onnx' } },
    });

    // A datastore the workspace does not have is Azure's 400, not retried.
    const wrong = new AzureMlTrainingBackend(options({ jobsDatastore: 'nope' }));
    await expect(wrong.submit(request('user-ds2'))).rejects.toMatchObject({
      name: 'NonRetriableError',
      code: 'azureml_rejected',
      message: expect.stringContaining('datastore nope does not exist'),
    });
  });

  it('reuses the uploaded code and the image environment, and takes asset references as they are', async () => {
    const backend = new AzureMlTrainingBackend(options());
    await backend.submit(request('user-2a'));
    // The per-job output datastore is every job's own (its SAS), so it is not counted as reuse.
    const puts = () =>
      fake.requests.filter((r) => r.method === 'PUT' && !r.path.includes('/datastores/sluiceout_')).length;
    const before = puts();
    await backend.submit(request('user-2b'));
    expect(puts() - before).toBe(1); // only the job: code, files and environment were found
    const codeId = fake.jobs.get('user-2a')!.body.properties.codeId as string;
    expect(fake.jobs.get('user-2b')!.body.properties.codeId).toBe(codeId);

    // An existing code asset (azureml:name:version) and environment (name@latest, and a registry id).
    const codeName = codeId.split('/codes/')[1]!.split('/')[0]!;
    await backend.submit(
      request('user-2c', {
        code: `azureml:${codeName}:1`,
        azureml: { environment: 'azureml:sluice-image@latest', compute: 'cpu-cluster' },
      }),
    );
    const c = fake.jobs.get('user-2c')!.body.properties;
    expect(c.codeId).toBe(codeId);
    expect(c.environmentId).toBe(fake.jobs.get('user-2a')!.body.properties.environmentId);
    expect(c.computeId).toBe(
      '/subscriptions/sub-1/resourceGroups/rg-sluice/providers/Microsoft.MachineLearningServices/workspaces/mlw-sluice/computes/cpu-cluster',
    );
    expect(c.resources).toBeUndefined();
    const registry = 'azureml://registries/azureml/environments/sklearn-1.5/versions/1';
    // The fake does not hold registry environments; the id is passed on unchanged.
    await backend.submit(
      request('user-2d', {
        code: `azureml:${codeName}:1`,
        azureml: { environment: registry, instanceType: 'Standard_E4s_v3' },
      }),
    );
    expect(fake.jobs.get('user-2d')!.body.properties).toMatchObject({
      environmentId: registry,
      resources: { instanceType: 'Standard_E4s_v3' },
    });
  });

  it("a job that exits non-zero fails with a link to its log; a bad model fails with the check's code", async () => {
    const bad = path.join(work, 'bad-code');
    await rm(bad, { recursive: true, force: true });
    await mkdir(bad, { recursive: true });
    await mkdir(path.join(bad, '__pycache__'), { recursive: true });
    await writeFile(path.join(bad, '__pycache__', 'crash.cpython-311.pyc'), 'not code');
    await writeFile(path.join(bad, 'crash.py'), 'import sys\nprint("boom", file=sys.stderr)\nsys.exit(3)\n');
    await writeFile(
      path.join(bad, 'junk.py'),
      'import os\nopen(os.path.join(os.environ["SLUICE_OUTPUT"], "MLmodel"), "w").write("flavors: [\\n")\n',
    );
    const backend = new AzureMlTrainingBackend(options());
    await backend.submit(request('user-3', { code: bad, command: '/usr/bin/python3 crash.py' }));
    const crashed = await poll(backend, 'user-3');
    expect(fake.jobs.get('user-3')!.log).toContain('boom');
    // Interpreter caches stay behind.
    expect(
      [...fake.blobs.keys()].filter((k) => k.includes('LocalUpload') && k.endsWith('crash.py')),
    ).toHaveLength(1);
    expect([...fake.blobs.keys()].some((k) => k.includes('__pycache__'))).toBe(false);
    expect(crashed.s).toMatchObject({
      state: 'failed',
      logTail: ['boom'],
      error: { code: 'job_failed', message: expect.stringContaining('https://ml.azure.com/runs/user-3') },
    });
    expect(crashed.s.error!.message).toMatch(/last lines of the log:\nboom$/);

    // A long log: only its end is read (64 KiB), whole lines, the last 50.
    await writeFile(
      path.join(bad, 'chatty.py'),
      'for i in range(20000):\n    print("line", i)\nraise SystemExit(1)\n',
    );
    await backend.submit(request('user-3b', { code: bad, command: '/usr/bin/python3 chatty.py' }));
    const chatty = await poll(backend, 'user-3b');
    expect(chatty.s.logTail).toEqual(Array.from({ length: 50 }, (_, i) => `line ${19950 + i}`));

    await backend.submit(request('user-4', { code: bad, command: '/usr/bin/python3 junk.py' }));
    const junk = await poll(backend, 'user-4');
    expect(junk.s).toMatchObject({ state: 'failed', error: { code: 'mlmodel_invalid' } });
    // Recorded: the next poll gives the same failure without a second check.
    await expect(backend.status('user-4')).resolves.toMatchObject({ error: { code: 'mlmodel_invalid' } });

    // Completed with nothing written.
    await writeFile(path.join(bad, 'nothing.py'), 'print("done")\n');
    await backend.submit(request('user-5', { code: bad, command: '/usr/bin/python3 nothing.py' }));
    await expect(poll(backend, 'user-5')).resolves.toMatchObject({
      s: { state: 'failed', error: { code: 'model_output_empty' } },
    });
  });

  it('maps every Azure ML state, records a cancel, and fails a job stuck in the queue', async () => {
    const backend = new AzureMlTrainingBackend(options());
    fake.setScript([
      'NotStarted',
      'Starting',
      'Provisioning',
      'Preparing',
      'Queued',
      'Running',
      'Finalizing',
      'Canceled',
    ]);
    await backend.submit(request('user-6'));
    const { s, seen } = await poll(backend, 'user-6');
    expect(seen).toEqual([
      'queued:NotStarted',
      'queued:Starting',
      'queued:Provisioning',
      'queued:Preparing',
      'queued:Queued',
      'running:Running',
      'running:Finalizing',
      'canceled:-',
    ]);
    expect(s.state).toBe('canceled');

    fake.setScript(['Queued']);
    await backend.submit(request('user-7'));
    await expect(backend.status('user-7')).resolves.toMatchObject({
      state: 'queued',
      backendStatus: 'Queued',
    });
    await backend.cancel('user-7');
    expect(fake.requests.filter((r) => r.method === 'POST').at(-1)!.path).toMatch(/\/jobs\/user-7\/cancel$/);
    await expect(poll(backend, 'user-7')).resolves.toMatchObject({ s: { state: 'canceled' } });

    // Canceled without Sluice asking, after the time limit: Azure ML's limits.timeout stopped it.
    fake.setScript(['Running', 'Canceled']);
    await backend.submit(request('user-7b', { timeLimitSeconds: 60 }));
    const later = new AzureMlTrainingBackend(options({ now: () => Date.now() + 61_000 }));
    await expect(poll(later, 'user-7b')).resolves.toMatchObject({
      s: { state: 'failed', error: { code: 'time_limit_exceeded' } },
    });

    fake.setScript(['Queued']);
    await backend.submit(request('user-8'));
    fake.setCreatedAt('user-8', new Date(Date.now() - 5 * 3600_000).toISOString());
    const stuck = await backend.status('user-8');
    expect(stuck).toMatchObject({ state: 'failed', error: { code: 'queued_too_long' } });
    expect(stuck.error!.message).toMatch(/Queued for \d+ s, over the limit of 14400 s/);
    expect(fake.jobs.get('user-8')!.status).toBe('CancelRequested');
    await expect(backend.status('user-8')).resolves.toMatchObject({ error: { code: 'queued_too_long' } });

    // A shorter limit from the settings.
    const strict = new AzureMlTrainingBackend(options({ queuedLimitSeconds: 60 }));
    fake.setScript(['Queued']);
    await strict.submit(request('user-9'));
    fake.setCreatedAt('user-9', new Date(Date.now() - 120_000).toISOString());
    await expect(strict.status('user-9')).resolves.toMatchObject({ error: { code: 'queued_too_long' } });
  });

  it('retries 429 and 5xx honoring Retry-After, bounded; does not retry 4xx; a missing token is not retried', async () => {
    const backend = new AzureMlTrainingBackend(options());
    fake.failNext(429, 2, '7');
    await backend.submit(request('user-10'));
    expect(sleeps).toEqual([7000, 7000]);
    expect(fake.jobs.has('user-10')).toBe(true);

    sleeps.length = 0;
    fake.failNext(503, 4);
    await expect(backend.status('user-10')).rejects.toMatchObject({
      name: 'TransientError',
      code: 'azureml_unavailable',
      message: expect.stringContaining('after 4 attempts'),
    });
    expect(sleeps).toEqual([1000, 2000, 4000]); // doubling backoff without Retry-After

    // A 4xx: Azure's code and message, asked once.
    const rejected = new AzureMlTrainingBackend(options({ apiVersion: '1999-01-01' }));
    const before = fake.requests.length;
    await expect(rejected.submit(request('user-15'))).rejects.toMatchObject({
      name: 'NonRetriableError',
      code: 'azureml_rejected',
      message: expect.stringContaining('InvalidApiVersionParameter'),
    });
    expect(fake.requests.length - before).toBe(1);
    expect(sleeps).toHaveLength(3);

    await expect(
      backend.submit(request('user-11', { azureml: { environment: 'azureml:no-such-env@latest' } })),
    ).rejects.toMatchObject({ name: 'NonRetriableError', code: 'azureml_asset_not_found' });
    const badImage = backend.submit(request('user-12', { azureml: { environment: 'not an image!' } }));
    await expect(badImage).rejects.toMatchObject({ code: 'azureml_environment_invalid' });
    await expect(
      backend.submit(request('user-13', { code: path.join(work, 'no-such-folder') })),
    ).rejects.toMatchObject({ code: 'code_folder_missing' });
    const noEnv = new AzureMlTrainingBackend(options());
    await expect(noEnv.submit(request('user-14', { azureml: {} }))).rejects.toMatchObject({
      code: 'azureml_environment_missing',
    });

    credential.fail = new Error('ManagedIdentityCredential: no managed identity endpoint found');
    await expect(backend.status('user-10')).rejects.toMatchObject({
      name: 'NonRetriableError',
      code: 'azureml_credential_unavailable',
      message: expect.stringContaining('no managed identity endpoint found'),
    });
  });
});
