/**
 * @jest-environment ./test/support/onnxEnvironment.js
 *
 * The local backend running users' own code (a custom spec): the real worker/userJob.ts process on
 * Azurite, the scikit-learn example with Debian's /usr/bin/python3, and fake jobs (Node scripts) for
 * every way a job ends: exit non-zero, nothing written, no MLmodel, time limit, cancel, the worker
 * stopped by SIGTERM or killed by SIGKILL. Each fake job writes its pid into its code folder, so the
 * test can tell that the user's process is gone when the job is.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inferDatasetContract } from '../../../lib/data/checking/inferDatasetContract';
import { isModelFolderUri, openModelFolder } from '../../../lib/mlmodel/blobFolder';
import resources from '../../../lib/resources.json';
import { ArtifactStore } from '../../../lib/storage/blob';
import type { LocalTrainingBackend } from '../../../lib/training/backends/local';
import type { JobStatus } from '../../../lib/training/backends/types';
import type { TrainingJobRequestInput } from '../../../lib/contracts/trainingJob';
import { syntheticClassification } from '../../../lib/training/synthetic';
import { columnarBytes, tableOf } from '../../support/datasets';
import { localWorkerBackend } from '../../support/localWorker';
import type { BlobEmulator } from '../../support/emulators';
import { startAzuriteBlob } from '../../support/emulators';
import { gone } from '../../support/processes';

const ROOT = join(__dirname, '..', '..', '..');
const SKLEARN = join(ROOT, 'examples', 'training', 'sklearn');
const NODE = `'${process.execPath}'`;
const FEATURES = ['x0', 'x1', 'x2', 'x3'];

/** A fake job's first lines: its pid in the code folder, then a line of log. */
const PRELUDE = `
const fs = require('node:fs');
fs.writeFileSync('pid', String(process.pid));
console.log('fake job ' + process.env.SLUICE_JOB_ID + ' on ' + process.env.SLUICE_TRAIN);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const waitFor = async (file) => { while (!fs.existsSync(file)) await sleep(50); };
`;

