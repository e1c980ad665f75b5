/**
 * Users' own training code in a pipeline, end to end through devhost over HTTP: the scikit-learn
 * example (examples/training/sklearn, real /usr/bin/python3) trains a candidate that is evaluated
 * against a built-in champion through ONNX, approved, deployed and served; bad inputs of the local
 * backend stop the run (or the PUT) by name; a worker killed mid-job is submitted again. Needs
 * `dist/` (npm test builds it).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { PipelineHarness } from './harness';
import {
  startPipelineHarness,
  WAGES_ROWS,
  stepStatuses,
  STEPS_AT_APPROVAL,
  testPipeline,
  WAGE_FEATURES,
} from './harness';
import { repoRoot } from '../../support/devhost';
import { gone } from '../../support/processes';

jest.setTimeout(300_000);

/** The example, named as a user would: relative to the folder the app runs in (devhost's is the repository). */
const sklearnTraining = (over: Record<string, unknown> = {}) => ({
  algorithm: 'custom',
  code: 'examples/training/sklearn',
  command: '/usr/bin/python3 train.py',
  target: 'wage',
  features: WAGE_FEATURES,
  hyperparameters: { alpha: 1.0 },
  split: { train: 0.7, validation: 0.1, holdout: 0.2 },
  timeLimitSeconds: 300,
  ...over,
});

const ROWS = WAGES_ROWS;

