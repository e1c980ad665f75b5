/**
 * The demo pipeline with MLflow, end to end through devhost: MLFLOW_TRACKING_URI points at the fake
 * MLflow server, a run trains the wages pipeline on the local worker, a reviewer approves, Sluice
 * deploys; devhost's `mirrorMlflow` timer (every minute) then mirrors the run. The fake ends up
 * with the experiment, the run (tags, params, final metrics, the dataset input, FINISHED), and the
 * model version with the production alias on it; a boosted pipeline also gets its training curve
 * with steps from the job's metrics.json (ridge, fitted in closed form, has none). Needs `dist/`.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { FakeMlflow } from '../../support/fakes/mlflow';
import type { PipelineHarness } from '../pipeline/harness';
import { startPipelineHarness, testPipeline, WAGES_CSV } from '../pipeline/harness';

jest.setTimeout(420_000);

const PIPELINE = 'demo-mlflow';
const BOOSTED = 'demo-mlflow-gbt';

describe('the demo pipeline mirrored to MLflow through devhost', () => {
  let h: PipelineHarness;
  let fake: FakeMlflow;

  beforeAll(async () => {
    fake = await new FakeMlflow().start();
    h = await startPipelineHarness({ env: { MLFLOW_TRACKING_URI: fake.url } });
    await h.put(testPipeline(PIPELINE));
    const base = testPipeline(BOOSTED) as { training: Record<string, unknown> };
    await h.put({
      ...base,
      training: {
        ...base.training,
        algorithm: 'gradient_boosting',
        hyperparameters: { rounds: 40, learningRate: 0.1, maxDepth: 3, earlyStoppingRounds: 0 },
      },
    });
  });
  afterAll(async () => {
    await h?.stop();
    await fake?.stop();
  });

  it('mirrors the experiment, run, params, metrics, dataset input, model version and alias', async () => {
    const runId = await h.start(PIPELINE);
    await h.waitFor(runId, 'approval', (r) => r.status === 'waiting_for_approval');
    await h.decide(runId, 'approve', 'looks right');
    const done = await h.finished(runId);
    expect(done.status).toBe('succeeded');

    // The timer runs once a minute: wait for the run to be synced (everything, the ending included).
    const synced = await h.waitFor(runId, 'the MLflow mirror', (r) => r.mlflow?.status === 'synced', 200_000);
    expect(synced.mlflow!.done).toEqual(
      expect.arrayContaining(['params', 'ingest', 'train', 'curves', 'end']),
    );

    const experiment = [...fake.experiments.values()].find((e) => e.name === PIPELINE);
    expect(experiment).toBeDefined();
    const run = fake.runByTag('sluice.run_id', runId)!;
    expect(run.info).toMatchObject({
      experiment_id: experiment!.experiment_id,
      run_name: runId,
      status: 'FINISHED',
    });
    expect(synced.mlflow).toMatchObject({ runId: run.info.run_id, experimentId: experiment!.experiment_id });
    expect(Object.fromEntries(run.tags)).toMatchObject({
      'sluice.pipeline': PIPELINE,
      'sluice.status': 'succeeded',
      'sluice.deployed_version': `${PIPELINE}/1`,
      'mlflow.source.name': 'sluice',
    });
    const params = Object.fromEntries(run.params);
    expect(params).toMatchObject({ pipeline: PIPELINE, backend: 'local', 'training.target': 'wage' });

    // Final metrics at step 0. Ridge is fitted in closed form: its job records no curve.
    const keys = new Set(run.metrics.map((m) => m.key));
    for (const k of ['dataset.rows', 'dataset.columns', 'training.iterations', 'validation.errors'])
      expect(keys).toContain(k);
    expect(run.metrics.find((m) => m.key === 'dataset.rows')!.value).toBe(534);
    expect(keys).not.toContain('training.loss');

    // The dataset input: the upload's digest (first 36 hex digits of its SHA-256), its whole hash.
    const sha = createHash('sha256').update(readFileSync(WAGES_CSV)).digest('hex');
    expect(run.inputs).toHaveLength(1);
    expect(run.inputs[0]!.dataset).toMatchObject({ name: PIPELINE, digest: sha.slice(0, 36) });
    expect(run.inputs[0]!.tags).toEqual(expect.arrayContaining([{ key: 'sluice.sha256', value: sha }]));

    // The registry copy: version 1 made from this MLflow run, the production alias on it.
    const model = fake.models.get(PIPELINE)!;
    expect(model.versions).toHaveLength(1);
    expect(model.versions[0]).toMatchObject({ run_id: run.info.run_id });
    const version = String(model.versions[0]!.version);
    expect(model.aliases.get('production')).toBe(version);
    expect(synced.mlflow!.model).toEqual({ name: PIPELINE, version, alias: 'production' });
    // The model folder went up as the run's `model` artifacts, and the version loads from there.
    const root = `${run.info.experiment_id}/${run.info.run_id}/artifacts/model`;
    expect(model.versions[0]!.source).toBe(`mlflow-artifacts:/${root}`);
    expect(synced.mlflow!.artifactUri).toBe(`mlflow-artifacts:/${root}`);
    expect(fake.artifacts.has(`${root}/MLmodel`)).toBe(true);
    expect(fake.artifacts.has(`${root}/model.onnx`)).toBe(true);
  });

  it("logs a boosted model's training curve, one step per recorded round, from the job's metrics.json", async () => {
    const runId = await h.start(BOOSTED);
    await h.waitFor(runId, 'approval or an ending', (r) =>
      ['waiting_for_approval', 'stopped', 'failed', 'succeeded'].includes(r.status),
    );
    const synced = await h.waitFor(
      runId,
      'the MLflow mirror',
      // The curve is logged just before the train section in the same sweep: wait for both.
      (r) => (r.mlflow?.done.includes('curves') && r.mlflow.done.includes('train')) ?? false,
      200_000,
    );
    expect(synced.mlflow!.done).toContain('train');
    const run = fake.runByTag('sluice.run_id', runId)!;
    const loss = run.metrics.filter((m) => m.key === 'training.loss');
    expect(loss.length).toBeGreaterThan(1);
    const steps = loss.map((m) => m.step);
    expect(new Set(steps).size).toBe(loss.length);
    for (const step of steps) expect(step).toBeGreaterThanOrEqual(1);
    for (const step of steps) expect(step).toBeLessThanOrEqual(40);
    expect(run.metrics.filter((m) => m.key === 'training.validation_loss').length).toBeGreaterThan(1);
  });
});
