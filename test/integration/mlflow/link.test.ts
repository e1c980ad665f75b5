/**
 * @jest-environment ./test/support/onnxEnvironment.js
 *
 * A user's job that already logs to MLflow is linked to the Sluice run's MLflow run, not given one
 * of its own: the services built from MLFLOW_TRACKING_URI (Cosmos emulator, Azurite, the fake MLflow
 * server over HTTP with a bearer token), the real local worker running a Python job
 * (test/fixtures/mlflow-job/logjob.py) that logs through the REST API with urllib into the run named
 * by MLFLOW_RUN_ID, then the mirror logging Sluice's sections into the same run, params write-once
 * (the job's value kept, the clash recorded), and one MLflow run per Sluice run in the end.
 */
import { readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path, { join } from 'node:path';
import { startCosmosEmulator } from '../../../devhost/services/cosmos';
import { inferDatasetContract } from '../../../lib/data/checking/inferDatasetContract';
import { loadConfig } from '../../../lib/config';
import type { StepUpdate } from '../../../lib/contracts/runDocument';
import { AnchorStore } from '../../../lib/audit/anchors';
import { MlflowClient } from '../../../lib/mlflow/client';
import { mirrorPendingRuns } from '../../../lib/mlflow/mirror';
import { openModelFolder } from '../../../lib/mlmodel/blobFolder';
import { pipelineDefinitionSchema } from '../../../lib/pipelines/definition';
import resources from '../../../lib/resources.json';
import { applyStepUpdates, newRunDocument } from '../../../lib/runs/document';
import type { Services } from '../../../lib/services';
import { createServices } from '../../../lib/services';
import type { LocalTrainingBackend } from '../../../lib/training/backends/local';
import type { JobStatus } from '../../../lib/training/backends/types';
import { syntheticClassification } from '../../../lib/training/synthetic';
import { memoryLog } from '../../devhost/servicesLog';
import { columnarBytes, tableOf } from '../../support/datasets';
import { startAzuriteBlob, type BlobEmulator } from '../../support/emulators';
import { FakeMlflow } from '../../support/fakes/mlflow';
import { localWorkerBackend } from '../../support/localWorker';

jest.setTimeout(180_000);

const ROOT = join(__dirname, '..', '..', '..');
const T0 = Date.parse('2026-03-01T12:00:00.000Z');
const at = (s: number) => new Date(T0 + s * 1000).toISOString();
const FEATURES = ['x0', 'x1', 'x2', 'x3'];
const TOKEN = 'job-and-host-token';

const wages = JSON.parse(readFileSync(path.resolve(ROOT, 'examples/pipelines/wages.json'), 'utf8')) as Record<
  string,
  unknown
> & { training: Record<string, unknown> };

describe('MLflow: a user job that logs to MLflow is linked, not duplicated', () => {
  let cosmos: { endpoint: string; key: string; stop(): Promise<void> };
  let azurite: BlobEmulator;
  let fake: FakeMlflow;
  let services: Services;
  let local: LocalTrainingBackend;
  let codes: string;
  let dataset: { uri: string; sha256: string };
  const ds = syntheticClassification({ rows: 1_000, features: 4, seed: 5 });
  const contract = inferDatasetContract(tableOf(ds));

  beforeAll(async () => {
    [cosmos, azurite, fake] = await Promise.all([
      startCosmosEmulator({ location: null, log: memoryLog() }),
      startAzuriteBlob(),
      new FakeMlflow().start(),
    ]);
    fake.token = TOKEN;
    const config = loadConfig({
      COSMOS_ENDPOINT: cosmos.endpoint,
      COSMOS_KEY: cosmos.key,
      ARTIFACT_STORAGE_CONNECTION: azurite.connectionString,
      PUBLIC_BASE_URL: 'https://sluice.example.com',
      MLFLOW_TRACKING_URI: fake.url,
      MLFLOW_TRACKING_TOKEN: TOKEN,
    });
    services = await createServices(config, {
      prepare: false,
      mlflow: { maxAttempts: 2, sleep: async () => undefined },
      backend: () => local,
    });
    await services.cosmos.ensure();
    await services.artifacts.ensureContainers();
    await new AnchorStore(services.artifacts).ensure();
    local = localWorkerBackend(services.artifacts, azurite.connectionString, {
      heartbeatStaleMs: 30_000,
      mlflowCredentials: { MLFLOW_TRACKING_TOKEN: TOKEN, DATABRICKS_TOKEN: 'never-for-a-plain-server' },
    });
    services.mlflow = { ...services.mlflow!, curveOf: undefined };
    const stored = await services.artifacts.putContentAddressed(
      resources.blobContainers.datasets,
      columnarBytes(ds),
    );
    dataset = { uri: stored.uri, sha256: stored.sha256 };
    codes = await mkdtemp(join(tmpdir(), 'sluice-mlflow-job-'));
    // The pipeline whose params Sluice logs: hp.alpha = 1, backend local.
    const definition = pipelineDefinitionSchema.parse({
      ...wages,
      training: { ...wages.training, hyperparameters: { alpha: 1 } },
    });
    await services.pipelines.put('wages', definition, 'test', new Date(T0));
  }, 180_000);
  afterAll(async () => {
    await local?.stopAll();
    services?.cosmos.client.dispose();
    await fake?.stop();
    await cosmos?.stop();
    await azurite?.stop();
    if (codes) await rm(codes, { recursive: true, force: true });
  });

  const newRun = async (id: string) => {
    await services.runs.create(
      newRunDocument({
        id,
        pipeline: 'wages',
        pipelineVersion: 1,
        instanceId: id,
        trigger: { kind: 'cli', by: 'ana@contoso.com' },
        source: { kind: 'blob', uri: 'https://acct.blob.core.windows.net/datasets/wages/raw.csv' },
        at: at(0),
      }),
    );
    const started: StepUpdate[] = [
      { step: 'ingest', status: 'running', at: at(1) },
      { step: 'train', status: 'running', at: at(2) },
    ];
    await services.runs.update('wages', id, (r) => applyStepUpdates(r, started));
  };
  const jobCode = async (name: string, params: { key: string; value: string }[]) => {
    const dir = join(codes, name);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    await copyFile(join(ROOT, 'test/fixtures/mlflow-job/logjob.py'), join(dir, 'logjob.py'));
    await copyFile(join(ROOT, 'examples/training/sklearn/train.py'), join(dir, 'train.py'));
    await writeFile(join(dir, 'params.json'), JSON.stringify(params));
    return dir;
  };
  const train = async (runId: string, code: string): Promise<JobStatus> => {
    const jobId = `${runId}-train-1`;
    await services.backend('local').submit({
      jobId,
      runId,
      spec: {
        algorithm: 'custom',
        code,
        command: '/usr/bin/python3 logjob.py',
        target: 'label',
        features: FEATURES,
        timeLimitSeconds: 120,
      },
      dataset,
      contract,
    });
    await local.whenEnded(jobId);
    return local.status(jobId);
  };
  let firstJob: JobStatus | undefined;
  const runsOf = (sluiceRunId: string) =>
    [...fake.runs.values()].filter((r) => r.tags.get('sluice.run_id') === sluiceRunId);

  it('hands the job the run the mirror already made, with the host token, and both log into it', async () => {
    await newRun('run-mirrored-first');
    // The mirror sweeps before training starts, as it does within a minute of a run starting.
    await mirrorPendingRuns(services.mlflow!);
    const [made] = runsOf('run-mirrored-first');
    expect(made).toBeDefined();
    expect(made!.params.get('hp.alpha')).toBe('1');

    const code = await jobCode('first', [{ key: 'job.solver', value: 'lbfgs' }]);
    const status = await train('run-mirrored-first', code);
    firstJob = status;
    expect(status.error).toBeUndefined();
    expect(status.state).toBe('completed');

    // Exactly the MLflow variables, and of the host's credentials only the one this server uses.
    const env = JSON.parse(await readFile(join(code, 'mlflow-env.json'), 'utf8')) as Record<string, string>;
    expect(env).toEqual({
      MLFLOW_TRACKING_URI: fake.url,
      MLFLOW_RUN_ID: made!.info.run_id,
      MLFLOW_EXPERIMENT_ID: made!.info.experiment_id,
      MLFLOW_TRACKING_TOKEN: TOKEN,
    });
    const doc = (await services.runs.get('wages', 'run-mirrored-first'))!;
    expect(doc.mlflow).toMatchObject({ runId: made!.info.run_id, linkedJob: 'run-mirrored-first-train-1' });
    // The job's stored request carries no link (a retried submit compares it).
    const stored = await services.artifacts.getJson<Record<string, unknown>>({
      container: resources.blobContainers.jobs,
      path: 'run-mirrored-first-train-1/request.json',
    });
    expect(stored.value.mlflow).toBeUndefined();

    expect(runsOf('run-mirrored-first')).toHaveLength(1);
    expect(made!.params.get('job.solver')).toBe('lbfgs');
    expect(made!.metrics).toContainEqual(
      expect.objectContaining({ key: 'job.accuracy', value: 0.91, step: 3 }),
    );
    expect(made!.tags.get('job.framework')).toBe('sklearn');
    expect(made!.tags.get('sluice.run_id')).toBe('run-mirrored-first');
  });

  it('makes the run at submission when the mirror has not yet, and keeps the job’s params when they clash', async () => {
    await newRun('run-linked-at-submit');
    const code = await jobCode('second', [
      { key: 'hp.alpha', value: '2' }, // Sluice logs hp.alpha = 1: a clash, the job's value stays
      { key: 'pipeline', value: 'wages' }, // the same value Sluice logs: fine
      { key: 'job.solver', value: 'saga' },
    ]);
    fake.calls.length = 0;
    const status = await train('run-linked-at-submit', code);
    expect(status.state).toBe('completed');
    // The link made the experiment's run before the job started, tagged as the mirror tags it.
    const before = fake.okCalls();
    expect(before.indexOf('POST runs/create')).toBeGreaterThanOrEqual(0);
    expect(before.indexOf('POST runs/create')).toBeLessThan(before.indexOf('GET runs/get'));
    const [made] = runsOf('run-linked-at-submit');
    expect(made!.params.get('hp.alpha')).toBe('2');

    fake.calls.length = 0;
    const [outcome] = (await mirrorPendingRuns(services.mlflow!)).filter(
      (o) => o.runId === 'run-linked-at-submit',
    );
    expect(outcome).toMatchObject({ status: 'pending', logged: ['params'] });
    // Sent, refused for the clash, the run's params read, the rest sent again.
    expect(fake.calls.map((c) => `${c.method} ${c.path} ${c.status}`)).toEqual([
      'POST runs/log-batch 400',
      'GET runs/get 200',
      'POST runs/log-batch 200',
    ]);
    const retried = fake.calls[2]!.body as {
      params: { key: string }[];
      tags: { key: string; value: string }[];
    };
    expect(retried.params.map((p) => p.key)).not.toContain('hp.alpha');
    expect(retried.params.map((p) => p.key)).not.toContain('pipeline');
    expect(retried.params.map((p) => p.key)).toContain('pipeline_version');
    expect(retried.tags).toContainEqual({ key: 'sluice.param_conflicts', value: 'hp.alpha' });

    expect(runsOf('run-linked-at-submit')).toHaveLength(1);
    expect(made!.params.get('hp.alpha')).toBe('2');
    expect(made!.params.get('pipeline_version')).toBe('1');
    expect(made!.params.get('job.solver')).toBe('saga');
    expect(made!.metrics).toContainEqual(expect.objectContaining({ key: 'job.accuracy' }));
    const doc = (await services.runs.get('wages', 'run-linked-at-submit'))!;
    expect(doc.mlflow?.paramConflicts).toEqual([{ key: 'hp.alpha', sluice: '1', mlflow: '2' }]);
    expect(doc.mlflow?.error).toBeUndefined();
  });

  it('uploads the deployed version’s model folder as the run’s `model` artifacts, the MLflow version’s source', async () => {
    const result = firstJob!.result!;
    const { version } = await services.registry.registerVersion({
      modelName: 'wages',
      modelDigest: result.modelDigest,
      artifactUri: result.modelUri,
      ...(result.artifact ? { artifact: result.artifact } : {}),
      datasetDigest: dataset.sha256,
      metrics: {},
      trainingSpec: {},
      algorithm: 'custom',
      runId: 'run-mirrored-first',
    });
    await services.registry.moveAlias({
      modelName: 'wages',
      alias: 'production',
      to: version.version,
      by: 'test',
    });
    const steps: StepUpdate[] = [
      {
        step: 'train',
        status: 'succeeded',
        at: at(60),
        outputs: {
          jobId: 'run-mirrored-first-train-1',
          backend: 'local',
          algorithm: 'custom',
          modelUri: result.modelUri,
          modelDigest: result.modelDigest,
          iterations: 1,
          converged: true,
        },
      },
      { step: 'deploy', status: 'running', at: at(61) },
      {
        step: 'deploy',
        status: 'succeeded',
        at: at(62),
        outputs: {
          modelName: 'wages',
          version: version.version,
          previous: null,
          moved: true,
          aliasMoveSeq: 1,
          deployedAt: at(62),
          recordedOnRun: true,
        },
      },
    ];
    await services.runs.update('wages', 'run-mirrored-first', (r) => applyStepUpdates(r, steps));
    fake.calls.length = 0;
    await mirrorPendingRuns(services.mlflow!);
    const [made] = runsOf('run-mirrored-first');
    const root = `${made!.info.experiment_id}/${made!.info.run_id}/artifacts/model`;
    // Each file of the folder, as stored by Sluice, PUT through the artifact proxy before the version.
    const puts = fake.calls.filter((c) => c.method === 'PUT').map((c) => `${c.path} ${c.status}`);
    expect(puts.sort()).toEqual(
      ['MLmodel', 'metrics.json', 'model.onnx'].map((f) => `artifacts/${root}/${f} 200`).sort(),
    );
    const order = fake.okCalls();
    expect(order.findIndex((c) => c.startsWith('PUT '))).toBeLessThan(
      order.indexOf('POST model-versions/create'),
    );
    const mv = fake.models.get('wages')!.versions.at(-1)!;
    expect(mv.source).toBe(`mlflow-artifacts:/${root}`);
    const doc = (await services.runs.get('wages', 'run-mirrored-first'))!;
    expect(doc.mlflow?.artifactUri).toBe(`mlflow-artifacts:/${root}`);

    // models:/wages/<v> loads from the MLflow server: the files Sluice stored, byte for byte.
    const client = new MlflowClient({
      target: { baseUrl: fake.url, auth: { kind: 'bearer', token: TOKEN }, flavor: 'mlflow' },
    });
    const listed = await client.listArtifacts(root);
    expect(listed.map((f) => f.path).sort()).toEqual(['MLmodel', 'metrics.json', 'model.onnx']);
    const folder = await openModelFolder(services.artifacts, result.modelUri, result.modelDigest);
    for (const f of ['MLmodel', 'model.onnx'])
      expect(Buffer.compare(fake.artifacts.get(`${root}/${f}`)!, Buffer.from(await folder.read(f)))).toBe(0);
    expect(await client.getModelVersionDownloadUri('wages', String(mv.version))).toBe(
      `mlflow-artifacts:/${root}`,
    );
  });

  it('submits the job unlinked when MLflow is down, without waiting on it', async () => {
    await newRun('run-mlflow-down');
    fake.down = true;
    const code = await jobCode('third', []);
    await writeFile(
      join(code, 'job.js'),
      "require('fs').writeFileSync('env.json', JSON.stringify(Object.keys(process.env).filter((k) => k.startsWith('MLFLOW_'))));",
    );
    fake.calls.length = 0;
    try {
      await services.backend('local').submit({
        jobId: 'run-mlflow-down-train-1',
        runId: 'run-mlflow-down',
        spec: {
          algorithm: 'custom',
          code,
          // No MLflow logging here: the job only shows what it was given.
          command: `'${process.execPath}' job.js`,
          target: 'label',
          features: FEATURES,
          timeLimitSeconds: 60,
        },
        dataset,
        contract,
      });
      await local.whenEnded('run-mlflow-down-train-1');
    } finally {
      fake.down = false;
    }
    expect(JSON.parse(await readFile(join(code, 'env.json'), 'utf8'))).toEqual([]);
    // One attempt, not the client's retries.
    expect(fake.calls.filter((c) => c.status === 503)).toHaveLength(1);
    const doc = (await services.runs.get('wages', 'run-mlflow-down'))!;
    expect(doc.mlflow?.linkedJob).toBeUndefined();
  });
});
