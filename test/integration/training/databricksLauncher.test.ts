/**
 * @jest-environment ./test/support/onnxEnvironment.js
 *
 * Jobs on an existing cluster and on serverless compute get the same environment as on a new job
 * cluster: the databricks backend against the Jobs API 2.2 fake (loopback HTTP) and Azurite, the
 * fake running the submitted python_file for real with /usr/bin/python3 over volumes simulated on
 * the jobs and joboutputs containers. The python_file is Sluice's staged launcher; the unchanged
 * scikit-learn example (`python3 train.py`, which reads only SLUICE_* variables) trains and its
 * model is collected; and a job that logs to MLflow (test/fixtures/mlflow-job/logjob.py, through
 * the REST API of the in-repo MLflow fake) logs into the run Sluice linked it to, on both computes,
 * with no credential in the run's definition.
 */
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TrainingJobRequestInput } from '../../../lib/contracts/trainingJob';
import type { ArtifactStore } from '../../../lib/storage/blob';
import { DatabricksTrainingBackend } from '../../../lib/training/backends/databricks';
import { DatabricksClient } from '../../../lib/training/backends/databricksApi';
import { LAUNCHER_FILE, LAUNCHER_SOURCE } from '../../../lib/training/backends/databricksLauncher';
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
import { pythonVolumeExecutor, startFakeDatabricks } from '../../support/fakes/databricks';
import { FakeMlflow } from '../../support/fakes/mlflow';

jest.setTimeout(180_000);

const CLUSTER = '0101-120000-abcdefgh';
const COMPUTES = {
  'an existing cluster': { existingClusterId: CLUSTER },
  serverless: { environmentVersion: '2', dependencies: ['scikit-learn==1.5.2', 'onnx'] },
} as const;

let azurite: BlobEmulator;
let store: ArtifactStore;
let dataset: { uri: string; sha256: string };
let scratch: string;
let fake: FakeDatabricks;
let mlflow: FakeMlflow;
let backend: DatabricksTrainingBackend;

