import { app, type HttpRequest, type HttpResponseInit } from '@azure/functions';
import { z } from 'zod';
import { ValidationError } from '../lib/errors';
import { problem, zodProblem } from '../lib/http/problem';
import resources from '../lib/resources.json';
import { sniffBinary } from '../lib/data/reading/input';
import type { Services } from '../lib/services';
import { withServices } from '../app/services';
import { mediaType, withProblems } from './support/http';

/** Where named uploads live in the datasets container: `datasets/files/<name>`. */
export const NAMED_DATASET_PREFIX = 'files/';

const datasetTypes: Record<string, string> = {
  'text/csv': 'text/csv',
  'application/csv': 'text/csv',
  'application/x-ndjson': 'application/x-ndjson',
  'application/jsonl': 'application/x-ndjson',
  'application/x-jsonlines': 'application/x-ndjson',
  'application/vnd.apache.parquet': 'application/vnd.apache.parquet',
  'application/x-parquet': 'application/vnd.apache.parquet',
};

export const datasetFileNameSchema = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/,
    'must be 1-128 letters, digits, dots, dashes or underscores, starting with a letter or digit',
  )
  .refine((n) => !n.includes('..'), 'must not contain ".."');

/**
 * `PUT /api/datasets/files/{name}`: stores a CSV, JSON Lines or Parquet file at
 * `datasets/files/<name>`, the blob name a schedule's `source.blob`, a pipeline's `goldenSet.blob`
 * and `sluice run --blob` take. PUT again replaces it (a schedule then trains on the new data;
 * `skipIfDataUnchanged` compares digests). PUT, not POST: a browser asks this origin before any
 * cross-site PUT, so a page elsewhere cannot overwrite a dataset.
 */
export const uploadDataset =
  (deps: Pick<Services, 'config' | 'artifacts'>) =>
  async (request: HttpRequest): Promise<HttpResponseInit> => {
    const name = datasetFileNameSchema.safeParse(request.params.name ?? '');
    if (!name.success) return zodProblem(name.error, 'invalid_dataset_name', 'name');
    const type = datasetTypes[mediaType(request)];
    if (!type) {
      return problem(
        415,
        'unsupported_media_type',
        `send CSV (text/csv), JSON Lines (application/x-ndjson) or Parquet (application/vnd.apache.parquet); got "${mediaType(request) || 'none'}"`,
        { field: 'content-type' },
      );
    }
    const limit = deps.config.INGEST_MAX_BYTES;
    const tooLarge = (bytes: number) =>
      problem(
        413,
        'upload_too_large',
        `the file is ${bytes} bytes; the limit is ${limit} (INGEST_MAX_BYTES)`,
        {
          field: 'content-length',
        },
      );
    const declared = Number(request.headers.get('content-length') ?? '0');
    if (declared > limit) return tooLarge(declared);
    const chunks: Uint8Array[] = [];
    let bytes = 0;
    if (request.body) {
      for await (const chunk of request.body as AsyncIterable<Uint8Array>) {
        bytes += chunk.length;
        if (bytes > limit) return tooLarge(bytes);
        chunks.push(chunk);
      }
    }
    if (bytes === 0) throw new ValidationError('empty_body', 'the file is empty', { field: '(body)' });
    const data = Buffer.concat(chunks);
    const binary = type === 'application/vnd.apache.parquet' ? undefined : sniffBinary(data);
    if (binary) {
      throw new ValidationError(
        'binary_upload',
        `the file is ${binary}, sent as ${type}; send the dataset as UTF-8 CSV or JSON Lines (or Parquet)`,
        { status: 415, field: '(body)' },
      );
    }
    const location = {
      container: resources.blobContainers.datasets,
      path: `${NAMED_DATASET_PREFIX}${name.data}`,
    };
    const written = await deps.artifacts.put(location, data, { contentType: type, condition: 'overwrite' });
    if (!written.ok)
      throw new Error(`storing ${location.container}/${location.path} failed: ${written.reason}`);
    const blob = `${location.container}/${location.path}`;
    return {
      status: 201,
      headers: { location: `/api/datasets/files/${name.data}` },
      jsonBody: { blob, sha256: written.sha256, bytes },
    };
  };

app.http('uploadDataset', {
  route: 'api/datasets/files/{name}',
  methods: ['PUT'],
  authLevel: 'function',
  handler: withProblems(withServices(uploadDataset)),
});
