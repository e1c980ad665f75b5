/**
 * @jest-environment ./test/support/onnxEnvironment.js
 *
 * The databricks backend against the Jobs API 2.2 fake (loopback HTTP) and Azurite: the user's own
 * code runs for real (examples/training/sklearn/train.py with /usr/bin/python3) as the fake's
 * spark_python_task, reading and writing a Unity Catalog volume simulated over the jobs container,
 * and the model folder it wrote is collected, checked and stored. Then every way a run ends, the
 * older and newer state fields, cancel, idempotency, and the API's errors and retries.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AccessToken, TokenCredential } from '@azure/identity';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpRequest, InvocationContext } from '@azure/functions';
import type { DatabricksWakeData } from '../../../functions/databricksEvents';
import { createDatabricksEventsHandler, databricksEventsDeps } from '../../../functions/databricksEvents';
import { withProblems } from '../../../functions/support/http';
import { trainingMonitorInstanceId } from '../../../lib/contracts/training';
import type { TrainingJobRequestInput } from '../../../lib/contracts/trainingJob';
import { trainingJobId } from '../../../lib/training/jobId';
import { NonRetriableError, TransientError } from '../../../lib/errors';
import { isModelFolderUri, openModelFolder } from '../../../lib/mlmodel/blobFolder';
import type { ArtifactStore } from '../../../lib/storage/blob';
import { DatabricksTrainingBackend, jobOfRun } from '../../../lib/training/backends/databricks';
import { AZURE_DATABRICKS_SCOPE, DatabricksClient } from '../../../lib/training/backends/databricksApi';
import type { JobStatus } from '../../../lib/training/backends/types';
import { codeFolderDigest } from '../../../lib/training/userJob/codeDigest';
import type { BlobEmulator } from '../../support/emulators';
import {
  OUT_VOLUME,
  REPO_ROOT as ROOT,
  startWagesStore,
  VOLUME,
  WORKSPACE,
} from '../../support/databricksVolumes';
import type { FakeDatabricks } from '../../support/fakes/databricks';
import { ENDINGS, pythonVolumeExecutor, startFakeDatabricks } from '../../support/fakes/databricks';

class StaticCredential implements TokenCredential {
  scopes: string[] = [];
  constructor(private readonly token: string) {}
  async getToken(scopes: string | string[]): Promise<AccessToken> {
    this.scopes.push(...(Array.isArray(scopes) ? scopes : [scopes]));
    return { token: this.token, expiresOnTimestamp: Date.now() + 3_600_000 };
  }
}

let azurite: BlobEmulator;
let store: ArtifactStore;
let dataset: { uri: string; sha256: string };
let scratch: string;

beforeAll(async () => {
  ({ azurite, store, dataset } = await startWagesStore());
  scratch = await mkdtemp(path.join(tmpdir(), 'sluice-dbx-code-'));
  // A user job that fails, and one that succeeds without writing a model.
  await writeFile(
    path.join(scratch, 'fails.py'),
    'import sys\nprint("loading", flush=True)\nraise ValueError("the training data has no rows for class x")\n',
  );
  await writeFile(path.join(scratch, 'nothing.py'), 'print("done, but no model")\n');
}, 120_000);
afterAll(async () => {
  await azurite?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

let seq = 0;
const nextJobId = () => `dbx-job-${++seq}`;

function request(jobId: string, overrides: Record<string, unknown> = {}): TrainingJobRequestInput {
  return {
    jobId,
    runId: 'run-dbx',
    dataset,
    spec: {
      algorithm: 'custom',
      backend: 'databricks',
      target: 'gender',
      features: ['education', 'experience', 'wage'],
      code: `${WORKSPACE}/sklearn`,
      command: '/usr/bin/python3 train.py',
      hyperparameters: { C: 1 },
      timeLimitSeconds: 600,
      databricks: {
        newCluster: { spark_version: '15.4.x-scala2.12', node_type_id: 'Standard_DS3_v2', num_workers: 1 },
      },
      ...overrides,
    },
  } as TrainingJobRequestInput;
}

async function untilEnded(
  backend: DatabricksTrainingBackend,
  jobId: string,
  max = 400,
): Promise<JobStatus[]> {
  const seen: JobStatus[] = [];
  for (let i = 0; i < max; i++) {
    const s = await backend.status(jobId);
    seen.push(s);
    if (s.state === 'completed' || s.state === 'failed' || s.state === 'canceled') return seen;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`job ${jobId} did not end: ${JSON.stringify(seen.at(-1))}`);
}

describe('databricks backend, the user code run for real on the fake', () => {
  let fake: FakeDatabricks;
  let credential: StaticCredential;
  let backend: DatabricksTrainingBackend;
  // Sluice's databricks-events function on loopback, as the notification destination's URL.
  let events: Server;
  const woken: { instanceId: string; data: DatabricksWakeData }[] = [];

  beforeAll(async () => {
    const handler = withProblems(
      createDatabricksEventsHandler(
        async () => databricksEventsDeps(store),
        async (instanceId, data) => {
          woken.push({ instanceId, data });
        },
      ),
    );
    events = createServer((req, res) => {
      void (async () => {
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        const answer = await handler(
          new HttpRequest({
            url: `http://localhost${req.url ?? '/'}`,
            method: 'POST',
            headers: { 'content-type': req.headers['content-type'] ?? '' },
            body: { string: Buffer.concat(chunks).toString('utf8') },
          }),
          new InvocationContext({ logHandler: () => undefined }),
        );
        res.writeHead(answer.status ?? 200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(answer.jsonBody ?? {}));
      })();
    });
    await new Promise<void>((resolve) => events.listen(0, '127.0.0.1', resolve));
    const eventsUrl = `http://127.0.0.1:${(events.address() as AddressInfo).port}/api/training/databricks-events?code=k`;
    fake = await startFakeDatabricks({
      destinations: { 'dest-1': eventsUrl },
      executor: pythonVolumeExecutor({
        store,
        volumeRoot: VOLUME,
        outputRoot: OUT_VOLUME,
        workspace: {
          [`${WORKSPACE}/sklearn`]: path.join(ROOT, 'examples', 'training', 'sklearn'),
          [`${WORKSPACE}/scratch`]: scratch,
        },
      }),
    });
    credential = new StaticCredential('fake-databricks-token');
    backend = new DatabricksTrainingBackend({
      client: new DatabricksClient({ host: fake.url, credential: () => credential }),
      store,
      jobRoot: VOLUME,
      outputRoot: OUT_VOLUME,
      webhookDestinationId: 'dest-1',
    });
  });
  afterAll(async () => {
    await fake.close();
    await new Promise<void>((resolve) => events.close(() => resolve()));
  });

  it('submits one spark_python_task run, trains with scikit-learn, and collects the checked ONNX model once', async () => {
    const jobId = trainingJobId('run-dbx');
    await expect(backend.submit(request(jobId))).resolves.toEqual({ jobId, created: true });
    expect(credential.scopes).toEqual([AZURE_DATABRICKS_SCOPE]);
    const run = [...fake.runs.values()].at(-1)!;
    expect(run.body).toMatchObject({
      run_name: `sluice ${jobId}`,
      idempotency_token: jobId,
      queue: { enabled: true },
      webhook_notifications: { on_success: [{ id: 'dest-1' }], on_failure: [{ id: 'dest-1' }] },
    });
    expect(run.task).toMatchObject({
      task_key: 'train',
      spark_python_task: { python_file: `${WORKSPACE}/sklearn/train.py`, parameters: [] },
      timeout_seconds: 600,
    });
    const env = (run.task.new_cluster as { spark_env_vars: Record<string, string> }).spark_env_vars;
    expect(env).toMatchObject({
      SLUICE_JOB_ID: jobId,
      SLUICE_TRAIN: `${VOLUME}/${jobId}/data/train.csv`,
      SLUICE_HOLDOUT_PARQUET: `${VOLUME}/${jobId}/data/holdout.parquet`,
      SLUICE_CONTRACT: `${VOLUME}/${jobId}/data/contract.json`,
      // The run writes the joboutputs volume only: the jobs volume (Sluice's records) is read-only to it.
      SLUICE_OUTPUT: `${OUT_VOLUME}/${jobId}`,
      SLUICE_TARGET: 'gender',
      SLUICE_FEATURES: '["education","experience","wage"]',
      SLUICE_TASK: 'classification',
      SLUICE_HYPERPARAMETERS: '{"C":1}',
      SLUICE_SEED: '42',
    });
    expect(await store.exists({ container: 'jobs', path: `${jobId}/data/train.csv` })).toBe(true);
    expect(await jobOfRun(store, String(run.runId))).toBe(jobId);

    const seen = await untilEnded(backend, jobId);
    expect(seen[0]).toMatchObject({ state: 'queued', backendStatus: 'QUEUED ACTIVE_RUNS_LIMIT_REACHED' });
    expect(seen.some((s) => s.state === 'running' && s.backendStatus === 'RUNNING')).toBe(true);
    const done = seen.at(-1)!;
    expect(done).toMatchObject({ state: 'completed', backendStatus: 'TERMINATED SUCCESS', progress: 1 });
    const result = done.result!;
    expect(isModelFolderUri(result.modelUri)).toBe(true);
    expect(result).toMatchObject({
      algorithm: 'custom',
      task: 'classification',
      iterations: 0,
      converged: true,
    });
    expect(result.artifact).toMatchObject({
      format: 'mlflow',
      flavor: 'onnx',
      onnxPath: 'model.onnx',
      target: 'gender',
      classes: ['female', 'male'],
    });
    expect(result.metrics.job).toHaveProperty('holdout_accuracy');
    expect(done.metrics).toEqual(result.metrics.job);
    expect(result.rows.train! + result.rows.validation! + result.rows.holdout!).toBe(534);
    const folder = await openModelFolder(store, result.modelUri, result.modelDigest);
    expect(folder.manifest.map((f) => f.path)).toEqual(['MLmodel', 'metrics.json', 'model.onnx']);

    // The run's on_success notification reached the events function, which woke the job's monitor.
    for (let i = 0; i < 100 && fake.notifications.length === 0; i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(fake.notifications).toMatchObject([{ id: 'dest-1', status: 200 }]);
    expect(woken).toEqual([
      {
        instanceId: trainingMonitorInstanceId('run-dbx', 1),
        data: { jobId, status: 'jobs.on_success', eventId: `databricks:jobs.on_success:${run.runId}` },
      },
    ]);

    // Recorded once: later reads answer from Blob without asking Databricks.
    const calls = fake.requests.length;
    await expect(backend.status(jobId)).resolves.toEqual(done);
    expect(fake.requests.length).toBe(calls);
    // A retried submit starts nothing.
    await expect(backend.submit(request(jobId))).resolves.toEqual({ jobId, created: false });
    expect(fake.requests.filter((r) => r.path.endsWith('/runs/submit'))).toHaveLength(1);
  }, 120_000);

  it('stages a host code folder where runs can only read it, runs it from there, and binds its digest to the model', async () => {
    const staging = new DatabricksTrainingBackend({
      client: new DatabricksClient({ host: fake.url, credential: () => credential }),
      store,
      jobRoot: VOLUME,
      outputRoot: OUT_VOLUME,
      codeBaseDir: ROOT,
      codeRoot: path.join(ROOT, 'examples'),
    });
    const jobId = nextJobId();
    await staging.submit(request(jobId, { code: 'examples/training/sklearn' }));
    const run = [...fake.runs.values()].at(-1)!;
    // The run executes the staged copy in the jobs volume, not a workspace file that could change.
    expect(run.task).toMatchObject({
      spark_python_task: { python_file: `${VOLUME}/${jobId}/code/train.py`, parameters: [] },
    });
    expect(await store.exists({ container: 'jobs', path: `${jobId}/code/train.py` })).toBe(true);
    const digest = await codeFolderDigest(path.join(ROOT, 'examples', 'training', 'sklearn'));
    expect(digest).toMatch(/^[0-9a-f]{64}$/);

    const done = (await untilEnded(staging, jobId)).at(-1)!;
    expect(done).toMatchObject({ state: 'completed', result: { algorithm: 'custom', codeDigest: digest } });

    // A workspace path is Databricks' to resolve: no digest Sluice could verify.
    const plainJob = nextJobId();
    await backend.submit(request(plainJob));
    const plain = (await untilEnded(backend, plainJob)).at(-1)!;
    expect(plain.state).toBe('completed');
    expect(plain.result?.codeDigest).toBeUndefined();

    // Outside USER_CODE_ROOT, missing, or for a task kind that cannot run a staged file: refused before any run.
    const before = fake.runs.size;
    await expect(staging.submit(request(nextJobId(), { code: '../etc' }))).rejects.toMatchObject({
      code: 'code_outside_root',
    });
    await expect(
      staging.submit(request(nextJobId(), { code: 'examples/training/no-such-folder' })),
    ).rejects.toMatchObject({ code: 'code_folder_missing' });
    await expect(
      staging.submit(
        request(nextJobId(), {
          code: 'examples/training/sklearn',
          command: undefined,
          databricks: { task: 'notebook' },
        }),
      ),
    ).rejects.toMatchObject({ code: 'databricks_code_unsupported' });
    expect(fake.runs.size).toBe(before);
  }, 120_000);

  it('a submit that crashed after runs/submit gets the same run again (idempotency token = job id)', async () => {
    const jobId = nextJobId();
    fake.setScript(['QUEUED', 'PENDING']);
    await backend.submit(request(jobId));
    const runs = fake.runs.size;
    // As if the process died before it recorded the run.
    await store.delete({ container: 'jobs', path: `${jobId}/databricks.json` });
    await backend.submit(request(jobId));
    expect(fake.runs.size).toBe(runs);
    expect(
      fake.requests.filter((r) => (r.body as { idempotency_token?: string })?.idempotency_token === jobId),
    ).toHaveLength(2);
    await backend.cancel(jobId);
    fake.setScript(['QUEUED', 'PENDING', 'RUNNING', 'TERMINATING', 'TERMINATED']);
  });

  it("a failing script fails the job with the task's error and the end of its trace (runs/get-output)", async () => {
    const jobId = nextJobId();
    await backend.submit(request(jobId, { code: `${WORKSPACE}/scratch`, command: 'python3 fails.py' }));
    const done = (await untilEnded(backend, jobId)).at(-1)!;
    expect(done.state).toBe('failed');
    expect(done.backendStatus).toBe('TERMINATED RUN_EXECUTION_ERROR');
    expect(done.error!.code).toBe('databricks_run_execution_error');
    expect(done.error!.message).toContain('ValueError: the training data has no rows for class x');
    expect(done.logTail.join('\n')).toContain('Traceback');
    expect(fake.requests.some((r) => r.path.startsWith('/api/2.2/jobs/runs/get-output?run_id='))).toBe(true);
  }, 60_000);

  it('a run that succeeds without writing a model fails the job, and nothing is stored', async () => {
    const jobId = nextJobId();
    await backend.submit(request(jobId, { code: `${WORKSPACE}/scratch`, command: 'nothing.py' }));
    const done = (await untilEnded(backend, jobId)).at(-1)!;
    expect(done).toMatchObject({ state: 'failed', backendStatus: 'TERMINATED SUCCESS' });
    expect(done.error!.code).toBe('model_output_empty');
    expect(done.result).toBeUndefined();
  }, 60_000);
});

describe('databricks backend, run states and API errors', () => {
  let fake: FakeDatabricks;
  let backend: DatabricksTrainingBackend;

  beforeAll(async () => {
    fake = await startFakeDatabricks({ clusters: ['0101-cluster'] });
    backend = new DatabricksTrainingBackend({
      client: new DatabricksClient({ host: fake.url, token: 'fake-databricks-token', baseRetryDelayMs: 1 }),
      store,
      jobRoot: `abfss://jobs@${store.account}.dfs.core.windows.net`,
    });
  });
  afterAll(() => fake.close());

  it.each([
    [
      'cluster error',
      ['PENDING', 'TERMINATED'],
      ENDINGS.clusterError,
      false,
      'failed',
      'databricks_cluster_error',
    ],
    ['canceled in the UI', ['RUNNING', 'TERMINATED'], ENDINGS.canceled, false, 'canceled', undefined],
    [
      'timed out (older fields only)',
      ['RUNNING', 'TERMINATED'],
      ENDINGS.timedOut,
      true,
      'failed',
      'time_limit_exceeded',
    ],
    [
      'failed (older fields only)',
      ['RUNNING', 'TERMINATED'],
      ENDINGS.failed,
      true,
      'failed',
      'databricks_failed',
    ],
    [
      'internal error',
      ['PENDING', 'INTERNAL_ERROR'],
      ENDINGS.failed,
      false,
      'failed',
      'databricks_internal_error',
    ],
    ['skipped', ['QUEUED', 'SKIPPED'], ENDINGS.failed, false, 'failed', 'databricks_skipped'],
  ] as const)('%s', async (_name, script, ending, legacyOnly, state, code) => {
    const jobId = nextJobId();
    fake.setScript([...script], ending, undefined, legacyOnly);
    await backend.submit(request(jobId));
    const done = (await untilEnded(backend, jobId)).at(-1)!;
    expect(done.state).toBe(state);
    expect(done.error?.code).toBe(code);
  });

  it('maps BLOCKED and WAITING_FOR_RETRY to queued, and cancels a running run', async () => {
    const jobId = nextJobId();
    fake.setScript(['BLOCKED', 'WAITING_FOR_RETRY', 'RUNNING', 'RUNNING', 'RUNNING']);
    await backend.submit(request(jobId));
    const states = [];
    for (let i = 0; i < 3; i++) states.push((await backend.status(jobId)).state);
    expect(states).toEqual(['queued', 'queued', 'running']);
    await backend.cancel(jobId);
    expect(fake.requests.filter((r) => r.path === '/api/2.2/jobs/runs/cancel')).toHaveLength(1);
    const done = (await untilEnded(backend, jobId)).at(-1)!;
    expect(done).toMatchObject({ state: 'canceled', backendStatus: 'TERMINATED USER_CANCELED' });
    await backend.cancel(jobId); // canceling a finished job changes nothing
    expect(fake.requests.filter((r) => r.path === '/api/2.2/jobs/runs/cancel')).toHaveLength(1);
  });

  // Regression: a run Databricks kept queued (no capacity) was polled forever; Azure ML's queued
  // limit now applies from submit, with the same setting.
  it('cancels a run queued past the limit and fails it with queued_too_long, once', async () => {
    let now = Date.parse('2026-01-01T00:00:00Z');
    const limited = new DatabricksTrainingBackend({
      client: new DatabricksClient({ host: fake.url, token: 'fake-databricks-token', baseRetryDelayMs: 1 }),
      store,
      jobRoot: `abfss://jobs@${store.account}.dfs.core.windows.net`,
      queuedLimitSeconds: 600,
      now: () => now,
    });
    const jobId = nextJobId();
    fake.setScript(['QUEUED', 'PENDING', 'BLOCKED', 'QUEUED', 'QUEUED', 'QUEUED']);
    await limited.submit(request(jobId));
    const cancels = () => fake.requests.filter((r) => r.path === '/api/2.2/jobs/runs/cancel').length;
    const before = cancels();
    now += 600_000; // at the limit: still waiting
    await expect(limited.status(jobId)).resolves.toMatchObject({ state: 'queued' });
    expect(cancels()).toBe(before);
    now += 1_000;
    const failed = await limited.status(jobId);
    expect(failed).toMatchObject({ state: 'failed', error: { code: 'queued_too_long' } });
    expect(failed.error!.message).toMatch(/for 601 s, over the limit of 600 s/);
    expect(cancels()).toBe(before + 1);
    // Recorded: later polls answer from Blob without asking Databricks again.
    const calls = fake.requests.length;
    await expect(limited.status(jobId)).resolves.toMatchObject({ error: { code: 'queued_too_long' } });
    expect(fake.requests.length).toBe(calls);
  });

  it('retries 429 and 503 as Retry-After asks, and gives up bounded with a TransientError', async () => {
    const jobId = nextJobId();
    fake.setScript(['RUNNING']);
    await backend.submit(request(jobId));
    fake.failNext(429, 2, '0');
    await expect(backend.status(jobId)).resolves.toMatchObject({ state: 'running' });
    fake.failNext(503, 10);
    const err = await backend.status(jobId).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as TransientError).code).toBe('databricks_unavailable');
    expect((err as Error).message).toContain('HTTP 503 TEMPORARILY_UNAVAILABLE');
    fake.failNext(503, 0);
  });

  it("a 4xx is not retried: NonRetriableError with Databricks' error_code and message", async () => {
    const jobId = nextJobId();
    const before = fake.requests.length;
    const err = await backend
      .submit(
        request(jobId, {
          databricks: { existingClusterId: 'no-such-cluster' },
          command: 'train.py ${SLUICE_OUTPUT}',
        }),
      )
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NonRetriableError);
    expect((err as NonRetriableError).code).toBe('databricks_rejected');
    expect((err as Error).message).toContain(
      'HTTP 400 INVALID_PARAMETER_VALUE: Cluster no-such-cluster does not exist',
    );
    expect(fake.requests.slice(before).filter((r) => r.path.endsWith('/runs/submit'))).toHaveLength(1);
  });

  it('a rejected token and a token that cannot be had are clear NonRetriableErrors', async () => {
    const bad = new DatabricksClient({ host: fake.url, token: 'wrong' });
    await expect(bad.getRun('1')).rejects.toMatchObject({
      code: 'databricks_forbidden',
      message: expect.stringContaining('403 PERMISSION_DENIED'),
    });
    const none = new DatabricksClient({
      host: fake.url,
      credential: () => ({
        getToken: () => Promise.reject(new Error('ManagedIdentityCredential: no identity endpoint')),
      }),
    });
    const err = await none.getRun('1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NonRetriableError);
    expect(err).toMatchObject({ code: 'databricks_no_token' });
    expect((err as Error).message).toContain('no identity endpoint');
  });

  it('refuses built-in algorithms and an unknown job', async () => {
    await expect(
      backend.submit({
        ...request(nextJobId()),
        spec: { algorithm: 'ridge', target: 'wage', features: ['education'] },
      }),
    ).rejects.toMatchObject({ code: 'databricks_custom_only' });
    await expect(backend.status('never-submitted')).rejects.toMatchObject({
      code: 'databricks_job_not_found',
    });
  });
});