describe('local backend: users’ own code (algorithm "custom")', () => {
  let azurite: BlobEmulator;
  let store: ArtifactStore;
  let backend: LocalTrainingBackend;
  let dataset: { uri: string; sha256: string };
  let codes: string;
  const ds = syntheticClassification({ rows: 2_000, features: 4, seed: 3 });
  const contract = inferDatasetContract(tableOf(ds));

  const waitFor = async (jobId: string, done: (s: JobStatus) => boolean, timeoutMs = 90_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await backend.status(jobId);
      if (done(s)) return s;
      if (Date.now() > deadline) throw new Error(`job ${jobId} stuck: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const ended = (s: JobStatus) => s.state !== 'queued' && s.state !== 'running';
  const statusFile = async (jobId: string) =>
    (
      await store.getJson<{ pid: number }>({
        container: resources.blobContainers.jobs,
        path: `${jobId}/status.json`,
      })
    ).value;
  const userPid = async (code: string): Promise<number> => {
    const file = join(code, 'pid');
    const deadline = Date.now() + 60_000;
    while (!existsSync(file) || readFileSync(file, 'utf8') === '') {
      if (Date.now() > deadline) throw new Error('the fake job never started');
      await new Promise((r) => setTimeout(r, 50));
    }
    return Number(readFileSync(file, 'utf8'));
  };
  const tempFolders = (jobId: string) =>
    readdirSync(tmpdir()).filter((f) => f.startsWith(`sluice-job-${jobId}-`));

  let n = 0;
  async function fakeJob(script: string): Promise<string> {
    const dir = join(codes, `job${++n}`);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'job.js'), PRELUDE + script);
    return dir;
  }
  const request = (
    jobId: string,
    code: string,
    over: { command?: string; timeLimitSeconds?: number } = {},
  ): TrainingJobRequestInput => ({
    jobId,
    spec: {
      algorithm: 'custom',
      code,
      command: over.command ?? `${NODE} job.js`,
      target: 'label',
      features: FEATURES,
      timeLimitSeconds: over.timeLimitSeconds ?? 120,
    },
    dataset,
    contract,
  });

  beforeAll(async () => {
    azurite = await startAzuriteBlob();
    store = ArtifactStore.fromConnectionString(azurite.connectionString);
    await store.ensureContainers();
    backend = localWorkerBackend(store, azurite.connectionString, { heartbeatStaleMs: 20_000 });
    const stored = await store.putContentAddressed(resources.blobContainers.datasets, columnarBytes(ds));
    dataset = { uri: stored.uri, sha256: stored.sha256 };
    codes = await mkdtemp(join(tmpdir(), 'sluice-codes-'));
  }, 120_000);
  afterAll(async () => {
    await backend?.stopAll();
    await azurite?.stop();
    if (codes) await rm(codes, { recursive: true, force: true });
  });

  it('runs the scikit-learn example and stores its checked model folder with the artifact', async () => {
    await expect(
      backend.submit({
        ...request('uj-sklearn', SKLEARN, { command: '/usr/bin/python3 train.py' }),
      }),
    ).resolves.toEqual({ jobId: 'uj-sklearn', created: true });
    const s = await waitFor('uj-sklearn', ended);
    expect(s.error).toBeUndefined();
    expect(s.state).toBe('completed');
    expect(s.progress).toBe(1);
    const result = s.result!;
    expect(isModelFolderUri(result.modelUri)).toBe(true);
    expect(result).toMatchObject({
      algorithm: 'custom',
      task: 'classification',
      rows: { train: expect.any(Number), validation: expect.any(Number), holdout: expect.any(Number) },
      artifact: {
        format: 'mlflow',
        flavor: 'onnx',
        onnxPath: 'model.onnx',
        task: 'classification',
        target: 'label',
        features: FEATURES.map((name) => ({ name, kind: 'number' })),
        classes: ['no', 'yes'],
        inputLayout: 'per-feature',
      },
    });
    expect(result.metrics.job!.holdout_accuracy).toBeGreaterThan(0.6);
    const folder = await openModelFolder(store, result.modelUri, result.modelDigest);
    expect(folder.manifest.map((f) => f.path).sort()).toEqual(['MLmodel', 'metrics.json', 'model.onnx']);
    // The job's own output is the live log, stamped; the data and work folders are gone.
    expect(s.logTail.some((l) => /Z train\.py: classification of label on 4 features/.test(l))).toBe(true);
    // The final status is written before the worker exits: wait for the exit this backend saw.
    await backend.whenEnded('uj-sklearn');
    expect(tempFolders('uj-sklearn')).toEqual([]);
    expect(await gone((await statusFile('uj-sklearn')).pid)).toBe(true);
  }, 120_000);

  it('shows progress.json as progress, iteration and metrics while the job runs, and a non-zero exit as job_failed with the log tail', async () => {
    const code = await fakeJob(`
(async () => {
  fs.writeFileSync(process.env.SLUICE_OUTPUT + '/progress.json.tmp', JSON.stringify({ fraction: 0.4, iteration: 12, metrics: { loss: 0.31, validation_loss: 0.35 } }));
  fs.renameSync(process.env.SLUICE_OUTPUT + '/progress.json.tmp', process.env.SLUICE_OUTPUT + '/progress.json');
  await waitFor('go');
  console.error('Traceback: something went wrong');
  process.exit(3);
})();`);
    await backend.submit(request('uj-progress', code));
    const running = await waitFor('uj-progress', (x) => x.iteration === 12 || ended(x));
    expect(running).toMatchObject({
      state: 'running',
      progress: 0.4,
      iteration: 12,
      metrics: { loss: 0.31, validation_loss: 0.35 },
    });
    const history = await store.getJson<{
      history: { iteration: number; loss?: number; validationLoss?: number }[];
    }>({ container: 'jobs', path: 'uj-progress/metrics.json' });
    expect(history.value.history).toEqual([
      expect.objectContaining({ iteration: 12, loss: 0.31, validationLoss: 0.35 }),
    ]);
    await writeFile(join(code, 'go'), '');
    const s = await waitFor('uj-progress', ended);
    expect(s.state).toBe('failed');
    expect(s.error).toEqual({ code: 'job_failed', message: expect.stringContaining('exited with code 3') });
    expect(s.logTail.some((l) => l.endsWith('Traceback: something went wrong'))).toBe(true);
    expect(s.logTail.some((l) => l.includes('fake job uj-progress on /'))).toBe(true);
    expect(tempFolders('uj-progress')).toEqual([]);
  }, 120_000);

  it.each([
    ['writes nothing', 'output_empty', ''],
    [
      'writes no MLmodel',
      'mlmodel_missing',
      `fs.writeFileSync(process.env.SLUICE_OUTPUT + '/model.onnx', 'not onnx');`,
    ],
    [
      'writes an ONNX file that does not load',
      'onnx_invalid',
      `fs.writeFileSync(process.env.SLUICE_OUTPUT + '/MLmodel', 'flavors:\\n  onnx:\\n    data: model.onnx\\n');
fs.writeFileSync(process.env.SLUICE_OUTPUT + '/model.onnx', 'not onnx');`,
    ],
  ])(
    'a job that %s fails with %s and registers nothing',
    async (_what, expected, script) => {
      const jobId = `uj-${expected.replace(/_/g, '-')}`;
      await backend.submit(request(jobId, await fakeJob(script)));
      const s = await waitFor(jobId, ended);
      expect(s.state).toBe('failed');
      expect(s.error!.code).toBe(expected);
      expect(s.result).toBeUndefined();
    },
    120_000,
  );

  it('a model folder over MODEL_MAX_BYTES (the setting the worker gets from the backend) fails with model_too_large', async () => {
    const small = localWorkerBackend(store, azurite.connectionString, {
      heartbeatStaleMs: 20_000,
      env: { ARTIFACT_STORAGE_CONNECTION: azurite.connectionString, MODEL_MAX_BYTES: '4096' },
    });
    try {
      const jobId = 'uj-model-max-bytes';
      await small.submit(
        request(
          jobId,
          await fakeJob(`fs.writeFileSync(process.env.SLUICE_OUTPUT + '/MLmodel', 'flavors:\\n  python_function:\\n    loader_module: x\\n');
fs.writeFileSync(process.env.SLUICE_OUTPUT + '/weights.bin', Buffer.alloc(8192));`),
        ),
      );
      const deadline = Date.now() + 90_000;
      let s = await small.status(jobId);
      while (s.state === 'queued' || s.state === 'running') {
        if (Date.now() > deadline) throw new Error(`job stuck: ${JSON.stringify(s)}`);
        await new Promise((r) => setTimeout(r, 100));
        s = await small.status(jobId);
      }
      expect(s.state).toBe('failed');
      expect(s.error!.code).toBe('model_too_large');
      expect(s.error!.message).toContain('4096');
      expect(s.result).toBeUndefined();
    } finally {
      await small.stopAll();
    }
  }, 120_000);

  it('refuses a missing code folder and a program not on PATH at submit, by name', async () => {
    await expect(backend.submit(request('uj-nofolder', join(codes, 'no-such-folder')))).rejects.toMatchObject(
      {
        code: 'code_folder_missing',
        message: expect.stringContaining('no-such-folder does not exist'),
      },
    );
    await expect(backend.status('uj-nofolder')).rejects.toMatchObject({ code: 'job_not_found' });
    const code = await fakeJob('');
    await expect(
      backend.submit(request('uj-nocommand', code, { command: 'python3-not-installed train.py' })),
    ).rejects.toMatchObject({
      code: 'command_not_found',
      message: 'python3-not-installed not found on PATH',
    });
    await expect(
      backend.submit(request('uj-noscript', code, { command: './train.sh' })),
    ).rejects.toMatchObject({
      code: 'command_not_found',
      message: './train.sh not found in the code folder',
    });
  });

  it('stops a job past its time limit, with its whole process group', async () => {
    const code = await fakeJob(`
require('node:child_process').spawn(process.execPath, ['-e', 'fs=require("node:fs"); fs.writeFileSync("grandchild", String(process.pid)); setInterval(() => {}, 1000)'], { stdio: 'ignore' });
process.on('SIGTERM', () => console.log('ignoring SIGTERM'));
setInterval(() => {}, 1000);`);
    await backend.submit(request('uj-slow', code, { timeLimitSeconds: 3 }));
    const pid = await userPid(code);
    const s = await waitFor('uj-slow', ended);
    expect(s.state).toBe('failed');
    expect(s.error!.code).toBe('time_limit_exceeded');
    expect(await gone(pid)).toBe(true);
    expect(await gone(Number(readFileSync(join(code, 'grandchild'), 'utf8')))).toBe(true);
  }, 120_000);

  it('cancel while running stops the user’s process and the worker', async () => {
    const code = await fakeJob('setInterval(() => {}, 1000);');
    await backend.submit(request('uj-cancel', code));
    const pid = await userPid(code);
    const worker = (await statusFile('uj-cancel')).pid;
    await backend.cancel('uj-cancel');
    const s = await waitFor('uj-cancel', ended);
    expect(s.state).toBe('canceled');
    expect(await gone(pid)).toBe(true);
    expect(await gone(worker)).toBe(true);
    expect(tempFolders('uj-cancel')).toEqual([]);
  }, 120_000);

  it('a worker stopped by SIGTERM stops the user’s process group and records canceled', async () => {
    const code = await fakeJob('setInterval(() => {}, 1000);');
    await backend.submit(request('uj-sigterm', code));
    const pid = await userPid(code);
    process.kill((await statusFile('uj-sigterm')).pid, 'SIGTERM');
    const s = await waitFor('uj-sigterm', ended);
    expect(s.state).toBe('canceled');
    expect(s.error!.message).toContain('canceled');
    expect(await gone(pid)).toBe(true);
  }, 120_000);

  it('a worker killed by SIGKILL is worker_crashed, and the backend kills the user’s process group it left', async () => {
    const code = await fakeJob('setInterval(() => {}, 1000);');
    await backend.submit(request('uj-sigkill', code));
    const pid = await userPid(code);
    process.kill((await statusFile('uj-sigkill')).pid, 'SIGKILL');
    const s = await waitFor('uj-sigkill', ended);
    expect(s.state).toBe('failed');
    expect(s.error!.code).toBe('worker_crashed');
    expect(s.error!.message).toContain('SIGKILL');
    expect(await gone(pid)).toBe(true);
    expect(tempFolders('uj-sigkill')).toEqual([]);
  }, 120_000);
});
