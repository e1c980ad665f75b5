/**
 * The MLflow mirror end to end on the Cosmos emulator and the fake MLflow server over HTTP: the
 * services built from MLFLOW_TRACKING_URI, the timer function draining the outbox, a run mirrored
 * step by step as its document moves, every MLflow call asserted, an outage that delays nothing and
 * is caught up, a lost runs/create answer that does not make a second run, and a refusal shown on
 * the run document as `failed` with its reason.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { InvocationContext, Timer } from '@azure/functions';
import { mirrorMlflow } from '../../../functions/mirrorMlflow';
import { startCosmosEmulator } from '../../../devhost/services/cosmos';
import { AnchorStore } from '../../../lib/audit/anchors';
import { loadConfig } from '../../../lib/config';
import type { RunDocument, StepUpdate } from '../../../lib/contracts/runDocument';
import { mirrorPendingRuns } from '../../../lib/mlflow/mirror';
import { pipelineDefinitionSchema } from '../../../lib/pipelines/definition';
import { applyStepUpdates, newRunDocument } from '../../../lib/runs/document';
import type { Services } from '../../../lib/services';
import { createServices } from '../../../lib/services';
import { memoryLog } from '../../devhost/servicesLog';
import { startAzuriteBlob, type BlobEmulator } from '../../support/emulators';
import { FakeMlflow } from '../../support/fakes/mlflow';

jest.setTimeout(60_000);

const T0 = Date.parse('2026-03-01T12:00:00.000Z');
const at = (s: number) => new Date(T0 + s * 1000).toISOString();
const SHA = 'a'.repeat(64);
const MODEL_SHA = 'b'.repeat(64);
const wages = pipelineDefinitionSchema.parse(
  JSON.parse(readFileSync(path.resolve(__dirname, '../../../examples/pipelines/wages.json'), 'utf8')),
);

const ingest: StepUpdate[] = [
  { step: 'ingest', status: 'running', at: at(1) },
  {
    step: 'ingest',
    status: 'succeeded',
    at: at(2),
    outputs: {
      rows: 1000,
      columns: 8,
      sha256: SHA,
      bytes: 52_000,
      rawUri: 'https://acct.blob.core.windows.net/datasets/wages/raw.csv',
      columnarUri: 'https://acct.blob.core.windows.net/datasets/wages/raw.columnar',
      format: 'csv',
    },
  },
  { step: 'validate', status: 'running', at: at(3) },
  {
    step: 'validate',
    status: 'succeeded',
    at: at(4),
    outputs: {
      status: 'warning',
      headline: '1 warning',
      errors: 0,
      warnings: 1,
      drift: 'drifted',
      driftedColumns: ['age'],
      reportUri: 'https://acct.blob.core.windows.net/reports/r1/validation.json',
    },
  },
];
const trainAndEvaluate: StepUpdate[] = [
  { step: 'train', status: 'running', at: at(5) },
  {
    step: 'train',
    status: 'succeeded',
    at: at(60),
    outputs: {
      jobId: 'job-1',
      backend: 'local',
      algorithm: 'ridge',
      modelUri: 'https://acct.blob.core.windows.net/models/m.json',
      modelDigest: MODEL_SHA,
      iterations: 12,
      converged: true,
    },
  },
  { step: 'evaluate', status: 'running', at: at(61) },
  {
    step: 'evaluate',
    status: 'succeeded',
    at: at(70),
    outputs: { reportUri: 'https://acct.blob.core.windows.net/reports/r1/evaluation.json', modelVersion: 3 },
  },
];
const evaluation = {
  primaryMetric: 'rmse',
  candidate: 4.2,
  champion: 4.5,
  championVersion: 2,
  difference: { estimate: -0.3, lower: -0.5, upper: -0.1, confidence: 0.95 },
  passed: true,
  reasons: [],
  rows: 200,
};
const approveAndDeploy: StepUpdate[] = [
  { step: 'approve', status: 'running', at: at(71) },
  {
    step: 'approve',
    status: 'succeeded',
    at: at(300),
    outputs: {
      approvalId: 'ap-1',
      outcome: 'approved',
      approvedBy: ['ana@contoso.com', 'bo@contoso.com'],
      rejectedBy: [],
      escalated: false,
      decidedAt: at(300),
      reasons: [],
    },
  },
  { step: 'deploy', status: 'running', at: at(301) },
  {
    step: 'deploy',
    status: 'succeeded',
    at: at(302),
    outputs: {
      modelName: 'wages',
      version: 3,
      previous: 2,
      moved: true,
      aliasMoveSeq: 4,
      deployedAt: at(302),
      recordedOnRun: true,
    },
  },
];

describe('MLflow mirror of run documents', () => {
  let emulator: { endpoint: string; key: string; stop(): Promise<void> };
  let fake: FakeMlflow;
  // Moving Sluice's alias writes the audit log's anchors to Blob Storage.
  let azurite: BlobEmulator;
  let services: Services;
  let clock = T0;
  let dropCreateAnswer = false;
  const ctx = () => ({ log: () => undefined, warn: () => undefined }) as unknown as InvocationContext;
  const timer = { isPastDue: false } as Timer;

  beforeAll(async () => {
    emulator = await startCosmosEmulator({ location: null, log: memoryLog() });
    fake = await new FakeMlflow().start();
    azurite = await startAzuriteBlob();
    const config = loadConfig({
      COSMOS_ENDPOINT: emulator.endpoint,
      COSMOS_KEY: emulator.key,
      ARTIFACT_STORAGE_CONNECTION: azurite.connectionString,
      PUBLIC_BASE_URL: 'https://sluice.example.com',
      MLFLOW_TRACKING_URI: `${fake.url}/`,
      MLFLOW_EXPERIMENT_PREFIX: 'sluice/',
      MLFLOW_PRODUCTION_ALIAS: 'champion',
    });
    services = await createServices(config, {
      prepare: false,
      now: () => new Date(clock),
      mlflow: {
        maxAttempts: 2,
        sleep: async () => undefined,
        // A network that loses runs/create's answer after the server made the run.
        fetch: async (url, init) => {
          const res = await fetch(url, init);
          if (dropCreateAnswer && String(url).endsWith('/runs/create')) {
            dropCreateAnswer = false;
            throw new TypeError('socket hang up');
          }
          return res;
        },
      },
    });
    await services.cosmos.ensure();
    await services.artifacts.ensureContainers();
    await new AnchorStore(services.artifacts).ensure();
    // This suite is about the sections; the training curve (read from storage) has its own suites,
    // curves.test.ts and curveRead.test.ts.
    services.mlflow = { ...services.mlflow!, curveOf: undefined };
    await services.pipelines.put('wages', wages, 'test', new Date(T0));
    // Sluice's own registry: wages versions 1-3, production at 3 (what run-a deployed).
    for (const n of [1, 2, 3])
      await services.registry.registerVersion({
        modelName: 'wages',
        modelDigest: String(n).repeat(64),
        artifactUri: `https://acct.blob.core.windows.net/models/m${n}.json`,
        datasetDigest: SHA,
        metrics: {},
        trainingSpec: {},
        algorithm: 'ridge',
        runId: `run-${n}`,
      });
    await services.registry.moveAlias({ modelName: 'wages', alias: 'production', to: 3, by: 'test' });
  });
  afterAll(async () => {
    services?.cosmos.client.dispose();
    await fake?.stop();
    await emulator?.stop();
    await azurite?.stop();
  });

  const newRun = async (id: string): Promise<RunDocument> =>
    (
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
      )
    ).run;
  const move = (id: string, updates: StepUpdate[], metrics?: Record<string, unknown>) =>
    services.runs.update('wages', id, (r) => applyStepUpdates(r, updates, metrics));
  const doc = async (id: string) => (await services.runs.get('wages', id))!;
  const tick = () => mirrorMlflow(services)(timer, ctx());

  it('builds the mirror only when MLFLOW_TRACKING_URI is set', async () => {
    expect(services.mlflow).toBeDefined();
    const without = await createServices(
      loadConfig({
        COSMOS_ENDPOINT: emulator.endpoint,
        COSMOS_KEY: emulator.key,
        ARTIFACT_STORAGE_CONNECTION: 'UseDevelopmentStorage=true',
      }),
      { prepare: false },
    );
    expect(without.mlflow).toBeUndefined();
    without.cosmos.client.dispose();
  });

  it('mirrors a run as it moves, survives an outage, and ends synced with FINISHED', async () => {
    await newRun('run-a');
    fake.calls.length = 0;

    // Queued: the experiment (created), the run (created after a search by tag), its params.
    await tick();
    expect(fake.okCalls()).toEqual([
      'POST experiments/create',
      'POST runs/search',
      'POST runs/create',
      'POST runs/log-batch',
    ]);
    expect(fake.calls[0]).toMatchObject({
      path: 'experiments/get-by-name',
      status: 404,
      body: { experiment_name: 'sluice/wages' },
    });
    const mlflowRun = fake.runByTag('sluice.run_id', 'run-a')!;
    expect(mlflowRun.info).toMatchObject({ run_name: 'run-a', status: 'RUNNING', start_time: T0 });
    expect(mlflowRun.tags.get('sluice.run_url')).toBe('https://sluice.example.com/api/runs/run-a');
    expect(Object.fromEntries(mlflowRun.params)).toMatchObject({
      pipeline: 'wages',
      pipeline_version: '1',
      backend: wages.training.backend,
      'training.algorithm': wages.training.algorithm,
      'training.target': wages.training.target,
    });
    let d = await doc('run-a');
    expect(d.mlflow).toMatchObject({
      status: 'pending',
      runId: mlflowRun.info.run_id,
      done: ['params'],
      attempts: 0,
    });
    expect(d.mlflow!.experimentId).toBe(mlflowRun.info.experiment_id);

    // Ingest and validate: the dataset input and the validation headline numbers.
    await move('run-a', ingest);
    fake.calls.length = 0;
    await tick();
    expect(fake.okCalls()).toEqual(['POST runs/log-inputs', 'POST runs/log-batch', 'POST runs/log-batch']);
    expect(mlflowRun.inputs).toEqual([
      {
        dataset: {
          name: 'wages',
          // MLflow keeps 36 characters of a digest; the whole SHA-256 is the input's tag.
          digest: SHA.slice(0, 36),
          source_type: 'http',
          source: JSON.stringify({ url: 'https://acct.blob.core.windows.net/datasets/wages/raw.csv' }),
          profile: JSON.stringify({ num_rows: 1000, num_columns: 8, bytes: 52_000 }),
        },
        tags: [
          { key: 'mlflow.data.context', value: 'training' },
          { key: 'sluice.sha256', value: SHA },
        ],
      },
    ]);
    expect(mlflowRun.metrics.filter((m) => m.key.startsWith('validation.'))).toEqual([
      { key: 'validation.errors', value: 0, timestamp: Date.parse(at(4)), step: 0 },
      { key: 'validation.warnings', value: 1, timestamp: Date.parse(at(4)), step: 0 },
      { key: 'validation.drifted_columns', value: 1, timestamp: Date.parse(at(4)), step: 0 },
    ]);
    expect(mlflowRun.tags.get('sluice.dataset_sha256')).toBe(SHA);

    // MLflow goes down while the run trains and is evaluated: the run goes on; the mirror waits.
    fake.down = true;
    await move('run-a', trainAndEvaluate, { training: { validation: { rmse: 4.1, r2: 0.8 } }, evaluation });
    fake.calls.length = 0;
    const [outage] = await mirrorPendingRuns(services.mlflow!);
    expect(outage).toMatchObject({ status: 'retry', error: { code: 'mlflow_unavailable' } });
    expect(fake.calls.map((c) => c.status)).toEqual([503, 503]);
    d = await doc('run-a');
    expect(d.status).toBe('running');
    expect(d.mlflow).toMatchObject({
      status: 'pending',
      attempts: 1,
      done: ['params', 'ingest', 'validate'],
    });
    expect(d.mlflow!.error!.message).toContain('503');
    expect(d.mlflow!.nextAttemptAt).toBe(new Date(clock + 60_000).toISOString());

    // The run is approved and deployed while MLflow is still down; before the backoff passes, no call.
    await move('run-a', approveAndDeploy);
    await services.runs.update('wages', 'run-a', (r) => ({
      ...r,
      status: 'succeeded',
      endedAt: at(303),
      updatedAt: at(303),
    }));
    fake.calls.length = 0;
    await tick();
    expect(fake.calls).toEqual([]);

    // MLflow is back and the backoff has passed: everything is caught up, in order, once.
    fake.down = false;
    clock += 61_000;
    await tick();
    expect(fake.okCalls()).toEqual([
      'POST runs/log-batch', // train
      'POST runs/log-batch', // evaluate
      'POST runs/log-batch', // approve
      'POST runs/log-batch', // deploy tags
      'POST registered-models/create',
      'GET model-versions/search',
      'POST model-versions/create',
      'POST registered-models/alias',
      'POST runs/log-batch', // end tags
      'POST runs/update',
    ]);
    // The registry: the deployed version with its source, run link and tags, and the alias on it.
    const registered = fake.models.get('wages')!;
    expect(registered.versions).toEqual([
      {
        name: 'wages',
        version: '1',
        source: 'https://acct.blob.core.windows.net/models/m.json',
        run_id: mlflowRun.info.run_id,
        run_link: 'https://sluice.example.com/api/runs/run-a',
        tags: [
          { key: 'sluice.version', value: '3' },
          { key: 'sluice.run_id', value: 'run-a' },
          { key: 'sluice.model_sha256', value: MODEL_SHA },
          { key: 'sluice.approval_id', value: 'ap-1' },
          { key: 'sluice.approved_by', value: 'ana@contoso.com, bo@contoso.com' },
        ],
        status: 'READY',
      },
    ]);
    expect(registered.aliases.get('champion')).toBe('1');
    const search = fake.calls.find((c) => c.path === 'model-versions/search')!;
    expect(search.body).toEqual({ filter: `name='wages' and run_id='${mlflowRun.info.run_id}'` });
    expect(mlflowRun.info).toMatchObject({ status: 'FINISHED', end_time: Date.parse(at(303)) });
    const m = Object.fromEntries(mlflowRun.metrics.map((x) => [x.key, x.value]));
    expect(m).toMatchObject({
      'training.iterations': 12,
      'validation.rmse': 4.1,
      'validation.r2': 0.8,
      'eval.candidate.rmse': 4.2,
      'eval.champion.rmse': 4.5,
      'eval.diff.rmse': -0.3,
      'eval.diff.rmse.ci_low': -0.5,
      'eval.diff.rmse.ci_high': -0.1,
      'eval.rows': 200,
    });
    expect(Object.fromEntries(mlflowRun.tags)).toMatchObject({
      'sluice.model_sha256': MODEL_SHA,
      'sluice.approved_by': 'ana@contoso.com, bo@contoso.com',
      'sluice.approval_id': 'ap-1',
      'sluice.deployed_version': 'wages/3',
      'sluice.status': 'succeeded',
      'sluice.evaluation.passed': 'true',
    });
    d = await doc('run-a');
    expect(d.mlflow).toMatchObject({
      status: 'synced',
      attempts: 0,
      syncedAt: new Date(clock).toISOString(),
      model: { name: 'wages', version: '1', alias: 'champion' },
    });
    expect(d.mlflow!.error).toBeUndefined();
    expect(d.mlflow!.done).toEqual([
      'params',
      'ingest',
      'validate',
      'train',
      'evaluate',
      'approve',
      'deploy',
      'end',
    ]);

    // Synced runs are not read again: the next tick calls nothing.
    fake.calls.length = 0;
    await tick();
    expect(fake.calls).toEqual([]);
    expect(fake.runs.size).toBe(1);
    expect(fake.experiments.size).toBe(1);
  });

  it('adopts the run a lost runs/create answer made, instead of making a second one', async () => {
    await newRun('run-b');
    dropCreateAnswer = true;
    fake.calls.length = 0;
    const [lost] = await mirrorPendingRuns(services.mlflow!);
    expect(lost).toMatchObject({ runId: 'run-b', status: 'retry', error: { code: 'mlflow_unreachable' } });
    // runs/create is not retried by the client: exactly one create reached the server.
    expect(fake.calls.filter((c) => c.path === 'runs/create')).toHaveLength(1);
    expect((await doc('run-b')).mlflow!.runId).toBeUndefined();

    clock += 120_000;
    fake.calls.length = 0;
    await mirrorPendingRuns(services.mlflow!);
    expect(fake.okCalls()).toEqual([
      'GET experiments/get-by-name',
      'POST runs/search',
      'POST runs/log-batch',
    ]);
    const made = [...fake.runs.values()].filter((r) => r.tags.get('sluice.run_id') === 'run-b');
    expect(made).toHaveLength(1);
    expect((await doc('run-b')).mlflow).toMatchObject({ status: 'pending', runId: made[0]!.info.run_id });
  });

  it('maps endings to MLflow statuses: canceled KILLED, a failed job FAILED, a gate that said no FINISHED', async () => {
    const end = async (id: string, change: Partial<RunDocument>) => {
      await newRun(id);
      await services.runs.update('wages', id, (r) => ({ ...r, ...change, endedAt: at(9), updatedAt: at(9) }));
    };
    await end('run-c', { status: 'canceled', stopReason: 'canceled' });
    await end('run-d', { status: 'stopped', stopReason: 'training_failed' });
    await end('run-e', { status: 'stopped', stopReason: 'approval_rejected', reason: 'not better' });
    clock += 600_000;
    await tick();
    const statusOf = (id: string) => fake.runByTag('sluice.run_id', id)!.info.status;
    expect([statusOf('run-c'), statusOf('run-d'), statusOf('run-e')]).toEqual([
      'KILLED',
      'FAILED',
      'FINISHED',
    ]);
    expect(fake.runByTag('sluice.run_id', 'run-e')!.tags.get('sluice.stop_reason')).toBe('approval_rejected');
    for (const id of ['run-c', 'run-d', 'run-e']) expect((await doc(id)).mlflow!.status).toBe('synced');
  });

  it('creates the version of a deployment mirrored late, but leaves the alias on the newer production', async () => {
    await newRun('run-g');
    await move('run-g', [...ingest, ...trainAndEvaluate, ...approveAndDeploy.slice(0, 3)]);
    await move('run-g', [
      {
        step: 'deploy',
        status: 'succeeded',
        at: at(302),
        outputs: {
          modelName: 'wages',
          version: 2,
          previous: 1,
          moved: true,
          aliasMoveSeq: 2,
          deployedAt: at(302),
          recordedOnRun: true,
        },
      },
    ]);
    clock += 600_000;
    fake.calls.length = 0;
    await mirrorPendingRuns(services.mlflow!);
    const wagesModel = fake.models.get('wages')!;
    const g = fake.runByTag('sluice.run_id', 'run-g')!;
    expect(wagesModel.versions.map((v) => [v.version, v.run_id])).toEqual([
      ['1', fake.runByTag('sluice.run_id', 'run-a')!.info.run_id],
      ['2', g.info.run_id],
    ]);
    // Sluice's production is version 3 (run-a's): the MLflow alias stays on run-a's version.
    expect(fake.calls.some((c) => c.path === 'registered-models/alias')).toBe(false);
    expect(wagesModel.aliases.get('champion')).toBe('1');
    expect((await doc('run-g')).mlflow!.model).toEqual({ name: 'wages', version: '2' });
  });

  it('splits a training spec of 150 hyperparameters into log-batch requests of at most 100 params', async () => {
    const raw = JSON.parse(
      readFileSync(path.resolve(__dirname, '../../../examples/pipelines/wages.json'), 'utf8'),
    ) as {
      training: Record<string, unknown>;
    };
    const hyperparameters = Object.fromEntries(
      Array.from({ length: 150 }, (_, i) => [`h${String(i).padStart(3, '0')}`, i]),
    );
    const wide = pipelineDefinitionSchema.parse({
      ...raw,
      name: 'wide',
      modelName: 'wide',
      training: {
        ...raw.training,
        algorithm: 'custom',
        code: 'train',
        command: 'python train.py',
        hyperparameters,
      },
    });
    await services.pipelines.put('wide', wide, 'test', new Date(T0));
    await services.runs.create(
      newRunDocument({
        id: 'run-w',
        pipeline: 'wide',
        pipelineVersion: 1,
        instanceId: 'run-w',
        trigger: { kind: 'http', by: 'ana@contoso.com' },
        source: { kind: 'blob', uri: 'https://acct.blob.core.windows.net/datasets/wide/raw.csv' },
        at: at(0),
      }),
    );
    clock += 600_000;
    fake.calls.length = 0;
    await mirrorPendingRuns(services.mlflow!);
    const batches = fake.calls.filter((c) => c.path === 'runs/log-batch' && c.status === 200);
    const sizes = batches.map((c) => (c.body.params as unknown[]).length);
    expect(sizes[0]).toBe(100);
    expect(sizes.every((n) => n <= 100)).toBe(true);
    const run = fake.runByTag('sluice.run_id', 'run-w')!;
    expect(run.params.size).toBe(sizes.reduce((a, b) => a + b, 0));
    expect(run.params.get('hp.h149')).toBe('149');
    expect(run.params.get('training.algorithm')).toBe('custom');
    expect(run.params.get('training.command')).toBe('python train.py');
    expect(fake.experiments.size).toBe(2);
  });

  it('shows a refusal as failed with its reason, not retried before a longer backoff', async () => {
    await newRun('run-f');
    fake.token = 'needed';
    clock += 600_000;
    fake.calls.length = 0;
    const outcomes = await mirrorPendingRuns(services.mlflow!);
    const f = outcomes.find((o) => o.runId === 'run-f')!;
    expect(f).toMatchObject({ status: 'failed', error: { code: 'mlflow_unauthorized' } });
    // 401 is not retried by the client: one call, the first of run-f (run-b had nothing new to log).
    expect(fake.calls.map((c) => `${c.path} ${c.status}`)).toEqual(['experiments/get-by-name 401']);
    const d = await doc('run-f');
    expect(d.mlflow).toMatchObject({ status: 'failed', attempts: 1, error: { code: 'mlflow_unauthorized' } });
    expect(d.mlflow!.error!.message).toContain('UNAUTHENTICATED');

    // Credentials fixed: nothing before the backoff (1 minute after the first failure) passes...
    fake.token = undefined;
    clock += 30_000;
    fake.calls.length = 0;
    await tick();
    expect(fake.calls).toEqual([]);
    // ...then the run is mirrored and the failure cleared.
    clock += 31_000;
    await tick();
    expect(fake.runByTag('sluice.run_id', 'run-f')).toBeDefined();
    expect((await doc('run-f')).mlflow).toMatchObject({ status: 'pending', attempts: 0, done: ['params'] });
    expect((await doc('run-f')).mlflow!.error).toBeUndefined();
  });

  it('reads at most `limit` runs a sweep, oldest first, and none still in their backoff', async () => {
    for (const [id, s] of [
      ['run-old2', -50],
      ['run-old1', -100],
    ] as const)
      await services.runs.create(
        newRunDocument({
          id,
          pipeline: 'wages',
          pipelineVersion: 1,
          instanceId: id,
          trigger: { kind: 'timer', by: 'schedule' },
          source: { kind: 'blob', uri: 'https://acct.blob.core.windows.net/datasets/wages/raw.csv' },
          at: at(s),
        }),
      );
    const far = new Date(clock + 86_400_000);
    expect((await services.runs.listUnmirrored(8, far, 2)).map((r) => r.id)).toEqual([
      'run-old1',
      'run-old2',
    ]);
    await services.runs.update('wages', 'run-old1', (r) => ({
      ...r,
      mlflow: {
        status: 'pending',
        done: [],
        attempts: 1,
        nextAttemptAt: new Date(clock + 60_000).toISOString(),
      },
    }));
    expect((await services.runs.listUnmirrored(8, new Date(clock), 1)).map((r) => r.id)).toEqual([
      'run-old2',
    ]);
    expect((await services.runs.listUnmirrored(8, far, 1)).map((r) => r.id)).toEqual(['run-old1']);
  });
});
