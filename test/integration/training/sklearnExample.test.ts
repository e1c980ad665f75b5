/**
 * @jest-environment ./test/support/onnxEnvironment.js
 *
 * The scikit-learn example (examples/training/sklearn) run for real: Debian's /usr/bin/python3 with
 * python3-sklearn and python3-onnx, through the local job runner and `sluice job test`, on the demo
 * datasets. Its ONNX graph is then scored with onnxruntime-node on the holdout file and must give
 * the metrics scikit-learn computed for the same rows.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Scores } from '../../../lib/mlmodel/onnxModel';
import { OnnxModel } from '../../../lib/mlmodel/onnxModel';
import { jobTest } from '../../../cli/jobTest';
import { checkModelFolder } from '../../../lib/mlmodel/check';
import { jobFileSchema } from '../../../lib/contracts/job';
import { conformTable } from '../../../lib/data/checking/conform';
import { inferDatasetContract } from '../../../lib/data/checking/inferDatasetContract';
import { readDataset } from '../../../lib/data/reading/readDataset';
import type { JobData } from '../../../lib/training/userJob/jobData';
import { writeJobData } from '../../../lib/training/userJob/jobData';
import type { UserJobOutcome } from '../../../lib/training/userJob/run';
import { defaultBaseEnv, runUserJob } from '../../../lib/training/userJob/run';

const ROOT = join(__dirname, '..', '..', '..');
const EXAMPLE = join(ROOT, 'examples', 'training', 'sklearn');
const COMMAND = jobFileSchema.parse(JSON.parse(readFileSync(join(EXAMPLE, 'job.json'), 'utf8'))).command;

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'sluice-sklearn-'));
});
afterAll(() => rm(work, { recursive: true, force: true }));

async function train(
  name: string,
  file: string,
  target: string,
  features: string[],
  hyperparameters: Record<string, unknown> = {},
): Promise<{ data: JobData; outcome: UserJobOutcome }> {
  const read = await readDataset(await readFile(join(ROOT, 'data', file)));
  const contract = inferDatasetContract(read.table);
  const data = await writeJobData(join(work, name, 'data'), {
    table: conformTable(read.table, contract),
    contract,
    target,
    features,
    seed: 42,
    split: { train: 0.7, validation: 0.15, holdout: 0.15 },
  });
  const outcome = await runUserJob({
    jobId: `it-${name}`,
    spec: { code: EXAMPLE, command: COMMAND, hyperparameters, timeLimitSeconds: 300 },
    data,
    workDir: join(work, name),
    check: checkModelFolder,
  });
  return { data, outcome };
}

/** The holdout file's rows as text cells by column name (the demo files have no quoted fields). */
function holdoutRows(data: JobData): Record<string, string>[] {
  const [header, ...lines] = readFileSync(data.holdout.csv, 'utf8').trimEnd().split('\n');
  const names = header!.split(',');
  return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [names[i]!, v])));
}

/** The holdout rows scored as Sluice scores models: lib/mlmodel's OnnxModel, whatever the input layout. */
async function score(
  outcome: UserJobOutcome,
  data: JobData,
  rows: Record<string, string>[],
): Promise<Scores> {
  const bytes = await readFile(join(outcome.outputDir, outcome.model.onnxPath!));
  const model = await OnnxModel.load(bytes, {
    features: data.featureKinds,
    task: data.task,
    ...(data.classes ? { classes: data.classes } : {}),
  });
  const typed = rows.map((r) =>
    Object.fromEntries(
      data.featureKinds.map((k) => [
        k.name,
        k.kind === 'number' ? (r[k.name] === '' ? null : Number(r[k.name])) : r[k.name],
      ]),
    ),
  );
  try {
    return await model.score(typed);
  } finally {
    await model.release();
  }
}

function metricsOf(outcome: UserJobOutcome): Record<string, number> {
  return JSON.parse(readFileSync(join(outcome.outputDir, 'metrics.json'), 'utf8')) as Record<string, number>;
}

