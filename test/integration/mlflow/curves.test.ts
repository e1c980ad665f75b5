/**
 * A training job's curve in MLflow, on the Cosmos emulator and the fake MLflow server: the job's
 * metrics.json history logged as `training.loss` / `training.validation_loss` with step =
 * iteration, split within log-batch's 1,000 metrics, once (a later sweep logs it again never); a
 * promoted run (no job) and a job without a curve log none.
 */
import { startCosmosEmulator } from '../../../devhost/services/cosmos';
import { loadConfig } from '../../../lib/config';
import type { RunDocument } from '../../../lib/contracts/runDocument';
import { mirrorRun, type MirrorDeps } from '../../../lib/mlflow/mirror';
import type { CurvePoint } from '../../../lib/mlflow/sections';
import { curveMetrics } from '../../../lib/mlflow/sections';
import { applyStepUpdates, newRunDocument } from '../../../lib/runs/document';
import type { Services } from '../../../lib/services';
import { createServices } from '../../../lib/services';
import { memoryLog } from '../../devhost/servicesLog';
import { FakeMlflow } from '../../support/fakes/mlflow';

jest.setTimeout(60_000);

const T0 = Date.parse('2026-03-01T12:00:00.000Z');
const at = (s: number) => new Date(T0 + s * 1000).toISOString();
const history: CurvePoint[] = Array.from({ length: 600 }, (_, i) => ({
  iteration: i + 1,
  loss: 1 / (i + 1),
  validationLoss: i === 10 ? null : 1.1 / (i + 1),
  at: at(10 + i),
}));

describe('training curves in MLflow', () => {
  let emulator: { endpoint: string; key: string; stop(): Promise<void> };
  let fake: FakeMlflow;
  let services: Services;
  let deps: MirrorDeps;
  const asked: string[] = [];

  beforeAll(async () => {
    emulator = await startCosmosEmulator({ location: null, log: memoryLog() });
    fake = await new FakeMlflow().start();
    services = await createServices(
      loadConfig({
        COSMOS_ENDPOINT: emulator.endpoint,
        COSMOS_KEY: emulator.key,
        ARTIFACT_STORAGE_CONNECTION: 'UseDevelopmentStorage=true',
        PUBLIC_BASE_URL: 'https://sluice.example.com',
        MLFLOW_TRACKING_URI: fake.url,
      }),
      { prepare: false, mlflow: { maxAttempts: 2, sleep: async () => undefined } },
    );
    await services.cosmos.ensure();
    deps = {
      ...services.mlflow!,
      curveOf: async (jobId) => {
        asked.push(jobId);
        return jobId === 'job-with-curve' ? history : undefined;
      },
    };
  });
  afterAll(async () => {
    services?.cosmos.client.dispose();
    await fake?.stop();
    await emulator?.stop();
  });

  async function trained(id: string, outputs: Record<string, unknown>): Promise<RunDocument> {
    const doc = newRunDocument({
      id,
      pipeline: 'churn',
      pipelineVersion: 1,
      instanceId: id,
      trigger: { kind: 'cli', by: 'ana@contoso.com' },
      source: { kind: 'blob', uri: 'https://acct.blob.core.windows.net/datasets/churn.csv' },
      at: at(0),
    });
    await services.runs.create(
      applyStepUpdates(doc, [
        { step: 'train', status: 'running', at: at(5) },
        { step: 'train', status: 'succeeded', at: at(700), outputs },
      ]),
    );
    return (await services.runs.get('churn', id))!;
  }

  it('turns points into metrics with steps and leaves out the unusable ones', () => {
    expect(
      curveMetrics([
        { iteration: 1, loss: 0.5, validationLoss: 0.6, at: at(1) },
        { iteration: 2, loss: Number.NaN, at: at(2) },
        { iteration: -1, loss: 0.1, at: at(3) },
        { iteration: 3, loss: 0.2, at: 'not a time' },
      ]),
    ).toEqual([
      { key: 'training.loss', value: 0.5, timestamp: T0 + 1000, step: 1 },
      { key: 'training.validation_loss', value: 0.6, timestamp: T0 + 1000, step: 1 },
    ]);
  });

  it('logs the curve of a job once, in batches of at most 1,000 metrics', async () => {
    const run = await trained('run-curve', { jobId: 'job-with-curve', backend: 'local', iterations: 600 });
    fake.calls.length = 0;
    const out = await mirrorRun(deps, run);
    expect(out.logged[0]).toBe('curves');
    const mlflowRun = fake.runByTag('sluice.run_id', 'run-curve')!;
    const loss = mlflowRun.metrics.filter((m) => m.key === 'training.loss');
    const validation = mlflowRun.metrics.filter((m) => m.key === 'training.validation_loss');
    expect(loss).toHaveLength(600);
    expect(validation).toHaveLength(599);
    expect(loss[41]).toEqual({
      key: 'training.loss',
      value: 1 / 42,
      timestamp: Date.parse(at(51)),
      step: 42,
    });
    const batches = fake.calls.filter((c) => c.path === 'runs/log-batch');
    expect(batches.length).toBeGreaterThanOrEqual(2);
    for (const b of batches) expect((b.body.metrics as unknown[]).length).toBeLessThanOrEqual(1000);
    // The next sweep does not log the curve again.
    fake.calls.length = 0;
    const again = await mirrorRun(deps, (await services.runs.get('churn', 'run-curve'))!);
    expect(again.logged).not.toContain('curves');
    expect(
      fake.runByTag('sluice.run_id', 'run-curve')!.metrics.filter((m) => m.key === 'training.loss'),
    ).toHaveLength(600);
  });

  it('logs no curve for a promoted run, and none for a job that stored none', async () => {
    asked.length = 0;
    const promoted = await trained('run-promoted', { imported: 'mlflow', mlflowUri: 'models:/churn/7' });
    expect((await mirrorRun(deps, promoted)).logged).not.toContain('curves');
    const quiet = await trained('run-quiet', { jobId: 'job-quiet', backend: 'local' });
    expect((await mirrorRun(deps, quiet)).logged).toContain('curves');
    expect(asked).toEqual(['job-quiet']);
    expect(fake.runByTag('sluice.run_id', 'run-quiet')!.metrics.some((m) => m.key === 'training.loss')).toBe(
      false,
    );
  });
});
