import { BlobServiceClient } from '@azure/storage-blob';
import { z } from 'zod';
import { TransientError } from '../errors';
import resources from '../resources.json';
import type { CurvePoint } from './sections';

/** How long one read of a job's metrics.json may take, connection and body included. */
export const CURVE_READ_TIMEOUT_MS = 3_000;
/** The worker keeps at most 2,000 points (a few hundred KB); anything far larger is not its file. */
export const MAX_CURVE_BYTES = 4 * 1024 * 1024;

const curveFileSchema = z.object({
  history: z
    .array(
      z.object({
        iteration: z.number(),
        loss: z.number().nullable().optional(),
        validationLoss: z.number().nullable().optional(),
        at: z.string(),
      }),
    )
    .default([]),
});

export interface CurveReaderOptions {
  /** Per-read budget (default {@link CURVE_READ_TIMEOUT_MS}). */
  timeoutMs?: number;
}

/**
 * Reads a training job's curve (`jobs/<jobId>/metrics.json`, the worker's `history`) for the MLflow
 * mirror, bounded and failing fast: one try, no retries, the whole read (headers and body) within
 * `timeoutMs`. The app's own storage client retries an outage for a minute or more, which read from
 * the mirror would hold up every run's mirroring behind one storage outage; this one gives up in
 * seconds and the mirror logs the curve at a later tick.
 *
 * Resolves `undefined` when the job stored no curve file (or one that is not JSON or not the
 * worker's shape), and no points when the file has no `history`. Rejects with TransientError
 * `mlflow_curve_unavailable` when storage did not answer in time or answered with an error.
 */
export function jobCurveReader(
  service: BlobServiceClient,
  options: CurveReaderOptions = {},
): (jobId: string) => Promise<readonly CurvePoint[] | undefined> {
  const timeoutMs = options.timeoutMs ?? CURVE_READ_TIMEOUT_MS;
  // Same account and credential as the app's store, its own pipeline: one try, a short timeout.
  const bounded = new BlobServiceClient(service.url, service.credential, {
    retryOptions: { maxTries: 1, tryTimeoutInMs: timeoutMs },
  });
  const container = bounded.getContainerClient(resources.blobContainers.jobs);
  return async (jobId) => {
    const path = `${resources.blobContainers.jobs}/${jobId}/metrics.json`;
    const signal = AbortSignal.timeout(timeoutMs);
    let text: string;
    try {
      const blob = container.getBlobClient(`${jobId}/metrics.json`);
      const res = await blob.download(0, undefined, { abortSignal: signal });
      if ((res.contentLength ?? 0) > MAX_CURVE_BYTES) return undefined;
      const chunks: Buffer[] = [];
      let bytes = 0;
      for await (const chunk of res.readableStreamBody ?? []) {
        const c = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
        bytes += c.length;
        if (bytes > MAX_CURVE_BYTES) return undefined;
        chunks.push(c);
      }
      text = Buffer.concat(chunks).toString('utf8');
    } catch (err) {
      const e = err as { statusCode?: number; name?: string; message?: string };
      if (e.statusCode === 404) return undefined;
      const why = signal.aborted || e.name === 'AbortError' ? `no answer within ${timeoutMs} ms` : e.message;
      throw new TransientError(
        'mlflow_curve_unavailable',
        `could not read ${path}: ${why ?? 'storage error'}`,
        {
          cause: err,
        },
      );
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return undefined;
    }
    const parsed = curveFileSchema.safeParse(json);
    return parsed.success ? parsed.data.history : undefined;
  };
}
