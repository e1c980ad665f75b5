/**
 * The user-job process: the local backend runs it for a custom spec (`node dist/worker/userJob.js
 * --job <jobId>`, storage settings in the environment), as it runs worker/trainingJob.js for the
 * built-in algorithms, and it writes the same files under `jobs/<jobId>/` (status, heartbeat, log,
 * metrics), so `LocalTrainingBackend.status` reads either the same way.
 *
 * It reads the request, prepares the job's data (`prepareJobData`: the verified dataset, split and
 * written as CSV and Parquet with the contract) in a temporary folder, runs the user's command under
 * `sluice.job/v1` (`runUserJob`: own process group, time limit, log), feeds the job's output lines to
 * the live log and its `progress.json` (in SLUICE_OUTPUT) to the status and the metrics history,
 * then checks and stores the model folder (`storeCheckedModel`). The temporary folder goes at the end.
 *
 * Stopping: the cancel marker and SIGTERM abort the user's process group (SIGTERM, SIGKILL after a
 * short grace, shorter than the backend's own grace before it SIGKILLs this process). A SIGKILL of
 * this process cannot be caught: the user's group then lives on, so this process prints its group id
 * on stderr (`sluice-user-pgid <pid>`) as soon as it starts, and the backend that spawned it kills that
 * group when this process ends without a final status.
 */
