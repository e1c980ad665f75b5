/**
 * The `score` command on Databricks: a python_function-only model (examples/training/sklearn-pyfunc,
 * trained here on the host) is scored by a one-time spark_python run that the fake runs for real
 * over volumes simulated on Azurite; the model and rows are read from the jobs volume, the
 * predictions written to the joboutputs volume, equal to the host's score command's.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { CustomTrainingSpec } from '../../../lib/contracts/trainingSpec';
import { trainingSpecSchema } from '../../../lib/contracts/trainingSpec';
import { conformTable } from '../../../lib/data/checking/conform';
import { inferDatasetContract } from '../../../lib/data/checking/inferDatasetContract';
import { readDataset } from '../../../lib/data/reading/readDataset';
import { checkModelFolder } from '../../../lib/mlmodel/check';
import { ArtifactStore } from '../../../lib/storage/blob';
import { DatabricksTrainingBackend } from '../../../lib/training/backends/databricks';
import { DatabricksClient } from '../../../lib/training/backends/databricksApi';
import type { JobData } from '../../../lib/training/userJob/jobData';
import { writeJobData } from '../../../lib/training/userJob/jobData';
import { runUserJob } from '../../../lib/training/userJob/run';
import { runScoreCommand } from '../../../lib/training/userJob/score';
import type { BlobEmulator } from '../../support/emulators';
import { startAzuriteBlob } from '../../support/emulators';
import type { FakeDatabricks } from '../../support/fakes/databricks';
import { pythonVolumeExecutor, startFakeDatabricks } from '../../support/fakes/databricks';
import { OUT_VOLUME, REPO_ROOT as ROOT, VOLUME, WORKSPACE } from '../../support/databricksVolumes';

jest.setTimeout(180_000);

const EXAMPLE = path.join(ROOT, 'examples', 'training', 'sklearn-pyfunc');

let azurite: BlobEmulator;
let store: ArtifactStore;
let fake: FakeDatabricks;
let backend: DatabricksTrainingBackend;
let work: string;
let data: JobData;
let modelDir: string;
let rows: Record<string, unknown>[];

beforeAll(async () => {
  azurite = await startAzuriteBlob();
  store = ArtifactStore.fromConnectionString(azurite.connectionString);
  await store.ensureContainers();
  work = await mkdtemp(path.join(tmpdir(), 'sluice-dbx-score-'));
  const read = await readDataset(await readFile(path.join(ROOT, 'data', 'seattle-weather-2015.csv')));
  const contract = inferDatasetContract(read.table);
  data = await writeJobData(path.join(work, 'data'), {
    table: conformTable(read.table, contract),
    contract,
    target: 'weather',
    features: ['precipitation', 'temp_max', 'temp_min', 'wind'],
    seed: 42,
    split: { train: 0.7, validation: 0.15, holdout: 0.15 },
  });
  const outcome = await runUserJob({
    jobId: 'it-dbx-pyfunc',
    spec: { code: EXAMPLE, command: '/usr/bin/python3 train.py', hyperparameters: {}, timeLimitSeconds: 300 },
    data,
    workDir: path.join(work, 'train'),
    check: checkModelFolder,
  });
  modelDir = outcome.outputDir;
  const [header, ...lines] = (await readFile(data.holdout.csv, 'utf8')).trimEnd().split('\n');
  const names = header!.split(',');
  rows = lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [names[i]!, v])));
  await writeFile(path.join(work, 'crash.py'), 'import sys\nraise SystemExit("no model here")\n');
  fake = await startFakeDatabricks({
    executor: pythonVolumeExecutor({
      store,
      volumeRoot: VOLUME,
      outputRoot: OUT_VOLUME,
      workspace: { [`${WORKSPACE}/pyfunc`]: EXAMPLE, [`${WORKSPACE}/bad`]: work },
    }),
  });
  backend = new DatabricksTrainingBackend({
    client: new DatabricksClient({ host: fake.url, token: 'fake-databricks-token', baseRetryDelayMs: 1 }),
    store,
    jobRoot: VOLUME,
    outputRoot: OUT_VOLUME,
    scorePollMs: 20,
  });
});
afterAll(async () => {
  await fake?.close();
  await azurite?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const spec = (over: Record<string, unknown> = {}): CustomTrainingSpec =>
  trainingSpecSchema.parse({
    algorithm: 'custom',
    backend: 'databricks',
    code: `${WORKSPACE}/pyfunc`,
    command: '/usr/bin/python3 train.py',
    score: '/usr/bin/python3 score.py',
    target: 'weather',
    features: ['precipitation', 'temp_max', 'temp_min', 'wind'],
    timeLimitSeconds: 300,
    databricks: {
      newCluster: { spark_version: '15.4.x-scala2.12', node_type_id: 'Standard_DS3_v2', num_workers: 1 },
    },
    ...over,
  }) as CustomTrainingSpec;

describe('the score command as a Databricks run', () => {
  it('scores the holdout on Databricks, equal to the host; a retried call gets the same run', async () => {
    const input = {
      spec: spec(),
      modelDir,
      rows,
      workDir: path.join(work, 'remote'),
      task: 'classification' as const,
      classes: data.classes!,
    };
    const scores = await backend.score(input);
    // The same command on the host, from the folder the workspace path stands for.
    const host = await runScoreCommand({
      ...input,
      spec: { ...input.spec, code: EXAMPLE },
      workDir: path.join(work, 'host'),
    });
    expect(scores.labels).toHaveLength(data.holdout.rows);
    expect(scores.labels).toEqual(host.labels);
    expect(scores.probabilities).toEqual(host.probabilities);

    const run = [...fake.runs.values()].at(-1)!;
    const token = run.body.idempotency_token as string;
    expect(token).toMatch(/^sluice-score-[0-9a-f]{40}$/);
    expect(run.task).toMatchObject({ spark_python_task: { python_file: `${WORKSPACE}/pyfunc/score.py` } });
    const env = (run.task.new_cluster as { spark_env_vars: Record<string, string> }).spark_env_vars;
    expect(env).toMatchObject({
      SLUICE_MODEL: `${VOLUME}/${token}/model`,
      SLUICE_INPUT: `${VOLUME}/${token}/input.csv`,
      SLUICE_PREDICTIONS: expect.stringMatching(
        new RegExp(`^${OUT_VOLUME}/${token}/predictions-[0-9a-f]{32}\\.csv$`),
      ),
    });
    const runs = fake.runs.size;
    await expect(backend.score({ ...input, workDir: path.join(work, 'again') })).resolves.toEqual(scores);
    expect(fake.runs.size).toBe(runs);
  });

  it('scores on an existing cluster and serverless through the launcher, equal to the new cluster’s', async () => {
    const base = { modelDir, task: 'classification' as const, classes: data.classes! };
    const onCluster = await backend.score({ ...base, rows, spec: spec(), workDir: path.join(work, 'nc') });
    const computes = [{ existingClusterId: '0101-abc' }, {}];
    for (const [i, databricks] of computes.entries()) {
      // Other rows, so another score job (its id follows the model, rows, command and task).
      const n = 40 + i;
      const scores = await backend.score({
        ...base,
        rows: rows.slice(0, n),
        spec: spec({ databricks }),
        workDir: path.join(work, `launch-${i}`),
      });
      expect(scores.labels).toEqual(onCluster.labels!.slice(0, n));
      expect(scores.probabilities).toEqual(onCluster.probabilities!.slice(0, n));
      const run = [...fake.runs.values()].at(-1)!;
      const token = run.body.idempotency_token as string;
      const task = run.task.spark_python_task as { python_file: string; parameters: string[] };
      expect(task.python_file).toBe(`${VOLUME}/${token}/launcher/sluice_launch.py`);
      expect(run.task.new_cluster).toBeUndefined();
      // The score command's variables as the launcher's, the score file behind them.
      expect(task.parameters).toEqual(
        expect.arrayContaining([
          `SLUICE_MODEL=${VOLUME}/${token}/model`,
          `SLUICE_INPUT=${VOLUME}/${token}/input.csv`,
          expect.stringMatching(
            new RegExp(`^SLUICE_PREDICTIONS=${OUT_VOLUME}/${token}/predictions-[0-9a-f]{32}\\.csv$`),
          ),
        ]),
      );
      expect(task.parameters.slice(-3)).toEqual(['--file', `${WORKSPACE}/pyfunc/score.py`, '--']);
    }
  });

  it('a failing score run is score_failed; a notebook pipeline cannot score here', async () => {
    await expect(
      backend.score({
        spec: spec({ code: `${WORKSPACE}/bad`, score: '/usr/bin/python3 crash.py' }),
        modelDir,
        rows,
        workDir: path.join(work, 'bad'),
        task: 'classification',
        classes: data.classes!,
      }),
    ).rejects.toMatchObject({ code: 'score_failed' });
    await expect(
      backend.score({
        spec: spec({ command: undefined, databricks: { task: 'notebook' } }),
        modelDir,
        rows,
        workDir: path.join(work, 'nb'),
      }),
    ).rejects.toMatchObject({ code: 'databricks_score_unsupported' });
  });

  it('predictions over the size limit are predictions_invalid; rewritten after the first read, predictions_tampered', async () => {
    const input = {
      spec: spec(),
      modelDir,
      rows,
      workDir: path.join(work, 'pin'),
      task: 'classification' as const,
      classes: data.classes!,
    };
    const first = await backend.score(input); // the run of the first test, reattached
    // The first test's run: the first score run submitted.
    const run = [...fake.runs.values()].find((r) =>
      /^sluice-score-[0-9a-f]{40}$/.test(r.body.idempotency_token as string),
    )!;
    const token = run.body.idempotency_token as string;
    const env = (run.task.new_cluster as { spark_env_vars: Record<string, string> }).spark_env_vars;
    const file = env.SLUICE_PREDICTIONS!.slice(OUT_VOLUME.length + 1);
    expect(await store.exists({ container: 'jobs', path: `${token}/predictions.pin.json` })).toBe(true);

    const small = new DatabricksTrainingBackend({
      client: new DatabricksClient({ host: fake.url, token: 'fake-databricks-token', baseRetryDelayMs: 1 }),
      store,
      jobRoot: VOLUME,
      outputRoot: OUT_VOLUME,
      scorePollMs: 20,
      maxPredictionBytes: 100,
    });
    await expect(small.score({ ...input, workDir: path.join(work, 'pin-small') })).rejects.toMatchObject({
      code: 'predictions_invalid',
      message: expect.stringContaining('over the limit of 100'),
    });

    // Any other run can write joboutputs: one rewrites the ended run's predictions (still valid CSV).
    const at = { container: 'joboutputs', path: file };
    const text = (await store.getBuffer(at)).data.toString('utf8');
    const [header, ...lines] = text.trimEnd().split('\n');
    const flipped = lines.map((l) =>
      l.startsWith('sun,') ? l.replace(/^sun,/, 'rain,') : l.replace(/^\w+,/, 'sun,'),
    );
    await store.put(at, `${header}\n${flipped.join('\n')}\n`, { condition: 'overwrite' });
    await expect(backend.score({ ...input, workDir: path.join(work, 'pin-2') })).rejects.toMatchObject({
      code: 'predictions_tampered',
    });
    // Put back as the run wrote it, the pinned digest matches again.
    await store.put(at, text, { condition: 'overwrite' });
    await expect(backend.score({ ...input, workDir: path.join(work, 'pin-3') })).resolves.toEqual(first);
  });

  it('a score run that failed is followed by a new one on the next call, at most three in all', async () => {
    const marker = path.join(work, 'flaky.marker');
    await writeFile(
      path.join(work, 'flaky.py'),
      [
        'import os, runpy, sys',
        `marker = ${JSON.stringify(marker)}`,
        'if not os.path.exists(marker):',
        '    open(marker, "w").close()',
        '    raise SystemExit("the first run fails")',
        `sys.path.insert(0, ${JSON.stringify(EXAMPLE)})`,
        `runpy.run_path(${JSON.stringify(path.join(EXAMPLE, 'score.py'))}, run_name="__main__")`,
        '',
      ].join('\n'),
    );
    const input = {
      spec: spec({ code: `${WORKSPACE}/bad`, score: '/usr/bin/python3 flaky.py' }),
      modelDir,
      rows,
      workDir: path.join(work, 'flaky'),
      task: 'classification' as const,
      classes: data.classes!,
    };
    await expect(backend.score(input)).rejects.toMatchObject({ code: 'score_failed' });
    const failed = [...fake.runs.values()].at(-1)!.body.idempotency_token as string;
    expect(failed).toMatch(/^sluice-score-[0-9a-f]{40}$/);
    // The next evaluation does not re-read the failed run: it submits the second attempt.
    const scores = await backend.score({ ...input, workDir: path.join(work, 'flaky-2') });
    expect(scores.labels).toHaveLength(data.holdout.rows);
    expect([...fake.runs.values()].at(-1)!.body.idempotency_token).toBe(`${failed}-a1`);
    const runs = fake.runs.size;
    await expect(backend.score({ ...input, workDir: path.join(work, 'flaky-3') })).resolves.toEqual(scores);
    expect(fake.runs.size).toBe(runs);

    // A command that always fails: three runs, then no more.
    const crash = {
      spec: spec({ code: `${WORKSPACE}/bad`, score: '/usr/bin/python3 crash.py again' }),
      modelDir,
      rows,
      workDir: path.join(work, 'crash'),
      task: 'classification' as const,
      classes: data.classes!,
    };
    const before = fake.runs.size;
    for (let i = 0; i < 3; i++)
      await expect(backend.score(crash)).rejects.toMatchObject({ code: 'score_failed' });
    const tokens = [...fake.runs.values()].slice(-3).map((r) => r.body.idempotency_token as string);
    expect(tokens).toEqual([tokens[0], `${tokens[0]}-a1`, `${tokens[0]}-a2`]);
    await expect(backend.score(crash)).rejects.toMatchObject({
      code: 'score_failed',
      message: expect.stringContaining('3 Databricks score runs'),
    });
    expect(fake.runs.size).toBe(before + 3);
  });
});
