import { createHash } from 'node:crypto';
import { z } from 'zod';
import { NonRetriableError } from '../../errors';
import resources from '../../resources.json';
import type { ArtifactStore, BlobLocation } from '../../storage/blob';
import { mapStorageError } from '../../storage/errors';
import { DEFAULT_MAX_PREDICTION_BYTES } from '../userJob/score';
import { jobPath } from './types';

/**
 * Reading a remote score job's predictions so that what Sluice scores with is what the job wrote
 * the first time Sluice read it, whoever can write there afterwards.
 *
 * Where a remote score job writes stays writable after the job ends: on Databricks every run shares
 * the one `joboutputs` credential, and on Azure ML the job's SAS lives to its expiry (deleting the
 * datastore that holds it does not revoke it). The score job's id is deterministic, so a later
 * evaluation of the same model and rows reattaches to the ended job and reads its predictions
 * again. So the first read records the predictions' SHA-256 (or that there were none) write-once in
 * `jobs/<scoreJobId>/predictions.pin.json`, a container no job can write, and every later read must
 * hash to it (`predictions_tampered` otherwise).
 *
 * The size is checked before the download and again while reading (the blob may change between):
 * over `maxBytes` is `predictions_invalid`, as on the host.
 */

const jobsContainer = resources.blobContainers.jobs;

/** At most this many score jobs per model and rows: a failed or canceled one is followed by the next. */
export const MAX_SCORE_ATTEMPTS = 3;

/** The id of a score job's attempt: the derived id for the first, `-a<n>` after it for later ones. */
export const scoreAttemptId = (jobId: string, attempt: number): string =>
  attempt === 0 ? jobId : `${jobId}-a${attempt}`;

const pinSchema = z.object({ jobId: z.string(), sha256: z.string().nullable() });

export const predictionsPinPath = (jobId: string): BlobLocation => ({
  container: jobsContainer,
  path: jobPath(jobId, 'predictions.pin.json'),
});

/**
 * The predictions the score job `jobId` wrote at `at` (undefined: none), size-checked and pinned
 * (see the file's comment).
 */
export async function readPinnedPredictions(
  store: ArtifactStore,
  jobId: string,
  at: BlobLocation,
  maxBytes: number = DEFAULT_MAX_PREDICTION_BYTES,
): Promise<string | undefined> {
  const data = await readBounded(store, at, maxBytes);
  const sha256 = data ? createHash('sha256').update(data).digest('hex') : null;
  const pin = { jobId, sha256 };
  const written = await store.putJson(predictionsPinPath(jobId), pin, { condition: 'create' });
  if (!written.ok) {
    // A pin is there with other content: a different digest (or presence) than the first read's.
    const found = await store.tryGetJson(predictionsPinPath(jobId), pinSchema);
    const first = found?.value.sha256;
    if (!found || first !== sha256)
      throw new NonRetriableError(
        'predictions_tampered',
        `the predictions of score job ${jobId} (${at.container}/${at.path}) are ${sha256 ? `sha256 ${sha256}` : 'gone'}, but were ${first ? `sha256 ${first}` : 'absent'} when Sluice first read them: something rewrote them after the job ended`,
      );
  }
  return data?.toString('utf8');
}

/** The blob's bytes, refused over `maxBytes` before and while downloading; undefined when missing. */
async function readBounded(
  store: ArtifactStore,
  at: BlobLocation,
  maxBytes: number,
): Promise<Buffer | undefined> {
  const props = await store.properties(at);
  if (!props) return undefined;
  const tooBig = (size: number) =>
    new NonRetriableError(
      'predictions_invalid',
      `the score job's predictions (${at.container}/${at.path}) are ${size} bytes, over the limit of ${maxBytes}`,
    );
  if (props.size > maxBytes) throw tooBig(props.size);
  let stream;
  try {
    ({ stream } = await store.getStream(at));
  } catch (err) {
    if ((err as { code?: string }).code === 'BLOB_NOT_FOUND') return undefined;
    throw err;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream) {
      size += (chunk as Buffer).length;
      if (size > maxBytes) {
        stream.destroy();
        throw tooBig(size);
      }
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    if (err instanceof NonRetriableError) throw err;
    throw mapStorageError(err, 'blob', `read ${at.container}/${at.path}`);
  }
  return Buffer.concat(chunks);
}
