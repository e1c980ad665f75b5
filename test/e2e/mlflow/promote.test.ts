/** @jest-environment ./test/support/onnxEnvironment.js */
/**
 * Promoting a model trained elsewhere, end to end through devhost over HTTP, with
 * MLFLOW_TRACKING_URI pointing at the fake MLflow server: the fake serves an ONNX model folder
 * registered as models:/wages-elsewhere/1 (a ridge model trained outside Sluice); a run started
 * with `?mlflow=` imports it instead of training, validates, evaluates, waits for a reviewer,
 * deploys, and predict answers from the imported model. An unknown version is refused at start
 * with a 400 naming it, and no run is created. The deployed version downloads as an MLflow folder
 * zip holding exactly the files MLflow served. Needs `dist/`.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FakeMlflow } from '../../support/fakes/mlflow';
import type { PipelineHarness } from '../pipeline/harness';
import {
  REQUESTER,
  REVIEWER,
  startPipelineHarness,
  testPipeline,
  WAGES_CSV,
  WAGES_ROWS,
} from '../pipeline/harness';
import { promoteRun, wagesModelFolder } from './promoting';

jest.setTimeout(300_000);

const PIPELINE = 'e2e-promote';

/** Python's zipfile (every CRC checked): entry name → SHA-256 of its bytes. */
function unzipped(zip: Buffer): Record<string, string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-e2e-zip-'));
  try {
    writeFileSync(path.join(dir, 'm.zip'), zip);
    const script =
      'import hashlib, json, sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nassert z.testzip() is None\n' +
      'print(json.dumps({n: hashlib.sha256(z.read(n)).hexdigest() for n in sorted(z.namelist())}))';
    return JSON.parse(
      execFileSync('/usr/bin/python3', ['-c', script, path.join(dir, 'm.zip')], { encoding: 'utf8' }),
    ) as Record<string, string>;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('promote an MLflow model through devhost', () => {
  let h: PipelineHarness;
  let fake: FakeMlflow;
  let mlflowRunId: string;

  beforeAll(async () => {
    fake = await new FakeMlflow().start();
    // Trained outside Sluice: the pipeline's ridge spec on the wages data, logged as an MLflow folder.
    const files = await wagesModelFolder(PIPELINE);
    mlflowRunId = fake.logModel(
      'team-notebooks',
      Object.fromEntries(files.map((f) => [f.path, Buffer.from(f.bytes)])),
    );
    fake.registerModel('wages-elsewhere', mlflowRunId);
    h = await startPipelineHarness({ env: { MLFLOW_TRACKING_URI: fake.url } });
    await h.put(testPipeline(PIPELINE));
  });
  afterAll(async () => {
    await h?.stop();
    await fake?.stop();
  });

  const promote = (uri: string) => promoteRun(h, PIPELINE, uri);

  it('refuses an unknown model version at start, naming it, and creates no run', async () => {
    const res = await promote('models:/wages-elsewhere/9');
    expect(res.status).toBe(400);
    const body = (await res.json()) as { code: string; detail?: string; field?: string };
    expect(body).toMatchObject({ code: 'mlflow_model_not_found', field: 'candidate.mlflow' });
    expect(JSON.stringify(body)).toContain('models:/wages-elsewhere/9');
    const runs = (await (await h.api('GET', `/api/runs?pipeline=${PIPELINE}`)).json()) as unknown[];
    expect(runs).toEqual([]);
  });

  it('imports instead of training, then evaluates, asks, deploys and serves the imported model', async () => {
    const res = await promote('models:/wages-elsewhere/1');
    const started = (await res.json()) as { runId: string; candidate: unknown };
    expect(res.status).toBe(202);
    expect(started.candidate).toMatchObject({
      mlflow: { uri: 'models:/wages-elsewhere/1', name: 'wages-elsewhere', version: '1', runId: mlflowRunId },
    });
    const waiting = await h.waitFor(started.runId, 'approval', (r) => r.status === 'waiting_for_approval');
    const train = waiting.steps.find((s) => s.name === 'train')!;
    expect(train).toMatchObject({
      status: 'succeeded',
      outputs: {
        imported: 'mlflow',
        mlflowUri: 'models:/wages-elsewhere/1',
        mlflowRunId,
        algorithm: 'mlflow',
      },
    });
    expect(train.outputs).not.toHaveProperty('jobId');
    // What was downloaded: the folder, file by file, through the artifact proxy.
    expect(
      fake
        .okCalls()
        .filter((c) => c.startsWith('GET artifacts/'))
        .sort(),
    ).toEqual(
      ['MLmodel', 'model.json', 'model.onnx'].map(
        (f) =>
          `GET artifacts/${fake.runs.get(mlflowRunId)!.info.experiment_id}/${mlflowRunId}/artifacts/model/${f}`,
      ),
    );

    await h.decide(started.runId, 'approve', 'the notebook model holds up on our holdout');
    const done = await h.finished(started.runId);
    expect(done.status).toBe('succeeded');
    expect(done.approval).toMatchObject({ outcome: 'approved', approvedBy: [REVIEWER] });
    expect(done.deployment).toMatchObject({ modelName: PIPELINE, version: 1, moved: true });

    const scored = await h.api('POST', `/api/models/${PIPELINE}/predict`, { rows: [WAGES_ROWS[0]] });
    expect(scored.status).toBe(200);
    const body = (await scored.json()) as { version: number; predictions: number[] };
    expect(body.version).toBe(1);
    // The imported model answers, as it does outside Sluice.
    expect(body.predictions).toHaveLength(1);
    expect(body.predictions[0]).toBeGreaterThan(0);

    // The deployed version downloads as an MLflow folder zip, streamed through devhost: the files
    // MLflow served, byte for byte.
    const zip = await h.api('GET', `/api/models/${PIPELINE}/versions/1/mlflow`);
    expect(zip.status).toBe(200);
    expect(zip.headers.get('content-type')).toBe('application/zip');
    const entries = unzipped(Buffer.from(await zip.arrayBuffer()));
    const served = [...fake.artifacts].filter(([p]) => p.includes(`/${mlflowRunId}/artifacts/model/`));
    expect(entries).toEqual(
      Object.fromEntries(
        served
          .map(([p, data]) => [p.split('/').pop()!, createHash('sha256').update(data).digest('hex')] as const)
          .sort(([a], [b]) => a.localeCompare(b)),
      ),
    );
  });

  it('takes a blob and the candidate in one JSON body, pinning an alias to its version', async () => {
    fake.models.get('wages-elsewhere')!.aliases.set('challenger', '1');
    await h.blobs
      .getContainerClient('datasets')
      .getBlockBlobClient('holdout/wages.csv')
      .uploadData(readFileSync(WAGES_CSV));
    const body = {
      source: { blob: 'datasets/holdout/wages.csv' },
      candidate: { mlflow: 'models:/wages-elsewhere@challenger' },
    };
    const headers = { 'x-ms-client-principal-name': REQUESTER };
    // The candidate goes in one place: not also in the query.
    const twice = await h.api('POST', `/api/pipelines/${PIPELINE}/runs?mlflow=models:/x/1`, body, headers);
    expect(twice.status).toBe(400);
    expect(await twice.json()).toMatchObject({ code: 'candidate_in_query' });
    const res = await h.api('POST', `/api/pipelines/${PIPELINE}/runs`, body, headers);
    expect(res.status).toBe(202);
    const started = (await res.json()) as { runId: string };
    const run = await h.run(started.runId);
    expect(run.candidate).toMatchObject({
      mlflow: { uri: 'models:/wages-elsewhere@challenger', name: 'wages-elsewhere', version: '1' },
    });
    // Moving the alias now changes nothing for this run: it imports the version resolved at start.
    fake.models.get('wages-elsewhere')!.aliases.delete('challenger');
    const waiting = await h.waitFor(started.runId, 'approval or an ending', (r) =>
      ['waiting_for_approval', 'stopped', 'failed', 'succeeded'].includes(r.status),
    );
    expect(waiting.steps.find((s) => s.name === 'train')).toMatchObject({
      status: 'succeeded',
      outputs: { imported: 'mlflow', mlflowVersion: '1' },
    });
  });
});
