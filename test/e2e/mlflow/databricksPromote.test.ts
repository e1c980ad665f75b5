/** @jest-environment ./test/support/onnxEnvironment.js */
/**
 * Promoting a model a Databricks team keeps in a Unity Catalog volume, end to end through devhost
 * over HTTP, with MLFLOW_TRACKING_URI=databricks and DATABRICKS_HOST pointing at the fake workspace:
 * models:/wages-volume/1's files are at dbfs:/Volumes/main/ml/models/wages (a ridge model trained
 * outside Sluice); the run lists and downloads them through the Files API with the workspace token,
 * evaluates, waits for a reviewer, deploys, and predict answers from the imported model. A version
 * in a volume the identity may not read is refused at start with a 400 naming it, and no run is
 * created. Needs `dist/`.
 */
import { FakeMlflow } from '../../support/fakes/mlflow';
import type { PipelineHarness } from '../pipeline/harness';
import { REVIEWER, startPipelineHarness, testPipeline, WAGES_ROWS } from '../pipeline/harness';
import { promoteRun, wagesModelFolder } from './promoting';

jest.setTimeout(300_000);

const PIPELINE = 'e2e-promote-volume';
const TOKEN = 'dapi-e2e-workspace';

describe('promote a model from a Unity Catalog volume through devhost', () => {
  let h: PipelineHarness;
  let fake: FakeMlflow;
  let names: string[];

  beforeAll(async () => {
    fake = await new FakeMlflow().start();
    fake.token = TOKEN;
    const files = await wagesModelFolder(PIPELINE);
    names = files.map((f) => f.path).sort();
    for (const f of files) {
      fake.volumeFiles.set(`/Volumes/main/ml/models/wages/${f.path}`, Buffer.from(f.bytes));
      fake.volumeFiles.set(`/Volumes/main/ml/secret/wages/${f.path}`, Buffer.from(f.bytes));
    }
    fake.forbidden.push('/Volumes/main/ml/secret');
    // Registered from a notebook: a version whose download URI is the volume folder.
    const runId = fake.logModel('/Users/team@contoso.com/wages', {}, 'unused');
    for (const location of ['dbfs:/Volumes/main/ml/models/wages', '/Volumes/main/ml/secret/wages']) {
      fake.registerModel('wages-volume', runId);
      const v = fake.models.get('wages-volume')!.versions.at(-1)!;
      v.download_uri = location;
      v.source = location;
    }
    h = await startPipelineHarness({
      env: {
        MLFLOW_TRACKING_URI: 'databricks',
        DATABRICKS_HOST: fake.url,
        MLFLOW_TRACKING_TOKEN: TOKEN,
        MLFLOW_EXPERIMENT_PREFIX: '/Shared/sluice/',
      },
    });
    await h.put(testPipeline(PIPELINE));
  });
  afterAll(async () => {
    await h?.stop();
    await fake?.stop();
  });

  const promote = (uri: string) => promoteRun(h, PIPELINE, uri);

  it('refuses a volume the identity may not read at start, naming it, and creates no run', async () => {
    const res = await promote('models:/wages-volume/2');
    expect(res.status).toBe(400);
    const body = (await res.json()) as { code: string; field?: string };
    expect(body).toMatchObject({ code: 'mlflow_artifacts_forbidden', field: 'candidate.mlflow' });
    expect(JSON.stringify(body)).toContain('/Volumes/main/ml/secret/wages');
    const runs = (await (await h.api('GET', `/api/runs?pipeline=${PIPELINE}`)).json()) as unknown[];
    expect(runs).toEqual([]);
  });

  it('imports from the volume through the Files API, then evaluates, asks, deploys and serves it', async () => {
    const res = await promote('models:/wages-volume/1');
    expect(res.status).toBe(202);
    const started = (await res.json()) as { runId: string; candidate: unknown };
    expect(started.candidate).toMatchObject({
      mlflow: { uri: 'models:/wages-volume/1', artifactPath: '/Volumes/main/ml/models/wages', version: '1' },
    });
    const waiting = await h.waitFor(started.runId, 'approval', (r) => r.status === 'waiting_for_approval');
    expect(waiting.steps.find((s) => s.name === 'train')).toMatchObject({
      status: 'succeeded',
      outputs: { imported: 'mlflow', algorithm: 'mlflow' },
    });
    const files = fake.calls.filter((c) => c.path.startsWith('fs/files/') && c.status === 200);
    expect(files.map((c) => c.path).sort()).toEqual(
      names.map((n) => `fs/files/Volumes/main/ml/models/wages/${n}`),
    );
    expect(files.every((c) => c.authorization === `Bearer ${TOKEN}`)).toBe(true);

    await h.decide(started.runId, 'approve', 'the notebook model holds up on our holdout');
    const done = await h.finished(started.runId);
    expect(done.status).toBe('succeeded');
    expect(done.approval).toMatchObject({ outcome: 'approved', approvedBy: [REVIEWER] });
    expect(done.deployment).toMatchObject({ modelName: PIPELINE, version: 1, moved: true });
    const scored = await h.api('POST', `/api/models/${PIPELINE}/predict`, { rows: [WAGES_ROWS[0]] });
    expect(scored.status).toBe(200);
    const body = (await scored.json()) as { version: number; predictions: number[] };
    expect(body.version).toBe(1);
    expect(body.predictions[0]).toBeGreaterThan(0);
  });
});