describe('users’ own training code in a pipeline (local backend) through devhost', () => {
  let h: PipelineHarness;
  const codes = mkdtempSync(path.join(os.tmpdir(), 'sluice-e2e-usercode-'));

  /** A code folder with `job.sh` (run as `/bin/sh job.sh`). */
  const shellJob = (name: string, script: string): string => {
    const dir = path.join(codes, name);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'job.sh'), script);
    return dir;
  };

  beforeAll(async () => {
    // The shell jobs live in the OS temp folder, the examples in the repository (relative paths,
    // resolved against devhost's working directory): the root allows both.
    h = await startPipelineHarness({ env: { USER_CODE_ROOT: '/' } });
  });
  afterAll(async () => {
    await h?.stop();
    rmSync(codes, { recursive: true, force: true });
  });

  it('scikit-learn candidate: validate → train (python) → evaluate against a built-in champion → approve → deploy → predict', async () => {
    // The champion: the built-in ridge regression, approved and deployed.
    await h.put(testPipeline('e2e-byoc'));
    const first = await h.start('e2e-byoc');
    await h.waitFor(first, 'approval', (r) => r.status === 'waiting_for_approval');
    await h.decide(first, 'approve', 'built-in champion');
    expect((await h.finished(first)).status).toBe('succeeded');

    // The same pipeline, now training with the user's scikit-learn code.
    await h.put(
      testPipeline('e2e-byoc', {
        training: sklearnTraining(),
        evaluation: {
          primaryMetric: 'r2',
          threshold: 0.1,
          // 107 holdout rows: the interval of the difference is wide, so the margin is too.
          comparison: { mode: 'non_inferiority', margin: 0.5 },
          minRows: 50,
        },
      }),
    );
    const id = await h.start('e2e-byoc');
    const waiting = await h.waitFor(id, 'approval', (r) =>
      ['waiting_for_approval', 'failed', 'stopped'].includes(r.status),
    );
    expect({ status: waiting.status, reason: waiting.reason }).toEqual({
      status: 'waiting_for_approval',
      reason: undefined,
    });
    expect(stepStatuses(waiting)).toEqual(STEPS_AT_APPROVAL);
    const train = waiting.steps.find((s) => s.name === 'train')!;
    expect(train.outputs).toMatchObject({ backend: 'local', algorithm: 'custom' });
    expect(String(train.outputs!.modelUri)).toMatch(/mlflow\/[0-9a-f]{64}\.manifest\.json$/);
    // The job's own metrics.json, as the run shows it.
    expect(waiting.metrics).toMatchObject({ training: { job: { holdout_r2: expect.any(Number) } } });
    const evaluate = waiting.steps.find((s) => s.name === 'evaluate')!;
    expect(evaluate.status).toBe('succeeded');
    // Compared with the built-in champion, version 1, on the same rows.
    expect(waiting.metrics?.evaluation).toMatchObject({
      primaryMetric: 'r2',
      championVersion: 1,
      candidate: expect.any(Number),
      champion: expect.any(Number),
      passed: true,
    });
    // Scored through ONNX by Sluice on the holdout, the candidate's r2 is the one scikit-learn reported for it.
    const evaluation = waiting.metrics!.evaluation as { candidate: number; rows: number };
    const job = (waiting.metrics!.training as { job: Record<string, number> }).job;
    expect(evaluation.candidate).toBeCloseTo(job.holdout_r2!, 4);

    // Reviewers see which code made the model: the digest of the code folder the job ran.
    const codeDigest = waiting.steps.find((s) => s.name === 'train')!.outputs!.codeDigest as string;
    expect(codeDigest).toMatch(/^[0-9a-f]{64}$/);
    const page = await (await fetch(await h.link(id))).text();
    expect(page).toMatch(new RegExp(`Training code SHA-256</dt>\\s*<dd class="mono">${codeDigest}</dd>`));
    await h.decide(id, 'approve', 'sklearn is as good as the built-in');
    const done = await h.finished(id);
    expect(done.status).toBe('succeeded');
    expect(done.deployment).toMatchObject({ modelName: 'e2e-byoc', version: 2 });
    const model = await h.model('e2e-byoc');
    expect(model?.aliases.production?.version).toBe(2);

    const scored = await h.api('POST', '/api/models/e2e-byoc/predict', { rows: ROWS });
    const body = (await scored.json()) as { version: number; predictions: number[] };
    expect(scored.status).toBe(200);
    expect(body.version).toBe(2);
    expect(body.predictions).toHaveLength(2);
    // More schooling, fewer years: the professional earns more than the service worker? Not a rule;
    // but both are wages, positive and finite.
    for (const p of body.predictions) expect(Number.isFinite(p) && p > 0).toBe(true);
  });

  it('a python_function-only model: evaluated by its score command, approved and deployed, and predict answers 409', async () => {
    await h.put(
      testPipeline('e2e-byoc-pyfunc', {
        training: sklearnTraining({
          code: 'examples/training/sklearn-pyfunc',
          score: '/usr/bin/python3 score.py',
        }),
        evaluation: { primaryMetric: 'r2', threshold: 0.1, minRows: 50 },
      }),
    );
    const id = await h.start('e2e-byoc-pyfunc');
    const waiting = await h.waitFor(id, 'approval', (r) =>
      ['waiting_for_approval', 'failed', 'stopped'].includes(r.status),
    );
    expect({ status: waiting.status, reason: waiting.reason }).toEqual({
      status: 'waiting_for_approval',
      reason: undefined,
    });
    // No champion yet: the thresholds alone, on r2 computed from score.py's predictions.
    expect(waiting.metrics?.evaluation).toMatchObject({ primaryMetric: 'r2', passed: true });
    await h.decide(id, 'approve', 'pickled, but evaluated');
    const done = await h.finished(id);
    expect(done.status).toBe('succeeded');
    expect((await h.model('e2e-byoc-pyfunc'))?.aliases.production?.version).toBe(1);
    const scored = await h.api('POST', '/api/models/e2e-byoc-pyfunc/predict', { rows: ROWS });
    expect(scored.status).toBe(409);
    expect(await scored.json()).toMatchObject({ code: 'model_not_servable' });
  });

  it('PUT refuses a custom local pipeline whose code folder or program is missing, naming it', async () => {
    const missing = await h.api(
      'PUT',
      '/api/pipelines/e2e-byoc-nofolder',
      testPipeline('e2e-byoc-nofolder', {
        training: sklearnTraining({ code: 'examples/training/no-such-job' }),
      }),
    );
    expect(missing.status).toBe(400);
    expect(await missing.json()).toMatchObject({
      code: 'code_folder_missing',
      field: 'training.code',
      detail: expect.stringContaining('examples/training/no-such-job'),
    });
    const noProgram = await h.api(
      'PUT',
      '/api/pipelines/e2e-byoc-noprogram',
      testPipeline('e2e-byoc-noprogram', {
        training: sklearnTraining({ command: 'python3-not-installed train.py' }),
      }),
    );
    expect(noProgram.status).toBe(400);
    expect(await noProgram.json()).toMatchObject({
      code: 'command_not_found',
      field: 'training.command',
      detail: 'python3-not-installed not found on PATH',
    });
  });

  it('a code folder removed after the PUT fails the run at the train step with code_folder_missing', async () => {
    const code = shellJob('removed', 'exit 0\n');
    await h.put(
      testPipeline('e2e-byoc-removed', { training: sklearnTraining({ code, command: '/bin/sh job.sh' }) }),
    );
    rmSync(code, { recursive: true, force: true });
    const done = await h.finished(await h.start('e2e-byoc-removed'));
    expect(done.status).toBe('failed');
    const train = done.steps.find((s) => s.name === 'train')!;
    expect(train.status).toBe('failed');
    expect(train.error).toMatchObject({
      code: 'code_folder_missing',
      message: expect.stringContaining(code),
    });
  });

  it('a job that exits non-zero fails the run with job_failed and the end of its log', async () => {
    const code = shellJob(
      'fails',
      'echo "reading $SLUICE_TRAIN"\necho "ValueError: bad things" >&2\nexit 4\n',
    );
    await h.put(
      testPipeline('e2e-byoc-fails', { training: sklearnTraining({ code, command: '/bin/sh job.sh' }) }),
    );
    const done = await h.finished(await h.start('e2e-byoc-fails'));
    expect(done).toMatchObject({ status: 'failed', stopReason: 'training_failed' });
    const train = done.steps.find((s) => s.name === 'train')!;
    expect(train.error).toMatchObject({
      code: 'job_failed',
      message: expect.stringContaining('exited with code 4'),
    });
    expect(done.reason).toContain('ValueError: bad things');
    expect((await h.model('e2e-byoc-fails'))?.latestVersion ?? 0).toBe(0);
  });

  it('a job that writes no MLmodel fails the run with mlmodel_missing, registering nothing', async () => {
    const code = shellJob('nomlmodel', 'echo 42 > "$SLUICE_OUTPUT/model.pkl"\n');
    await h.put(
      testPipeline('e2e-byoc-nomlmodel', { training: sklearnTraining({ code, command: '/bin/sh job.sh' }) }),
    );
    const done = await h.finished(await h.start('e2e-byoc-nomlmodel'));
    expect(done).toMatchObject({ status: 'failed', stopReason: 'training_failed' });
    expect(done.steps.find((s) => s.name === 'train')!.error!.code).toBe('mlmodel_missing');
    expect(await h.model('e2e-byoc-nomlmodel')).toBeNull();
  });

  it('a job past its time limit fails the run with time_limit_exceeded', async () => {
    const code = shellJob('slow', 'sleep 120\n');
    await h.put(
      testPipeline('e2e-byoc-slow', {
        training: sklearnTraining({ code, command: '/bin/sh job.sh', timeLimitSeconds: 3 }),
      }),
    );
    const done = await h.finished(await h.start('e2e-byoc-slow'));
    expect(done.status).toBe('failed');
    expect(done.steps.find((s) => s.name === 'train')!.error!.code).toBe('time_limit_exceeded');
  });

  it('a worker SIGKILLed mid-job is submitted again, and the second attempt trains', async () => {
    const example = path.join(repoRoot, 'examples', 'training', 'sklearn', 'train.py');
    // First attempt: leave a mark and wait (to be killed); the next one trains for real.
    const code = shellJob(
      'killed',
      `if [ -f attempted ]; then exec /usr/bin/python3 '${example}'; fi\ntouch attempted\necho $$ > pid\nexec sleep 300\n`,
    );
    await h.put(
      testPipeline('e2e-byoc-killed', { training: sklearnTraining({ code, command: '/bin/sh job.sh' }) }),
    );
    const id = await h.start('e2e-byoc-killed');
    const training = await h.waitFor(id, 'the training job', (r) => {
      const train = r.steps.find((s) => s.name === 'train');
      return train?.status === 'running' && typeof train.outputs?.jobId === 'string';
    });
    const jobId = training.steps.find((s) => s.name === 'train')!.outputs!.jobId as string;
    const userPid = await h.until('the job to start', async () =>
      existsSync(path.join(code, 'pid')) ? Number(readFileSync(path.join(code, 'pid'), 'utf8')) : undefined,
    );
    const worker = await h.until('the worker to run', async () => {
      const blob = h.blobs.getContainerClient('jobs').getBlobClient(`${jobId}/status.json`);
      const s = JSON.parse((await blob.downloadToBuffer()).toString('utf8')) as {
        state: string;
        pid?: number;
      };
      return s.state === 'running' && s.pid ? s.pid : undefined;
    });
    process.kill(worker, 'SIGKILL');
    const trained = await h.waitFor(
      id,
      'a second attempt to train',
      (r) => r.steps.find((s) => s.name === 'train')?.status !== 'running',
    );
    const train = trained.steps.find((s) => s.name === 'train')!;
    expect(train.status).toBe('succeeded');
    expect(train.outputs).toMatchObject({ algorithm: 'custom' });
    expect(train.outputs!.jobId).not.toBe(jobId);
    expect(train.attempt ?? 0).toBeGreaterThanOrEqual(1);
    // The first attempt's process group went with its worker.
    expect(await gone(userPid)).toBe(true);
    expect(
      (
        await h.blobs.getContainerClient('jobs').getBlobClient(`${jobId}/status.json`).downloadToBuffer()
      ).toString(),
    ).toContain('worker_crashed');
  });
});
