import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, extname, join } from 'node:path';
import { NonRetriableError } from '../../errors';
import { isCustomSpec } from '../../contracts/trainingSpec';
import { preflightLocalJob } from '../userJob/preflight';
import { reapOrphanedJobs } from '../userJob/orphans';
import { announcedGroup } from '../userJob/progress';
import resources from '../../resources.json';
import type { JobFiles, JobStatus, JobStatusFile, TrainingBackend } from './types';
import type { TrainingJobRequestInput } from '../../contracts/trainingJob';
import { LOCAL_MLFLOW_ENV, mlflowJobVariables } from './mlflowEnv';
import { heartbeatSchema, isTerminal, jobPath, jobStatusFileSchema, statusFromFiles } from './types';
import { trainingJobRequestSchema } from '../../contracts/trainingJob';

/** Exit codes of worker/userJob.ts that it only uses once the user's process group is stopped. */
const WORKER_EXIT_CODES = new Set([0, 1, 2]);

/** True when a worker was killed or exited with a code of its own (see WORKER_EXIT_CODES) it never uses. */
export function workerEndedAbnormally(code: number | null, signal: NodeJS.Signals | null): boolean {
  return signal !== null || code === null || !WORKER_EXIT_CODES.has(code);
}

/** The temporary folders worker/userJob.ts makes for a job (`<TMPDIR>/sluice-job-<jobId>-*`), removed. */
async function removeJobTemp(jobId: string): Promise<void> {
  const prefix = `sluice-job-${jobId}-`;
  const names = await readdir(tmpdir()).catch(() => [] as string[]);
  await Promise.all(
    names
      .filter((n) => n.startsWith(prefix))
      .map((n) => rm(join(tmpdir(), n), { recursive: true, force: true }).catch(() => undefined)),
  );
}

export interface LocalBackendOptions {
  /** The artifact store (lib/storage/blob.ts `ArtifactStore`). */
  files: JobFiles;
  /** The compiled training job (default: dist/worker/trainingJob.js, found from this file's dist folder). */
  workerScript?: string;
  /**
   * The user-job process for custom specs (default: `userJob` beside `workerScript`, with its
   * extension; else dist/worker/userJob.js).
   */
  userJobScript?: string;
  /** The folder a relative `code` path of a custom spec is resolved against (default: this process's working directory). */
  cwd?: string;
  /** Node options for the worker (tests load TypeScript with a require hook). */
  execArgv?: string[];
  /** Environment of the worker on top of this process's: storage settings. */
  env?: Record<string, string | undefined>;
  /**
   * The host's MLflow credentials a user job linked to an MLflow run gets (lib/training/backends/
   * mlflowEnv.ts): passed to the worker's environment only, never stored.
   */
  mlflowCredentials?: Parameters<typeof mlflowJobVariables>[2];
  /** A job whose heartbeat is older than this has died (default 30 s). */
  heartbeatStaleMs?: number;
  /** How often the worker writes its heartbeat (default 2 s). */
  heartbeatMs?: number;
  /**
   * The user-job worker's job data cache folder (SLUICE_JOB_DATA_CACHE), or `off`. Default: the
   * cache's own default folder in the temp folder (lib/training/userJob/jobDataCache.ts).
   */
  jobDataCache?: string;
  /**
   * Stop user jobs whose worker died with the whole app and remove their temp folders, when this
   * backend is made and before each job it starts (lib/training/userJob/orphans.ts). Default true.
   */
  reapOrphans?: boolean;
  /**
   * Keep one user-job worker started ahead of the next custom job, so that loading the worker's
   * program (0.4–0.5 s) is not part of the job's time. Started after the first custom job; it waits
   * on its stdin and exits when this process does. Default true.
   */
  spareWorker?: boolean;
  now?: () => number;
}

