import type { BackendName } from '../../contracts/training';
import { z } from 'zod';
import type { JobResult, JobState, TrainingJobRequestInput } from '../../contracts/trainingJob';
import { jobResultSchema, jobStates } from '../../contracts/trainingJob';

/**
 * The training backend contract (the request and result schemas are lib/contracts/trainingJob.ts).
 * A backend runs one training job per request. Sluice's records of the job live under
 * `jobs/<jobId>/` in Blob Storage; the local worker (Sluice's own process on the app's host) writes
 * its status, heartbeat, log and metrics there too. A remote job cannot write `jobs/` at all: it
 * writes only its own output folder (Azure ML: a container of its own through a per-job SAS;
 * Databricks: `joboutputs/<jobId>/`), which its backend reads back and checks.
 */
export const isTerminal = (s: JobState): boolean => s === 'completed' || s === 'failed' || s === 'canceled';

/** `jobs/<jobId>/status.json`, written by whoever runs the job. */
export const jobStatusFileSchema = z.object({
  jobId: z.string(),
  state: z.enum(jobStates),
  progress: z.number().min(0).max(1),
  iteration: z.number().int().min(0).default(0),
  /** Latest training metrics (loss, validation loss). */
  metrics: z.record(z.string(), z.number().nullable()).default({}),
  logTail: z.array(z.string()).default([]),
  startedAt: z.string().optional(),
  updatedAt: z.string(),
  finishedAt: z.string().optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  result: jobResultSchema.optional(),
  /** Time limit the worker enforces, for readers that judge a job stuck. */
  timeLimitSeconds: z.number().int().positive().optional(),
  host: z.string().optional(),
  pid: z.number().int().optional(),
});
export type JobStatusFile = z.infer<typeof jobStatusFileSchema>;

export const heartbeatSchema = z.object({ at: z.string(), seq: z.number().int() });

/** What `status(jobId)` returns. */
export interface JobStatus {
  jobId: string;
  state: JobState;
  progress: number;
  iteration: number;
  metrics: Record<string, number | null>;
  logTail: string[];
  startedAt?: string;
  finishedAt?: string;
  heartbeatAt?: string;
  error?: { code: string; message: string };
  result?: JobResult;
  /** The backend's own status word (e.g. Azure ML's "Preparing"), when it has one. */
  backendStatus?: string;
}

export interface TrainingBackend {
  readonly name: BackendName;
  /** Starts the job; a second submit of the same jobId returns it without starting another. */
  submit(request: TrainingJobRequestInput): Promise<{ jobId: string; created: boolean }>;
  status(jobId: string): Promise<JobStatus>;
  /** Stops the job; canceling a finished job changes nothing. */
  cancel(jobId: string): Promise<void>;
  /**
   * Resolves once the job's final status is written, when this process can tell (the local backend
   * for the jobs it started); undefined otherwise. Only a hint to poll now: status() decides.
   */
  whenEnded?(jobId: string): Promise<void> | undefined;
}

/** A blob in the artifact account (same shape as lib/storage/blob.ts). */
export interface BlobLocation {
  container: string;
  path: string;
}

/**
 * The Blob operations backends need; `ArtifactStore` (lib/storage/blob.ts) provides them. A narrow
 * interface keeps the backends testable and independent of the store's other features.
 */
export interface JobFiles {
  put(
    ref: BlobLocation,
    data: Uint8Array | string,
    options?: { contentType?: string; condition?: 'create' | 'overwrite' },
  ): Promise<{ ok: boolean; written?: boolean }>;
  tryGetJson<T = unknown>(ref: BlobLocation): Promise<{ value: T; etag: string } | undefined>;
  exists(ref: BlobLocation): Promise<boolean>;
  uri(location: BlobLocation): string;
}

/** Paths of a job's files inside the `jobs` container. */
export const jobPath = (jobId: string, file: string): string => `${jobId}/${file}`;

/** Maps a job status file (plus heartbeat) to the public status, judging liveness. */
export function statusFromFiles(
  file: JobStatusFile,
  heartbeatAt: string | undefined,
  nowMs: number,
  staleAfterMs: number,
): JobStatus {
  const status: JobStatus = {
    jobId: file.jobId,
    state: file.state,
    progress: file.progress,
    iteration: file.iteration,
    metrics: file.metrics,
    logTail: file.logTail,
    ...(file.startedAt ? { startedAt: file.startedAt } : {}),
    ...(file.finishedAt ? { finishedAt: file.finishedAt } : {}),
    ...(heartbeatAt ? { heartbeatAt } : {}),
    ...(file.error ? { error: file.error } : {}),
    ...(file.result ? { result: file.result } : {}),
  };
  if (isTerminal(file.state)) return status;
  const last = Math.max(Date.parse(heartbeatAt ?? '') || 0, Date.parse(file.updatedAt) || 0);
  if (nowMs - last > staleAfterMs) {
    return {
      ...status,
      state: 'failed',
      error: {
        code: 'worker_died',
        message: `no heartbeat for ${Math.round((nowMs - last) / 1000)} s (limit ${Math.round(staleAfterMs / 1000)} s): the training process died`,
      },
    };
  }
  if (file.startedAt && file.timeLimitSeconds) {
    const deadline = Date.parse(file.startedAt) + file.timeLimitSeconds * 1000 + staleAfterMs;
    if (nowMs > deadline) {
      return {
        ...status,
        state: 'failed',
        error: {
          code: 'time_limit_exceeded',
          message: `the job ran past its time limit of ${file.timeLimitSeconds} s`,
        },
      };
    }
  }
  return status;
}
