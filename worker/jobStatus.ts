/**
 * What both training job processes (trainingJob.ts for the built-in algorithms, userJob.ts for
 * users' own code) write while a job runs: status.json, log.txt, metrics.json and heartbeat.json
 * under `jobs/<jobId>/`, the files `LocalTrainingBackend.status` reads. One writer keeps the two
 * processes' files the same shape and their writes in the same order.
 */
import { hostname } from 'node:os';
import { BlobServiceClient } from '@azure/storage-blob';
import { ensureError } from '../lib/errors';
import { ArtifactStore } from '../lib/storage/blob';
import { azureCredential } from '../lib/storage/credential';
import type { JobStatusFile } from '../lib/training/backends/types';

const LOG_TAIL = 50;
const MAX_LOG_LINES = 5_000;
const MAX_HISTORY = 2_000;

/** The artifact store a job process was given in its environment. */
export function storeFromEnv(env: NodeJS.ProcessEnv): ArtifactStore {
  if (env.ARTIFACT_STORAGE_CONNECTION)
    return ArtifactStore.fromConnectionString(env.ARTIFACT_STORAGE_CONNECTION);
  if (env.ARTIFACT_STORAGE_ACCOUNT_URL) {
    return new ArtifactStore(
      new BlobServiceClient(env.ARTIFACT_STORAGE_ACCOUNT_URL, azureCredential(env.AZURE_CLIENT_ID)),
    );
  }
  throw new Error('set ARTIFACT_STORAGE_CONNECTION or ARTIFACT_STORAGE_ACCOUNT_URL for the training job');
}

/** One point of the training curve in metrics.json. */
export interface HistoryPoint {
  iteration: number;
  loss?: number;
  validationLoss?: number;
  metrics?: Record<string, number>;
  at: string;
}

/**
 * A running job's status files. `log`, `update` and `record` change what is held; `flush` writes
 * log, metrics, then status, each flush after the one before it (a write never overtakes an earlier
 * one); `finish` writes the final status once. Write failures go to stderr: the stale heartbeat
 * reports a job that can no longer write.
 */
export class JobStatusWriter {
  private readonly lines: string[] = [];
  private readonly history: HistoryPoint[] = [];
  private current: JobStatusFile;
  private writing: Promise<unknown> = Promise.resolve();
  private dirty = false;
  private ended = false;
  private seq = 0;

  constructor(
    private readonly write: (name: string, body: string) => Promise<unknown>,
    jobId: string,
  ) {
    const now = new Date().toISOString();
    this.current = {
      jobId,
      state: 'running',
      progress: 0,
      iteration: 0,
      metrics: {},
      logTail: [],
      startedAt: now,
      updatedAt: now,
      host: hostname(),
      pid: process.pid,
    };
  }

  get status(): Readonly<JobStatusFile> {
    return this.current;
  }

  /** True once the final status is set: later progress and log lines are dropped by callers. */
  get finished(): boolean {
    return this.ended;
  }

  log(line: string): void {
    this.lines.push(`${new Date().toISOString()} ${line}`);
    if (this.lines.length > MAX_LOG_LINES) this.lines.splice(0, this.lines.length - MAX_LOG_LINES);
    this.dirty = true;
  }

  update(patch: Partial<JobStatusFile>): void {
    this.current = { ...this.current, ...patch };
    this.dirty = true;
  }

  /** A point of the training curve (the last 2,000 are kept). */
  record(point: HistoryPoint): void {
    this.history.push(point);
    if (this.history.length > MAX_HISTORY) this.history.splice(0, this.history.length - MAX_HISTORY);
    this.dirty = true;
  }

  flush(): Promise<unknown> {
    if (!this.dirty) return this.writing;
    this.dirty = false;
    this.current = {
      ...this.current,
      logTail: this.lines.slice(-LOG_TAIL),
      updatedAt: new Date().toISOString(),
    };
    const snapshot = JSON.stringify(this.current);
    const logText = this.lines.join('\n') + '\n';
    const metrics = JSON.stringify({ history: this.history });
    this.writing = this.writing
      .then(() => Promise.all([this.write('log.txt', logText), this.write('metrics.json', metrics)]))
      .then(() => this.write('status.json', snapshot))
      .catch((err: unknown) => {
        process.stderr.write(`status write failed: ${ensureError(err).message}\n`);
      });
    return this.writing;
  }

  beat(): Promise<unknown> {
    return this.write(
      'heartbeat.json',
      JSON.stringify({ at: new Date().toISOString(), seq: ++this.seq }),
    ).catch((err: unknown) => {
      process.stderr.write(`heartbeat failed: ${ensureError(err).message}\n`);
    });
  }

  /** Sets the final status (once; later calls change nothing) and writes it. */
  async finish(patch: Partial<JobStatusFile>): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.update({ ...patch, finishedAt: new Date().toISOString() });
    await this.flush();
  }

  /** Resolves when every write started so far has ended. */
  settled(): Promise<unknown> {
    return this.writing;
  }
}