/**
 * The embedded backend: each job is a separate Node.js process running worker/trainingJob.ts (the
 * built-in algorithms) or worker/userJob.ts (a custom spec: the user's command under
 * `sluice.job/v1`), so training never blocks the Functions host. The worker writes status, heartbeat, log, metrics and
 * the model to Blob; `status` reads them, so any instance of the app can answer for any job, and a
 * job whose heartbeat went stale has died (host restart, OOM kill). Cancel leaves a marker the
 * worker polls and, when the process is a child of this instance, also stops it.
 */
export class LocalTrainingBackend implements TrainingBackend {
  readonly name = 'local' as const;
  private readonly children = new Map<string, ChildProcess>();
  /** A user-job worker waiting for its job (see `spareWorker`). */
  private spare?: ChildProcess;
  private readonly ended = new Map<string, Promise<void>>();
  private readonly container = resources.blobContainers.jobs;
  private readonly now: () => number;

  /** The sweep for orphaned user jobs started when this backend was made (see `reapOrphans`). */
  private readonly startSweep: Promise<void>;

  constructor(private readonly options: LocalBackendOptions) {
    this.now = options.now ?? Date.now;
    this.startSweep = this.reap();
  }

  /** Stops orphaned user jobs (all, or `jobId`'s) and removes their folders; never fails. */
  private async reap(jobId?: string): Promise<void> {
    if (this.options.reapOrphans === false) return;
    await reapOrphanedJobs(jobId ? { jobId } : {}).catch(() => undefined);
  }

  /** Resolves once the sweep for orphaned user jobs this backend started when it was made is done. */
  whenSwept(): Promise<void> {
    return this.startSweep;
  }

  private ref(jobId: string, file: string) {
    return { container: this.container, path: jobPath(jobId, file) };
  }

  async submit(input: TrainingJobRequestInput): Promise<{ jobId: string; created: boolean }> {
    const request = trainingJobRequestSchema.parse(input);
    const { jobId } = request;
    // A missing code folder or program fails the run now, with its name, not after a worker started.
    if (isCustomSpec(request.spec)) await preflightLocalJob(request.spec, { cwd: this.cwd() });
    // The MLflow link is not stored: a retried submit compares the stored request, and the link
    // (made best-effort before each submit) may differ between attempts.
    const { mlflow, ...stored } = request;
    const put = await this.options.files.put(this.ref(jobId, 'request.json'), JSON.stringify(stored), {
      contentType: 'application/json',
      condition: 'create',
    });
    if (!put.ok) {
      throw new NonRetriableError(
        'job_id_taken',
        `training job ${jobId} already exists with a different request`,
      );
    }
    if (put.written === false) return { jobId, created: false };
    // A job whose worker died with the app (its user process still running) must not run beside
    // this one, e.g. the attempt this submit resubmits.
    const swept = isCustomSpec(request.spec) ? Promise.all([this.startSweep, this.reap()]) : undefined;
    const queued: JobStatusFile = {
      jobId,
      state: 'queued',
      progress: 0,
      iteration: 0,
      metrics: {},
      logTail: [],
      updatedAt: new Date(this.now()).toISOString(),
      timeLimitSeconds: request.spec.timeLimitSeconds,
    };
    await Promise.all([
      this.options.files.put(this.ref(jobId, 'status.json'), JSON.stringify(queued), {
        contentType: 'application/json',
        condition: 'overwrite',
      }),
      swept,
    ]);
    const mlflowEnv = mlflowJobVariables(mlflow, 'local', this.options.mlflowCredentials);
    this.spawnWorker(jobId, request.spec.timeLimitSeconds, isCustomSpec(request.spec), mlflowEnv);
    return { jobId, created: true };
  }

  private cwd(): string {
    return this.options.cwd ?? process.cwd();
  }

  private script(custom: boolean): string {
    const builtIn =
      this.options.workerScript ?? join(__dirname, '..', '..', '..', 'worker', 'trainingJob.js');
    if (!custom) return builtIn;
    return this.options.userJobScript ?? join(dirname(builtIn), `userJob${extname(builtIn) || '.js'}`);
  }

