import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { SluiceVariable, UserJobSpec } from '../../contracts/job';
import { NonRetriableError } from '../../errors';
import { commandArgv } from './command';
import type { CheckedModelFolder, ModelFolderExpectation } from '../../mlmodel/check';
import { defaultModelMaxBytes } from '../../mlmodel/folder';
import type { JobData } from './jobData';
import { jobDataVariables } from './jobData';
import { runJobProcess } from './process';

/**
 * A user job run locally under `sluice.job/v1`: the contract's variables set (and expanded in the
 * command), the command run in the code folder with a time limit, then the folder it wrote to
 * `SLUICE_OUTPUT` checked before anything else may use it. The check is injected: it is
 * `checkModelFolder` of lib/mlmodel (MLmodel, ONNX, inputs and outputs against the features and the
 * task, size, manifest digest).
 */

/** What the returned model must fit, and what the check found: lib/mlmodel's own types. */
export type ModelExpectation = ModelFolderExpectation;
export type ModelFolderCheck = CheckedModelFolder;
export type CheckModelFolder = (dir: string, expectation: ModelExpectation) => Promise<ModelFolderCheck>;

export interface RunUserJobOptions {
  jobId: string;
  spec: Pick<UserJobSpec, 'code' | 'command' | 'hyperparameters' | 'timeLimitSeconds'>;
  /** The split data, from `writeJobData`. */
  data: JobData;
  /** A fresh folder for this attempt: `output/` (SLUICE_OUTPUT) and `job.log` go here. */
  workDir: string;
  check: CheckModelFolder;
  /** Largest model folder accepted. Default lib/mlmodel defaultModelMaxBytes (512 MiB). */
  maxModelBytes?: number;
  /**
   * The environment the job starts from, before the contract's variables are added. Default: PATH,
   * HOME, LANG, LC_ALL, LC_CTYPE, TMPDIR, TZ and USER of this process — never its secrets.
   */
  baseEnv?: Record<string, string>;
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  signal?: AbortSignal;
  killGraceMs?: number;
  /** The job's process started: its pid, which is also its process group id. */
  onStart?: (pid: number) => void;
}

export interface UserJobOutcome {
  jobId: string;
  argv: string[];
  durationMs: number;
  logFile: string;
  logTail: string[];
  outputDir: string;
  model: ModelFolderCheck;
}

/** A failed user job: the named code, and the end of its log. */
export class UserJobError extends NonRetriableError {
  /** The message without the log lines (for a display that showed the log already). */
  readonly summary: string;
  readonly logTail: string[];
  constructor(code: string, summary: string, logTail: string[]) {
    super(
      code,
      logTail.length ? `${summary}; last lines of the log:\n${logTail.slice(-20).join('\n')}` : summary,
    );
    this.summary = summary;
    this.logTail = logTail;
  }
}

const PASSED_ENV = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TMPDIR', 'TZ', 'USER'];

export function defaultBaseEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of PASSED_ENV) if (env[k] !== undefined) out[k] = env[k];
  return out;
}

/** The contract's variables for one job. */
export function jobVariables(
  jobId: string,
  data: JobData,
  hyperparameters: Record<string, unknown>,
  outputDir: string,
): Record<SluiceVariable, string> {
  return {
    SLUICE_JOB_ID: jobId,
    ...jobDataVariables(data),
    SLUICE_HYPERPARAMETERS: JSON.stringify(hyperparameters),
    SLUICE_OUTPUT: outputDir,
  } as Record<SluiceVariable, string>;
}

export async function runUserJob(options: RunUserJobOptions): Promise<UserJobOutcome> {
  const { spec, data, workDir } = options;
  const code = await stat(spec.code).catch(() => undefined);
  if (!code?.isDirectory())
    throw new NonRetriableError(
      'code_folder_missing',
      `the code folder ${spec.code} ${code ? 'is not a folder' : 'does not exist'}`,
    );
  const outputDir = join(workDir, 'output');
  await mkdir(outputDir, { recursive: true });
  if ((await readdir(outputDir)).length)
    throw new NonRetriableError('output_not_empty', `${outputDir} must be empty before the job starts`);
  const logFile = join(workDir, 'job.log');

  const variables = jobVariables(options.jobId, data, spec.hyperparameters, outputDir);
  const argv = commandArgv(spec.command, variables);
  const env = { ...(options.baseEnv ?? defaultBaseEnv()), PYTHONUNBUFFERED: '1', ...variables };

  const ended = await runJobProcess({
    argv,
    cwd: spec.code,
    env,
    logFile,
    timeLimitMs: spec.timeLimitSeconds * 1000,
    onLine: options.onLine,
    signal: options.signal,
    killGraceMs: options.killGraceMs,
    onStart: options.onStart,
  });
  const tail = ended.logTail;
  if (ended.stoppedBy === 'time_limit')
    throw new UserJobError(
      'time_limit_exceeded',
      `the job ran past its time limit of ${spec.timeLimitSeconds} s and was stopped`,
      tail,
    );
  if (ended.stoppedBy === 'canceled') throw new UserJobError('canceled', 'the job was canceled', tail);
  if (ended.exitCode !== 0)
    throw new UserJobError(
      'job_failed',
      ended.signal
        ? `${argv[0]} was killed by ${ended.signal}`
        : `${argv[0]} exited with code ${ended.exitCode}`,
      tail,
    );
  if ((await readdir(outputDir)).length === 0)
    throw new UserJobError(
      'output_empty',
      'the job exited 0 but wrote nothing to SLUICE_OUTPUT (an MLflow model folder is expected there)',
      tail,
    );
  const model = await options.check(outputDir, {
    features: data.featureKinds,
    task: data.task,
    classes: data.classes,
    maxBytes: options.maxModelBytes ?? defaultModelMaxBytes,
    sample: data.sample,
  });
  return {
    jobId: options.jobId,
    argv,
    durationMs: ended.durationMs,
    logFile,
    logTail: tail,
    outputDir,
    model,
  };
}