import { chmod, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { TrainingJobRequest } from '../lib/contracts/trainingJob';
import { trainingJobRequestSchema } from '../lib/contracts/trainingJob';
import { isCustomSpec } from '../lib/contracts/trainingSpec';
import { ensureError, NonRetriableError } from '../lib/errors';
import type * as ModelCheck from '../lib/mlmodel/check';
import resources from '../lib/resources.json';
import type { ArtifactStore } from '../lib/storage/blob';
import { jobPath } from '../lib/training/backends/types';
import type { JobDataCacheOptions } from '../lib/training/userJob/jobDataCache';
import { currentProcess, writeJobRecord } from '../lib/training/userJob/orphans';
import { prepareCachedJobData, storeCheckedModel } from '../lib/training/userJob/output';
import { resolveCodeFolder } from '../lib/training/userJob/preflight';
import { codeFolderDigest } from '../lib/training/userJob/codeDigest';
import { parseProgress, USER_PGID_MARKER } from '../lib/training/userJob/progress';
import { defaultBaseEnv, runUserJob, UserJobError } from '../lib/training/userJob/run';
import { localJobMlflowEnv } from '../lib/training/backends/mlflowEnv';
import { JobStatusWriter, storeFromEnv } from './jobStatus';

/**
 * The model check (YAML, ONNX runtime) is loaded while the user's process runs, not before it starts:
 * a job's start-up is part of Sluice's time around it.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const modelCheck = (): typeof ModelCheck => require('../lib/mlmodel/check') as typeof ModelCheck;

/** The user's group gets this long between SIGTERM and SIGKILL: less than the backend's 5 s before it SIGKILLs this process. */
const USER_KILL_GRACE_MS = 2_000;

type StopReason = 'cancel' | 'sigterm' | 'time_limit';

export interface UserJobWorkerTimings {
  /** Reading the dataset and writing the split files (or copying them from the job data cache). */
  prepareMs: number;
  /** What the job data cache did (lib/training/userJob/jobDataCache.ts). */
  dataCache?: 'hit' | 'miss' | 'rebuilt' | 'uncached';
  /** The user's process, start to exit. */
  processMs: number;
  /** The model folder check (inside runUserJob, after the process). */
  checkMs: number;
  /** Storing the folder in Blob. */
  storeMs: number;
  totalMs: number;
}

/** Runs one job to its end and returns the exit code (0 completed, 1 failed, 2 canceled). */
export async function runUserJobWorker(
  store: ArtifactStore,
  jobId: string,
  options: {
    heartbeatMs?: number;
    onTimings?: (t: UserJobWorkerTimings) => void;
    /** Print the user's process group on stderr for the backend (default true; false when run in-process). */
    announceGroup?: boolean;
    /** The model folder's size limit (MODEL_MAX_BYTES; default lib/mlmodel's 512 MiB). */
    maxModelBytes?: number;
    /**
     * The job data cache; false: none. Default: SLUICE_JOB_DATA_CACHE of the environment (a folder,
     * or `off`), else the cache's default folder.
     */
    jobDataCache?: JobDataCacheOptions | false;
    /** How long this process took to be ready for the job (module loading), when that is part of the job's time. */
    startupMs?: number;
  } = {},
): Promise<number> {
  const started = performance.now();
  const container = resources.blobContainers.jobs;
  const write = (name: string, body: string) =>
    store.put({ container, path: jobPath(jobId, name) }, body, {
      contentType: name.endsWith('.json') ? 'application/json' : 'text/plain; charset=utf-8',
      condition: 'overwrite',
    });
  const job = new JobStatusWriter(write, jobId);
  const log = (line: string) => job.log(line);

  const abort = new AbortController();
  let stopReason: StopReason | undefined;
  const stop = (why: StopReason) => {
    if (stopReason || job.finished) return;
    stopReason = why;
    log(
      why === 'cancel'
        ? 'cancel requested: stopping the job'
        : why === 'sigterm'
          ? 'stopped by the backend (SIGTERM): stopping the job'
          : 'time limit reached: stopping the job',
    );
    abort.abort(why);
  };
  const onSigterm = () => stop('sigterm');
  process.on('SIGTERM', onSigterm);

  const timers: NodeJS.Timeout[] = [];
  let temp: string | undefined;
  const t: UserJobWorkerTimings = { prepareMs: 0, processMs: 0, checkMs: 0, storeMs: 0, totalMs: 0 };
  let code: number;
  try {
    // The first heartbeat and the request in one round trip's time: both come before the user's process.
    const [, got] = await Promise.all([
      job.beat(),
      store.getJson({ container, path: jobPath(jobId, 'request.json') }),
    ]);
    timers.push(setInterval(() => void job.beat(), options.heartbeatMs ?? 2_000));
    timers.push(setInterval(() => void job.flush(), 1_000));
    const request: TrainingJobRequest = trainingJobRequestSchema.parse(got.value);
    const { spec } = request;
    if (!isCustomSpec(spec))
      throw new NonRetriableError(
        'not_a_custom_job',
        `job ${jobId} trains ${spec.algorithm}, not custom code`,
      );
    if (spec.command === undefined)
      throw new NonRetriableError('bad_command', 'a custom job on the local backend needs a command');
    job.update({ timeLimitSeconds: spec.timeLimitSeconds });
    log(`job ${jobId}: ${spec.command} in ${spec.code} on ${request.dataset.uri}`);
    void job.flush();
    // The limit covers the whole job, data preparation and model check included.
    timers.push(setTimeout(() => stop('time_limit'), spec.timeLimitSeconds * 1000));
    timers.push(
      setInterval(() => {
        void store
          .exists({ container, path: jobPath(jobId, 'cancel.json') })
          .then((yes) => yes && stop('cancel'))
          .catch(() => undefined);
      }, 1_000),
    );

    const codeDir = await resolveCodeFolder(spec.code);
    // Before the command runs (it may write into its own folder): the code that is about to run.
    // Hashed while the data is prepared; awaited before the command starts.
    const digesting = codeFolderDigest(codeDir);
    digesting.catch(() => undefined); // awaited below; meanwhile a failure is not unhandled
    temp = await mkdtemp(join(tmpdir(), `sluice-job-${jobId}-`));
    // 0700 (mkdtemp's own mode, made explicit whatever the umask): the orphan sweep trusts a record
    // only in a folder no one else can write into.
    await chmod(temp, 0o700);
    // Who runs this job, so a backend that finds this folder after this process died (the whole app
    // killed) stops the user's group and removes the folder (lib/training/userJob/orphans.ts).
    const jobFolder = temp;
    const worker = currentProcess();
    writeJobRecord(jobFolder, { jobId, worker });
    const prepStart = performance.now();
    const prepared = await prepareCachedJobData(
      store,
      request,
      join(temp, 'data'),
      options.jobDataCache ?? jobDataCacheFromEnv(),
    );
    const { data } = prepared;
    t.prepareMs = performance.now() - prepStart;
    const codeDigest = await digesting;
    log(codeDigest ? `code: ${codeDir}, digest ${codeDigest}` : `code: ${codeDir} (too large to digest)`);
    t.dataCache = prepared.cache;
    log(
      `data: train ${data.train.rows}, validation ${data.validation.rows}, holdout ${data.holdout.rows} rows` +
        `${data.missingTarget ? ` (${data.missingTarget} without a target left out)` : ''}; task ${data.task}; ` +
        `${prepared.cache === 'hit' ? 'from the job data cache' : `written (cache: ${prepared.cache})`} in ${Math.round(t.prepareMs)} ms` +
        `${prepared.note ? ` (${prepared.note})` : ''}`,
    );
    if (stopReason === 'time_limit')
      throw new UserJobError(
        'time_limit_exceeded',
        `preparing the data took longer than the time limit of ${spec.timeLimitSeconds} s`,
        [],
      );
    if (stopReason) throw new UserJobError('canceled', 'the job was canceled before it started', []);

    const workDir = join(temp, 'work');
    const progressFile = join(workDir, 'output', 'progress.json');
    let seenProgress = '';
    const readProgress = async () => {
      const info = await stat(progressFile).catch(() => undefined);
      if (!info?.isFile() || info.size > 64 * 1024) return;
      const key = `${info.mtimeMs}:${info.size}`;
      if (key === seenProgress) return;
      const p = parseProgress(await readFile(progressFile, 'utf8').catch(() => ''));
      if (!p) return; // half-written or not ours: the next poll reads it again
      seenProgress = key;
      const now = job.status;
      job.update({
        progress: p.fraction !== undefined ? Math.min(0.99, p.fraction) : now.progress,
        iteration: p.iteration ?? now.iteration,
        metrics: p.metrics ?? now.metrics,
      });
      if (p.metrics || p.iteration !== undefined) {
        const m = p.metrics ?? {};
        const validationLoss = m.validation_loss ?? m.validationLoss;
        job.record({
          iteration: job.status.iteration,
          ...(m.loss !== undefined ? { loss: m.loss } : {}),
          ...(validationLoss !== undefined ? { validationLoss } : {}),
          metrics: m,
          at: new Date().toISOString(),
        });
      }
    };
    timers.push(setInterval(() => void readProgress().catch(() => undefined), 1_000));

    let processEnd = 0;
    const outcome = await runUserJob({
      jobId,
      spec: { ...spec, code: codeDir, command: spec.command },
      data,
      workDir,
      check: (dir, expectation) => {
        processEnd = performance.now();
        return modelCheck().checkModelFolder(dir, expectation);
      },
      onLine: (line) => log(line),
      onStart: (pid) => {
        try {
          writeJobRecord(jobFolder, { jobId, worker, user: currentProcess(pid) });
        } catch {
          // best effort: the announcement below still lets the backend stop the group if this process dies
        }
        if (options.announceGroup !== false) process.stderr.write(`${USER_PGID_MARKER} ${pid}\n`);
        setImmediate(() => {
          // Only warming the module cache: a load failure here must not end this process while the
          // user's group runs; the check after the process loads it again and reports properly.
          try {
            modelCheck();
          } catch {
            // reported by the later call
          }
        });
      },
      signal: abort.signal,
      killGraceMs: USER_KILL_GRACE_MS,
      ...(options.maxModelBytes ? { maxModelBytes: options.maxModelBytes } : {}),
      // The MLflow run the job's own MLflow logging goes to, when the host linked one.
      baseEnv: { ...defaultBaseEnv(), ...localJobMlflowEnv() },
    }).catch((err: unknown) => {
      if (err instanceof UserJobError && err.code === 'canceled' && stopReason === 'time_limit')
        throw new UserJobError(
          'time_limit_exceeded',
          `the job ran past its time limit of ${spec.timeLimitSeconds} s and was stopped`,
          err.logTail,
        );
      throw err;
    });
    t.processMs = outcome.durationMs;
    t.checkMs = performance.now() - processEnd;
    await readProgress().catch(() => undefined);
    log(
      `${outcome.argv[0]} exited 0 after ${(outcome.durationMs / 1000).toFixed(1)} s; model folder checked: ` +
        `${outcome.model.flavor}, ${outcome.model.manifest.length} files, digest ${outcome.model.digest}`,
    );
    if (stopReason === 'cancel' || stopReason === 'sigterm')
      throw new UserJobError('canceled', 'the job was canceled', []);
    const storeStart = performance.now();
    const stored = await storeCheckedModel(store, outcome.outputDir, data, outcome.model);
    const result = codeDigest ? { ...stored, codeDigest } : stored;
    t.storeMs = performance.now() - storeStart;
    log(`model stored: ${result.modelUri}`);
    // Where Sluice's own time around the user's process went (bench/train/userJob.ts reads it).
    log(
      `timings: ${options.startupMs !== undefined ? `start-up ${Math.round(options.startupMs)} ms, ` : ''}data ${Math.round(t.prepareMs)} ms (${t.dataCache}), ` +
        `process ${Math.round(t.processMs)} ms, check ${Math.round(t.checkMs)} ms, store ${Math.round(t.storeMs)} ms`,
    );
    timers.forEach((x) => clearInterval(x));
    await job.finish({ state: 'completed', progress: 1, result });
    code = 0;
  } catch (err) {
    const e = ensureError(err) as Error & { code?: string };
    timers.forEach((x) => clearInterval(x));
    const named = typeof e.code === 'string' ? e.code : 'worker_failed';
    const message = e instanceof UserJobError ? e.summary : e.message;
    if (named === 'canceled') {
      log(`canceled: ${message}`);
      await job.finish({ state: 'canceled', error: { code: 'canceled', message } });
      code = 2;
    } else {
      log(`failed: ${named}: ${message}`);
      await job.finish({ state: 'failed', error: { code: named, message } });
      code = 1;
    }
  } finally {
    timers.forEach((x) => clearInterval(x));
    process.off('SIGTERM', onSigterm);
    if (temp) await rm(temp, { recursive: true, force: true }).catch(() => undefined);
  }
  await job.settled();
  t.totalMs = performance.now() - started;
  options.onTimings?.(t);
  return code;
}

/** SLUICE_JOB_DATA_CACHE: `off` (no cache), a folder, or unset (the cache's default folder). */
export function jobDataCacheFromEnv(env: NodeJS.ProcessEnv = process.env): JobDataCacheOptions | false {
  const value = env.SLUICE_JOB_DATA_CACHE?.trim();
  if (!value) return {};
  return value === 'off' ? false : { dir: value };
}

/**
 * `--job -`: a spare worker, started ahead of its job so that loading this program is not part of
 * the job's time. It waits for one line on stdin, `{"jobId": …, "env": {…}}` (the job's own
 * variables on top of the environment it started with), and exits if stdin closes first.
 */
async function jobFromStdin(): Promise<string | undefined> {
  let text = '';
  for await (const chunk of process.stdin) {
    text += (chunk as Buffer).toString('utf8');
    if (text.includes('\n')) break;
  }
  const line = text.split('\n')[0]!.trim();
  if (!line) return undefined;
  const { jobId, env } = JSON.parse(line) as { jobId: string; env?: Record<string, string> };
  for (const [k, v] of Object.entries(env ?? {})) process.env[k] = v;
  return jobId;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { job: { type: 'string' } } });
  if (!values.job) {
    process.stderr.write('usage: userJob --job <jobId>\n');
    process.exit(64);
  }
  const spare = values.job === '-';
  // A spare was loaded before its job was asked for: no start-up of its own.
  const startupMs = spare ? 0 : performance.now();
  const jobId = spare ? await jobFromStdin() : values.job;
  if (jobId === undefined) process.exit(0); // a spare that was never used
  const code = await runUserJobWorker(storeFromEnv(process.env), jobId, {
    heartbeatMs: Number(process.env.SLUICE_HEARTBEAT_MS ?? 2_000),
    // Set by the local backend from the app's validated MODEL_MAX_BYTES.
    ...(Number(process.env.MODEL_MAX_BYTES) > 0
      ? { maxModelBytes: Number(process.env.MODEL_MAX_BYTES) }
      : {}),
    startupMs,
  });
  process.exit(code);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`${ensureError(err).stack}\n`);
    process.exit(1);
  });
}