beforeAll(async () => {
  [{ azurite, store, dataset }, mlflow] = await Promise.all([startWagesStore(), new FakeMlflow().start()]);
  // The job that logs to MLflow, as a workspace folder: logjob.py, then the scikit-learn example.
  scratch = await mkdtemp(path.join(tmpdir(), 'sluice-dbx-launch-'));
  await copyFile(path.join(ROOT, 'test/fixtures/mlflow-job/logjob.py'), path.join(scratch, 'logjob.py'));
  await copyFile(path.join(ROOT, 'examples/training/sklearn/train.py'), path.join(scratch, 'train.py'));
  await writeFile(path.join(scratch, 'params.json'), JSON.stringify([{ key: 'job.solver', value: 'lbfgs' }]));
  fake = await startFakeDatabricks({
    clusters: [CLUSTER],
    executor: pythonVolumeExecutor({
      store,
      volumeRoot: VOLUME,
      outputRoot: OUT_VOLUME,
      workspace: {
        [`${WORKSPACE}/sklearn`]: path.join(ROOT, 'examples', 'training', 'sklearn'),
        [`${WORKSPACE}/mlflow`]: scratch,
      },
    }),
  });
  backend = new DatabricksTrainingBackend({
    client: new DatabricksClient({ host: fake.url, token: 'fake-databricks-token', baseRetryDelayMs: 1 }),
    store,
    jobRoot: VOLUME,
    outputRoot: OUT_VOLUME,
    codeBaseDir: ROOT,
    codeRoot: path.join(ROOT, 'examples'),
  });
});
afterAll(async () => {
  await fake?.close();
  await mlflow?.stop();
  await azurite?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

let seq = 0;
const nextJobId = () => `dbx-launch-${++seq}`;

function request(jobId: string, spec: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    jobId,
    runId: 'run-dbx-launch',
    dataset,
    spec: {
      algorithm: 'custom',
      backend: 'databricks',
      target: 'gender',
      features: ['education', 'experience', 'wage'],
      code: `${WORKSPACE}/sklearn`,
      command: 'python3 train.py',
      hyperparameters: { C: 1 },
      timeLimitSeconds: 600,
      ...spec,
    },
    ...extra,
  } as TrainingJobRequestInput;
}

async function untilEnded(jobId: string): Promise<JobStatus> {
  for (let i = 0; i < 400; i++) {
    const s = await backend.status(jobId);
    if (s.state === 'completed' || s.state === 'failed' || s.state === 'canceled') return s;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`job ${jobId} did not end`);
}

/** The `--env` values of the launcher's parameters, and what follows them. */
function launched(parameters: string[]) {
  const env: Record<string, string> = {};
  let i = 0;
  for (; parameters[i] === '--env'; i += 2) {
    const [name, ...value] = parameters[i + 1]!.split('=');
    env[name!] = value.join('=');
  }
  return { env, rest: parameters.slice(i) };
}

describe.each(Object.entries(COMPUTES))('a spark_python job on %s', (compute, databricks) => {
  it('runs through the staged launcher with every SLUICE_* value in its environment, and its model is collected', async () => {
    const jobId = nextJobId();
    await backend.submit(request(jobId, { databricks }));
    const run = [...fake.runs.values()].at(-1)!;
    const launcherPath = `${VOLUME}/${jobId}/${LAUNCHER_FILE}`;
    const spark = run.task.spark_python_task as { python_file: string; parameters: string[] };
    expect(spark.python_file).toBe(launcherPath);
    const { env, rest } = launched(spark.parameters);
    expect(env).toEqual({
      SLUICE_JOB_ID: jobId,
      SLUICE_TRAIN: `${VOLUME}/${jobId}/data/train.csv`,
      SLUICE_VALIDATION: `${VOLUME}/${jobId}/data/validation.csv`,
      SLUICE_HOLDOUT: `${VOLUME}/${jobId}/data/holdout.csv`,
      SLUICE_TRAIN_PARQUET: `${VOLUME}/${jobId}/data/train.parquet`,
      SLUICE_VALIDATION_PARQUET: `${VOLUME}/${jobId}/data/validation.parquet`,
      SLUICE_HOLDOUT_PARQUET: `${VOLUME}/${jobId}/data/holdout.parquet`,
      SLUICE_CONTRACT: `${VOLUME}/${jobId}/data/contract.json`,
      SLUICE_TARGET: 'gender',
      SLUICE_FEATURES: '["education","experience","wage"]',
      SLUICE_TASK: 'classification',
      SLUICE_HYPERPARAMETERS: '{"C":1}',
      SLUICE_SEED: '42',
      SLUICE_OUTPUT: `${OUT_VOLUME}/${jobId}`,
    });
    expect(rest).toEqual(['--file', `${WORKSPACE}/sklearn/train.py`, '--']);
    expect(run.task.new_cluster).toBeUndefined();
    if (compute === 'serverless') {
      expect(run.task.environment_key).toBe('sluice');
      expect(run.body.environments).toEqual([
        {
          environment_key: 'sluice',
          spec: { environment_version: '2', dependencies: ['scikit-learn==1.5.2', 'onnx'] },
        },
      ]);
    } else expect(run.task.existing_cluster_id).toBe(CLUSTER);
    // Staged where runs can read it and not write it, byte for byte the launcher.
    const staged = await store.getBuffer({ container: 'jobs', path: `${jobId}/${LAUNCHER_FILE}` });
    expect(staged.data.toString('utf8')).toBe(LAUNCHER_SOURCE);

    const done = await untilEnded(jobId);
    expect(done.error).toBeUndefined();
    expect(done).toMatchObject({ state: 'completed', backendStatus: 'TERMINATED SUCCESS' });
    expect(done.result!.artifact).toMatchObject({
      format: 'mlflow',
      flavor: 'onnx',
      classes: ['female', 'male'],
    });
    expect(done.result!.metrics.job).toHaveProperty('holdout_accuracy');
  });

  it('runs a staged host code folder through the launcher and binds its digest', async () => {
    const jobId = nextJobId();
    await backend.submit(request(jobId, { code: 'examples/training/sklearn', databricks }));
    const run = [...fake.runs.values()].at(-1)!;
    const spark = run.task.spark_python_task as { python_file: string; parameters: string[] };
    expect(spark.python_file).toBe(`${VOLUME}/${jobId}/${LAUNCHER_FILE}`);
    expect(launched(spark.parameters).rest).toEqual(['--file', `${VOLUME}/${jobId}/code/train.py`, '--']);
    const done = await untilEnded(jobId);
    expect(done.state).toBe('completed');
    expect(done.result!.codeDigest).toBe(
      await codeFolderDigest(path.join(ROOT, 'examples', 'training', 'sklearn')),
    );
  });

  it('a job that logs to MLflow logs into the linked run, with no credential in the run’s definition', async () => {
    const runId = mlflow.logModel('wages', {});
    const made = mlflow.runs.get(runId)!;
    const runsBefore = mlflow.runs.size;
    const jobId = nextJobId();
    await rm(path.join(scratch, 'mlflow-env.json'), { force: true });
    await backend.submit(
      request(
        jobId,
        { code: `${WORKSPACE}/mlflow`, command: 'python3 logjob.py', databricks },
        { mlflow: { trackingUri: mlflow.url, experimentId: made.info.experiment_id, runId } },
      ),
    );
    const run = [...fake.runs.values()].at(-1)!;
    const spark = run.task.spark_python_task as { python_file: string; parameters: string[] };
    expect(launched(spark.parameters).env).toMatchObject({
      MLFLOW_RUN_ID: runId,
      MLFLOW_EXPERIMENT_ID: made.info.experiment_id,
      MLFLOW_TRACKING_URI: mlflow.url,
    });
    expect(JSON.stringify(run.body)).not.toMatch(/TOKEN|PASSWORD/);

    const done = await untilEnded(jobId);
    expect(done.error).toBeUndefined();
    expect(done.state).toBe('completed');
    // What the job saw: the link, as on a new cluster, and no credential.
    expect(JSON.parse(await readFile(path.join(scratch, 'mlflow-env.json'), 'utf8'))).toEqual({
      MLFLOW_TRACKING_URI: mlflow.url,
      MLFLOW_RUN_ID: runId,
      MLFLOW_EXPERIMENT_ID: made.info.experiment_id,
    });
    // It logged into that run, not a run of its own.
    expect(made.params.get('job.solver')).toBe('lbfgs');
    expect(made.metrics).toContainEqual(
      expect.objectContaining({ key: 'job.accuracy', value: 0.91, step: 3 }),
    );
    expect(made.tags.get('job.framework')).toBe('sklearn');
    expect(mlflow.runs.size).toBe(runsBefore);
  });
});

describe('a spark_python job on an existing cluster, failing', () => {
  it("fails with the job's own error and traceback through the launcher", async () => {
    await writeFile(
      path.join(scratch, 'fails.py'),
      'print("loading", flush=True)\nraise ValueError("the training data has no rows for class x")\n',
    );
    const jobId = nextJobId();
    await backend.submit(
      request(jobId, {
        code: `${WORKSPACE}/mlflow`,
        command: 'fails.py',
        databricks: COMPUTES['an existing cluster'],
      }),
    );
    const done = await untilEnded(jobId);
    expect(done).toMatchObject({ state: 'failed', backendStatus: 'TERMINATED RUN_EXECUTION_ERROR' });
    expect(done.error!.message).toContain('ValueError: the training data has no rows for class x');
    expect(done.logTail.join('\n')).toContain(`${path.join(scratch, 'fails.py')}`);
    expect(done.logTail.join('\n')).toContain('Traceback');
  });
});