describe('examples/training/sklearn under sluice.job/v1', () => {
  it('trains a multiclass LogisticRegression whose ONNX graph (per-feature inputs) predicts as scikit-learn does', async () => {
    const { data, outcome } = await train('weather', 'seattle-weather-2015.csv', 'weather', [
      'precipitation',
      'temp_max',
      'temp_min',
      'wind',
    ]);
    expect(outcome.model.flavor).toBe('onnx');
    expect(outcome.model.manifest.map((m) => m.path)).toEqual(['MLmodel', 'metrics.json', 'model.onnx']);
    expect(outcome.model.digest).toMatch(/^[0-9a-f]{64}$/);
    const mlmodel = readFileSync(join(outcome.outputDir, 'MLmodel'), 'utf8');
    expect(mlmodel).toMatch(/^ {2}onnx:\n(?: {4}.*\n)* {4}data: model\.onnx$/m);
    expect(mlmodel).toContain('"name": "precipitation"');

    const rows = holdoutRows(data);
    const out = await score(outcome, data, rows);
    const labels = out.labels!;
    const probs = out.probabilities!;
    expect([probs.length, ...new Set(probs.map((p) => p.length))]).toEqual([
      rows.length,
      data.classes!.length,
    ]);
    for (let i = 0; i < rows.length; i++) {
      const p = probs[i]!;
      expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      expect(labels[i]).toBe(data.classes![p.indexOf(Math.max(...p))]); // probabilities in the classes' order
    }
    const accuracy = rows.filter((r, i) => r.weather === labels[i]).length / rows.length;
    expect(accuracy).toBeCloseTo(metricsOf(outcome).holdout_accuracy!, 10);
    expect(accuracy).toBeGreaterThan(0.5);
  });

  it('trains a Ridge regression with one-hot categories whose ONNX output matches scikit-learn on the holdout', async () => {
    const features = ['education', 'experience', 'gender', 'occupation', 'union', 'sector'];
    const { data, outcome } = await train('wages', 'cps-wages-1985.csv', 'wage', features, { alpha: 2 });
    expect(data.task).toBe('regression');
    const rows = holdoutRows(data);
    const out = await score(outcome, data, rows);
    expect(out.values!.length).toBe(rows.length);
    const pred = out.values!;
    const rmse = Math.sqrt(rows.reduce((s, r, i) => s + (Number(r.wage) - pred[i]!) ** 2, 0) / rows.length);
    expect(Math.abs(rmse - metricsOf(outcome).holdout_rmse!) / rmse).toBeLessThan(1e-5);
  });

  it('turns a binary LogisticRegression into a two-class softmax with the same accuracy', async () => {
    const { data, outcome } = await train('binary', 'cps-wages-1985.csv', 'gender', [
      'education',
      'experience',
      'wage',
      'occupation',
    ]);
    expect(data.classes).toEqual(['female', 'male']);
    const rows = holdoutRows(data);
    const out = await score(outcome, data, rows);
    expect([out.probabilities!.length, ...new Set(out.probabilities!.map((p) => p.length))]).toEqual([
      rows.length,
      2,
    ]);
    const labels = out.labels!;
    const accuracy = rows.filter((r, i) => r.gender === labels[i]).length / rows.length;
    expect(accuracy).toBeCloseTo(metricsOf(outcome).holdout_accuracy!, 10);
    expect(accuracy).toBeGreaterThan(0.5);
  });

  it('writes one float tensor input when asked for input_layout "tensor"', async () => {
    const { data, outcome } = await train(
      'tensor',
      'seattle-weather-2015.csv',
      'weather',
      ['precipitation', 'temp_max', 'temp_min', 'wind'],
      { input_layout: 'tensor', C: 0.5 },
    );
    const session = await ort.InferenceSession.create(join(outcome.outputDir, outcome.model.onnxPath!));
    expect(session.inputNames).toEqual(['input']);
    await session.release();
    const rows = holdoutRows(data);
    const labels = (await score(outcome, data, rows)).labels!;
    const accuracy = rows.filter((r, i) => r.weather === labels[i]).length / rows.length;
    expect(accuracy).toBeCloseTo(metricsOf(outcome).holdout_accuracy!, 10);
  });

  it('fails with job_failed and the Python error when the tensor layout meets a categorical feature', async () => {
    await expect(
      train('refused', 'cps-wages-1985.csv', 'wage', ['education', 'gender'], { input_layout: 'tensor' }),
    ).rejects.toMatchObject({
      code: 'job_failed',
      message: expect.stringMatching(
        /input_layout 'tensor' takes numeric features only; gender are categories/,
      ),
    });
  });
});

describe('sluice job test', () => {
  it('runs the example on a sample, streams its log, and prints the model folder and predictions', async () => {
    const lines: string[] = [];
    const code = await jobTest(
      {
        folder: EXAMPLE,
        data: join(ROOT, 'data', 'cps-wages-1985.csv'),
        target: 'wage',
        features: ['education', 'experience', 'gender'],
        rows: 300,
        work: join(work, 'cli-ok'),
      },
      { check: checkModelFolder, out: (l) => lines.push(l), baseEnv: defaultBaseEnv() },
    );
    const text = lines.join('\n');
    expect(code).toBe(0);
    expect(text).toContain('data: ');
    expect(text).toMatch(/300 of 534 rows; regression of wage on 3 features/);
    expect(text).toMatch(/│ train\.py: regression of wage on 3 features/);
    expect(text).toMatch(/✔ the job exited 0/);
    expect(text).toMatch(/digest: sha256:[0-9a-f]{64}/);
    expect(text).toMatch(/metrics: .*holdout_rmse/);
    expect(text).toMatch(
      /predictions on holdout rows:\n {4}education=\d+ experience=\d+ gender="(male|female)" → -?\d/,
    );
  });

  it('exits 1 naming the failure when the command fails', async () => {
    const lines: string[] = [];
    const code = await jobTest(
      {
        folder: EXAMPLE,
        data: join(ROOT, 'data', 'cps-wages-1985.csv'),
        target: 'wage',
        command: `/usr/bin/python3 -c "import sys; print('boom'); sys.exit(4)"`,
        work: join(work, 'cli-fail'),
      },
      { check: checkModelFolder, out: (l) => lines.push(l) },
    );
    expect(code).toBe(1);
    expect(lines).toContain('  │ boom');
    expect(lines.at(-1)).toBe('✖ job_failed: /usr/bin/python3 exited with code 4');
  });

  it('exits 1 with command_not_found naming the program', async () => {
    const lines: string[] = [];
    const code = await jobTest(
      {
        folder: EXAMPLE,
        data: join(ROOT, 'data', 'cps-wages-1985.csv'),
        target: 'wage',
        command: 'python3-not-installed train.py',
        work: join(work, 'cli-missing'),
      },
      { check: checkModelFolder, out: (l) => lines.push(l) },
    );
    expect(code).toBe(1);
    expect(lines.at(-1)).toBe('✖ command_not_found: python3-not-installed not found on PATH');
  });

  it('exits 1 with code_folder_missing for a folder that does not exist', async () => {
    const lines: string[] = [];
    const code = await jobTest(
      { folder: join(work, 'nope'), data: join(ROOT, 'data', 'cps-wages-1985.csv'), target: 'wage' },
      { check: checkModelFolder, out: (l) => lines.push(l) },
    );
    expect(code).toBe(1);
    expect(lines).toEqual([`✖ code_folder_missing: the code folder ${join(work, 'nope')} does not exist`]);
  });
});