  private workerEnv(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      ...this.options.env,
      SLUICE_HEARTBEAT_MS: String(this.options.heartbeatMs ?? 2_000),
      ...(this.options.jobDataCache ? { SLUICE_JOB_DATA_CACHE: this.options.jobDataCache } : {}),
    };
  }

  /** A user-job worker that waits on its stdin for a job (worker/userJob.ts `--job -`). */
  private startSpare(): ChildProcess {
    const child = spawn(
      process.execPath,
      [...(this.options.execArgv ?? []), this.script(true), '--job', '-'],
      {
        cwd: this.cwd(),
        env: this.workerEnv(),
        stdio: ['pipe', 'ignore', 'pipe'],
      },
    );
    child.on('error', () => undefined);
    child.stdin?.on('error', () => undefined);
    // Waiting keeps nothing alive: when this process ends, the spare's stdin closes and it exits.
    child.unref();
    (child.stdin as (NodeJS.WritableStream & { unref?: () => void }) | null)?.unref?.();
    (child.stderr as (NodeJS.ReadableStream & { unref?: () => void }) | null)?.unref?.();
    return child;
  }

  /** The waiting spare, if there is one, handed `jobId`; a new spare is started for the next job. */
  private takeSpare(jobId: string, mlflowEnv: Record<string, string>): ChildProcess | undefined {
    if (this.options.spareWorker === false) return undefined;
    const spare = this.spare;
    this.spare = this.startSpare();
    if (!spare || spare.exitCode !== null || spare.signalCode !== null || !spare.stdin?.writable) {
      spare?.kill('SIGKILL');
      return undefined;
    }
    const env = Object.keys(mlflowEnv).length ? { [LOCAL_MLFLOW_ENV]: JSON.stringify(mlflowEnv) } : {};
    spare.stdin.end(`${JSON.stringify({ jobId, env })}\n`);
    (spare.stderr as (NodeJS.ReadableStream & { ref?: () => void }) | null)?.ref?.();
    return spare;
  }

  private spawnWorker(
    jobId: string,
    timeLimitSeconds: number,
    custom: boolean,
    mlflowEnv: Record<string, string> = {},
  ): void {
    const script = this.script(custom);
    const child =
      (custom ? this.takeSpare(jobId, mlflowEnv) : undefined) ??
      spawn(process.execPath, [...(this.options.execArgv ?? []), script, '--job', jobId], {
        cwd: this.cwd(),
        env: {
          ...this.workerEnv(),
          // The user's process gets these (worker/userJob.ts): the MLflow run to log into.
          [LOCAL_MLFLOW_ENV]: Object.keys(mlflowEnv).length ? JSON.stringify(mlflowEnv) : undefined,
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
    this.children.set(jobId, child);
    const stderr: string[] = [];
    // A user job's worker announces the process group of the user's command: when the worker dies
    // without stopping it (SIGKILL, OOM), this process stops the group instead.
    let userGroup: number | undefined;
    let partial = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop()!.slice(-4_096);
      for (const line of lines.filter(Boolean)) {
        const group = announcedGroup(line);
        if (group !== undefined) userGroup = group;
        else stderr.push(line);
      }
      if (stderr.length > 50) stderr.splice(0, stderr.length - 50);
    });
    // The worker enforces its time limit itself; this is the backstop for a worker that hangs.
    const backstop = setTimeout(() => child.kill('SIGKILL'), (timeLimitSeconds + 30) * 1000);
    backstop.unref();
    const ended = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        clearTimeout(backstop);
        if (partial && announcedGroup(partial) === undefined) stderr.push(partial);
        this.children.delete(jobId);
        // Only a worker that did not end on its own terms (a signal, or a code worker/userJob.ts never
        // uses: it exits 0 done, 1 failed, 2 canceled, after stopping the user's group itself) may
        // have left the group running. Otherwise the group is gone and its id may already belong to
        // an unrelated process group, which must not be killed.
        let cleaned = Promise.resolve();
        if (userGroup !== undefined && workerEndedAbnormally(code, signal)) {
          try {
            process.kill(-userGroup, 'SIGKILL');
          } catch {
            // the group ended with the job, as it does when the worker finishes normally
          }
          // A killed worker could not remove the job's data and work folder (worker/userJob.ts):
          // gone before the job reads as ended.
          cleaned = removeJobTemp(jobId);
        }
        void cleaned
          .then(() => this.recordExit(jobId, code, signal, stderr))
          .finally(() => {
            resolve();
            setTimeout(() => this.ended.delete(jobId), 60_000).unref();
          });
      });
    });
    this.ended.set(jobId, ended);
    child.unref();
  }

  whenEnded(jobId: string): Promise<void> | undefined {
    return this.ended.get(jobId);
  }

  /** A worker that exits without a final status (crash, kill) leaves its stderr as the log tail. */
  private async recordExit(
    jobId: string,
    code: number | null,
    signal: NodeJS.Signals | null,
    stderr: string[],
  ): Promise<void> {
    try {
      const current = await this.readStatusFile(jobId);
      if (!current || isTerminal(current.state)) return;
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      const failed: JobStatusFile = {
        ...current,
        state: signal === 'SIGTERM' ? 'canceled' : 'failed',
        error: {
          code: signal === 'SIGTERM' ? 'canceled' : 'worker_crashed',
          message: `the training process ${how}`,
        },
        logTail: [...current.logTail, ...stderr].slice(-50),
        updatedAt: new Date(this.now()).toISOString(),
        finishedAt: new Date(this.now()).toISOString(),
      };
      await this.options.files.put(this.ref(jobId, 'status.json'), JSON.stringify(failed), {
        contentType: 'application/json',
        condition: 'overwrite',
      });
    } catch {
      // Best effort: the stale heartbeat reports the death anyway.
    }
  }

  private async readStatusFile(jobId: string): Promise<JobStatusFile | undefined> {
    const got = await this.options.files.tryGetJson(this.ref(jobId, 'status.json'));
    if (!got) return undefined;
    const parsed = jobStatusFileSchema.safeParse(got.value);
    if (!parsed.success)
      throw new NonRetriableError('job_status_invalid', `job ${jobId}: status.json is malformed`);
    return parsed.data;
  }

  async status(jobId: string): Promise<JobStatus> {
    const file = await this.readStatusFile(jobId);
    if (!file) throw new NonRetriableError('job_not_found', `no training job ${jobId}`);
    const hb = heartbeatSchema.safeParse(
      (await this.options.files.tryGetJson(this.ref(jobId, 'heartbeat.json')))?.value,
    );
    const status = statusFromFiles(
      file,
      hb.success ? hb.data.at : undefined,
      this.now(),
      this.options.heartbeatStaleMs ?? 30_000,
    );
    // Declared dead: if its worker is gone from this machine, its user process goes too, before a
    // resubmit can start another copy.
    if (status.error?.code === 'worker_died' && !this.children.has(jobId)) await this.reap(jobId);
    return status;
  }

  async cancel(jobId: string): Promise<void> {
    const current = await this.status(jobId);
    if (isTerminal(current.state)) return;
    await this.options.files.put(
      this.ref(jobId, 'cancel.json'),
      JSON.stringify({ at: new Date(this.now()).toISOString() }),
      {
        contentType: 'application/json',
        condition: 'overwrite',
      },
    );
    const child = this.children.get(jobId);
    if (!child) return; // another instance's worker: it sees the marker within a second
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }

  /** Stops every worker this instance started (host shutdown, tests). */
  async stopAll(): Promise<void> {
    this.spare?.kill('SIGKILL');
    this.spare = undefined;
    await Promise.all([...this.children.keys()].map((id) => this.cancel(id).catch(() => undefined)));
  }
}
